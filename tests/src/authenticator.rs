//! A software passkey: a discoverable P-256 credential that answers the
//! ledger's WebAuthn options as a platform authenticator would.

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use ciborium::Value as Cbor;
use p256::ecdsa::signature::Signer;
use p256::ecdsa::{DerSignature, SigningKey};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

/// One credential on one device.
pub struct SoftPasskey {
    pub key: SigningKey,
    pub credential_id: Vec<u8>,
    pub user_handle: Vec<u8>,
    pub rp_id: String,
    pub origin: String,
    pub counter: u32,
    pub backup_eligible: bool,
    pub aaguid: [u8; 16],
    pub attachment: &'static str,
    /// What the browser reports as the credential's transports.
    pub transports: Vec<&'static str>,
    /// The backup state the authenticator reports (a synced passkey is
    /// backed up; it may report otherwise later).
    pub backed_up: bool,
}

fn cbor_bytes(v: &Cbor) -> Vec<u8> {
    let mut out = Vec::new();
    ciborium::ser::into_writer(v, &mut out).expect("cbor");
    out
}

impl SoftPasskey {
    /// A new synced platform passkey for `rp_id` at `origin`.
    pub fn new(rp_id: &str, origin: &str) -> SoftPasskey {
        let mut id = vec![0u8; 16];
        rand::Rng::fill(&mut rand::thread_rng(), &mut id[..]);
        SoftPasskey {
            key: SigningKey::random(&mut rand::rngs::OsRng),
            credential_id: id,
            user_handle: Vec::new(),
            rp_id: rp_id.into(),
            origin: origin.into(),
            counter: 0,
            backup_eligible: true,
            // Google Password Manager's AAGUID.
            aaguid: *uuid::Uuid::parse_str("ea9b8d66-4d01-1d21-3ce4-b6b48cb575d4").expect("uuid").as_bytes(),
            attachment: "platform",
            transports: vec!["internal", "hybrid"],
            backed_up: true,
        }
    }

    /// A roaming USB/NFC security key: device-bound, `cross-platform`.
    pub fn security_key(rp_id: &str, origin: &str) -> SoftPasskey {
        let mut key = SoftPasskey::new(rp_id, origin);
        key.attachment = "cross-platform";
        key.transports = vec!["usb", "nfc"];
        key.backup_eligible = false;
        key.backed_up = false;
        key
    }

    /// What a load generator keeps between runs: the key, the ids and the
    /// counter (a later run must count on from it).
    pub fn save(&self) -> Value {
        json!({
            "key": B64.encode(self.key.to_bytes()),
            "credential_id": B64.encode(&self.credential_id),
            "user_handle": B64.encode(&self.user_handle),
            "counter": self.counter,
        })
    }

    /// A passkey [`SoftPasskey::save`] wrote, for `rp_id` at `origin`.
    pub fn restore(saved: &Value, rp_id: &str, origin: &str) -> Option<SoftPasskey> {
        let bytes = |k: &str| saved[k].as_str().and_then(|s| B64.decode(s).ok());
        let mut key = SoftPasskey::new(rp_id, origin);
        key.key = SigningKey::from_slice(&bytes("key")?).ok()?;
        key.credential_id = bytes("credential_id")?;
        key.user_handle = bytes("user_handle")?;
        key.counter = u32::try_from(saved["counter"].as_u64()?).ok()?;
        Some(key)
    }

    /// The credential id as the API shows it.
    pub fn id(&self) -> String {
        B64.encode(&self.credential_id)
    }

    fn flags(&self, attested: bool) -> u8 {
        let mut f = 0x01 | 0x04; // user present, user verified
        if self.backup_eligible {
            f |= 0x08; // backup eligible
        }
        if self.backup_eligible && self.backed_up {
            f |= 0x10; // backed up
        }
        if attested {
            f |= 0x40;
        }
        f
    }

    fn client_data(&self, kind: &str, challenge: &str) -> Vec<u8> {
        serde_json::to_vec(&json!({ "type": kind, "challenge": challenge, "origin": self.origin, "crossOrigin": false })).expect("json")
    }

    /// Answers creation options (`{publicKey: ...}`) with a registration
    /// response in the WebAuthn JSON form.
    pub fn register(&mut self, options: &Value) -> Value {
        let pk = &options["publicKey"];
        let challenge = pk["challenge"].as_str().expect("challenge");
        self.user_handle = B64.decode(pk["user"]["id"].as_str().expect("user id")).expect("b64 user id");
        let point = self.key.verifying_key().to_encoded_point(false);
        let cose = Cbor::Map(vec![
            (Cbor::Integer(1.into()), Cbor::Integer(2.into())),
            (Cbor::Integer(3.into()), Cbor::Integer((-7).into())),
            (Cbor::Integer((-1).into()), Cbor::Integer(1.into())),
            (Cbor::Integer((-2).into()), Cbor::Bytes(point.x().expect("x").to_vec())),
            (Cbor::Integer((-3).into()), Cbor::Bytes(point.y().expect("y").to_vec())),
        ]);
        let mut auth_data = Sha256::digest(self.rp_id.as_bytes()).to_vec();
        auth_data.push(self.flags(true));
        auth_data.extend(self.counter.to_be_bytes());
        auth_data.extend(self.aaguid);
        auth_data.extend((self.credential_id.len() as u16).to_be_bytes());
        auth_data.extend(&self.credential_id);
        auth_data.extend(cbor_bytes(&cose));
        let attestation = Cbor::Map(vec![
            (Cbor::Text("fmt".into()), Cbor::Text("none".into())),
            (Cbor::Text("attStmt".into()), Cbor::Map(vec![])),
            (Cbor::Text("authData".into()), Cbor::Bytes(auth_data)),
        ]);
        json!({
            "id": self.id(),
            "rawId": self.id(),
            "type": "public-key",
            "authenticatorAttachment": self.attachment,
            "clientExtensionResults": {},
            "response": {
                "clientDataJSON": B64.encode(self.client_data("webauthn.create", challenge)),
                "attestationObject": B64.encode(cbor_bytes(&attestation)),
                "transports": self.transports,
            }
        })
    }

    /// Answers request options (`{publicKey: ...}`) with an assertion,
    /// counting up first unless `counter` was set by the test.
    pub fn assert(&mut self, options: &Value) -> Value {
        self.counter += 1;
        self.assert_with_counter(options, self.counter)
    }

    /// An assertion carrying exactly `counter` (a clone would replay an old one).
    pub fn assert_with_counter(&self, options: &Value, counter: u32) -> Value {
        let challenge = options["publicKey"]["challenge"].as_str().expect("challenge");
        let client_data = self.client_data("webauthn.get", challenge);
        let mut auth_data = Sha256::digest(self.rp_id.as_bytes()).to_vec();
        auth_data.push(self.flags(false));
        auth_data.extend(counter.to_be_bytes());
        let mut signed = auth_data.clone();
        signed.extend(Sha256::digest(&client_data));
        let signature: DerSignature = self.key.sign(&signed);
        json!({
            "id": self.id(),
            "rawId": self.id(),
            "type": "public-key",
            "authenticatorAttachment": self.attachment,
            "clientExtensionResults": {},
            "response": {
                "clientDataJSON": B64.encode(client_data),
                "authenticatorData": B64.encode(auth_data),
                "signature": B64.encode(signature.as_bytes()),
                "userHandle": B64.encode(&self.user_handle),
            }
        })
    }
}
