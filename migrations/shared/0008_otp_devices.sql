-- The OTP service (seed 004): the device's TOTP secret is a secret, kept
-- here and never in an event; last_step is the last time step accepted, so
-- a one-time password is taken once.
CREATE TABLE otp_devices
(
    account_id TEXT   PRIMARY KEY,
    secret     TEXT   NOT NULL,
    algorithm  TEXT   NOT NULL,
    digits     BIGINT NOT NULL,
    period     BIGINT NOT NULL,
    last_step  BIGINT NOT NULL
);

-- The status inquiry shows whether the OTP service is registered.
ALTER TABLE status_accounts ADD COLUMN otp_device BIGINT NOT NULL DEFAULT 0;
