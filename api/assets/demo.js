// The reference front end: seed 000's registration and passkey login, the
// status screen with the customer's security activity and signed-in
// devices, with the browser's own WebAuthn JSON helpers (no library, no CDN).
// One task per screen; each screen's heading takes the focus; nothing a
// screen held stays on it; a destructive action asks first; every refusal
// is explained in words, never as a code.
"use strict";

const $ = (id) => document.getElementById(id);
const body = document.body.dataset;
const TP = body.tradingPassword || "執行パスワード";
const TP_EN = body.tradingPasswordEn || "trading password";
const PHONE = body.supportPhone || "";

let flowId = null;
// The code flow that confirms a first passkey from the status screen.
let stepUpFlow = null;
let stepUpVerified = false;
// The session survives a reload of this tab, not the tab itself.
let sessionToken = sessionStorage.getItem("ledger-session");
let activityCursor = null;

// The channel: ?channel=... when the app says so, else told from the device.
const channel = new URLSearchParams(location.search).get("channel") ||
  ((navigator.userAgentData && navigator.userAgentData.mobile) || /iPhone|iPod|Android.+Mobile/.test(navigator.userAgent) ? "mobile_web" : "web");

for (const el of document.querySelectorAll(".tp")) el.textContent = TP;
for (const el of document.querySelectorAll(".tp-en")) el.textContent = TP_EN;
for (const el of document.querySelectorAll(".support-phone")) el.textContent = PHONE;
for (const el of document.querySelectorAll(".support-hours")) el.textContent = body.supportHours || "";
for (const el of document.querySelectorAll(".support-hours-en")) el.textContent = body.supportHoursEn || "";

const SCREENS = ["login", "step-login-id", "step-password", "step-otp", "step-passkey", "local-offer", "status", "confirm", "help"];
// What each screen holds that must not outlive it.
const HELD = { "step-password": ["password"], "step-otp": ["otp"], "confirm": ["confirm-input"], "status": ["register-trading-password", "register-code"] };
let current = "login";

/** Shows one screen, empties what the others held, and moves the focus to its heading. */
function go(id, keepMessage) {
  for (const s of SCREENS) {
    if (s !== id) for (const field of HELD[s] || []) $(field).value = "";
    $(s).hidden = s !== id;
  }
  current = id;
  if (!keepMessage) clearMessages();
  const heading = $(id).querySelector("h2");
  if (heading) heading.focus();
}

function clearMessages() {
  $("error").hidden = true;
  $("error").textContent = "";
  $("message").textContent = "";
}

function bilingual(el, ja, en) {
  el.textContent = "";
  el.append(ja);
  if (en) {
    const span = document.createElement("span");
    span.lang = "en";
    span.className = "en";
    span.textContent = en;
    el.append(document.createElement("br"), span);
  }
}

function say(ja, en) {
  $("error").hidden = true;
  bilingual($("message"), ja, en);
}

function fail(ja, en, action) {
  $("message").textContent = "";
  const box = $("error");
  bilingual(box, ja, en);
  if (action) {
    const b = document.createElement("button");
    b.type = "button";
    b.textContent = action.label;
    b.onclick = action.run;
    box.append(document.createElement("br"), b);
  }
  box.hidden = false;
}

const CALL = () => `サポートデスク（${PHONE}）までお電話ください。`;
const CALL_EN = () => `please call our support desk (${PHONE}).`;

/** What the customer is told for a refusal of the ledger: words and what to do, never the code. */
function guidance(code, e) {
  const known = {
    invalid_credentials: ["口座番号またはログインパスワードが正しくありません。お忘れの場合は" + CALL(), "The account number or login password is incorrect. If you forgot them, " + CALL_EN()],
    login_locked: ["誤ったパスワードが続いたため、ログインがロックされています。" + CALL(), "Login is locked after wrong passwords: " + CALL_EN()],
    temporary_password: ["仮パスワードのままです。当社サイトの「お客様情報」でパスワードを変更してから、もう一度お試しください。", "Your password is still the temporary one: change it under \"Customer information\" on our site, then try again."],
    email_unreachable: ["登録メールアドレスにメールが届かない状態です。メールアドレスの変更は" + CALL(), "E-mail to your registered address cannot be delivered: to change it, " + CALL_EN()],
    invalid_transaction_password: [`${TP}が正しくありません。お忘れの場合は` + CALL(), `The ${TP_EN} is incorrect. If you forgot it, ` + CALL_EN()],
    trading_password_locked: [`${TP}の誤りが続いたため、ロックされています。` + CALL(), `Locked after wrong ${TP_EN}s: ` + CALL_EN()],
    deletion_locked: [`${TP}の誤りが続いたため、パスキーの削除がロックされています。` + CALL(), `Deletion is locked after wrong ${TP_EN}s: ` + CALL_EN()],
    revoked_credential: ["このパスキーは削除されています。「パスキーを登録する」から、口座番号・ログインパスワード・メールの認証コードで新しいパスキーを登録してください。", "This passkey was deleted. Register a new one with \"Register a passkey\": account number, login password and an e-mailed code."],
    passkey_suspended: ["安全のため、このパスキーは一時停止中です。" + CALL(), "This passkey is suspended for your safety: " + CALL_EN()],
    counter_regression: ["安全のため、このパスキーは一時停止中です。" + CALL(), "This passkey is suspended for your safety: " + CALL_EN()],
    session_ended: ["ログインの有効期間が終了しました。もう一度ログインしてください。", "Your session has ended. Please log in again."],
    unauthorized: ["ログインの有効期間が終了しました。もう一度ログインしてください。", "Your session has ended. Please log in again."],
    too_many_attempts: ["認証コードの入力誤りが上限に達しました。最初からやり直してください。", "Too many wrong codes: please start over."],
    flow_expired: ["手続きの有効期間が過ぎました。最初からやり直してください。", "This procedure has expired: please start over."],
    flow_closed: ["この手続きは終了しました。最初からやり直してください。", "This procedure has ended: please start over."],
    recent_login_required: ["安全のため、もう一度ログインしてからパスキーを追加してください。", "For your safety, log in again before adding a passkey."],
    not_reportable: ["この項目はご報告の対象ではありません。ご不安な場合は他の端末をログアウトし、" + CALL(), "This item cannot be reported. If you are worried, sign out your other devices and " + CALL_EN()],
  };
  const [ja, en] = known[code] || [(e && e.message_ja) || "処理できませんでした。もう一度お試しください。", (e && e.message) || "That did not work. Please try again."];
  return { ja, en };
}

/** The ledger refused; `code` says why (for the page only). */
class Refused extends Error {
  constructor(code, ja, en) { super(en); this.code = code; this.ja = ja; this.en = en; }
}

async function api(method, path, payload) {
  const headers = { "X-Channel": channel };
  if (payload !== undefined) headers["Content-Type"] = "application/json";
  if (sessionToken) headers.Authorization = "Bearer " + sessionToken;
  let res;
  try {
    res = await fetch(path, { method, headers, body: payload === undefined ? undefined : JSON.stringify(payload) });
  } catch (_) {
    throw new Refused("network", "通信できませんでした。通信環境の良い場所で、もう一度お試しください。", "The connection failed. Please try again where the connection is good.");
  }
  const text = await res.text();
  let data = {};
  try { data = text ? JSON.parse(text) : {}; } catch (_) { data = {}; }
  if (!res.ok) {
    const e = data.error || {};
    const g = guidance(e.code, e);
    throw new Refused(e.code || String(res.status), g.ja, g.en);
  }
  return data;
}

/** Words for the browser's passkey errors (DOMException names): no URL, no English-only text. */
function ceremonyWords(e, creating) {
  switch (e && e.name) {
    case "NotAllowedError":
      return creating
        ? ["パスキーの作成がキャンセルされたか、時間切れになりました。もう一度「パスキーを作成」を押してください。", "Passkey creation was cancelled or timed out. Press \"Create the passkey\" again."]
        : ["パスキーの操作がキャンセルされたか、時間切れになりました。この端末にパスキーがない場合は、もう一度「パスキーでログイン」を押し、表示される QR コードを、パスキーを登録したスマートフォンで読み取ってください。", "The passkey request was cancelled or timed out. If this device has no passkey, press \"Log in with a passkey\" again and scan the QR code shown with the phone that holds your passkey."];
    case "InvalidStateError":
      return ["この端末には、すでにこの口座のパスキーがあります。そのパスキーでログインしてください。", "This device already holds a passkey for your account: log in with it."];
    case "AbortError":
      return ["パスキーの操作が中断されました。もう一度お試しください。", "The passkey request was stopped. Please try again."];
    case "SecurityError":
      return ["このページではパスキーを使えません。ブックマークまたは公式アプリから当社サイトを開き直してください。", "Passkeys cannot be used on this page: open our site again from your bookmark or the official app."];
    case "NotSupportedError":
      return ["この端末またはブラウザはパスキーに対応していません。推奨環境（iPhone の Safari・Chrome、Android の Chrome、Windows 11 の Edge・Chrome）でご利用ください。", "This device or browser does not support passkeys. Please use a recommended one (Safari or Chrome on iPhone, Chrome on Android, Edge or Chrome on Windows 11)."];
    default:
      return ["パスキーの操作ができませんでした。もう一度お試しください。", "The passkey request did not work. Please try again."];
  }
}

class Ceremony extends Error {
  constructor(e, creating) { const [ja, en] = ceremonyWords(e, creating); super(en); this.ja = ja; this.en = en; this.name = "Ceremony"; }
}

let busy = false;

/** Runs one action at a time: a second click while the first is under way does nothing. */
async function run(step) {
  if (busy) return;
  busy = true;
  clearMessages();
  document.body.setAttribute("aria-busy", "true");
  try {
    await step();
  } catch (e) {
    if (e instanceof Refused && (e.code === "session_ended" || e.code === "unauthorized")) {
      signedOut();
      fail(e.ja, e.en);
    } else if (e instanceof Refused && ["too_many_attempts", "flow_expired", "flow_closed"].includes(e.code)) {
      fail(e.ja, e.en, { label: "最初からやり直す / Start over", run: () => go("step-login-id") });
    } else if (e instanceof Refused || e instanceof Ceremony) {
      fail(e.ja, e.en);
    } else {
      fail("処理できませんでした。もう一度お試しください。", "That did not work. Please try again.");
    }
  } finally {
    busy = false;
    document.body.removeAttribute("aria-busy");
  }
}

function onSubmit(formId, step) {
  $(formId).addEventListener("submit", (ev) => { ev.preventDefault(); run(step); });
}

function required(id, ja, en) {
  if (!$(id).value.trim()) {
    $(id).focus();
    throw new Refused("empty", ja, en);
  }
}

const jst = new Intl.DateTimeFormat("ja-JP", { timeZone: "Asia/Tokyo", year: "numeric", month: "long", day: "numeric", hour: "2-digit", minute: "2-digit" });
const when = (iso) => jst.format(new Date(iso)) + "（日本時間）";

function signedIn(token) {
  sessionToken = token;
  sessionStorage.setItem("ledger-session", token);
}

function signedOut() {
  sessionToken = null;
  sessionStorage.removeItem("ledger-session");
  go("login", true);
}

// --- Screens ---------------------------------------------------------------

for (const b of document.querySelectorAll("[data-go]")) b.onclick = () => go(b.dataset.go);
$("start-registration").onclick = () => go("step-login-id");
let helpFrom = "login";
$("open-help").onclick = () => { helpFrom = "login"; go("help"); };
$("open-help-home").onclick = () => { helpFrom = "status"; go("help"); };
$("help-back").onclick = () => go(helpFrom);

/** The confirmation step before anything that cannot be undone. */
function confirmStep({ title, text, yes, field, then }) {
  bilingual($("confirm-title"), title[0], title[1]);
  $("confirm-title").tabIndex = -1;
  bilingual($("confirm-text"), text[0], text[1]);
  bilingual($("confirm-yes"), yes[0], yes[1]);
  $("confirm-field").hidden = !field;
  if (field) {
    bilingual($("confirm-label"), field.label[0], field.label[1]);
    $("confirm-input").type = field.type || "text";
    $("confirm-input").autocomplete = "off";
    $("confirm-input").required = !!field.required;
  }
  confirmThen = then;
  go("confirm");
}
let confirmThen = null;
onSubmit("form-confirm", async () => {
  if (!$("confirm-field").hidden && $("confirm-input").required) {
    required("confirm-input", "入力してください。", "Please fill this in.");
  }
  await confirmThen($("confirm-input").value);
});
$("confirm-no").onclick = () => go("status");

// --- Registration (seed 000 p.4-7) ------------------------------------------

onSubmit("form-login-id", async () => {
  required("login-id", "口座番号を入力してください。", "Please enter your account number.");
  const r = await api("POST", "/api/v1/registrations", { login_id: $("login-id").value.trim() });
  flowId = r.flow_id;
  $("password-username").value = $("login-id").value.trim();
  go("step-password");
});

// Where the code went, or the OTP service's prompt (seed 004).
function otpInfo(otp) {
  return otp.factor === "totp"
    ? ["ワンタイムパスワード（OTPサービス）を入力してください。", "Enter the one-time password of your OTP service."]
    : [`${otp.destination} に認証コードを送信しました。有効期限：${when(otp.expires_at)}`,
      `We e-mailed a verification code to ${otp.destination}. It expires at ${new Intl.DateTimeFormat("en-GB", { timeZone: "Asia/Tokyo", hour: "2-digit", minute: "2-digit" }).format(new Date(otp.expires_at))} JST.`];
}

// Seed 004: "指定のメールアドレスを選択し、「送信」".
function offerAddresses(addresses, send) {
  const box = $("choose-address");
  box.textContent = "";
  bilingual($("otp-info"), "認証コードの送信先を選択してください。", "Choose where the code goes.");
  for (const a of addresses) {
    const b = document.createElement("button");
    b.type = "button";
    b.textContent = `${a.destination} に送信 / Send`;
    b.onclick = () => run(async () => {
      const r = await send(a.slot);
      box.textContent = "";
      bilingual($("otp-info"), ...otpInfo(r.otp));
    });
    box.appendChild(b);
  }
}

onSubmit("form-password", async () => {
  required("password", "ログインパスワードを入力してください。", "Please enter your login password.");
  const r = await api("POST", `/api/v1/registrations/${flowId}/password`, { password: $("password").value });
  $("choose-address").textContent = "";
  if (r.next === "choose_address") {
    offerAddresses(r.addresses, (slot) => api("POST", `/api/v1/registrations/${flowId}/otp/send`, { slot }));
  } else {
    bilingual($("otp-info"), ...otpInfo(r.otp));
  }
  go("step-otp");
});

$("resend").onclick = () => run(async () => {
  await api("POST", `/api/v1/registrations/${flowId}/otp/resend`);
  say("認証コードを再送信しました。", "We sent a new code.");
});

onSubmit("form-otp", async () => {
  required("otp", "認証コードを入力してください。", "Please enter the code.");
  await api("POST", `/api/v1/registrations/${flowId}/otp`, { code: $("otp").value.trim() });
  const options = await api("POST", `/api/v1/registrations/${flowId}/passkey/options`, {});
  $("passkey-name").value = options.passkey_name;
  go("step-passkey");
});

// The browser ended the ceremony without a passkey: tell the ledger (seed 001).
async function creationAbandoned(path, e) {
  if (e && e.name && e.name !== "Error") {
    try { await api("POST", path, { reason: e.name }); } catch (_) { /* what the customer is told comes below */ }
  }
  return new Ceremony(e, true);
}

onSubmit("form-passkey", async () => {
  required("passkey-name", "パスキーの名前を入力してください。", "Please enter a name for the passkey.");
  // The name may have been edited: ask again so the server records it.
  const options = await api("POST", `/api/v1/registrations/${flowId}/passkey/options`, { passkey_name: $("passkey-name").value });
  const publicKey = PublicKeyCredential.parseCreationOptionsFromJSON(options.publicKey);
  let credential;
  try {
    credential = await navigator.credentials.create({ publicKey });
  } catch (e) {
    throw await creationAbandoned(`/api/v1/registrations/${flowId}/passkey/abandoned`, e);
  }
  const r = await api("POST", `/api/v1/registrations/${flowId}/passkey`, { credential: credential.toJSON() });
  signedIn(r.session.token);
  $("login-id").value = "";
  await showStatus();
  say("パスキーを登録しました。", "Passkey registered.");
});

// --- Login -------------------------------------------------------------------

$("passkey-login").onclick = () => run(async () => {
  const options = await api("POST", "/api/v1/sessions/passkey/options", {});
  const publicKey = PublicKeyCredential.parseRequestOptionsFromJSON(options.publicKey);
  let credential;
  try {
    credential = await navigator.credentials.get({ publicKey });
  } catch (e) {
    throw new Ceremony(e, false);
  }
  const r = await api("POST", "/api/v1/sessions/passkey", { ceremony_id: options.ceremony_id, credential: credential.toJSON() });
  signedIn(r.session.token);
  if (r.offer_local_passkey) {
    // After a cross-device sign-in the PC offers a passkey of its own (seed 000 p.11-12).
    go("local-offer");
    say("スマートフォンでログインしました。", "Signed in with your phone.");
    return;
  }
  await showStatus();
  say(r.cross_device ? "スマートフォンでログインしました。" : "ログインしました。", r.cross_device ? "Signed in with your phone." : "Logged in.");
});

$("create-local").onclick = () => run(async () => {
  const options = await api("POST", "/api/v1/me/passkeys/options", {});
  const publicKey = PublicKeyCredential.parseCreationOptionsFromJSON(options.publicKey);
  let credential;
  try {
    credential = await navigator.credentials.create({ publicKey });
  } catch (e) {
    throw await creationAbandoned("/api/v1/me/passkeys/abandoned", e);
  }
  await api("POST", "/api/v1/me/passkeys", { credential: credential.toJSON() });
  await showStatus();
  say("この端末にパスキーを作成しました。", "Passkey created on this device.");
});

$("decline-local").onclick = () => run(async () => {
  await api("POST", "/api/v1/me/passkeys/decline-local");
  await showStatus();
  say("パスキーを作成せずに続行しました。", "Continued without a new passkey.");
});

$("logout").onclick = () => run(async () => {
  try { await api("DELETE", "/api/v1/sessions/current"); } catch (_) { /* signed out either way */ }
  signedOut();
  say("ログアウトしました。", "Logged out.");
});

// --- The status screen ------------------------------------------------------------

/** A button's visible words, and what it acts on for those who cannot see the card (its name starts with the words shown). */
function labelled(button, shown, hidden) {
  button.textContent = shown;
  const more = document.createElement("span");
  more.className = "visually-hidden";
  more.textContent = hidden;
  button.appendChild(more);
}

function card(list, className) {
  const li = document.createElement("li");
  li.className = className;
  list.appendChild(li);
  return li;
}

function line(parent, ja, en, className) {
  const p = document.createElement("p");
  if (className) p.className = className;
  bilingual(p, ja, en);
  parent.appendChild(p);
  return p;
}

async function showStatus() {
  const status = await api("GET", "/api/v1/me/passkeys");
  const list = $("passkeys");
  list.textContent = "";
  const active = status.passkeys.filter((p) => !p.revoked_at);
  if (active.length === 0) {
    line(card(list, "empty"), status.summary.ja, status.summary.en);
  }
  for (const p of active) {
    const li = card(list, "passkey");
    li.dataset.id = p.id;
    const name = document.createElement("p");
    name.className = "name";
    name.textContent = p.name;
    li.appendChild(name);
    line(li, `${p.provider || "パスキー"}・${p.synced ? "同期されるパスキー" : "同期なし（登録した端末のみ）"}・登録 ${when(p.registered_at)}`,
      `${p.provider || "Passkey"}, ${p.synced ? "synced" : "not synced (only on the device that created it)"}`, "meta");
    if (p.suspended_at) line(li, "一時停止中：" + CALL(), "Suspended: " + CALL_EN(), "warn");
    const del = document.createElement("button");
    del.type = "button";
    del.className = "delete-one danger";
    labelled(del, "削除… / Delete…", `：パスキー「${p.name}」`);
    del.onclick = () => confirmDeletion(p);
    li.appendChild(del);
  }
  // No passkey: the status screen offers registration, confirmed the way
  // the deployment says (trading password, or an e-mailed code).
  const stepUp = status.registration && status.registration.step_up;
  $("register-here").hidden = !stepUp;
  $("delete-controls").hidden = active.length === 0;
  $("register-with-trading-password").hidden = stepUp !== "trading_password";
  $("register-with-code").hidden = stepUp !== "code";
  if (current !== "status") go("status", true);
  await Promise.all([showActivity(false), showSessions()]);
}

function confirmDeletion(passkey) {
  const one = !!passkey;
  confirmStep({
    title: one ? [`パスキー「${passkey.name}」を削除しますか？`, `Delete the passkey "${passkey.name}"?`] : ["すべてのパスキーを削除しますか？", "Delete every passkey?"],
    text: [`削除したパスキーではログインできなくなります。確認のため${TP}を入力してください。`, `A deleted passkey no longer logs in. Enter your ${TP_EN} to confirm.`],
    yes: ["削除する", "Delete"],
    field: { label: [TP, TP_EN], type: "password", required: true },
    then: async (tradingPassword) => {
      const path = one ? `/api/v1/me/passkeys/${passkey.id}` : "/api/v1/me/passkeys";
      const r = await api("DELETE", path, { transaction_password: tradingPassword });
      await showStatus();
      say(`パスキーを${r.deleted}件削除しました。`, `${r.deleted} passkey(s) deleted.`);
    },
  });
}

$("delete-all").onclick = () => confirmDeletion(null);

async function showActivity(more) {
  const path = "/api/v1/me/activity?limit=10" + (more && activityCursor ? `&cursor=${activityCursor}` : "");
  const page = await api("GET", path);
  if (!more) $("activity").textContent = "";
  for (const item of page.items) {
    const li = card($("activity"), "activity " + item.kind);
    li.dataset.eventId = item.event_id;
    const head = document.createElement("p");
    head.className = "meta";
    head.textContent = when(item.at) + (item.ip ? `・${item.ip}` : "");
    li.appendChild(head);
    line(li, item.line_ja, item.line_en);
    if (item.this_session) line(li, "この端末のログイン", "This device's login", "badge");
    if (item.reported) line(li, "ご報告済み", "Reported", "badge warn");
    else if (item.reportable) {
      const b = document.createElement("button");
      b.type = "button";
      b.className = "report";
      labelled(b, "身に覚えがない / This wasn't me", `：${when(item.at)} ${item.line_ja}`);
      b.onclick = () => confirmReport(item);
      li.appendChild(b);
    }
  }
  activityCursor = page.next_cursor;
  $("more-activity").hidden = !page.next_cursor;
}

$("more-activity").onclick = () => run(() => showActivity(true));

function confirmReport(item) {
  confirmStep({
    title: ["身に覚えのない操作として報告しますか？", "Report this as not you?"],
    text: [`「${item.line_ja}」（${when(item.at)}）を報告します。この端末以外のすべての端末をログアウトし、この操作に別のパスキーが使われていればそのパスキーを削除して、当社にお知らせします。`,
      `We will sign out every device but this one, delete the passkey this used if it was another one, and look into it.`],
    yes: ["報告する", "Report"],
    field: { label: ["お気づきの点（任意）", "Anything to add (optional)"], type: "text", required: false },
    then: async (note) => {
      const r = await api("POST", `/api/v1/me/activity/${item.event_id}/report`, note.trim() ? { note: note.trim() } : {});
      await showStatus();
      const ja = ["ご報告を受け付けました。"], en = ["Report received."];
      if (r.sessions_ended > 0) { ja.push(`他の端末${r.sessions_ended}台をログアウトしました。`); en.push(`${r.sessions_ended} other device(s) signed out.`); }
      if (r.passkeys_revoked > 0) { ja.push(`使われたパスキー${r.passkeys_revoked}件を削除しました。`); en.push(`${r.passkeys_revoked} passkey(s) deleted.`); }
      ja.push("当社で確認し、必要に応じてご連絡します。パスワードを他人に知られた可能性がある場合は、ログインパスワードを変更してください。");
      en.push("We will look into it. If someone may know your password, please change your login password.");
      say(ja.join(""), en.join(" "));
    },
  });
}

async function showSessions() {
  const r = await api("GET", "/api/v1/me/sessions");
  const list = $("sessions");
  list.textContent = "";
  for (const s of r.items) {
    const li = card(list, "session" + (s.current ? " current" : ""));
    const device = s.device ? s.device.ja : "不明な端末";
    const name = document.createElement("p");
    name.className = "name";
    name.textContent = device + (s.current ? "（この端末）" : "");
    li.appendChild(name);
    line(li, `${s.method_ja}でログイン・${when(s.created_at)}` + (s.ip ? `・${s.ip}` : ""), `${s.device ? s.device.en : "unknown device"}, ${s.method_en}${s.current ? " (this device)" : ""}`, "meta");
    if (!s.current) {
      const b = document.createElement("button");
      b.type = "button";
      labelled(b, "ログアウトする / Log out", `：${device}（${when(s.created_at)}）`);
      b.onclick = () => run(async () => {
        await api("DELETE", `/api/v1/me/sessions/${s.session_id}`);
        await showSessions();
        say(`${device}をログアウトしました。`, "That device was logged out.");
      });
      li.appendChild(b);
    }
  }
  $("end-others").hidden = r.items.filter((s) => !s.current).length === 0;
}

$("end-others").onclick = () => confirmStep({
  title: ["他の端末をすべてログアウトしますか？", "Log out every other device?"],
  text: ["この端末以外でのログインをすべて終了します。", "Every login but this device's ends."],
  yes: ["ログアウトする", "Log them out"],
  field: null,
  then: async () => {
    const r = await api("DELETE", "/api/v1/me/sessions?scope=others");
    await showStatus();
    say(`他の端末${r.ended}台をログアウトしました。`, `${r.ended} other device(s) logged out.`);
  },
});

// --- A first passkey from the status screen ----------------------------------------

$("send-register-code").onclick = () => run(async () => {
  let r = await api("POST", "/api/v1/me/passkeys/code", {});
  if (r.next === "choose_address") {
    r = await api("POST", "/api/v1/me/passkeys/code", { slot: r.addresses[0].slot });
  }
  stepUpFlow = r.flow_id;
  stepUpVerified = false;
  bilingual($("register-code-info"), ...otpInfo(r.otp));
});

onSubmit("form-register-here", async () => {
  const payload = {};
  if (!$("register-with-code").hidden) {
    // Verified once; a retry after a cancelled ceremony goes straight on.
    if (!stepUpVerified) {
      required("register-code", "認証コードを入力してください。", "Please enter the code.");
      await api("POST", "/api/v1/me/passkeys/code/verify", { flow_id: stepUpFlow, code: $("register-code").value.trim() });
      stepUpVerified = true;
    }
  } else {
    required("register-trading-password", `${TP}を入力してください。`, `Please enter your ${TP_EN}.`);
    payload.transaction_password = $("register-trading-password").value;
  }
  const options = await api("POST", "/api/v1/me/passkeys/options", payload);
  $("register-trading-password").value = "";
  const publicKey = PublicKeyCredential.parseCreationOptionsFromJSON(options.publicKey);
  let credential;
  try {
    credential = await navigator.credentials.create({ publicKey });
  } catch (e) {
    throw await creationAbandoned("/api/v1/me/passkeys/abandoned", e);
  }
  await api("POST", "/api/v1/me/passkeys", { credential: credential.toJSON() });
  await showStatus();
  say("パスキーを登録しました。", "Passkey registered.");
});

// A reload keeps the customer signed in (this tab only).
if (sessionToken) {
  run(showStatus);
} else {
  go("login", true);
}
