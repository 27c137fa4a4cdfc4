//! Webhook delivery as the Standard Webhooks specification describes it:
//! `webhook-id`, `webhook-timestamp` and `webhook-signature`
//! (`v1,<base64 HMAC-SHA256 of "id.timestamp.body">`), a `whsec_` secret.
//! A subscription reaches only the public internet: its URL is https and
//! every address its name resolves to (at each connection, so a name that
//! later points inside is refused too) is public, unless the operator
//! allows private networks. Redirects are never followed.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The content type of a CloudEvents batch.
pub const BATCH_CONTENT_TYPE: &str = "application/cloudevents-batch+json";

/// Whether an address is on the public internet: not loopback, private,
/// link-local, shared (carrier-grade NAT), documentation, benchmarking,
/// multicast, reserved or unspecified.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(a) => {
            let [o1, o2, o3, _] = a.octets();
            !(a.is_loopback()
                || a.is_private()
                || a.is_link_local()
                || a.is_unspecified()
                || a.is_broadcast()
                || a.is_documentation()
                || a.is_multicast()
                || o1 == 0
                || (o1 == 100 && (64..128).contains(&o2))
                || (o1 == 192 && o2 == 0 && o3 == 0)
                || (o1 == 198 && (18..20).contains(&o2))
                || o1 >= 240)
        }
        IpAddr::V6(a) => {
            if let Some(v4) = a.to_ipv4_mapped() {
                return is_public(IpAddr::V4(v4));
            }
            let s = a.segments();
            // IPv4-compatible (::a.b.c.d), 6to4 (2002:a.b.c.d::): the
            // embedded address decides.
            if s[..6] == [0; 6] && !a.is_loopback() && !a.is_unspecified() {
                return is_public(IpAddr::V4(std::net::Ipv4Addr::new((s[6] >> 8) as u8, s[6] as u8, (s[7] >> 8) as u8, s[7] as u8)));
            }
            if s[0] == 0x2002 {
                return is_public(IpAddr::V4(std::net::Ipv4Addr::new((s[1] >> 8) as u8, s[1] as u8, (s[2] >> 8) as u8, s[2] as u8)));
            }
            !(a.is_loopback()
                || (s[0] & 0xffc0) == 0xfec0
                || (s[0] == 0x2001 && s[1] == 0)
                || a.is_unspecified()
                || a.is_multicast()
                || (s[0] & 0xfe00) == 0xfc00
                || (s[0] & 0xffc0) == 0xfe80
                || (s[0] == 0x2001 && s[1] == 0x0db8)
                || (s[0] == 0x0064 && s[1] == 0xff9b))
        }
    }
}

/// Why a URL cannot be a subscription's.
pub fn check_url(url: &str, allow_private: bool) -> Result<url::Url, String> {
    let parsed = url::Url::parse(url).map_err(|e| format!("not a URL: {e}"))?;
    match parsed.scheme() {
        "https" => {}
        "http" if allow_private => {}
        "http" => return Err("plain http is refused: use https (LEDGER_WEBHOOK_ALLOW_PRIVATE_NETWORKS=1 allows http)".into()),
        other => return Err(format!("the scheme {other}: is not https")),
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err("a user name or password in the URL is refused".into());
    }
    if parsed.host().is_none() {
        return Err("the URL names no host".into());
    }
    Ok(parsed)
}

/// Resolves the URL's host now and refuses it when an address is not
/// public (the same check runs again at each connection).
pub async fn check_destination(url: &url::Url, allow_private: bool) -> Result<(), String> {
    if allow_private {
        return Ok(());
    }
    let host = url.host_str().unwrap_or_default().trim_start_matches('[').trim_end_matches(']');
    let port = url.port_or_known_default().unwrap_or(443);
    let addresses: Vec<SocketAddr> =
        tokio::net::lookup_host((host, port)).await.map_err(|e| format!("{host} does not resolve: {e}"))?.collect();
    match addresses.iter().find(|a| !is_public(a.ip())) {
        Some(inside) => Err(format!(
            "{host} resolves to {}, which is not a public address (loopback, private or link-local networks are refused)",
            inside.ip()
        )),
        None if addresses.is_empty() => Err(format!("{host} does not resolve")),
        None => Ok(()),
    }
}

/// The resolver of the delivery client: refuses a name with any address
/// that is not public, at each connection.
struct PublicOnly;

impl reqwest::dns::Resolve for PublicOnly {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let host = name.as_str().to_string();
        Box::pin(async move {
            let addresses: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            if let Some(inside) = addresses.iter().find(|a| !is_public(a.ip())) {
                let refused: Box<dyn std::error::Error + Send + Sync> =
                    format!("{host} resolves to {}, which is not a public address", inside.ip()).into();
                return Err(refused);
            }
            Ok(Box::new(addresses.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

/// The client every delivery goes through.
pub fn client(allow_private: bool, timeout: Duration) -> Result<reqwest::Client, String> {
    let mut builder = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        // A proxy would resolve the destination itself, past the check below.
        .no_proxy()
        .timeout(timeout)
        .connect_timeout(timeout)
        .user_agent(concat!("passkey-ledger/", env!("CARGO_PKG_VERSION")));
    if !allow_private {
        builder = builder.dns_resolver(Arc::new(PublicOnly));
    }
    builder.build().map_err(|e| e.to_string())
}

/// HMAC-SHA256 over the parts, in order.
fn hmac(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    // HMAC takes keys of any length: the fallback (a fixed block key) is
    // never used; it keeps the signature infallible.
    let mut mac =
        <Hmac<Sha256> as Mac>::new_from_slice(key).unwrap_or_else(|_| <Hmac<Sha256> as hmac::digest::KeyInit>::new(&Default::default()));
    for part in parts {
        mac.update(part);
    }
    mac.finalize().into_bytes().into()
}

/// A subscription's signing secret for one generation: derived from the
/// ledger's secret key, so that nothing secret is stored.
pub fn secret(secret_key: &[u8], subscription_id: &str, generation: i64) -> Vec<u8> {
    hmac(secret_key, &[format!("passkey-ledger webhook secret\0{subscription_id}\0{generation}").as_bytes()]).to_vec()
}

/// The secret as the subscriber configures it: `whsec_<base64>`.
pub fn whsec(secret: &[u8]) -> String {
    format!("whsec_{}", BASE64.encode(secret))
}

/// One signature: `v1,<base64 HMAC-SHA256 of "id.timestamp.body">`.
pub fn sign(secret: &[u8], id: &str, timestamp: i64, body: &[u8]) -> String {
    let timestamp = timestamp.to_string();
    format!("v1,{}", BASE64.encode(hmac(secret, &[id.as_bytes(), b".", timestamp.as_bytes(), b".", body])))
}

/// What one request carries.
pub struct Request<'a> {
    pub url: &'a str,
    pub id: &'a str,
    pub timestamp: i64,
    pub body: Vec<u8>,
    /// The current secret first; during a rotation, the previous one too.
    pub secrets: Vec<Vec<u8>>,
}

/// Sends one batch; Ok once the receiver answered 2xx.
pub async fn post(client: &reqwest::Client, request: Request<'_>) -> Result<(), String> {
    let signatures: Vec<String> = request.secrets.iter().map(|s| sign(s, request.id, request.timestamp, &request.body)).collect();
    let sent = client
        .post(request.url)
        .header(reqwest::header::CONTENT_TYPE, BATCH_CONTENT_TYPE)
        .header("webhook-id", request.id)
        .header("webhook-timestamp", request.timestamp.to_string())
        .header("webhook-signature", signatures.join(" "))
        .body(request.body)
        .send()
        .await;
    match sent {
        Ok(answer) if answer.status().is_success() => Ok(()),
        Ok(answer) if answer.status().is_redirection() => Err(format!("HTTP {} (redirects are not followed)", answer.status().as_u16())),
        Ok(answer) => Err(format!("HTTP {}", answer.status().as_u16())),
        Err(e) => Err(describe(&e)),
    }
}

/// A transport error in a line, without the URL (which may hold a token).
fn describe(e: &reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "could not connect"
    } else {
        "request failed"
    };
    let mut causes = Vec::new();
    let mut source = std::error::Error::source(e);
    while let Some(cause) = source {
        causes.push(cause.to_string());
        source = cause.source();
    }
    match causes.last() {
        Some(root) => format!("{kind}: {root}"),
        None => kind.to_string(),
    }
}

/// A URL fit for events, logs and listings: its scheme, host and port
/// only; a path or query (either may hold a token, as chat and SIEM
/// collectors put them there) is shown as `/...`.
pub fn shown(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(u) => {
            let host = u.host_str().unwrap_or_default();
            let port = u.port().map(|p| format!(":{p}")).unwrap_or_default();
            let rest = if u.path() == "/" && u.query().is_none() { "/" } else { "/..." };
            format!("{}://{host}{port}{rest}", u.scheme())
        }
        Err(_) => "an address that does not parse".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_public_addresses_are_public() {
        for inside in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "::1",
            "fe80::1",
            "fd00::1",
            "::ffff:10.0.0.1",
            "::127.0.0.1",
            "fec0::1",
            "2002:7f00:1::",
            "2001::1",
        ] {
            assert!(!is_public(inside.parse().unwrap()), "{inside}");
        }
        for outside in ["8.8.8.8", "1.1.1.1", "2606:4700:4700::1111"] {
            assert!(is_public(outside.parse().unwrap()), "{outside}");
        }
    }

    #[test]
    fn only_https_urls_without_credentials_are_taken() {
        assert!(check_url("https://siem.example.com/hook", false).is_ok());
        assert!(check_url("http://siem.example.com/hook", false).unwrap_err().contains("https"));
        assert!(check_url("http://127.0.0.1:9000/hook", true).is_ok());
        assert!(check_url("https://user:pw@siem.example.com/", false).is_err());
        assert!(check_url("ftp://siem.example.com/", true).is_err());
    }

    #[tokio::test]
    async fn a_name_that_resolves_inside_is_refused() {
        let url = check_url("https://localhost/hook", false).unwrap();
        assert!(check_destination(&url, false).await.unwrap_err().contains("not a public address"));
        assert!(check_destination(&check_url("https://10.0.0.5/", false).unwrap(), false).await.is_err());
        assert!(check_destination(&url, true).await.is_ok());
    }

    #[test]
    fn a_signature_is_the_specifications_example() {
        // The test vector of the Standard Webhooks reference libraries.
        let secret = BASE64.decode("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        let signed = sign(&secret, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, br#"{"test": 2432232314}"#);
        assert_eq!(signed, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
        assert_eq!(whsec(&secret_of_a_subscription()).len(), "whsec_".len() + 44);
    }

    fn secret_of_a_subscription() -> Vec<u8> {
        let (a, b) = (secret(b"key", "sub_1", 1), secret(b"key", "sub_1", 2));
        assert_ne!(a, b, "each generation its own secret");
        assert_eq!(a, secret(b"key", "sub_1", 1), "derived alike each time");
        a
    }

    #[test]
    fn a_shown_url_keeps_no_token() {
        assert_eq!(shown("https://u:p@siem.example.com/hook?token=abc"), "https://siem.example.com/...");
        assert_eq!(shown("https://hooks.example.com:8443/services/T0/B0/SECRET"), "https://hooks.example.com:8443/...");
        assert_eq!(shown("https://siem.example.com/"), "https://siem.example.com/");
    }
}
