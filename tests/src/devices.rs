//! Customers' devices over real HTTP: a Windows PC with Chrome (and its
//! Client Hints) and an iPhone with Safari on the smartphone site, and the
//! seed 000 steps done from one of them: registration, passkey login
//! (cross-device when the phone's passkey answers a PC's request), adding
//! a passkey from a session.

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::harness::{CHROME_WINDOWS, SAFARI_IPHONE};
use crate::{SoftPasskey, TestApp};

/// Windows 11 24H2 Chrome, with the Client Hints Chrome sends after Accept-CH.
pub fn pc(req: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
    req.header("user-agent", CHROME_WINDOWS)
        .header("sec-ch-ua-platform", "\"Windows\"")
        .header("sec-ch-ua-platform-version", "\"15.0.0\"")
        .header("sec-ch-ua-mobile", "?0")
        .header("sec-ch-ua", "\"Chromium\";v=\"148\", \"Google Chrome\";v=\"148\", \"Not=A?Brand\";v=\"99\"")
}

pub fn phone(req: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
    req.header("user-agent", SAFARI_IPHONE).header("x-channel", "mobile_web")
}

pub async fn json_of(res: reqwest::Response) -> (StatusCode, Value) {
    let status = res.status();
    (status, res.json().await.unwrap_or(Value::Null))
}

pub fn code(v: &Value) -> &str {
    v["error"]["code"].as_str().unwrap_or_default()
}

/// Seed 000 p.4-7 on the device `device` describes; returns the session token.
pub async fn register_on(
    app: &TestApp,
    login_id: &str,
    email: &str,
    key: &mut SoftPasskey,
    device: fn(reqwest::RequestBuilder) -> reqwest::RequestBuilder,
) -> String {
    app.open_account(login_id, Some(email), false).await;
    let post = |path: String, body: Value| device(app.request(Method::POST, &path, None)).json(&body).send();
    let (_, v) = json_of(post("/api/v1/registrations".into(), json!({ "login_id": login_id })).await.unwrap()).await;
    let flow = v["flow_id"].as_str().unwrap().to_string();
    let (s, _) = json_of(post(format!("/api/v1/registrations/{flow}/password"), json!({ "password": "pass-word-1" })).await.unwrap()).await;
    assert_eq!(s, StatusCode::OK);
    let (s, _) = json_of(post(format!("/api/v1/registrations/{flow}/otp"), json!({ "code": app.code_for(email) })).await.unwrap()).await;
    assert_eq!(s, StatusCode::OK);
    let (_, options) = json_of(post(format!("/api/v1/registrations/{flow}/passkey/options"), json!({})).await.unwrap()).await;
    let credential = key.register(&options);
    let (s, v) = json_of(post(format!("/api/v1/registrations/{flow}/passkey"), json!({ "credential": credential })).await.unwrap()).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    v["session"]["token"].as_str().unwrap().to_string()
}

/// A passkey login from the device `device` describes.
pub async fn login_on(
    app: &TestApp,
    key: &mut SoftPasskey,
    device: fn(reqwest::RequestBuilder) -> reqwest::RequestBuilder,
) -> (StatusCode, Value) {
    let (_, options) =
        json_of(device(app.request(Method::POST, "/api/v1/sessions/passkey/options", None)).json(&json!({})).send().await.unwrap()).await;
    let credential = key.assert(&options);
    let body = json!({ "ceremony_id": options["ceremony_id"], "credential": credential });
    json_of(device(app.request(Method::POST, "/api/v1/sessions/passkey", None)).json(&body).send().await.unwrap()).await
}

/// Adds a passkey on the device in the session `token`.
pub async fn add_passkey_on(
    app: &TestApp,
    token: &str,
    key: &mut SoftPasskey,
    device: fn(reqwest::RequestBuilder) -> reqwest::RequestBuilder,
) -> (StatusCode, Value) {
    let (s, options) =
        json_of(device(app.request(Method::POST, "/api/v1/me/passkeys/options", Some(token))).json(&json!({})).send().await.unwrap()).await;
    if s != StatusCode::OK {
        return (s, options);
    }
    let credential = key.register(&options);
    json_of(
        device(app.request(Method::POST, "/api/v1/me/passkeys", Some(token)))
            .json(&json!({ "credential": credential }))
            .send()
            .await
            .unwrap(),
    )
    .await
}
