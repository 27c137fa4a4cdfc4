-- The passkey a session was opened with, so that deleting that passkey ends
-- the session (its next request answers `session_ended`). Sessions opened
-- otherwise (a registration, a password and a code) have none.
ALTER TABLE sessions ADD COLUMN passkey_id TEXT;
CREATE INDEX sessions_of_account ON sessions (account_id);
