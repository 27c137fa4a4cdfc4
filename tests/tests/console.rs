//! The staff console over real HTTP, as a browser would use it (forms,
//! a cookie, no redirects followed), with software passkeys: enrolment
//! from a link, sign-in, the role matrix, CSRF, the idle limit, actions with
//! their confirmation, disabling a member.

use ledger_tests::harness::{error_code, json_of, TestApp, ORIGIN};
use ledger_tests::{on_both_databases, SoftPasskey};
use reqwest::{header, StatusCode};
use serde_json::{json, Value};

on_both_databases!(
    a_support_agent_enrols_signs_in_revokes_a_lost_phone_and_signs_out,
    roles_open_the_same_pages_as_the_api_and_an_idle_session_goes_back_to_sign_in,
    an_administrator_disables_a_member_whose_sessions_and_token_stop_at_once,
    a_customers_open_report_is_at_the_top_of_the_account_page,
);

/// A browser on the console: its cookie and the page it last read.
struct Browser {
    client: reqwest::Client,
    base: String,
    cookie: Option<String>,
    page: String,
}

impl Browser {
    fn new(app: &TestApp) -> Browser {
        let client = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().expect("client");
        Browser { client, base: app.base.clone(), cookie: None, page: String::new() }
    }

    fn with_cookie(&self, req: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match &self.cookie {
            Some(c) => req.header(header::COOKIE, c),
            None => req,
        }
    }

    async fn get(&mut self, path: &str) -> StatusCode {
        let res = self.with_cookie(self.client.get(format!("{}{path}", self.base))).send().await.expect("get");
        let status = res.status();
        self.page = res.text().await.expect("text");
        status
    }

    /// Where a redirect leads, or None.
    async fn get_location(&self, path: &str) -> Option<String> {
        let res = self.with_cookie(self.client.get(format!("{}{path}", self.base))).send().await.expect("get");
        res.headers().get(header::LOCATION).map(|l| l.to_str().expect("location").to_string())
    }

    async fn post_form(&mut self, path: &str, form: &[(&str, &str)]) -> (StatusCode, Option<String>) {
        let res = self.with_cookie(self.client.post(format!("{}{path}", self.base))).form(form).send().await.expect("post");
        let status = res.status();
        let location = res.headers().get(header::LOCATION).map(|l| l.to_str().expect("location").to_string());
        self.page = res.text().await.expect("text");
        (status, location)
    }

    async fn post_json(&mut self, path: &str, body: Value) -> (StatusCode, Value) {
        let res = self.client.post(format!("{}{path}", self.base)).json(&body).send().await.expect("post");
        if let Some(cookie) = res.headers().get(header::SET_COOKIE) {
            let cookie = cookie.to_str().expect("cookie").to_string();
            assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict") && cookie.contains("Path=/"), "{cookie}");
            self.cookie = Some(cookie.split(';').next().expect("pair").to_string());
        }
        json_of(res).await
    }

    /// The CSRF token of the forms on the page last read.
    fn csrf(&self) -> String {
        let at = self.page.find("name=\"csrf\" value=\"").expect("a form with its token");
        let rest = &self.page[at + "name=\"csrf\" value=\"".len()..];
        rest[..rest.find('"').expect("end")].to_string()
    }

    /// Enrols a passkey from a link and is signed in.
    async fn enrol(&mut self, link: &str, passkey: &mut SoftPasskey) {
        let path = link.strip_prefix(ORIGIN).unwrap_or(link).to_string();
        assert_eq!(self.get(&path).await, StatusCode::OK);
        assert!(self.page.contains("パスキーを登録"), "{}", self.page);
        let (status, options) = self.post_json(&format!("{path}/options"), json!({})).await;
        assert_eq!(status, StatusCode::OK, "{options}");
        assert_eq!(options["options"]["publicKey"]["authenticatorSelection"]["residentKey"], "required");
        let credential = passkey.register(&options["options"]);
        let (status, done) =
            self.post_json(&format!("{path}/finish"), json!({ "ceremony_id": options["ceremony_id"], "credential": credential })).await;
        assert_eq!(status, StatusCode::OK, "{done}");
        assert_eq!(done["redirect"], "/console");
    }

    /// Signs in with a console passkey; the answer's status and body.
    async fn sign_in(&mut self, passkey: &mut SoftPasskey) -> (StatusCode, Value) {
        let (_, options) = self.post_json("/console/sign-in/options", json!({})).await;
        let credential = passkey.assert(&options["options"]);
        self.post_json("/console/sign-in/finish", json!({ "ceremony_id": options["ceremony_id"], "credential": credential })).await
    }
}

/// A staff member added as `ledger staff add` adds one; their link.
async fn member(app: &TestApp, name: &str, role: &str) -> (String, String) {
    let staff_id = ledger_api::cli::add_staff_without_token(&app.app, name, role).await.expect("added");
    let (link, _) = ledger_api::console::issue_link(&app.app, &staff_id).await.expect("link");
    (staff_id, link)
}

async fn staff_events(app: &TestApp, staff_id: &str) -> Vec<String> {
    app.app.projector.catch_up().await.expect("projected");
    app.events_of(staff_id).await.into_iter().map(|(t, _, _)| t).collect()
}

async fn a_support_agent_enrols_signs_in_revokes_a_lost_phone_and_signs_out(app: TestApp) {
    let account = app.open_account("7100001", Some("lost@example.jp"), false).await;
    let mut phone = SoftPasskey::new("localhost", ORIGIN);
    app.register("7100001", "lost@example.jp", &mut phone).await;

    let (staff_id, link) = member(&app, "Suzuki", "support").await;
    let mut browser = Browser::new(&app);
    // Without a session every page leads to the sign-in.
    assert_eq!(browser.get_location("/console/accounts").await.as_deref(), Some("/console/sign-in"));
    let mut key = SoftPasskey::new("localhost", ORIGIN);
    browser.enrol(&link, &mut key).await;
    // The link works once.
    let path = link.strip_prefix(ORIGIN).unwrap_or(&link).to_string();
    assert_eq!(browser.get(&path).await, StatusCode::OK);
    assert!(browser.page.contains("このリンクは使えません"), "{}", browser.page);
    let (status, _) = browser.post_json(&format!("{path}/options"), json!({})).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // Signed in from the enrolment: the search page, with the headers a console page carries.
    assert_eq!(browser.get("/console/accounts").await, StatusCode::OK);
    let csrf = browser.csrf();
    let res = browser
        .with_cookie(browser.client.post(format!("{}/console/accounts", browser.base)))
        .form(&[("csrf", csrf.as_str()), ("q", "7100001")])
        .send()
        .await
        .expect("search");
    assert_eq!(res.status(), StatusCode::OK);
    let csp = res.headers().get(header::CONTENT_SECURITY_POLICY).expect("csp").to_str().expect("csp").to_string();
    assert!(csp.contains("script-src 'self'") && !csp.contains("unsafe-inline") && csp.contains("frame-ancestors 'none'"), "{csp}");
    assert_eq!(res.headers().get(header::CACHE_CONTROL).expect("cache"), "no-store");
    assert_eq!(res.headers().get(header::X_CONTENT_TYPE_OPTIONS).expect("nosniff"), "nosniff");
    let page = res.text().await.expect("text");
    assert!(page.contains("7100001") && page.contains("l***@example.jp"), "the result, its address masked: {page}");
    assert!(!page.contains("lost@example.jp"), "{page}");

    // By the passkey's credential ID: straight to the account.
    let (_, location) = browser.post_form("/console/accounts", &[("csrf", &csrf), ("q", &phone.id())]).await;
    assert_eq!(location, Some(format!("/console/accounts/{account}")));
    // A search without the form's token is refused.
    let (status, _) = browser.post_form("/console/accounts", &[("q", "7100001")]).await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    // The account page: the passkey with its provider, the history in words.
    assert_eq!(browser.get(&format!("/console/accounts/{account}")).await, StatusCode::OK);
    assert!(
        browser.page.contains("Google Password Manager") && browser.page.contains("class=\"icon\""),
        "the provider and its icon: {}",
        browser.page
    );
    assert!(browser.page.contains("履歴（新しい順）") && browser.page.contains("お客様 / customer"), "{}", browser.page);
    let passkey_id = {
        let at = browser.page.find("name=\"passkey_id\" value=\"").expect("a passkey's delete form");
        let rest = &browser.page[at + "name=\"passkey_id\" value=\"".len()..];
        rest[..rest.find('"').expect("end")].to_string()
    };
    let csrf = browser.csrf();

    // Without the form's token: refused, nothing done.
    let (status, _) = browser
        .post_form(
            &format!("/console/accounts/{account}/actions"),
            &[("action", "revoke"), ("passkey_id", &passkey_id), ("reason", "lost phone")],
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    // Without a reason: refused.
    let form = [("csrf", csrf.as_str()), ("action", "revoke"), ("passkey_id", passkey_id.as_str()), ("reason", " ")];
    let (status, _) = browser.post_form(&format!("/console/accounts/{account}/actions"), &form).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(browser.page.contains("reason_required"), "{}", browser.page);
    // First the confirmation page; nothing is deleted yet.
    let form = [("csrf", csrf.as_str()), ("action", "revoke"), ("passkey_id", passkey_id.as_str()), ("reason", "lost phone")];
    let (status, _) = browser.post_form(&format!("/console/accounts/{account}/actions"), &form).await;
    assert_eq!(status, StatusCode::OK);
    assert!(browser.page.contains("よろしいですか") && browser.page.contains("name=\"confirmed\" value=\"yes\""), "{}", browser.page);
    assert_eq!(app.passkey_login(&mut phone).await.status(), StatusCode::CREATED, "not deleted before the confirmation");
    // Confirmed: deleted, the customer notified, back on the account page.
    let confirmed = [form.as_slice(), &[("confirmed", "yes")]].concat();
    let (status, location) = browser.post_form(&format!("/console/accounts/{account}/actions"), &confirmed).await;
    assert_eq!(status, StatusCode::SEE_OTHER, "{}", browser.page);
    assert_eq!(location, Some(format!("/console/accounts/{account}?done=revoked")));
    let (status, body) = json_of(app.passkey_login(&mut phone).await).await;
    assert_eq!((status, error_code(&body)), (StatusCode::UNAUTHORIZED, "revoked_credential"));
    assert!(app.mail_to("lost@example.jp").iter().any(|m| m.decoded().contains("削除")), "the customer is told");
    assert_eq!(browser.get(&format!("/console/accounts/{account}?done=revoked")).await, StatusCode::OK);
    assert!(browser.page.contains("削除済み") && browser.page.contains("lost phone"), "{}", browser.page);
    let events: Vec<String> = app.events_of(&account).await.into_iter().map(|(t, _, _)| t).collect();
    assert!(events.contains(&"PasskeysRevoked".to_string()) && events.contains(&"AccountViewedByStaff".to_string()), "{events:?}");

    // Support does not open compliance pages: a 403 page, on record.
    assert_eq!(browser.get("/console/audit").await, StatusCode::FORBIDDEN);
    assert!(browser.page.contains("この画面は利用できません") && browser.page.contains("Not open to your role"), "{}", browser.page);
    assert_eq!(browser.get("/console/staff").await, StatusCode::FORBIDDEN);

    // Sign-out ends the session; the cookie opens nothing after.
    let csrf = browser.csrf();
    let (status, location) = browser.post_form("/console/sign-out", &[("csrf", &csrf)]).await;
    assert_eq!((status, location.as_deref()), (StatusCode::SEE_OTHER, Some("/console/sign-in")));
    assert_eq!(browser.get_location("/console").await.as_deref(), Some("/console/sign-in"));

    // Signing in again with the passkey.
    let (status, body) = browser.sign_in(&mut key).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(browser.get("/console").await, StatusCode::OK);
    let events = staff_events(&app, &staff_id).await;
    for expected in ["ConsolePasskeyEnrolled", "StaffAccessRefused", "ConsoleSignedOut", "ConsoleSignedIn"] {
        assert!(events.iter().any(|e| e == expected), "{expected} in {events:?}");
    }
}

async fn roles_open_the_same_pages_as_the_api_and_an_idle_session_goes_back_to_sign_in(app: TestApp) {
    let account = app.open_account("7200001", Some("roles@example.jp"), false).await;
    let mut customer = SoftPasskey::new("localhost", ORIGIN);
    app.register("7200001", "roles@example.jp", &mut customer).await;
    let mut browsers = Vec::new();
    for (name, role) in [("Kato", "compliance"), ("Ito", "support"), ("Mori", "admin")] {
        let (_, link) = member(&app, name, role).await;
        let mut browser = Browser::new(&app);
        browser.enrol(&link, &mut SoftPasskey::new("localhost", ORIGIN)).await;
        browsers.push((role, browser));
    }
    let pages = [
        ("/console/accounts", ["support", "compliance", "admin"].as_slice()),
        (&format!("/console/accounts/{account}"), &["support", "compliance", "admin"]),
        ("/console/audit", &["compliance", "admin"]),
        ("/console/audit/verify", &["compliance", "admin"]),
        ("/console/audit/export?format=csv", &["compliance", "admin"]),
        ("/console/signals", &["compliance", "admin"]),
        ("/console/adoption", &["compliance", "admin"]),
        ("/console/staff", &["admin"]),
    ];
    for (role, browser) in browsers.iter_mut() {
        for (path, allowed) in &pages {
            let status = browser.get(path).await;
            let expected = if allowed.contains(role) { StatusCode::OK } else { StatusCode::FORBIDDEN };
            assert_eq!(status, expected, "{role} on {path}");
        }
    }
    // Compliance cannot revoke or unlock (the API's rule), even by a hand-made form.
    let (_, compliance) = &mut browsers[0];
    compliance.get(&format!("/console/accounts/{account}")).await;
    assert!(!compliance.page.contains("name=\"action\""), "no action forms for compliance");
    let csrf = compliance.csrf();
    let form = [("csrf", csrf.as_str()), ("action", "revoke_all"), ("reason", "x"), ("confirmed", "yes")];
    let (status, _) = compliance.post_form(&format!("/console/accounts/{account}/actions"), &form).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(app.passkey_login(&mut customer).await.status(), StatusCode::CREATED);

    // Compliance: the trail filtered by URL, the export of the filter, the verification.
    assert_eq!(compliance.get("/console/audit?account_id=7200001&type=PasskeyRegistered").await, StatusCode::OK);
    assert!(
        compliance.page.contains("PasskeyRegistered") && !compliance.page.contains("<code>AccountOpened</code>"),
        "{}",
        compliance.page
    );
    assert!(
        compliance.page.contains("/console/audit/export?account_id=7200001&amp;type=PasskeyRegistered&amp;format=csv"),
        "{}",
        compliance.page
    );
    // "To" is a day included, as a date picker means it.
    let today = ledger_domain::japan::japan_day(app.clock.now());
    assert_eq!(
        compliance.get(&format!("/console/audit?account_id=7200001&type=PasskeyRegistered&from={today}&to={today}")).await,
        StatusCode::OK
    );
    assert!(compliance.page.contains("<code>PasskeyRegistered</code>"), "today's row with from = to = today: {}", compliance.page);
    assert_eq!(compliance.get("/console/audit?account_id=7200001&type=PasskeyRegistered&count=1").await, StatusCode::OK);
    assert!(compliance.page.contains("<strong>1</strong>件"), "the filter's row count: {}", compliance.page);
    let res = compliance
        .with_cookie(
            compliance.client.get(format!("{}/console/audit/export?account_id=7200001&type=PasskeyRegistered&format=csv", compliance.base)),
        )
        .send()
        .await
        .expect("export");
    assert_eq!(res.status(), StatusCode::OK);
    assert!(res.headers().get(header::CONTENT_DISPOSITION).expect("attachment").to_str().expect("cd").starts_with("attachment"));
    let csv = res.bytes().await.expect("csv");
    assert!(csv.starts_with(b"\xEF\xBB\xBF"), "Excel's BOM");
    let text = String::from_utf8_lossy(&csv);
    assert_eq!(text.lines().count(), 2, "the header and one row: {text}");
    assert_eq!(compliance.get("/console/audit/verify").await, StatusCode::OK);
    assert!(compliance.page.contains("改ざんはありません") && compliance.page.contains("head-hash"), "{}", compliance.page);
    assert_eq!(compliance.get("/console/adoption").await, StatusCode::OK);
    assert!(compliance.page.contains("<svg class=\"chart\""), "the chart is drawn on the server");

    // Idle past the limit: back to the sign-in, on record as ended for idleness.
    app.clock.advance(chrono::Duration::minutes(16));
    let (_, support) = &browsers[1];
    assert_eq!(support.get_location("/console").await.as_deref(), Some("/console/sign-in"));
}

async fn an_administrator_disables_a_member_whose_sessions_and_token_stop_at_once(app: TestApp) {
    let (admin_id, admin_link) = member(&app, "Admin", "admin").await;
    let (support_id, support_link) = member(&app, "Leaving", "support").await;
    let mut admin = Browser::new(&app);
    admin.enrol(&admin_link, &mut SoftPasskey::new("localhost", ORIGIN)).await;
    let mut support = Browser::new(&app);
    let mut support_key = SoftPasskey::new("localhost", ORIGIN);
    support.enrol(&support_link, &mut support_key).await;
    assert_eq!(support.get("/console").await, StatusCode::OK);

    assert_eq!(admin.get("/console/staff").await, StatusCode::OK);
    assert!(admin.page.contains("Leaving"), "{}", admin.page);
    let csrf = admin.csrf();
    let (status, _) = admin.post_form(&format!("/console/staff/{support_id}/disable"), &[("csrf", &csrf)]).await;
    assert_eq!(status, StatusCode::OK);
    assert!(admin.page.contains("無効化します"), "a confirmation first: {}", admin.page);
    assert_eq!(support.get("/console").await, StatusCode::OK, "not before the confirmation");
    let (status, _) = admin.post_form(&format!("/console/staff/{support_id}/disable"), &[("csrf", &csrf), ("confirmed", "yes")]).await;
    assert_eq!(status, StatusCode::OK);
    assert!(admin.page.contains("1件"), "one session ended: {}", admin.page);
    // At once: the session, a new sign-in.
    assert_eq!(support.get_location("/console").await.as_deref(), Some("/console/sign-in"));
    let (status, _) = support.sign_in(&mut support_key).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let events = staff_events(&app, &support_id).await;
    assert!(events.contains(&"ConsoleSignInRefused".to_string()), "{events:?}");
    assert!(staff_events(&app, &admin_id).await.contains(&"StaffMemberDisabled".to_string()));

    // A lost passkey: a new link; the old passkey opens nothing.
    let (_, key_link) = member(&app, "Forgetful", "compliance").await;
    let mut forgetful = Browser::new(&app);
    let mut lost = SoftPasskey::new("localhost", ORIGIN);
    forgetful.enrol(&key_link, &mut lost).await;
    admin.get("/console/staff").await;
    let forgetful_id =
        app.app.store.staff_members().await.expect("members").into_iter().find(|m| m.name == "Forgetful").expect("member").staff_id;
    let csrf = admin.csrf();
    let (status, _) = admin.post_form(&format!("/console/staff/{forgetful_id}/link"), &[("csrf", &csrf)]).await;
    assert_eq!(status, StatusCode::OK);
    assert!(admin.page.contains("紛失扱い"), "a confirmation first: {}", admin.page);
    let (status, _) = admin.post_form(&format!("/console/staff/{forgetful_id}/link"), &[("csrf", &csrf), ("confirmed", "yes")]).await;
    assert_eq!(status, StatusCode::OK);
    let new_link = {
        let at = admin.page.find("<code id=\"link\">").expect("the link shown") + "<code id=\"link\">".len();
        admin.page[at..at + admin.page[at..].find('<').expect("end")].to_string()
    };
    let (status, _) = Browser::new(&app).sign_in(&mut lost).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "the lost passkey no longer signs in");
    let mut again = Browser::new(&app);
    again.enrol(&new_link, &mut SoftPasskey::new("localhost", ORIGIN)).await;
    assert_eq!(again.get("/console/audit").await, StatusCode::OK);
}

/// "This wasn't me" from the phone about the PC's login: the support desk
/// sees it first on the account, with the reported event and the note.
async fn a_customers_open_report_is_at_the_top_of_the_account_page(app: TestApp) {
    use ledger_tests::devices::{add_passkey_on, login_on, pc, phone, register_on};
    let mut on_phone = SoftPasskey::new("localhost", ORIGIN);
    register_on(&app, "7100009", "reported@example.jp", &mut on_phone, phone).await;
    on_phone.attachment = "cross-platform";
    let (_, v) = login_on(&app, &mut on_phone, pc).await;
    let account = v["account_id"].as_str().expect("account").to_string();
    let mut hello = SoftPasskey::new("localhost", ORIGIN);
    add_passkey_on(&app, v["session"]["token"].as_str().expect("token"), &mut hello, pc).await;
    login_on(&app, &mut hello, pc).await;
    on_phone.attachment = "platform";
    let (_, v) = login_on(&app, &mut on_phone, phone).await;
    let token = v["session"]["token"].as_str().expect("token").to_string();
    let (_, activity) = json_of(app.get("/api/v1/me/activity", Some(&token)).await).await;
    let reported = activity["items"]
        .as_array()
        .expect("items")
        .iter()
        .find(|i| i["reportable"] == true && i["kind"] == "login")
        .expect("the PC's login");
    let path = format!("/api/v1/me/activity/{}/report", reported["event_id"].as_str().expect("id"));
    let (status, _) = json_of(app.post(&path, json!({ "note": "夜中に知らないPCから" }), Some(&token)).await).await;
    assert_eq!(status, StatusCode::OK);

    let (_, link) = member(&app, "Mori", "support").await;
    let mut browser = Browser::new(&app);
    browser.enrol(&link, &mut SoftPasskey::new("localhost", ORIGIN)).await;
    assert_eq!(browser.get(&format!("/console/accounts/{account}")).await, StatusCode::OK);
    let page = &browser.page;
    let report = page.find("お客様からの不審な操作の報告").expect("the open report is shown");
    assert!(report < page.find("id=\"status-h\"").expect("the status"), "at the top of the account");
    assert!(page.contains("夜中に知らないPCから") && page.contains("Windows"), "the note and the reported login: {page}");
}
