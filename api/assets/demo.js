// The demo pages: seed 000's registration and passkey login, with the
// browser's own WebAuthn JSON helpers (no library, no CDN).
"use strict";

const $ = (id) => document.getElementById(id);
let flowId = null;
// The code flow that confirms a first passkey from the status screen.
let stepUpFlow = null;
let sessionToken = null;
// The channel this page speaks for: ?channel=mobile_web on a phone.
const channel = new URLSearchParams(location.search).get("channel") || "web";

function say(text, ok) {
  $("message").textContent = text;
  $("message").className = ok ? "ok" : "";
}

function show(id) {
  for (const s of ["step-login-id", "step-password", "step-otp", "step-passkey"]) $(s).hidden = s !== id;
}

async function api(method, path, body) {
  const headers = { "Content-Type": "application/json", "X-Channel": channel };
  if (sessionToken) headers.Authorization = "Bearer " + sessionToken;
  const res = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await res.text();
  const data = text ? JSON.parse(text) : {};
  if (!res.ok) {
    const e = data.error || {};
    throw new Error((e.message_ja || "") + " / " + (e.message || "") + " [" + (e.code || res.status) + "]");
  }
  return data;
}

async function run(step) {
  try { await step(); } catch (e) { say(e.message, false); }
}

async function showStatus() {
  const status = await api("GET", "/api/v1/me/passkeys");
  $("passkeys").innerHTML = "";
  if (status.passkeys.length === 0) {
    $("passkeys").textContent = status.summary.ja;
  }
  for (const p of status.passkeys) {
    const li = document.createElement("li");
    li.textContent = p.name + " — " + (p.provider || "") + (p.synced ? " (同期 / synced)" : " (この端末のみ / device-bound)") +
      " — 登録日時 " + new Date(p.registered_at).toLocaleString("ja-JP") +
      (p.suspended_at ? " — 一時停止中：サポートまでご連絡ください (suspended: please contact support)" : "");
    li.className = "passkey";
    li.dataset.id = p.id;
    const del = document.createElement("button");
    del.textContent = "削除 (Delete)";
    del.className = "delete-one";
    del.onclick = () => run(async () => {
      await api("DELETE", `/api/v1/me/passkeys/${p.id}`, { transaction_password: $("trading-password").value });
      await showStatus();
      say("パスキーを削除しました。 / Passkey deleted.", true);
    });
    li.appendChild(del);
    $("passkeys").appendChild(li);
  }
  // No passkey: the status screen offers registration, confirmed the way
  // the deployment says (trading password, or an e-mailed code).
  const stepUp = status.registration && status.registration.step_up;
  $("register-here").hidden = !stepUp;
  $("delete-controls").hidden = status.passkeys.length === 0;
  $("register-with-trading-password").hidden = stepUp !== "trading_password";
  $("register-with-code").hidden = stepUp !== "code";
  $("status").hidden = false;
}

$("to-password").onclick = () => run(async () => {
  const r = await api("POST", "/api/v1/registrations", { login_id: $("login-id").value });
  flowId = r.flow_id;
  show("step-password");
  say("", true);
});

// Where the code went, or the OTP service's prompt (seed 004).
function otpInfo(otp) {
  return otp.factor === "totp"
    ? "ワンタイムパスワード（OTPサービス）を入力してください。 / Enter your one-time password."
    : `${otp.destination} に認証コードを送信しました。有効期限: ${new Date(otp.expires_at).toLocaleString("ja-JP")}`;
}

// Seed 004: "指定のメールアドレスを選択し、「送信」".
function offerAddresses(addresses, send) {
  const box = $("choose-address");
  box.innerHTML = "";
  $("otp-info").textContent = "認証コードの送信先を選択してください。 / Choose where the code goes.";
  for (const a of addresses) {
    const b = document.createElement("button");
    b.textContent = `${a.destination} に送信 (Send)`;
    b.onclick = () => run(async () => {
      const r = await send(a.slot);
      box.innerHTML = "";
      $("otp-info").textContent = otpInfo(r.otp);
    });
    box.appendChild(b);
  }
}

$("to-otp").onclick = () => run(async () => {
  const r = await api("POST", `/api/v1/registrations/${flowId}/password`, { password: $("password").value });
  if (r.next === "choose_address") {
    offerAddresses(r.addresses, (slot) => api("POST", `/api/v1/registrations/${flowId}/otp/send`, { slot }));
  } else {
    $("choose-address").innerHTML = "";
    $("otp-info").textContent = otpInfo(r.otp);
  }
  show("step-otp");
  say("", true);
});

// The browser ended the ceremony without a passkey: tell the ledger (seed 001).
async function creationAbandoned(path, e) {
  if (e && e.name && e.name !== "Error") {
    try { await api("POST", path, { reason: e.name }); } catch (_) { /* the refusal is shown below */ }
  }
  return new Error(`パスキー登録が中断されました。 / Passkey creation was interrupted. [${e && e.name}]`);
}

$("resend").onclick = () => run(async () => {
  await api("POST", `/api/v1/registrations/${flowId}/otp/resend`);
  say("認証コードを再送信しました。", true);
});

$("to-passkey").onclick = () => run(async () => {
  await api("POST", `/api/v1/registrations/${flowId}/otp`, { code: $("otp").value });
  const options = await api("POST", `/api/v1/registrations/${flowId}/passkey/options`, {});
  $("passkey-name").value = options.passkey_name;
  show("step-passkey");
  say("", true);
});

$("create-passkey").onclick = () => run(async () => {
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
  sessionToken = r.session.token;
  show(null);
  say("パスキーを登録しました。 / Passkey registered.", true);
  await showStatus();
});

$("passkey-login").onclick = () => run(async () => {
  const options = await api("POST", "/api/v1/sessions/passkey/options", {});
  const publicKey = PublicKeyCredential.parseRequestOptionsFromJSON(options.publicKey);
  const credential = await navigator.credentials.get({ publicKey });
  const r = await api("POST", "/api/v1/sessions/passkey", { ceremony_id: options.ceremony_id, credential: credential.toJSON() });
  sessionToken = r.session.token;
  // After a cross-device sign-in the PC offers a passkey of its own (seed 000 p.11-12).
  $("local-offer").hidden = !r.offer_local_passkey;
  await showStatus();
  say(r.cross_device ? "スマートフォンでログインしました。 / Signed in with your phone." : "ログインしました。 / Logged in.", true);
});

$("create-local").onclick = () => run(async () => {
  const options = await api("POST", "/api/v1/me/passkeys/options", {});
  const publicKey = PublicKeyCredential.parseCreationOptionsFromJSON(options.publicKey);
  const credential = await navigator.credentials.create({ publicKey });
  await api("POST", "/api/v1/me/passkeys", { credential: credential.toJSON() });
  $("local-offer").hidden = true;
  await showStatus();
  say("この端末にパスキーを作成しました。 / Passkey created on this device.", true);
});

let stepUpVerified = false;

$("send-register-code").onclick = () => run(async () => {
  let r = await api("POST", "/api/v1/me/passkeys/code", {});
  if (r.next === "choose_address") {
    // The first reachable address unless the customer picks another.
    const slot = Number(prompt(r.addresses.map((a) => `${a.slot}: ${a.destination}`).join("\n"), String(r.addresses[0].slot)));
    r = await api("POST", "/api/v1/me/passkeys/code", { slot });
  }
  stepUpFlow = r.flow_id;
  stepUpVerified = false;
  $("register-code-info").textContent = otpInfo(r.otp);
  say("", true);
});

$("register-from-status").onclick = () => run(async () => {
  const body = {};
  if (!$("register-with-code").hidden) {
    // Verified once; a retry after a cancelled ceremony goes straight on.
    if (!stepUpVerified) {
      await api("POST", "/api/v1/me/passkeys/code/verify", { flow_id: stepUpFlow, code: $("register-code").value });
      stepUpVerified = true;
    }
  } else {
    body.transaction_password = $("register-trading-password").value;
  }
  const options = await api("POST", "/api/v1/me/passkeys/options", body);
  const publicKey = PublicKeyCredential.parseCreationOptionsFromJSON(options.publicKey);
  let credential;
  try {
    credential = await navigator.credentials.create({ publicKey });
  } catch (e) {
    throw await creationAbandoned("/api/v1/me/passkeys/abandoned", e);
  }
  await api("POST", "/api/v1/me/passkeys", { credential: credential.toJSON() });
  $("register-trading-password").value = "";
  await showStatus();
  say("パスキーを登録しました。 / Passkey registered.", true);
});

$("decline-local").onclick = () => run(async () => {
  await api("POST", "/api/v1/me/passkeys/decline-local");
  $("local-offer").hidden = true;
  say("パスキーを作成せずに続行しました。 / Continued without a new passkey.", true);
});

$("delete-all").onclick = () => run(async () => {
  const r = await api("DELETE", "/api/v1/me/passkeys", { transaction_password: $("trading-password").value });
  await showStatus();
  say(`${r.deleted}件のパスキーを削除しました。 / ${r.deleted} passkey(s) deleted.`, true);
});

$("logout").onclick = () => run(async () => {
  await api("DELETE", "/api/v1/sessions/current");
  sessionToken = null;
  $("status").hidden = true;
  show("step-login-id");
  say("ログアウトしました。 / Logged out.", true);
});
