-- Read models and working state, one schema for SQLite and PostgreSQL.
-- Instants are BIGINT milliseconds since the Unix epoch (UTC); flags are 0/1.

-- Where each projection has got to in the log. For PostgreSQL the
-- checkpoint is (transaction_id, position); SQLite uses position only.
CREATE TABLE projector_checkpoints
(
    projection     TEXT   PRIMARY KEY,
    transaction_id BIGINT NOT NULL,
    position       BIGINT NOT NULL
);

-- Status inquiry (seed 000 p.16-17): one row per account ...
CREATE TABLE status_accounts
(
    account_id         TEXT   PRIMARY KEY,
    login_id           TEXT   NOT NULL,
    holder_kind        TEXT   NOT NULL,
    email              TEXT,
    email_reachable    BIGINT NOT NULL,
    password_temporary BIGINT NOT NULL,
    locked             BIGINT NOT NULL,
    last_login_at      BIGINT,
    last_login_method  TEXT,
    last_sequence      BIGINT NOT NULL,
    updated_at         BIGINT NOT NULL
);

-- ... and one row per passkey ever bound, revoked ones kept.
CREATE TABLE status_passkeys
(
    passkey_id        TEXT   PRIMARY KEY,
    account_id        TEXT   NOT NULL,
    credential_id     TEXT   NOT NULL,
    name              TEXT   NOT NULL,
    aaguid            TEXT   NOT NULL,
    provider          TEXT,
    backup_eligible   BIGINT NOT NULL,
    backup_state      BIGINT NOT NULL,
    transports        TEXT   NOT NULL,
    attachment        TEXT,
    added_via         TEXT   NOT NULL,
    registered_at     BIGINT NOT NULL,
    registered_channel TEXT  NOT NULL,
    last_used_at      BIGINT,
    last_used_channel TEXT,
    revoked_at        BIGINT
);
CREATE INDEX status_passkeys_account ON status_passkeys (account_id);

-- E-mail registry: which accounts hold which normalised address.
CREATE TABLE email_registry
(
    account_id TEXT PRIMARY KEY,
    email      TEXT NOT NULL
);
CREATE INDEX email_registry_email ON email_registry (email);

-- Credential index: credential id -> account, with the public key the
-- WebAuthn library verifies against and the last counter seen.
CREATE TABLE credential_index
(
    credential_id TEXT   PRIMARY KEY,
    account_id    TEXT   NOT NULL,
    passkey_id    TEXT   NOT NULL,
    public_key    TEXT   NOT NULL,
    counter       BIGINT NOT NULL,
    active        BIGINT NOT NULL
);

-- Working state (not event-sourced; see docs/decisions.md).

-- Password hashes live here, never in events: an event is forever.
CREATE TABLE account_secrets
(
    account_id            TEXT PRIMARY KEY,
    login_id              TEXT NOT NULL UNIQUE,
    password_hash         TEXT NOT NULL,
    trading_password_hash TEXT NOT NULL
);

CREATE TABLE flows
(
    flow_id    TEXT   PRIMARY KEY,
    account_id TEXT,
    purpose    TEXT   NOT NULL,
    channel    TEXT   NOT NULL,
    passkey_name TEXT,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);

-- One-time codes, as a keyed hash only.
CREATE TABLE otp_codes
(
    code_id    TEXT   PRIMARY KEY,
    flow_id    TEXT   NOT NULL,
    code_hmac  TEXT   NOT NULL,
    issued_at  BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX otp_codes_flow ON otp_codes (flow_id, issued_at);

-- WebAuthn ceremony state between options and finish: consumed once.
CREATE TABLE ceremonies
(
    ceremony_id TEXT   PRIMARY KEY,
    kind        TEXT   NOT NULL,
    flow_id     TEXT,
    state       TEXT   NOT NULL,
    passkey_name TEXT,
    expires_at  BIGINT NOT NULL
);

CREATE TABLE sessions
(
    token_hash TEXT   PRIMARY KEY,
    account_id TEXT   NOT NULL,
    method     TEXT   NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    ended_at   BIGINT
);

CREATE TABLE staff
(
    staff_id   TEXT   PRIMARY KEY,
    name       TEXT   NOT NULL,
    role       TEXT   NOT NULL,
    token_hash TEXT   NOT NULL UNIQUE,
    created_at BIGINT NOT NULL
);
