-- Nothing on SQLite: one process writes it, and wakes its projector itself.
SELECT 1;
