-- Wrong passwords for login IDs no account has, so that an unknown ID
-- "locks" after as many attempts as a real one and answers the same from
-- then on: whether an ID exists is not revealed by the lock. Keyed by a
-- keyed hash of the ID (no attacker-chosen text is kept); swept 30 days
-- after the last attempt.
CREATE TABLE unknown_login_failures
(
    login_id_key TEXT   PRIMARY KEY,
    failures     BIGINT NOT NULL,
    last_at      BIGINT NOT NULL
);
CREATE INDEX unknown_login_failures_last ON unknown_login_failures (last_at);
