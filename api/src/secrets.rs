//! Password hashing (argon2), one-time codes from the OS CSPRNG, and keyed
//! hashes of codes and tokens. Nothing here is ever logged.

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::{Digest, Sha256};

/// A secret that must not be printed (`Debug` shows `[REDACTED]`) and is
/// wiped from memory when dropped: passwords, codes, tokens, keys. Read it
/// with `secrecy::ExposeSecret::expose_secret`, where it is used.
pub type Secret = secrecy::SecretString;
pub use secrecy::ExposeSecret;

/// Hashes a password with argon2id. Slow on purpose: call it from
/// `spawn_blocking`.
pub fn hash_password(password: &str) -> Result<String, String> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default().hash_password(password.as_bytes(), &salt).map(|h| h.to_string()).map_err(|e| e.to_string())
}

/// Whether `password` matches the stored argon2 hash.
pub fn verify_password(password: &str, hash: &str) -> bool {
    PasswordHash::new(hash).is_ok_and(|parsed| Argon2::default().verify_password(password.as_bytes(), &parsed).is_ok())
}

/// Argon2 work, bounded: at most `slots` hashes at once (each takes a core
/// and about 19 MiB), and a request waits at most `wait` for a slot before it
/// is told the service is busy. Unknown login IDs take the same path, so a
/// flood of anonymous attempts cannot exhaust memory or the blocking pool.
pub struct PasswordWork {
    slots: std::sync::Arc<tokio::sync::Semaphore>,
    wait: std::time::Duration,
}

/// No slot for password work came free in time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Busy;

impl PasswordWork {
    pub fn new(slots: usize, wait: std::time::Duration) -> PasswordWork {
        PasswordWork { slots: std::sync::Arc::new(tokio::sync::Semaphore::new(slots.max(1))), wait }
    }

    async fn run<T: Send + 'static>(&self, work: impl FnOnce() -> T + Send + 'static) -> Result<Option<T>, Busy> {
        let permit = match tokio::time::timeout(self.wait, self.slots.clone().acquire_owned()).await {
            Ok(Ok(permit)) => permit,
            Ok(Err(_)) | Err(_) => return Err(Busy),
        };
        let done = tokio::task::spawn_blocking(move || {
            let out = work();
            drop(permit);
            out
        })
        .await;
        Ok(done.ok())
    }

    /// Whether `password` matches the stored hash; `None` when the work
    /// itself failed (a panic in the hashing thread).
    pub async fn verify(&self, password: Secret, hash: String) -> Result<Option<bool>, Busy> {
        self.run(move || verify_password(password.expose_secret(), &hash)).await
    }

    /// A new hash for `password`.
    pub async fn hash(&self, password: Secret) -> Result<Option<Result<String, String>>, Busy> {
        self.run(move || hash_password(password.expose_secret())).await
    }
}

/// A hash to compare against when the login ID is unknown, so that an
/// unknown ID takes as long as a wrong password.
pub fn dummy_hash() -> &'static str {
    static HASH: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    HASH.get_or_init(|| hash_password("not-a-password").unwrap_or_default())
}

/// A one-time code: one the ledger draws for an e-mail, or one the customer
/// typed (the e-mailed code, or the OTP device's password). Never printed
/// (`Debug` is redacted), wiped when dropped; checked only through its
/// keyed hash or the device's own check.
#[derive(Clone, serde::Deserialize)]
#[serde(transparent)]
pub struct OtpCode(Secret);

impl OtpCode {
    /// Six decimal digits from the OS CSPRNG, uniformly (no modulo bias).
    pub fn draw() -> OtpCode {
        let mut rng = rand::rngs::OsRng;
        loop {
            let n = rng.next_u32();
            // Largest multiple of 1_000_000 below 2^32 keeps every code equally likely.
            if n < 4_294_000_000 {
                return OtpCode(Secret::from(format!("{:06}", n % 1_000_000)));
            }
        }
    }

    /// The code without the spaces around it, when it is `n` decimal digits:
    /// anything else cannot be right, and is a wrong code.
    pub fn digits(&self, n: usize) -> Option<&str> {
        let code = self.0.expose_secret().trim();
        (code.len() == n && code.bytes().all(|b| b.is_ascii_digit())).then_some(code)
    }

    /// The code as it goes into the e-mail.
    pub fn for_mail(&self) -> &str {
        self.0.expose_secret()
    }
}

impl std::fmt::Debug for OtpCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("OtpCode([REDACTED])")
    }
}

/// A random bearer token (256 bits, base64url).
pub fn new_token() -> Secret {
    use base64::Engine;
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    Secret::from(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes))
}

/// SHA-256 of a token, as stored: a leaked table yields no usable token.
pub fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// The keyed hash of a code, bound to the code's id so a hash cannot be
/// replayed for another code.
/// (HMAC takes keys of any length; the error is the hmac crate's signature.)
pub fn code_hmac(key: &[u8], code_id: &str, code: &str) -> Result<String, hmac::digest::InvalidLength> {
    let mut mac = Hmac::<Sha256>::new_from_slice(key)?;
    mac.update(code_id.as_bytes());
    mac.update(b":");
    mac.update(code.trim().as_bytes());
    Ok(hex::encode(mac.finalize().into_bytes()))
}

/// The keyed hash an unknown login ID is counted under.
pub fn login_id_key(key: &[u8], login_id: &str) -> Result<String, hmac::digest::InvalidLength> {
    code_hmac(key, "unknown-login-id", login_id)
}

/// Constant-time comparison of two hex digests.
pub fn digests_equal(a: &str, b: &str) -> bool {
    use subtle::ConstantTimeEq;
    a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_six_digits() {
        for _ in 0..1000 {
            let c = OtpCode::draw();
            assert_eq!(c.digits(6), Some(c.for_mail()));
        }
    }

    #[test]
    fn a_typed_code_is_its_digits_or_nothing() {
        let typed = |s: &str| serde_json::from_value::<OtpCode>(serde_json::json!(s)).unwrap();
        assert_eq!(typed(" 012345 ").digits(6), Some("012345"));
        assert_eq!(typed("012345").digits(8), None);
        assert_eq!(typed("01234a").digits(6), None);
        assert_eq!(typed("０１２３４５").digits(6), None, "full-width digits are not the code");
        assert!(!format!("{:?}", typed("012345")).contains("012345"));
    }

    #[test]
    fn a_secret_never_shows_in_debug_output() {
        let shown = format!("{:?}", Secret::from("123456"));
        assert!(!shown.contains("123456") && shown.contains("REDACTED"), "{shown}");
    }

    #[test]
    fn the_code_hash_depends_on_key_code_and_id() {
        let h = code_hmac(b"key", "c1", "123456").unwrap();
        assert!(digests_equal(&h, &code_hmac(b"key", "c1", " 123456 ").unwrap()));
        assert!(!digests_equal(&h, &code_hmac(b"key", "c2", "123456").unwrap()));
        assert!(!digests_equal(&h, &code_hmac(b"other", "c1", "123456").unwrap()));
        assert!(!digests_equal(&h, &code_hmac(b"key", "c1", "123457").unwrap()));
    }

    #[test]
    fn passwords_verify_only_against_their_own_hash() {
        let h = hash_password("correct horse").unwrap();
        assert!(verify_password("correct horse", &h));
        assert!(!verify_password("wrong horse", &h));
        assert!(!h.contains("correct horse"));
    }
}
