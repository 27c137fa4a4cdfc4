-- A passkey refused at login until support has checked it (its signature
-- counter went backwards): when it was suspended, none once reinstated.
ALTER TABLE status_passkeys ADD COLUMN suspended_at BIGINT;
