-- The sweeper deletes working rows a day after they expired; these indexes
-- let it find them without reading the tables whole.
CREATE INDEX ceremonies_expiry ON ceremonies (expires_at);
CREATE INDEX flows_expiry ON flows (expires_at);
CREATE INDEX otp_codes_expiry ON otp_codes (expires_at);
CREATE INDEX sessions_expiry ON sessions (expires_at);
