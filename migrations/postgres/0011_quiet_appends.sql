-- Appends no longer notify from a trigger: a NOTIFY holds a database-wide
-- lock from its transaction's commit until the commit ends, so every append
-- committed alone (no group commit). The appending instance wakes its own
-- projector; when another instance holds the projector, it is told with one
-- notification for all the appends made since (see Projector::appended).
DROP TRIGGER events_announce ON events;
DROP FUNCTION events_announce();

-- The epoch, the default of every append, in PL/pgSQL: its query is planned
-- once per connection instead of at every call of a SQL-language function.
CREATE OR REPLACE FUNCTION ledger_epoch() RETURNS bigint LANGUAGE plpgsql STABLE AS $$
BEGIN
    RETURN (SELECT COALESCE(MAX(epoch), 0) FROM ledger_epochs);
END;
$$;

-- (transaction_id, position) orders nothing since the epoch came first
-- (0010): one index less to keep at every append.
DROP INDEX events_global_order;
