-- Subscribers of the audit trail outside the ledger: NATS JetStream and
-- webhook subscriptions. Each follows the trail in its order with its own
-- position (like the projector's checkpoint), so a restart resumes where
-- delivery stopped. Not a read model: it survives rebuilds (the rebuilt
-- trail has the same positions). No secret is stored: a webhook's signing
-- secret is derived from the ledger's secret key and the generation.
CREATE TABLE subscriptions
(
    subscription_id    TEXT PRIMARY KEY,
    -- `webhook` or `nats`.
    kind               TEXT    NOT NULL,
    -- The webhook's URL, or the NATS stream's name.
    target             TEXT    NOT NULL,
    -- `cloudevents` or `ocsf`.
    format             TEXT    NOT NULL,
    -- Event types delivered, comma-separated; empty: all.
    types              TEXT    NOT NULL,
    batch_size         INTEGER NOT NULL,
    -- `masked` or `full`.
    personal_data      TEXT    NOT NULL,
    secret_generation  INTEGER NOT NULL,
    -- Until then (ms), the previous generation's signature is sent too.
    previous_until     BIGINT,
    -- The last trail position delivered, and the last checkpoint's tree size.
    position           BIGINT  NOT NULL,
    checkpoint_size    BIGINT  NOT NULL,
    -- The batch being delivered (retried unchanged): its last position.
    pending_through    BIGINT,
    -- Bumped by each replay, so a replayed batch has a new webhook-id.
    replays            INTEGER NOT NULL,
    -- `active` or `disabled`.
    state              TEXT    NOT NULL,
    disabled_reason    TEXT,
    failing_since      BIGINT,
    failures           INTEGER NOT NULL,
    next_attempt_at    BIGINT,
    last_error         TEXT,
    last_delivered_at  BIGINT,
    -- The instance delivering, and until when its lease holds.
    leased_by          TEXT,
    lease_until        BIGINT,
    created_at         BIGINT  NOT NULL
);
