//! The shapes several routes share. Every handler returns a typed struct,
//! and the OpenAPI document (`/api/openapi.json`) is generated from these
//! same types, so the document cannot drift from what is answered.

use chrono::{DateTime, Utc};
use ledger_projections::read_models::PasskeyView;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use crate::error::ApiError;

/// The step a flow expects next.
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Next {
    Password,
    /// The code sent to the registered address (or the OTP device's).
    Otp,
    /// Seed 004: the customer picks the address the code goes to.
    ChooseAddress,
    Passkey,
}

/// A flow that has begun or moved on.
#[derive(Debug, Serialize, ToSchema)]
pub struct FlowStep {
    pub flow_id: String,
    pub next: Next,
}

/// The answer to a correct code: the passkey step follows.
#[derive(Debug, Serialize, ToSchema)]
pub struct CodeAccepted {
    pub next: Next,
}

/// Where a one-time code went.
#[derive(Debug, Serialize, ToSchema)]
#[serde(untagged)]
pub enum CodeSent {
    /// E-mailed to the registered address in `slot`, shown masked.
    Email {
        destination: String,
        slot: u8,
        #[serde(serialize_with = "ledger_domain::japan::serialize")]
        expires_at: DateTime<Utc>,
    },
    /// Seed 004: the brokerage's OTP device answers; nothing is mailed.
    Device {
        factor: DeviceFactor,
        #[serde(serialize_with = "ledger_domain::japan::serialize")]
        expires_at: DateTime<Utc>,
    },
}

/// The one-time password device's kind.
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DeviceFactor {
    Totp,
}

/// A code was sent: the flow asks for it next.
#[derive(Debug, Serialize, ToSchema)]
pub struct CodeStep {
    pub flow_id: String,
    pub next: Next,
    pub otp: CodeSent,
}

/// A new code for the same flow (seed 003).
#[derive(Debug, Serialize, ToSchema)]
pub struct CodeResent {
    pub otp: CodeSent,
}

/// One registered address the customer may have the code sent to.
#[derive(Debug, Serialize, ToSchema)]
pub struct AddressChoice {
    pub slot: u8,
    /// Masked (`t***@example.jp`).
    pub destination: String,
}

/// Seed 004: the addresses to choose from before a code is sent.
#[derive(Debug, Serialize, ToSchema)]
pub struct ChooseAddress {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub flow_id: Option<String>,
    pub next: Next,
    pub addresses: Vec<AddressChoice>,
}

/// One of the customer's passkeys offered as the second factor.
#[derive(Debug, Serialize, ToSchema)]
pub struct SecondFactorPasskey {
    pub id: String,
    pub name: String,
    #[serde(serialize_with = "ledger_domain::japan::serialize_option")]
    pub last_used_at: Option<DateTime<Utc>>,
    #[serde(serialize_with = "ledger_domain::japan::serialize")]
    pub registered_at: DateTime<Utc>,
}

/// Seed 002: after the password, a passkey is asked for; the one used last
/// first, with the request options naming them.
#[derive(Debug, Serialize, ToSchema)]
pub struct SecondFactorOptions {
    #[serde(rename = "publicKey")]
    #[schema(value_type = Object)]
    pub public_key: Value,
    pub flow_id: String,
    pub next: Next,
    pub passkeys: Vec<SecondFactorPasskey>,
}

/// What follows a correct password.
#[derive(Debug, Serialize, ToSchema)]
#[serde(untagged)]
pub enum PasswordAccepted {
    Code(CodeStep),
    ChooseAddress(ChooseAddress),
    SecondFactor(SecondFactorOptions),
}

/// A customer session: the bearer token, shown this once, and its expiry.
#[derive(Debug, Serialize, ToSchema)]
pub struct SessionIssued {
    pub token: String,
    #[serde(serialize_with = "ledger_domain::japan::serialize")]
    pub expires_at: DateTime<Utc>,
}

/// `navigator.credentials.create()` options for a new passkey, and the
/// name it will be given.
#[derive(Debug, Serialize, ToSchema)]
pub struct CreationOptions {
    /// WebAuthn `PublicKeyCredentialCreationOptions` (JSON encoding).
    #[serde(rename = "publicKey")]
    #[schema(value_type = Object)]
    pub public_key: Value,
    pub passkey_name: String,
}

/// A passkey just bound, as the status screen will show it.
#[derive(Debug, Serialize, ToSchema)]
pub struct PasskeyBound {
    pub passkey: Option<PasskeyView>,
}

/// How many passkeys a deletion removed.
#[derive(Debug, Serialize, ToSchema)]
pub struct Deleted {
    pub deleted: usize,
}

/// A browser's WebAuthn response (`PublicKeyCredential`, JSON encoding).
#[derive(Debug, Deserialize, ToSchema)]
pub struct CredentialBody {
    #[schema(value_type = Object)]
    pub credential: Value,
}

/// A code the customer typed.
#[derive(Deserialize, ToSchema)]
pub struct CodeBody {
    #[schema(value_type = String, format = Password)]
    pub code: crate::secrets::OtpCode,
}

/// The registered address a code goes to (seed 004).
#[derive(Debug, Deserialize, ToSchema)]
pub struct SendBody {
    /// 1 or 2.
    #[schema(minimum = 1, maximum = 2)]
    pub slot: u8,
}

/// The document's name for the domain's `HolderKind` (the domain stays
/// free of web concerns); a test keeps the two spelled alike.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
#[allow(dead_code)]
pub enum HolderKindName {
    Individual,
    Family,
    Corporate,
}

/// The document's name for the domain's `ReviewOutcome`.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
#[allow(dead_code)]
pub enum ReviewOutcomeName {
    Confirmed,
    Dismissed,
}

/// The flow a step belongs to (a path parameter).
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Path)]
pub struct FlowPath {
    /// From the first step's answer.
    pub flow_id: String,
}

/// The account a staff or admin route acts on (a path parameter).
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Path)]
pub struct AccountPath {
    /// The ledger's account ID (a UUID).
    pub account_id: String,
}

/// Optional: the name of the passkey about to be created (else the
/// device's, seed 002).
#[derive(Deserialize, Default, ToSchema)]
pub struct PasskeyNameBody {
    pub passkey_name: Option<String>,
}

/// The `publicKey` member of a WebAuthn options object as webauthn-rs
/// serialises it.
pub fn public_key_of(options: &impl Serialize) -> Result<Value, ApiError> {
    let mut value = serde_json::to_value(options).map_err(ApiError::internal)?;
    value.get_mut("publicKey").map(Value::take).ok_or_else(|| ApiError::internal("WebAuthn options without publicKey"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use ledger_domain::account::HolderKind;
    use ledger_domain::staff::ReviewOutcome;

    #[test]
    fn the_documents_enumerations_are_spelled_as_the_domains() {
        let name = |v: serde_json::Result<Value>| v.unwrap();
        for (domain, document) in [
            (serde_json::to_value(HolderKind::Individual), serde_json::to_value(HolderKindName::Individual)),
            (serde_json::to_value(HolderKind::Family), serde_json::to_value(HolderKindName::Family)),
            (serde_json::to_value(HolderKind::Corporate), serde_json::to_value(HolderKindName::Corporate)),
            (serde_json::to_value(ReviewOutcome::Confirmed), serde_json::to_value(ReviewOutcomeName::Confirmed)),
            (serde_json::to_value(ReviewOutcome::Dismissed), serde_json::to_value(ReviewOutcomeName::Dismissed)),
        ] {
            assert_eq!(name(domain), name(document));
        }
    }
}
