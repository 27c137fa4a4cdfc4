-- Failed password steps by where they came from, for the credential
-- stuffing rules (many login IDs from one client or one network within a
-- window). Only the rules' window is kept: the projector deletes older rows.
CREATE TABLE login_attempts
(
    position   BIGINT NOT NULL PRIMARY KEY,
    at         BIGINT NOT NULL,
    client     TEXT   NOT NULL,
    network    TEXT   NOT NULL,
    -- The login ID as typed for an unknown one, `account:<id>` for an account's.
    login      TEXT   NOT NULL,
    account_id TEXT,
    stream     TEXT   NOT NULL,
    stream_id  TEXT   NOT NULL,
    sequence   BIGINT NOT NULL,
    event_type TEXT   NOT NULL
);
CREATE INDEX login_attempts_client ON login_attempts (client, at);
CREATE INDEX login_attempts_network ON login_attempts (network, at);
CREATE INDEX login_attempts_at ON login_attempts (at);
