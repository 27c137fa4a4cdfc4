// Seed 000's four customer types, end to end through the demo page in
// headless Chromium with DevTools virtual authenticators, plus deletion by
// the customer and by support:
//   1. phone only                       (an iPhone: transport "internal")
//   2. PC only                          (Windows Hello: "internal")
//   3. phone + PC with Bluetooth        (the PC reaches the phone's passkey
//      over hybrid: an authenticator with transport "cable" holding the
//      phone's credential), then a local passkey on the PC
//   4. phone + PC without Bluetooth     (a synced passkey in Google Password
//      Manager: the phone's credential, backed up, on the PC's platform
//      authenticator)

import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { IPHONE, LEDGER, WINDOWS, demoLedger, latestCode, ledgerEnv, virtualAuthenticator } from "./support.mjs";

// Screenshots to look at: tests/e2e/screenshots/.
const SHOTS = new URL("./screenshots/", import.meta.url).pathname;

let demo, dataDir, port, origin, browser;

before(async () => {
  demo = await demoLedger("ledger-e2e-types-");
  ({ dataDir, port, origin, browser } = demo);
});

after(async () => { await demo?.close(); });

/** A device: its own browser context (cookies, User-Agent) and page. */
async function device(kind) {
  const phone = kind === "phone";
  const context = await browser.newContext({ userAgent: phone ? IPHONE : WINDOWS, viewport: phone ? { width: 390, height: 844 } : undefined });
  const page = await context.newPage();
  await page.goto(origin + (phone ? "/?channel=mobile_web" : "/"));
  return page;
}

async function registerThroughPage(page, loginId) {
  await page.click("#start-registration");
  await page.fill("#login-id", loginId);
  await page.click("#to-password");
  await page.fill("#password", "demo-password");
  await page.click("#to-otp");
  await page.waitForSelector("#step-otp:not([hidden])");
  await page.fill("#otp", latestCode(join(dataDir, "outbox"), `${loginId}@example.jp`));
  await page.click("#to-passkey");
  await page.waitForSelector("#step-passkey:not([hidden])");
  await page.click("#create-passkey");
  await page.waitForSelector("#status:not([hidden]) li.passkey", { timeout: 15_000 });
}

/** A passkey login: what the page says, a success or a refusal. */
async function passkeyLogin(page) {
  await page.click("#passkey-login");
  await page.waitForFunction(() => document.getElementById("message").textContent !== "" || !document.getElementById("error").hidden, null, { timeout: 15_000 });
  return (await page.textContent("#message")) + (await page.isHidden("#error") ? "" : await page.textContent("#error"));
}

/** Deletes every passkey: the confirmation step asks for the trading password. */
async function deleteAll(page, tradingPassword) {
  await page.click("#delete-all");
  await page.waitForSelector("#confirm:not([hidden])");
  await page.fill("#confirm-input", tradingPassword);
  await page.click("#confirm-yes");
}

async function logout(page) {
  await page.click("#logout");
  await page.waitForSelector("#status[hidden]", { state: "attached" });
  await page.evaluate(() => { document.getElementById("message").textContent = ""; });
}

/** The staff view of an account, through the support desk API. */
function staffToken(role) {
  const out = execFileSync(LEDGER, ["staff", "add", "--name", `E2E ${role}`, "--role", role, "--token"], { env: ledgerEnv(dataDir, port) }).toString();
  return out.trim().split("\n").pop().trim();
}

async function staffGet(token, path) {
  const res = await fetch(origin + path, { headers: { Authorization: `Bearer ${token}` } });
  assert.equal(res.status, 200, path);
  return res.json();
}

async function accountOf(token, loginId) {
  const found = await staffGet(token, `/api/v1/staff/accounts?q=${loginId}`);
  return found.accounts.find((a) => a.login_id === loginId).account_id;
}

async function history(token, accountId) {
  return (await staffGet(token, `/api/v1/staff/accounts/${accountId}/history?limit=200`)).events;
}

describe("seed 000 customer types", () => {
  let support;
  before(() => { support = staffToken("support"); });

  test("1: phone only — register and log in on the phone; support deletes the passkey when the phone is lost", { timeout: 120_000 }, async () => {
    const phone = await device("phone");
    await virtualAuthenticator(phone);
    await registerThroughPage(phone, "demo-006");
    await logout(phone);
    assert.match(await passkeyLogin(phone), /ログインしました/);
    const id = await accountOf(support, "demo-006");
    const view = await staffGet(support, `/api/v1/staff/accounts/${id}`);
    assert.equal(view.passkeys[0].registered_channel, "mobile_web");
    assert.equal(view.passkeys[0].environment_recommended, true, `iOS 18.6.2 is recommended: ${view.passkeys[0].registered_environment}`);
    await logout(phone);

    // The phone is lost: the customer calls support.
    const res = await fetch(`${origin}/api/v1/staff/accounts/${id}/passkeys/revoke`, {
      method: "POST", headers: { Authorization: `Bearer ${support}`, "Content-Type": "application/json" }, body: JSON.stringify({ reason: "device_lost" }),
    });
    assert.deepEqual(await res.json(), { deleted: 1 });
    assert.match(await passkeyLogin(phone), /このパスキーは削除されています/);
    const lines = (await history(support, id)).map((e) => e.line.en);
    assert.ok(lines.some((l) => l.includes("Support (E2E support) deleted passkey(s)") && l.includes("the device was lost")), lines.join("\n"));
    assert.ok(lines.some((l) => l.includes("Passkey login failed: the passkey was deleted from the account.")), lines.join("\n"));
  });

  test("2: PC only — Windows Hello; the customer deletes the passkey with the trading password", { timeout: 120_000 }, async () => {
    const pc = await device("pc");
    await virtualAuthenticator(pc);
    await registerThroughPage(pc, "demo-007");
    await logout(pc);
    assert.match(await passkeyLogin(pc), /ログインしました/);
    await deleteAll(pc, "wrong-trading");
    await pc.waitForFunction(() => document.getElementById("error").textContent.includes("執行パスワードが正しくありません"));
    await pc.click("#confirm-no");
    await deleteAll(pc, "demo-trading");
    await pc.waitForFunction(() => document.getElementById("message").textContent.includes("パスキーを1件削除しました"));
    assert.match(await pc.textContent("#passkeys"), /パスキーは登録されていません/);
    await logout(pc);
    assert.match(await passkeyLogin(pc), /このパスキーは削除されています/, "the passkey stays on the PC but is revoked");
    const types = (await history(support, await accountOf(support, "demo-007"))).map((e) => e.type);
    assert.ok(types.includes("TradingPasswordRejected") && types.includes("PasskeysRevoked"));
  });

  test("after deleting every passkey, the status screen registers a new one with the trading password (seed 000)", { timeout: 120_000 }, async () => {
    const pc = await device("pc");
    await virtualAuthenticator(pc);
    await registerThroughPage(pc, "demo-010");
    await deleteAll(pc, "demo-trading");
    await pc.waitForSelector("#register-here:not([hidden])");
    assert.match(await pc.textContent("#register-here"), /現在、パスキーが登録されていません/);
    assert.equal(await pc.isVisible("#register-trading-password"), true);
    mkdirSync(SHOTS, { recursive: true });
    await pc.screenshot({ path: join(SHOTS, "status-no-passkey.png"), fullPage: true });
    await pc.fill("#register-trading-password", "wrong-trading");
    await pc.click("#register-from-status");
    await pc.waitForFunction(() => document.getElementById("error").textContent.includes("執行パスワードが正しくありません"));
    await pc.fill("#register-trading-password", "demo-trading");
    await pc.click("#register-from-status");
    await pc.waitForFunction(() => document.getElementById("message").textContent.includes("パスキーを登録しました"));
    await pc.waitForSelector("#status li.passkey");
    assert.equal(await pc.isHidden("#register-here"), true);
    await pc.screenshot({ path: join(SHOTS, "status-registered-again.png"), fullPage: true });
    await logout(pc);
    assert.match(await passkeyLogin(pc), /ログインしました/);
    const events = await history(support, await accountOf(support, "demo-010"));
    const registered = events.filter((e) => e.type === "PasskeyRegistered");
    assert.equal(registered.length, 2, "the first registration and the one from the status screen");
  });

  test("3: phone + PC with Bluetooth — cross-device sign-in, then a local passkey on the PC", { timeout: 120_000 }, async () => {
    const phone = await device("phone");
    const phoneAuth = await virtualAuthenticator(phone);
    await registerThroughPage(phone, "demo-008");
    const { credentials } = await phoneAuth.cdp.send("WebAuthn.getCredentials", { authenticatorId: phoneAuth.authenticatorId });
    assert.equal(credentials.length, 1);

    // The PC has no passkey: the QR code reaches the phone over hybrid.
    const pc = await device("pc");
    const hybrid = await virtualAuthenticator(pc, { transport: "cable" });
    await hybrid.cdp.send("WebAuthn.addCredential", { authenticatorId: hybrid.authenticatorId, credential: credentials[0] });
    assert.match(await passkeyLogin(pc), /スマートフォンでログインしました/);
    await pc.waitForSelector("#local-offer:not([hidden])");

    // "Create a new passkey" on the PC (Windows Hello); the phone is put away.
    await hybrid.cdp.send("WebAuthn.removeVirtualAuthenticator", { authenticatorId: hybrid.authenticatorId });
    const hello = await virtualAuthenticator(pc);
    await pc.click("#create-local");
    await pc.waitForFunction(() => document.getElementById("message").textContent.includes("この端末にパスキーを作成しました"), null, { timeout: 15_000 });
    assert.equal((await pc.$$("li.passkey")).length, 2);
    const local = await hello.cdp.send("WebAuthn.getCredentials", { authenticatorId: hello.authenticatorId });
    assert.equal(local.credentials.length, 1, "the local passkey lives on the PC");

    // Next time the PC logs in by itself.
    await logout(pc);
    assert.match(await passkeyLogin(pc), /^ログインしました/);

    const id = await accountOf(support, "demo-008");
    const events = await history(support, id);
    const crossDevice = events.find((e) => e.type === "CrossDeviceSignInSucceeded");
    assert.ok(crossDevice, "the cross-device sign-in is its own event");
    assert.equal(crossDevice.event.CrossDeviceSignInSucceeded.assertion.authenticator_attachment, "cross-platform");
    assert.equal(crossDevice.event.CrossDeviceSignInSucceeded.environment.os, "Windows");
    const added = events.find((e) => e.type === "LocalPasskeyAdded");
    assert.equal(added.event.LocalPasskeyAdded.cross_device_sign_in, crossDevice.event.CrossDeviceSignInSucceeded.sign_in_id);
    const view = await staffGet(support, `/api/v1/staff/accounts/${id}`);
    assert.deepEqual(view.passkeys.map((p) => p.added_via), ["first_registration", "local_after_cross_device"]);
  });

  test("4: phone + PC without Bluetooth — a synced passkey (Google Password Manager) signs in on the PC", { timeout: 120_000 }, async () => {
    const phone = await device("phone");
    const phoneAuth = await virtualAuthenticator(phone, { defaultBackupEligibility: true, defaultBackupState: true });
    await registerThroughPage(phone, "demo-009");
    const { credentials } = await phoneAuth.cdp.send("WebAuthn.getCredentials", { authenticatorId: phoneAuth.authenticatorId });

    // The same passkey, synced through the Google account, on the PC.
    const pc = await device("pc");
    const pcAuth = await virtualAuthenticator(pc, { defaultBackupEligibility: true, defaultBackupState: true });
    await pcAuth.cdp.send("WebAuthn.addCredential", {
      authenticatorId: pcAuth.authenticatorId, credential: { ...credentials[0], backupEligibility: true, backupState: true },
    });
    assert.match(await passkeyLogin(pc), /^ログインしました/);
    const id = await accountOf(support, "demo-009");
    const view = await staffGet(support, `/api/v1/staff/accounts/${id}`);
    assert.equal(view.passkeys.length, 1, "one passkey, used on two devices");
    assert.equal(view.passkeys[0].synced, true);
    assert.equal(view.passkeys[0].last_used_channel, "web");
    const events = await history(support, id);
    assert.ok(!events.some((e) => e.type === "CrossDeviceSignInSucceeded"), "not a cross-device sign-in");
    const login = events.find((e) => e.type === "PasskeyLoginSucceeded");
    assert.equal(login.event.PasskeyLoginSucceeded.new_environment, true, "the PC is a new environment for this account");
  });
});
