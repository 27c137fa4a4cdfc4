-- Addresses an account no longer has: a support search by an address that
-- was changed still finds the account (a takeover often starts there).
CREATE TABLE former_emails
(
    account_id  TEXT   NOT NULL,
    slot        BIGINT NOT NULL,
    email       TEXT   NOT NULL,
    replaced_at BIGINT NOT NULL,
    PRIMARY KEY (account_id, slot, email)
);
CREATE INDEX former_emails_email ON former_emails (email);
