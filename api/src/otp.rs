//! The brokerage's OTP service (seed 004): a customer's TOTP device (RFC
//! 6238), registered by the core system. Its secret lives in `otp_devices`,
//! never in an event, a log or a response; a time step is accepted once.

use chrono::{DateTime, Utc};
use sqlx::AnyPool;
use totp_rs::{Algorithm, Secret, TOTP};

use crate::error::ApiError;

/// A registered device, as the core system described it.
#[derive(Clone)]
pub struct OtpDevice {
    pub algorithm: String,
    pub digits: u32,
    pub period: u64,
    secret: Vec<u8>,
}

impl std::fmt::Debug for OtpDevice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OtpDevice").field("algorithm", &self.algorithm).field("digits", &self.digits).field("period", &self.period).finish()
    }
}

/// Steps of clock drift accepted either way.
const DRIFT: i64 = 1;

impl OtpDevice {
    /// A device from the integration API's fields: a base32 secret (at least
    /// 128 bits), `SHA1` or `SHA256`, 6 or 8 digits, a step of 30 s unless said.
    pub fn new(secret_base32: &str, algorithm: Option<&str>, digits: Option<u32>, period: Option<u64>) -> Result<OtpDevice, &'static str> {
        let secret =
            Secret::Encoded(secret_base32.trim().replace(' ', "").to_uppercase()).to_bytes().map_err(|_| "secret must be base32")?;
        let algorithm = match algorithm.unwrap_or("SHA1").to_uppercase().replace('-', "").as_str() {
            "SHA1" => "SHA1",
            "SHA256" => "SHA256",
            _ => return Err("algorithm must be SHA1 or SHA256"),
        }
        .to_string();
        let digits = digits.unwrap_or(6);
        if digits != 6 && digits != 8 {
            return Err("digits must be 6 or 8");
        }
        let period = period.unwrap_or(30);
        if !(15..=120).contains(&period) {
            return Err("period must be 15 to 120 seconds");
        }
        let device = OtpDevice { algorithm, digits, period, secret };
        device.totp().map_err(|_| "secret must be at least 128 bits")?;
        Ok(device)
    }

    fn totp(&self) -> Result<TOTP, totp_rs::TotpUrlError> {
        let algorithm = if self.algorithm == "SHA256" { Algorithm::SHA256 } else { Algorithm::SHA1 };
        TOTP::new(algorithm, self.digits as usize, 0, self.period, self.secret.clone())
    }

    /// The password the device shows at `at`.
    pub fn password_at(&self, at: DateTime<Utc>) -> String {
        self.totp().map(|t| t.generate(at.timestamp().max(0) as u64)).unwrap_or_default()
    }

    /// The time step whose password `typed` is, within one step of `at`.
    pub fn matching_step(&self, typed: &str, at: DateTime<Utc>) -> Option<i64> {
        let typed = typed.trim();
        if typed.len() != self.digits as usize || !typed.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let totp = self.totp().ok()?;
        let now = at.timestamp() / self.period as i64;
        (now - DRIFT..=now + DRIFT).filter(|s| *s >= 0).find(|step| {
            let expected = totp.generate((*step as u64) * self.period);
            crate::secrets::digests_equal(&expected, typed)
        })
    }
}

/// Registers `device` for the account (its base32 `secret`), replacing any
/// earlier one; its time steps start unused.
pub async fn replace_device(pool: &AnyPool, account_id: &str, secret: &str, device: &OtpDevice) -> Result<(), ApiError> {
    let mut tx = pool.begin().await?;
    sqlx::query("DELETE FROM otp_devices WHERE account_id = $1").bind(account_id).execute(&mut *tx).await?;
    sqlx::query("INSERT INTO otp_devices (account_id, secret, algorithm, digits, period, last_step) VALUES ($1, $2, $3, $4, $5, -1)")
        .bind(account_id)
        .bind(secret)
        .bind(&device.algorithm)
        .bind(device.digits as i64)
        .bind(device.period as i64)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(())
}

/// Removes the account's device; false when it had none.
pub async fn remove_device(pool: &AnyPool, account_id: &str) -> Result<bool, ApiError> {
    let removed = sqlx::query("DELETE FROM otp_devices WHERE account_id = $1").bind(account_id).execute(pool).await?;
    Ok(removed.rows_affected() > 0)
}

/// The account's device, if it has one.
pub async fn device_of(pool: &AnyPool, account_id: &str) -> Result<Option<OtpDevice>, ApiError> {
    let row: Option<(String, String, i64, i64)> =
        sqlx::query_as("SELECT secret, algorithm, digits, period FROM otp_devices WHERE account_id = $1")
            .bind(account_id)
            .fetch_optional(pool)
            .await?;
    Ok(row.and_then(|(secret, algorithm, digits, period)| {
        OtpDevice::new(&secret, Some(&algorithm), Some(digits as u32), Some(period as u64)).ok()
    }))
}

/// Checks a typed one-time password and takes its time step, once: the
/// same password (or an older one) is refused afterwards.
pub async fn check_and_take(
    pool: &AnyPool,
    account_id: &str,
    typed: &crate::secrets::OtpCode,
    at: DateTime<Utc>,
) -> Result<bool, ApiError> {
    let Some(device) = device_of(pool, account_id).await? else { return Ok(false) };
    let Some(typed) = typed.digits(device.digits as usize) else { return Ok(false) };
    let Some(step) = device.matching_step(typed, at) else { return Ok(false) };
    let taken = sqlx::query("UPDATE otp_devices SET last_step = $2 WHERE account_id = $1 AND last_step < $2")
        .bind(account_id)
        .bind(step)
        .execute(pool)
        .await?;
    Ok(taken.rows_affected() == 1)
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    fn at(unix: i64) -> DateTime<Utc> {
        Utc.timestamp_opt(unix, 0).single().unwrap()
    }

    /// RFC 6238 appendix B: the seeds "12345678901234567890" (SHA-1) and
    /// "12345678901234567890123456789012" (SHA-256), 8 digits, 30 s steps.
    #[test]
    fn rfc_6238_test_vectors() {
        let sha1 = OtpDevice::new("GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ", Some("SHA1"), Some(8), Some(30)).unwrap();
        let sha256 = OtpDevice::new("GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQGEZA", Some("SHA256"), Some(8), Some(30)).unwrap();
        for (time, want_sha1, want_sha256) in [
            (59, "94287082", "46119246"),
            (1111111109, "07081804", "68084774"),
            (1111111111, "14050471", "67062674"),
            (1234567890, "89005924", "91819424"),
            (2000000000, "69279037", "90698825"),
            (20000000000, "65353130", "77737706"),
        ] {
            assert_eq!(sha1.password_at(at(time)), want_sha1, "SHA-1 at {time}");
            assert_eq!(sha256.password_at(at(time)), want_sha256, "SHA-256 at {time}");
        }
    }

    #[test]
    fn one_step_of_drift_either_way_and_no_more() {
        let device = OtpDevice::new("GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ", None, None, None).unwrap();
        let now = at(1_800_000_000);
        let current = device.password_at(now);
        assert_eq!(device.matching_step(&current, now), Some(1_800_000_000 / 30));
        assert!(device.matching_step(&device.password_at(at(1_800_000_000 - 30)), now).is_some());
        assert!(device.matching_step(&device.password_at(at(1_800_000_000 + 30)), now).is_some());
        assert!(device.matching_step(&device.password_at(at(1_800_000_000 - 90)), now).is_none());
        assert!(device.matching_step("12345", now).is_none());
    }

    #[test]
    fn bad_devices_are_refused() {
        assert!(OtpDevice::new("not base32!", None, None, None).is_err());
        assert!(OtpDevice::new("GEZDGNBV", None, None, None).is_err(), "40 bits is too short");
        assert!(OtpDevice::new("GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ", Some("MD5"), None, None).is_err());
        assert!(OtpDevice::new("GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ", None, Some(7), None).is_err());
    }
}
