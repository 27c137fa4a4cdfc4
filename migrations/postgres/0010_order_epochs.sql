-- A restore-safe global order. Within one cluster the log is read in
-- (transaction_id, position) order below the oldest open transaction; a
-- logical restore into another cluster, or a major-version upgrade, can put
-- the transaction counter behind the restored log, and new events would sort
-- before the projector's checkpoint and never be read. So the order is
-- (epoch, transaction_id, position): at start-up, when the counter is found
-- behind the current epoch's events, a new epoch begins (loudly), and every
-- later event sorts after everything restored.
CREATE TABLE ledger_epochs
(
    epoch      bigint      PRIMARY KEY,
    started_at timestamptz NOT NULL DEFAULT now(),
    reason     text        NOT NULL
);
INSERT INTO ledger_epochs (epoch, reason) VALUES (0, 'initial');

CREATE FUNCTION ledger_epoch() RETURNS bigint LANGUAGE sql STABLE AS $$
    SELECT COALESCE(MAX(epoch), 0) FROM ledger_epochs
$$;

ALTER TABLE events ADD COLUMN epoch bigint NOT NULL DEFAULT 0;
ALTER TABLE events ALTER COLUMN epoch SET DEFAULT ledger_epoch();
CREATE INDEX events_epoch_order ON events (epoch, transaction_id, position);

ALTER TABLE projector_checkpoints ADD COLUMN epoch BIGINT NOT NULL DEFAULT 0;
