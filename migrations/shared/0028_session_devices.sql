-- What the customer's list of signed-in devices shows (GET /api/v1/me/sessions):
-- the channel, device and address a session was opened from, the sequence
-- in the account's stream of the event that opened it (so the activity list
-- can say "this session"), and when it was last used (updated at most once
-- a minute). Sessions opened before have none.
ALTER TABLE sessions ADD COLUMN channel TEXT;
ALTER TABLE sessions ADD COLUMN ip TEXT;
ALTER TABLE sessions ADD COLUMN environment TEXT;
ALTER TABLE sessions ADD COLUMN opened_by BIGINT;
ALTER TABLE sessions ADD COLUMN last_seen_at BIGINT;
