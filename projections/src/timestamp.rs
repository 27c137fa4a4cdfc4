//! RFC 3161 trusted timestamps over signed checkpoints: the request the
//! ledger sends a time-stamp authority (TSA), and the checks of the reply
//! it keeps: the token is over SHA-256 of the exact note, its CMS signature
//! (RFC 5652) verifies, the signing certificate is the one the signed
//! attributes name (ESS, RFC 5816), is for time stamping, was valid at the
//! stamped time and leads to a certificate the operator trusts.
//!
//! Only the few DER structures involved are read, by a small reader here;
//! certificates are parsed, and their signatures checked, by `x509-parser`.

use chrono::{DateTime, NaiveDateTime, Utc};
use ring::digest;
use ring::signature::{self, UnparsedPublicKey, VerificationAlgorithm};
use serde::Serialize;
use x509_parser::prelude::{FromDer, X509Certificate};

/// Object identifiers, as the content bytes of their DER encoding.
mod oid {
    pub const SHA1: &[u8] = &[0x2b, 0x0e, 0x03, 0x02, 0x1a];
    pub const SHA256: &[u8] = &[0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01];
    pub const SHA384: &[u8] = &[0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x02];
    pub const SHA512: &[u8] = &[0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x03];
    pub const RSA: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01];
    pub const SHA256_RSA: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0b];
    pub const SHA384_RSA: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0c];
    pub const SHA512_RSA: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0d];
    pub const ECDSA_SHA256: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02];
    pub const ECDSA_SHA384: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x03];
    pub const P256: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
    pub const P384: &[u8] = &[0x2b, 0x81, 0x04, 0x00, 0x22];
    pub const ED25519: &[u8] = &[0x2b, 0x65, 0x70];
    pub const SIGNED_DATA: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x02];
    pub const TST_INFO: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09, 0x10, 0x01, 0x04];
    pub const SIGNING_CERTIFICATE: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09, 0x10, 0x02, 0x0c];
    pub const SIGNING_CERTIFICATE_V2: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09, 0x10, 0x02, 0x2f];
    pub const CONTENT_TYPE: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09, 0x03];
    pub const MESSAGE_DIGEST: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09, 0x04];

    /// Dotted form, for people.
    pub fn dotted(bytes: &[u8]) -> String {
        let mut parts = Vec::new();
        let mut value: u64 = 0;
        for (i, b) in bytes.iter().enumerate() {
            value = (value << 7) | u64::from(b & 0x7f);
            if b & 0x80 == 0 {
                if parts.is_empty() {
                    let first = (value / 40).min(2);
                    parts.push(first.to_string());
                    parts.push((value - first * 40).to_string());
                } else {
                    parts.push(value.to_string());
                }
                value = 0;
            } else if i == bytes.len() - 1 {
                parts.push("?".into());
            }
        }
        parts.join(".")
    }
}

const SEQUENCE: u8 = 0x30;
const SET: u8 = 0x31;
const INTEGER: u8 = 0x02;
const OCTET_STRING: u8 = 0x04;
const OID: u8 = 0x06;
const BOOLEAN: u8 = 0x01;
const GENERALIZED_TIME: u8 = 0x18;
/// `[0]`, constructed.
const CONTEXT_0: u8 = 0xa0;
const CONTEXT_1: u8 = 0xa1;

/// A reader of DER: definite lengths, one-byte tags.
#[derive(Clone, Copy)]
struct Der<'a>(&'a [u8]);

struct Tlv<'a> {
    tag: u8,
    body: &'a [u8],
    /// Tag, length and body.
    whole: &'a [u8],
}

impl<'a> Der<'a> {
    fn any(&mut self) -> Result<Tlv<'a>, String> {
        let input = self.0;
        let (&tag, rest) = input.split_first().ok_or("the token ends early")?;
        if tag & 0x1f == 0x1f {
            return Err("the token uses a tag form DER time-stamp tokens do not".into());
        }
        let (&first, rest) = rest.split_first().ok_or("the token ends early")?;
        let (len, rest) = match first {
            0..=0x7f => (first as usize, rest),
            0x81..=0x84 => {
                let n = (first & 0x7f) as usize;
                if rest.len() < n {
                    return Err("the token ends early".into());
                }
                (rest[..n].iter().fold(0usize, |acc, b| (acc << 8) | *b as usize), &rest[n..])
            }
            _ => return Err("the token is not DER (indefinite or oversized length)".into()),
        };
        if rest.len() < len {
            return Err("the token ends early".into());
        }
        let header = input.len() - rest.len();
        self.0 = &rest[len..];
        Ok(Tlv { tag, body: &rest[..len], whole: &input[..header + len] })
    }

    fn take(&mut self, tag: u8, what: &str) -> Result<&'a [u8], String> {
        let tlv = self.any().map_err(|e| format!("{what}: {e}"))?;
        if tlv.tag != tag {
            return Err(format!("{what}: unexpected DER tag 0x{:02x}", tlv.tag));
        }
        Ok(tlv.body)
    }

    fn optional(&mut self, tag: u8) -> Result<Option<Tlv<'a>>, String> {
        if self.0.first() == Some(&tag) {
            return self.any().map(Some);
        }
        Ok(None)
    }

    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// An AlgorithmIdentifier's OID and its parameters (DER, maybe empty).
    fn algorithm(&mut self, what: &str) -> Result<(&'a [u8], &'a [u8]), String> {
        let mut alg = Der(self.take(SEQUENCE, what)?);
        let id = alg.take(OID, what)?;
        Ok((id, alg.0))
    }
}

fn tlv(tag: u8, body: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    match body.len() {
        n @ 0..=0x7f => out.push(n as u8),
        n @ 0x80..=0xff => out.extend_from_slice(&[0x81, n as u8]),
        n => out.extend_from_slice(&[0x82, (n >> 8) as u8, n as u8]),
    }
    out.extend_from_slice(body);
    out
}

/// A DER INTEGER body of unsigned big-endian bytes.
fn unsigned(bytes: &[u8]) -> Vec<u8> {
    let trimmed: Vec<u8> = bytes.iter().copied().skip_while(|b| *b == 0).collect();
    match trimmed.first() {
        None => vec![0],
        Some(b) if b & 0x80 != 0 => [&[0u8][..], &trimmed].concat(),
        Some(_) => trimmed,
    }
}

/// SHA-256 of a checkpoint's note: the message imprint a TSA stamps.
pub fn imprint(note: &str) -> [u8; 32] {
    let mut out = [0u8; 32];
    out.copy_from_slice(digest::digest(&digest::SHA256, note.as_bytes()).as_ref());
    out
}

/// An RFC 3161 `TimeStampReq` (DER) for `imprint`, with `nonce`, asking the
/// TSA to include its certificate so the token carries what checking it
/// needs besides the trusted root.
pub fn request(imprint: &[u8; 32], nonce: &[u8]) -> Vec<u8> {
    let algorithm = tlv(SEQUENCE, &[tlv(OID, oid::SHA256), vec![0x05, 0x00]].concat());
    let message_imprint = tlv(SEQUENCE, &[algorithm, tlv(OCTET_STRING, imprint)].concat());
    let body = [tlv(INTEGER, &[1]), message_imprint, tlv(INTEGER, &unsigned(nonce)), tlv(BOOLEAN, &[0xff])].concat();
    tlv(SEQUENCE, &body)
}

/// What a time-stamp token states.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Stamp {
    /// The time the TSA vouches the note existed at.
    pub time: DateTime<Utc>,
    /// The token's serial number, hex.
    pub serial: String,
    /// The TSA's policy, a dotted OID.
    pub policy: String,
    /// The signing certificate's subject, when checked.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tsa: Option<String>,
}

/// A reply, taken apart.
struct Token<'a> {
    stamp: Stamp,
    imprint_algorithm: &'a [u8],
    imprint: &'a [u8],
    nonce: Option<&'a [u8]>,
    /// The DER `TSTInfo` the signature covers (through the digest).
    content: &'a [u8],
    certificates: Vec<&'a [u8]>,
    digest_algorithm: &'a [u8],
    /// `[0] IMPLICIT SignedAttributes`, whole.
    signed_attributes: &'a [u8],
    signature_algorithm: &'a [u8],
    signature: &'a [u8],
}

fn generalized_time(body: &[u8]) -> Result<DateTime<Utc>, String> {
    let text = std::str::from_utf8(body).map_err(|_| "the token's time is not text")?;
    let text = text.strip_suffix('Z').ok_or("the token's time is not in UTC")?;
    let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
    let at = NaiveDateTime::parse_from_str(whole, "%Y%m%d%H%M%S").map_err(|_| format!("the token's time {text:?} does not read"))?;
    let nanos = if fraction.is_empty() {
        0
    } else {
        format!("{fraction:0<9}").get(..9).and_then(|f| f.parse::<u32>().ok()).ok_or("the token's time fraction does not read")?
    };
    Ok(at.and_utc() + chrono::Duration::nanoseconds(i64::from(nanos)))
}

fn read(reply: &[u8]) -> Result<Token<'_>, String> {
    let mut outer = Der(reply);
    let mut resp = Der(outer.take(SEQUENCE, "TimeStampResp")?);
    if !outer.is_empty() {
        return Err("bytes follow the time-stamp reply: not the reply as the authority sent it".into());
    }
    let mut status = Der(resp.take(SEQUENCE, "PKIStatusInfo")?);
    let code = status.take(INTEGER, "PKIStatus")?;
    if code != [0] && code != [1] {
        return Err(format!("the time-stamp authority refused the request (PKIStatus {})", code.first().copied().unwrap_or_default()));
    }
    let mut content_info = Der(resp.take(SEQUENCE, "the token")?);
    if content_info.take(OID, "the token's content type")? != oid::SIGNED_DATA {
        return Err("the token is not CMS signed data".into());
    }
    let mut explicit = Der(content_info.take(CONTEXT_0, "the token's content")?);
    let mut signed = Der(explicit.take(SEQUENCE, "SignedData")?);
    signed.take(INTEGER, "SignedData version")?;
    signed.take(SET, "digest algorithms")?;
    let mut encapsulated = Der(signed.take(SEQUENCE, "the encapsulated content")?);
    if encapsulated.take(OID, "the encapsulated content type")? != oid::TST_INFO {
        return Err("the signed content is not a TSTInfo".into());
    }
    let content = Der(encapsulated.take(CONTEXT_0, "TSTInfo")?).take(OCTET_STRING, "TSTInfo")?;
    let mut certificates = Vec::new();
    if let Some(certs) = signed.optional(CONTEXT_0)? {
        let mut certs = Der(certs.body);
        while !certs.is_empty() {
            let cert = certs.any()?;
            if cert.tag == SEQUENCE {
                certificates.push(cert.whole);
            }
        }
    }
    signed.optional(CONTEXT_1)?;
    let mut signer_infos = Der(signed.take(SET, "signer infos")?);
    let mut signer = Der(signer_infos.take(SEQUENCE, "the signer info")?);
    if !signer_infos.is_empty() {
        return Err("the token has more than one signer".into());
    }
    signer.take(INTEGER, "SignerInfo version")?;
    signer.any()?; // the signer's identifier: the ESS attribute binds the certificate instead
    let (digest_algorithm, _) = signer.algorithm("the digest algorithm")?;
    let signed_attributes = signer.optional(CONTEXT_0)?.ok_or("the signer info has no signed attributes")?.whole;
    let (signature_algorithm, _) = signer.algorithm("the signature algorithm")?;
    let signature = signer.take(OCTET_STRING, "the signature")?;

    let mut tst = Der(content);
    let mut info = Der(tst.take(SEQUENCE, "TSTInfo")?);
    info.take(INTEGER, "TSTInfo version")?;
    let policy = info.take(OID, "the policy")?;
    let mut message_imprint = Der(info.take(SEQUENCE, "the message imprint")?);
    let (imprint_algorithm, _) = message_imprint.algorithm("the imprint's algorithm")?;
    let imprint = message_imprint.take(OCTET_STRING, "the imprint")?;
    let serial = info.take(INTEGER, "the serial number")?;
    let time = generalized_time(info.take(GENERALIZED_TIME, "the time")?)?;
    info.optional(SEQUENCE)?; // accuracy
    info.optional(BOOLEAN)?; // ordering
    let nonce = info.optional(INTEGER)?.map(|n| n.body);
    let stamp = Stamp { time, serial: hex::encode(serial), policy: oid::dotted(policy), tsa: None };
    Ok(Token {
        stamp,
        imprint_algorithm,
        imprint,
        nonce,
        content,
        certificates,
        digest_algorithm,
        signed_attributes,
        signature_algorithm,
        signature,
    })
}

/// What a reply states, unchecked: for listing stamps already checked
/// when they were stored, or to be checked by `verify`.
pub fn inspect(reply: &[u8]) -> Result<Stamp, String> {
    read(reply).map(|t| t.stamp)
}

/// Checks a fresh reply against the request it answers: granted, over
/// `imprint`, with `nonce` (a replayed or misdirected reply is refused).
pub fn answers(reply: &[u8], imprint: &[u8; 32], nonce: &[u8]) -> Result<Stamp, String> {
    let token = read(reply)?;
    if token.imprint_algorithm != oid::SHA256 || token.imprint != imprint {
        return Err("the time-stamp authority stamped another message than the one sent".into());
    }
    if token.nonce.map(unsigned) != Some(unsigned(nonce)) {
        return Err("the reply does not carry the request's nonce".into());
    }
    Ok(token.stamp)
}

/// Checks only that a reply is a granted token over `note`: what can be
/// said of it without a trusted certificate.
pub fn over(reply: &[u8], note: &str) -> Result<Stamp, String> {
    let token = read(reply)?;
    covers(&token, note)?;
    Ok(token.stamp)
}

/// Whether a token's imprint is SHA-256 of `note`.
fn covers(token: &Token, note: &str) -> Result<(), String> {
    if token.imprint_algorithm != oid::SHA256 {
        return Err(format!(
            "the token's imprint is not SHA-256 (it is {}), which the ledger asks for",
            oid::dotted(token.imprint_algorithm)
        ));
    }
    if token.imprint != imprint(note) {
        return Err("the token is over another text than this checkpoint's note".into());
    }
    Ok(())
}

fn hash(algorithm: &[u8], data: &[u8]) -> Result<Vec<u8>, String> {
    let algorithm = match algorithm {
        a if a == oid::SHA256 => &digest::SHA256,
        a if a == oid::SHA384 => &digest::SHA384,
        a if a == oid::SHA512 => &digest::SHA512,
        a if a == oid::SHA1 => &digest::SHA1_FOR_LEGACY_USE_ONLY,
        a => return Err(format!("the token uses a digest the ledger does not check ({})", oid::dotted(a))),
    };
    Ok(digest::digest(algorithm, data).as_ref().to_vec())
}

/// The certificates an operator trusts to issue (or be) the TSA's
/// certificate: `LEDGER_TSA_CA_FILE`, PEM.
#[derive(Debug, Clone)]
pub struct Trust {
    certificates: Vec<Vec<u8>>,
}

impl Trust {
    pub fn from_pem(pem: &[u8]) -> Result<Trust, String> {
        let mut certificates = Vec::new();
        for block in x509_parser::pem::Pem::iter_from_buffer(pem) {
            let block = block.map_err(|e| format!("not a PEM file: {e}"))?;
            if block.label == "CERTIFICATE" {
                X509Certificate::from_der(&block.contents).map_err(|e| format!("a certificate does not parse: {e}"))?;
                certificates.push(block.contents);
            }
        }
        if certificates.is_empty() {
            return Err("the file holds no PEM certificate".into());
        }
        Ok(Trust { certificates })
    }
}

/// The ESS attribute's hash of the signing certificate, and its algorithm.
fn ess_certificate_hash<'a>(attributes: &[(&'a [u8], &'a [u8])]) -> Result<(&'static [u8], &'a [u8]), String> {
    for (id, values) in attributes {
        let v2 = *id == oid::SIGNING_CERTIFICATE_V2;
        if !v2 && *id != oid::SIGNING_CERTIFICATE {
            continue;
        }
        let mut signing = Der(Der(values).take(SEQUENCE, "the signing certificate attribute")?);
        let mut ids = Der(signing.take(SEQUENCE, "the certificate IDs")?);
        let mut first = Der(ids.take(SEQUENCE, "the certificate ID")?);
        if !v2 {
            return Ok((oid::SHA1, first.take(OCTET_STRING, "the certificate hash")?));
        }
        // ESSCertIDv2: the hash algorithm defaults to SHA-256.
        let algorithm: &'static [u8] = match first.optional(SEQUENCE)? {
            None => oid::SHA256,
            Some(alg) => {
                let id = Der(alg.body).take(OID, "the certificate hash's algorithm")?;
                [oid::SHA256, oid::SHA384, oid::SHA512].into_iter().find(|known| *known == id).ok_or("unknown certificate hash")?
            }
        };
        return Ok((algorithm, first.take(OCTET_STRING, "the certificate hash")?));
    }
    Err("the token does not name its signing certificate (no ESS signing-certificate attribute)".into())
}

fn signature_algorithm(
    signature: &[u8],
    digest_algorithm: &[u8],
    key: &x509_parser::x509::SubjectPublicKeyInfo,
) -> Result<&'static dyn VerificationAlgorithm, String> {
    let curve = || key.algorithm.parameters.as_ref().and_then(|p| p.as_oid().ok()).map(|o| o.as_bytes().to_vec());
    let sha = |a: &[u8]| [oid::SHA256, oid::SHA384, oid::SHA512].iter().position(|known| *known == a);
    let alg: &'static dyn VerificationAlgorithm = match signature {
        s if s == oid::RSA => match sha(digest_algorithm) {
            Some(0) => &signature::RSA_PKCS1_2048_8192_SHA256,
            Some(1) => &signature::RSA_PKCS1_2048_8192_SHA384,
            Some(2) => &signature::RSA_PKCS1_2048_8192_SHA512,
            _ => return Err("the token's RSA signature uses a digest the ledger does not check".into()),
        },
        s if s == oid::SHA256_RSA => &signature::RSA_PKCS1_2048_8192_SHA256,
        s if s == oid::SHA384_RSA => &signature::RSA_PKCS1_2048_8192_SHA384,
        s if s == oid::SHA512_RSA => &signature::RSA_PKCS1_2048_8192_SHA512,
        s if s == oid::ECDSA_SHA256 || s == oid::ECDSA_SHA384 => {
            let sha384 = s == oid::ECDSA_SHA384;
            match (curve().as_deref(), sha384) {
                (Some(c), false) if c == oid::P256 => &signature::ECDSA_P256_SHA256_ASN1,
                (Some(c), true) if c == oid::P256 => &signature::ECDSA_P256_SHA384_ASN1,
                (Some(c), false) if c == oid::P384 => &signature::ECDSA_P384_SHA256_ASN1,
                (Some(c), true) if c == oid::P384 => &signature::ECDSA_P384_SHA384_ASN1,
                _ => return Err("the TSA's key is on a curve the ledger does not check".into()),
            }
        }
        s if s == oid::ED25519 => &signature::ED25519,
        s => return Err(format!("the token is signed with an algorithm the ledger does not check ({})", oid::dotted(s))),
    };
    Ok(alg)
}

/// The first certificate (of the token's and the trusted ones) that has
/// the ESS hash and whose key made the signature.
fn signing_certificate<'a>(token: &Token<'a>, trust: &'a Trust, attributes: &[(&[u8], &[u8])]) -> Result<X509Certificate<'a>, String> {
    let (hash_algorithm, expected) = ess_certificate_hash(attributes)?;
    // The signature is over the attributes as a SET, not as [0].
    let mut signed = token.signed_attributes.to_vec();
    signed[0] = SET;
    let candidates = token.certificates.iter().copied().chain(trust.certificates.iter().map(Vec::as_slice));
    for der in candidates {
        if hash(hash_algorithm, der)? != expected {
            continue;
        }
        let (_, cert) = X509Certificate::from_der(der).map_err(|e| format!("the signing certificate does not parse: {e}"))?;
        let key = cert.public_key();
        let alg = signature_algorithm(token.signature_algorithm, token.digest_algorithm, key)?;
        UnparsedPublicKey::new(alg, &key.subject_public_key.data)
            .verify(&signed, token.signature)
            .map_err(|_| "the token's signature does not verify: it was altered, or not signed by the certificate it names")?;
        return Ok(cert);
    }
    Err("the certificate the token names is neither in the token nor in LEDGER_TSA_CA_FILE".into())
}

/// Whether `cert` is trusted, or chains to a trusted certificate through
/// the token's certificates, each valid at `at`.
fn chains_to_trust(cert: &X509Certificate, token: &Token, trust: &Trust, at: i64) -> Result<(), String> {
    let mut current = cert.clone();
    for _ in 0..6 {
        if !(current.validity().not_before.timestamp() <= at && at <= current.validity().not_after.timestamp()) {
            return Err(format!("the certificate {} was not valid at the stamped time", current.subject()));
        }
        if trust.certificates.iter().any(|t| t.as_slice() == current.as_raw()) {
            return Ok(());
        }
        let issuer = trust
            .certificates
            .iter()
            .map(Vec::as_slice)
            .chain(token.certificates.iter().copied())
            .filter_map(|der| X509Certificate::from_der(der).ok().map(|(_, c)| c))
            .find(|candidate| {
                candidate.as_raw() != current.as_raw()
                    && candidate.subject().as_raw() == current.issuer().as_raw()
                    && candidate.is_ca()
                    && current.verify_signature(Some(candidate.public_key())).is_ok()
            });
        match issuer {
            Some(issuer) if trust.certificates.iter().any(|t| t.as_slice() == issuer.as_raw()) => {
                let validity = issuer.validity();
                return if validity.not_before.timestamp() <= at && at <= validity.not_after.timestamp() {
                    Ok(())
                } else {
                    Err(format!("the certificate {} was not valid at the stamped time", issuer.subject()))
                };
            }
            Some(issuer) => current = issuer,
            None => return Err(format!("the TSA's certificate ({}) does not lead to a certificate in LEDGER_TSA_CA_FILE", cert.subject())),
        }
    }
    Err("the TSA's certificate chain is too long".into())
}

/// Checks a stored reply for `note` against `trust`: what it states, or
/// why it cannot be relied on.
pub fn verify(reply: &[u8], note: &str, trust: &Trust) -> Result<Stamp, String> {
    let token = read(reply)?;
    covers(&token, note)?;
    let mut attributes = Vec::new();
    let mut set = Der(Der(token.signed_attributes).any()?.body);
    while !set.is_empty() {
        let mut attribute = Der(set.take(SEQUENCE, "a signed attribute")?);
        attributes.push((attribute.take(OID, "an attribute type")?, attribute.take(SET, "an attribute's values")?));
    }
    let value = |id: &[u8]| attributes.iter().find(|(a, _)| *a == id).map(|(_, v)| *v);
    let content_type = value(oid::CONTENT_TYPE).ok_or("the signed attributes have no content type")?;
    if Der(content_type).take(OID, "the content type")? != oid::TST_INFO {
        return Err("the signed attributes name another content than a TSTInfo".into());
    }
    let digest = value(oid::MESSAGE_DIGEST).ok_or("the signed attributes have no message digest")?;
    if Der(digest).take(OCTET_STRING, "the message digest")? != hash(token.digest_algorithm, token.content)? {
        return Err("the TSTInfo is not the one signed: the token was altered".into());
    }
    let cert = signing_certificate(&token, trust, &attributes)?;
    let time_stamping = cert.extended_key_usage().ok().flatten().map(|e| e.value.time_stamping).unwrap_or(false);
    if !time_stamping {
        return Err(format!("the certificate {} is not for time stamping", cert.subject()));
    }
    chains_to_trust(&cert, &token, trust, token.stamp.time.timestamp())?;
    Ok(Stamp { tsa: Some(cert.subject().to_string()), ..token.stamp })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_is_the_der_rfc_3161_describes() {
        let der = request(&[0xab; 32], &[0x80, 1]);
        let mut outer = Der(&der);
        let mut req = Der(outer.take(SEQUENCE, "req").unwrap());
        assert!(outer.is_empty());
        assert_eq!(req.take(INTEGER, "v").unwrap(), [1]);
        let mut imprint = Der(req.take(SEQUENCE, "imprint").unwrap());
        assert_eq!(imprint.algorithm("alg").unwrap(), (oid::SHA256, &[0x05, 0x00][..]));
        assert_eq!(imprint.take(OCTET_STRING, "hash").unwrap(), [0xab; 32]);
        // A nonce with its high bit set stays positive.
        assert_eq!(req.take(INTEGER, "nonce").unwrap(), [0, 0x80, 1]);
        assert_eq!(req.take(BOOLEAN, "certReq").unwrap(), [0xff]);
        assert!(req.is_empty());
    }

    #[test]
    fn object_identifiers_and_times_read_as_people_write_them() {
        assert_eq!(oid::dotted(oid::SHA256), "2.16.840.1.101.3.4.2.1");
        assert_eq!(oid::dotted(oid::TST_INFO), "1.2.840.113549.1.9.16.1.4");
        assert_eq!(generalized_time(b"20261124231956Z").unwrap().to_rfc3339(), "2026-11-24T23:19:56+00:00");
        assert_eq!(generalized_time(b"20261124231956.25Z").unwrap().timestamp_subsec_millis(), 250);
        assert!(generalized_time(b"20261124231956").is_err(), "a local time is refused");
    }

    #[test]
    fn bad_replies_are_refused_with_a_reason() {
        assert!(inspect(&[]).unwrap_err().contains("ends early"));
        // A TimeStampResp with status 2 (rejection) and no token.
        let rejected = tlv(SEQUENCE, &tlv(SEQUENCE, &tlv(INTEGER, &[2])));
        assert!(inspect(&rejected).unwrap_err().contains("refused the request (PKIStatus 2)"));
        // An indefinite length is not DER.
        assert!(inspect(&[0x30, 0x80, 0, 0]).unwrap_err().contains("not DER"));
        // Bytes after the reply are not the reply the authority sent.
        let trailing = [rejected.clone(), vec![0]].concat();
        assert!(inspect(&trailing).unwrap_err().contains("bytes follow"));
        assert!(Trust::from_pem(b"not a certificate").is_err());
    }
}
