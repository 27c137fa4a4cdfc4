-- Staff tokens expire and can be revoked. A token issued before this
-- migration expires 90 days after it runs, except the core system's
-- (provisioned from LEDGER_ADMIN_TOKEN_FILE, rotated by replacing the file).
ALTER TABLE staff ADD COLUMN expires_at BIGINT;
ALTER TABLE staff ADD COLUMN revoked_at BIGINT;
UPDATE staff SET expires_at = (extract(epoch FROM now()) * 1000)::bigint + 7776000000 WHERE name <> 'core-system';
