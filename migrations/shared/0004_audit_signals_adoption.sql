-- Issue 4: the audit trail (hash-chained), fraud signals, adoption figures.

CREATE TABLE audit_trail
(
    audit_position BIGINT PRIMARY KEY,
    aggregate_type TEXT   NOT NULL,
    aggregate_id   TEXT   NOT NULL,
    sequence       BIGINT NOT NULL,
    event_type     TEXT   NOT NULL,
    event_version  TEXT   NOT NULL,
    at             BIGINT NOT NULL,
    account_id     TEXT,
    actor          TEXT   NOT NULL,
    actor_kind     TEXT   NOT NULL,
    channel        TEXT   NOT NULL,
    ip             TEXT   NOT NULL,
    user_agent     TEXT   NOT NULL,
    line_en        TEXT   NOT NULL,
    line_ja        TEXT   NOT NULL,
    payload        TEXT   NOT NULL,
    metadata       TEXT   NOT NULL,
    prev_hash      TEXT   NOT NULL,
    hash           TEXT   NOT NULL
);
CREATE UNIQUE INDEX audit_trail_event ON audit_trail (aggregate_type, aggregate_id, sequence);
CREATE INDEX audit_trail_account ON audit_trail (account_id, audit_position);
CREATE INDEX audit_trail_type ON audit_trail (event_type, audit_position);
CREATE INDEX audit_trail_at ON audit_trail (at);

-- Fraud signals: one row per raised signal; reviews come from events.
CREATE TABLE signals
(
    signal_id   TEXT   PRIMARY KEY,
    kind        TEXT   NOT NULL,
    severity    TEXT   NOT NULL,
    raised_at   BIGINT NOT NULL,
    accounts    TEXT   NOT NULL,
    evidence    TEXT   NOT NULL,
    summary_en  TEXT   NOT NULL,
    summary_ja  TEXT   NOT NULL,
    status      TEXT   NOT NULL,
    reviewed_by TEXT,
    reviewed_at BIGINT,
    review_note TEXT
);
CREATE INDEX signals_kind ON signals (kind, raised_at);

-- Which accounts a signal involves, to show them to support.
CREATE TABLE signal_accounts
(
    signal_id  TEXT NOT NULL,
    account_id TEXT NOT NULL,
    PRIMARY KEY (signal_id, account_id)
);
CREATE INDEX signal_accounts_account ON signal_accounts (account_id);

-- Adoption: counts per JST day, channel and metric ...
CREATE TABLE adoption_daily
(
    day     TEXT   NOT NULL,
    channel TEXT   NOT NULL,
    metric  TEXT   NOT NULL,
    count   BIGINT NOT NULL,
    PRIMARY KEY (day, channel, metric)
);

-- ... and the accounts that logged in each day, and whether by passkey.
CREATE TABLE adoption_active
(
    day        TEXT   NOT NULL,
    channel    TEXT   NOT NULL,
    account_id TEXT   NOT NULL,
    by_passkey BIGINT NOT NULL,
    PRIMARY KEY (day, channel, account_id)
);

-- The login ID typed when a registration flow started, so a password step
-- for an ID no account has can be recorded with it.
ALTER TABLE flows ADD COLUMN login_id TEXT;
