-- Nothing to change on SQLite (see the PostgreSQL migration).
SELECT 1;
