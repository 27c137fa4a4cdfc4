-- Issue 3: local passkeys, deletion, support, environments.

ALTER TABLE status_accounts ADD COLUMN deletion_locked BIGINT NOT NULL DEFAULT 0;
ALTER TABLE status_accounts ADD COLUMN last_login_environment TEXT;
ALTER TABLE status_accounts ADD COLUMN last_login_recommended BIGINT;

ALTER TABLE status_passkeys ADD COLUMN registered_environment TEXT;
ALTER TABLE status_passkeys ADD COLUMN environment_recommended BIGINT;
ALTER TABLE status_passkeys ADD COLUMN revoked_by TEXT;
ALTER TABLE status_passkeys ADD COLUMN revoked_reason TEXT;
ALTER TABLE status_passkeys ADD COLUMN cross_device_sign_in TEXT;

-- Which cross-device sign-in (if any) a session came from, so that a local
-- passkey added in it can name that sign-in.
ALTER TABLE sessions ADD COLUMN sign_in_id TEXT;
ALTER TABLE sessions ADD COLUMN cross_device BIGINT NOT NULL DEFAULT 0;

-- Staff find accounts by login ID or e-mail address.
CREATE INDEX status_accounts_login ON status_accounts (login_id);
