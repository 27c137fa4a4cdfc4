-- The e-mail registry (a read model) keeps every registered address, per
-- slot (seed 003, 004), so the shared-address signal sees address 2 too.
CREATE TABLE email_registry_slots
(
    account_id TEXT   NOT NULL,
    slot       BIGINT NOT NULL,
    email      TEXT   NOT NULL,
    PRIMARY KEY (account_id, slot)
);
INSERT INTO email_registry_slots (account_id, slot, email) SELECT account_id, 1, email FROM email_registry;
DROP TABLE email_registry;
ALTER TABLE email_registry_slots RENAME TO email_registry;
CREATE INDEX email_registry_by_email ON email_registry (email);
