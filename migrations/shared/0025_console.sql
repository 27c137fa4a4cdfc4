-- The staff console: members sign in with passkeys of their own.
-- A member can be disabled (every console session and their token stop at
-- once); enrolment links are single use, valid 24 hours, and only their
-- hash is kept; a console session is kept by the hash of its cookie.
ALTER TABLE staff ADD COLUMN disabled_at BIGINT;

CREATE TABLE staff_enrolments
(
    link_hash  TEXT   PRIMARY KEY,
    staff_id   TEXT   NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    used_at    BIGINT
);

CREATE TABLE staff_passkeys
(
    credential_id TEXT   PRIMARY KEY,
    staff_id      TEXT   NOT NULL,
    passkey       TEXT   NOT NULL,
    created_at    BIGINT NOT NULL,
    last_used_at  BIGINT
);
CREATE INDEX staff_passkeys_staff ON staff_passkeys (staff_id);

CREATE TABLE console_sessions
(
    session_hash TEXT   PRIMARY KEY,
    staff_id     TEXT   NOT NULL,
    created_at   BIGINT NOT NULL,
    last_seen_at BIGINT NOT NULL,
    ended_at     BIGINT
);
CREATE INDEX console_sessions_staff ON console_sessions (staff_id);
