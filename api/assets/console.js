// The staff console's only script: the passkey ceremonies of enrolment and
// sign-in, and the copy buttons. Everything else is plain forms.
"use strict";

const b64 = {
  toBuf(s) {
    const pad = "=".repeat((4 - (s.length % 4)) % 4);
    const bin = atob(s.replace(/-/g, "+").replace(/_/g, "/") + pad);
    return Uint8Array.from(bin, (c) => c.charCodeAt(0)).buffer;
  },
  fromBuf(buf) {
    let bin = "";
    for (const b of new Uint8Array(buf)) bin += String.fromCharCode(b);
    return btoa(bin).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  },
};

function creationOptions(o) {
  const pk = structuredClone(o.publicKey);
  pk.challenge = b64.toBuf(pk.challenge);
  pk.user.id = b64.toBuf(pk.user.id);
  (pk.excludeCredentials || []).forEach((c) => { c.id = b64.toBuf(c.id); });
  return { publicKey: pk };
}

function requestOptions(o) {
  const pk = structuredClone(o.publicKey);
  pk.challenge = b64.toBuf(pk.challenge);
  (pk.allowCredentials || []).forEach((c) => { c.id = b64.toBuf(c.id); });
  return { publicKey: pk };
}

function credentialJson(c) {
  const r = c.response;
  const response = { clientDataJSON: b64.fromBuf(r.clientDataJSON) };
  if (r.attestationObject) {
    response.attestationObject = b64.fromBuf(r.attestationObject);
    if (r.getTransports) response.transports = r.getTransports();
  } else {
    response.authenticatorData = b64.fromBuf(r.authenticatorData);
    response.signature = b64.fromBuf(r.signature);
    if (r.userHandle) response.userHandle = b64.fromBuf(r.userHandle);
  }
  return { id: c.id, rawId: b64.fromBuf(c.rawId), type: c.type, authenticatorAttachment: c.authenticatorAttachment, clientExtensionResults: c.getClientExtensionResults(), response };
}

async function post(url, body) {
  const res = await fetch(url, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body || {}), credentials: "same-origin" });
  const json = await res.json().catch(() => ({}));
  if (!res.ok) {
    const e = json.error || {};
    throw new Error(`${e.message_ja || "失敗しました。"} / ${e.message || "Failed."} (${e.code || res.status})`);
  }
  return json;
}

function say(text, bad) {
  const m = document.getElementById("message");
  if (!m) return;
  m.textContent = text;
  m.className = bad ? "error" : "";
}

async function enrol(button) {
  const base = `/console/enrol/${encodeURIComponent(button.dataset.link)}`;
  const { ceremony_id, options } = await post(`${base}/options`);
  const credential = await navigator.credentials.create(creationOptions(options));
  const done = await post(`${base}/finish`, { ceremony_id, credential: credentialJson(credential) });
  location.assign(done.redirect);
}

async function signIn() {
  const { ceremony_id, options } = await post("/console/sign-in/options");
  const credential = await navigator.credentials.get(requestOptions(options));
  const done = await post("/console/sign-in/finish", { ceremony_id, credential: credentialJson(credential) });
  location.assign(done.redirect);
}

document.addEventListener("click", async (event) => {
  const button = event.target.closest("button[data-action], button[data-copy]");
  if (!button) return;
  if (button.dataset.copy) {
    const text = document.getElementById(button.dataset.copy)?.textContent || "";
    try { await navigator.clipboard.writeText(text); button.textContent = "コピーしました / Copied"; } catch { /* the text stays selectable */ }
    return;
  }
  button.disabled = true;
  say("パスキーを確認しています… / Waiting for the passkey…");
  try {
    if (button.dataset.action === "enrol") await enrol(button);
    else await signIn();
  } catch (e) {
    say(e.name === "NotAllowedError" ? "キャンセルされたか、時間切れです。もう一度お試しください。 / Cancelled or timed out; try again." : e.message, true);
    button.disabled = false;
  }
});
