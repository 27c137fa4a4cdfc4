-- Every committed append wakes the projector of every instance (LISTEN
-- ledger_appended); notifications are delivered at commit, one per
-- transaction and channel.
CREATE FUNCTION events_announce() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('ledger_appended', '');
    RETURN NULL;
END;
$$;

CREATE TRIGGER events_announce AFTER INSERT ON events
    FOR EACH STATEMENT EXECUTE FUNCTION events_announce();
