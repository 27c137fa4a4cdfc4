// The reference front end as customers use it, in headless Chromium with
// DevTools virtual authenticators and a Japanese font: an iPhone-sized and a
// PC-sized window, screenshots of every step (tests/e2e/screenshots/), and
// axe-core on every screen (no serious or critical violation).
//   - seed 000's phone + PC: the PC signs in with the phone's passkey, makes
//     its own, logs in with it; the phone reads its security activity, sees
//     the PC's login in Japanese, reports it, and the PC is signed out;
//   - what customers meet: a cancelled passkey dialog, Enter, a double
//     click, Back, a code lock-out, deletion that asks first.

import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { createRequire } from "node:module";
import { IPHONE, WINDOWS, demoLedger, latestCode, virtualAuthenticator } from "./support.mjs";

const SHOTS = new URL("./screenshots/", import.meta.url).pathname;
const AXE = readFileSync(createRequire(import.meta.url).resolve("axe-core/axe.min.js"), "utf8");
let demo, dataDir, origin, browser;

before(async () => {
  mkdirSync(SHOTS, { recursive: true });
  demo = await demoLedger("ledger-e2e-customer-", { LEDGER_SUPPORT_PHONE: "0120-555-123" });
  ({ dataDir, origin, browser } = demo);
});

after(async () => { await demo?.close(); });

async function device(kind) {
  const phone = kind === "phone";
  const context = await browser.newContext(phone
    ? { userAgent: IPHONE, viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true, deviceScaleFactor: 2 }
    : { userAgent: WINDOWS, viewport: { width: 1280, height: 900 } });
  const page = await context.newPage();
  page.on("pageerror", (e) => assert.fail(`a script error on the page: ${e.message}`));
  await page.goto(origin + "/");
  return page;
}

/** axe-core on what the page shows now: no serious or critical violation. */
async function accessible(page, what) {
  const violations = await page.evaluate(async (source) => {
    if (!window.axe) (0, eval)(source);
    const r = await window.axe.run(document, { resultTypes: ["violations"] });
    return r.violations.filter((v) => v.impact === "serious" || v.impact === "critical")
      .map((v) => `${v.id} (${v.impact}): ${v.nodes.map((n) => n.target.join(" ")).join(", ")}`);
  }, AXE);
  assert.deepEqual(violations, [], `${what}: accessibility`);
}

async function step(page, name) {
  await accessible(page, name);
  await page.screenshot({ path: join(SHOTS, `customer-${name}.png`), fullPage: true });
}

async function focusedId(page) {
  return page.evaluate(() => document.activeElement && document.activeElement.id);
}

async function visibleScreen(page, id) {
  await page.waitForSelector(`#${id}:not([hidden])`, { timeout: 15_000 });
  assert.equal(await focusedId(page), await page.getAttribute(`#${id} h2`, "id"), `the focus is on ${id}'s heading`);
}

async function register(page, loginId, name) {
  await page.click("#start-registration");
  await visibleScreen(page, "step-login-id");
  await step(page, `${name}-1-login-id`);
  await page.fill("#login-id", loginId);
  await page.press("#login-id", "Enter");
  await visibleScreen(page, "step-password");
  await step(page, `${name}-2-password`);
  await page.fill("#password", "demo-password");
  await page.press("#password", "Enter");
  await visibleScreen(page, "step-otp");
  await step(page, `${name}-3-code`);
  await page.fill("#otp", latestCode(join(dataDir, "outbox"), `${loginId}@example.jp`));
  await page.click("#to-passkey");
  await visibleScreen(page, "step-passkey");
  await step(page, `${name}-4-passkey-name`);
  await page.click("#create-passkey");
  await visibleScreen(page, "status");
  await page.waitForSelector("#passkeys li.passkey");
}

async function errorText(page) {
  await page.waitForSelector("#error:not([hidden])", { timeout: 15_000 });
  const text = await page.textContent("#error");
  assert.doesNotMatch(text, /https?:|www\.|\[|[a-z]+_[a-z]+|Error\b/, `words, not codes or links: ${text}`);
  return text;
}

describe("the customer's side", () => {
  test("a phone reports the PC's login it did not make, and the PC is signed out", { timeout: 180_000 }, async () => {
    const phone = await device("phone");
    const phoneAuth = await virtualAuthenticator(phone);
    await visibleScreen(phone, "login").catch(() => {});
    await step(phone, "phone-0-start");
    await register(phone, "demo-011", "phone");
    assert.equal(await phone.inputValue("#login-id"), "", "the account number does not stay on the page");
    await step(phone, "phone-5-signed-in");

    // The PC has no passkey: the QR code reaches the phone over hybrid.
    const { credentials } = await phoneAuth.cdp.send("WebAuthn.getCredentials", { authenticatorId: phoneAuth.authenticatorId });
    const pc = await device("pc");
    const hybrid = await virtualAuthenticator(pc, { transport: "cable" });
    await hybrid.cdp.send("WebAuthn.addCredential", { authenticatorId: hybrid.authenticatorId, credential: credentials[0] });
    await pc.click("#passkey-login");
    await visibleScreen(pc, "local-offer");
    await step(pc, "pc-1-local-offer");
    await hybrid.cdp.send("WebAuthn.removeVirtualAuthenticator", { authenticatorId: hybrid.authenticatorId });
    await virtualAuthenticator(pc);
    await pc.click("#create-local");
    await visibleScreen(pc, "status");
    await pc.click("#logout");
    await visibleScreen(pc, "login");
    await pc.click("#passkey-login");
    await visibleScreen(pc, "status");
    await step(pc, "pc-2-signed-in");

    // The phone (reloaded: still signed in) reads its activity.
    await phone.reload();
    await phone.waitForSelector("#status:not([hidden]) #activity li");
    const pcLogin = phone.locator("#activity li.login", { hasText: "Windows のパソコン（Chrome）" }).first();
    assert.match(await pcLogin.textContent(), /パスキーでログインしました（Windows のパソコン（Chrome））/);
    assert.match(await pcLogin.textContent(), /日本時間/);
    assert.match(await phone.textContent("#sessions"), /Windows のパソコン（Chrome）/);
    assert.match(await phone.textContent("#sessions"), /iPhone（Safari）（この端末/);
    await step(phone, "phone-6-activity");
    // The channel was told from the device: the phone's session is the smartphone site's.
    const sessions = await phone.evaluate(async () => (await (await fetch("/api/v1/me/sessions", { headers: { Authorization: "Bearer " + sessionStorage.getItem("ledger-session") } })).json()).items);
    assert.deepEqual(sessions.map((s) => [s.current, s.channel]).sort(), [[false, "web"], [true, "mobile_web"]]);

    await pcLogin.locator("button.report").click();
    await visibleScreen(phone, "confirm");
    await step(phone, "phone-7-report-confirm");
    await phone.fill("#confirm-input", "この時間は寝ていました");
    await phone.click("#confirm-yes");
    await phone.waitForFunction(() => document.getElementById("message").textContent.includes("ご報告を受け付けました"), null, { timeout: 15_000 });
    await visibleScreen(phone, "status").catch(() => {});
    assert.equal(await phone.isHidden("#end-others"), true, "no other device is signed in");
    await step(phone, "phone-8-reported");

    // The PC is signed out, and its passkey is gone.
    await pc.reload();
    await visibleScreen(pc, "login").catch(() => {});
    assert.match(await errorText(pc), /もう一度ログインしてください/);
    await pc.click("#passkey-login");
    assert.match(await errorText(pc), /このパスキーは削除されています/);
    await step(pc, "pc-3-signed-out");
  });

  test("what customers meet: a cancelled dialog, Enter, a double click, Back, a lock-out, deletion that asks first", { timeout: 180_000 }, async () => {
    for (const kind of ["pc", "phone"]) {
      const page = await device(kind);
      const loginId = kind === "pc" ? "demo-012" : "demo-013";
      // No passkey on the device: the browser's dialog ends without one.
      const empty = await virtualAuthenticator(page);
      await page.click("#passkey-login");
      const said = await errorText(page);
      assert.match(said, /キャンセルされたか、時間切れ/);
      await step(page, `${kind}-meet-1-cancelled`);
      await empty.cdp.send("WebAuthn.removeVirtualAuthenticator", { authenticatorId: empty.authenticatorId });

      // Back from the password step; a double click on Next is harmless.
      await page.click("#start-registration");
      await page.fill("#login-id", loginId);
      await page.click("#to-password");
      await visibleScreen(page, "step-password");
      await step(page, `${kind}-meet-2a-password`);
      await page.click("#step-password button.back");
      await visibleScreen(page, "step-login-id");
      await step(page, `${kind}-meet-2b-back-to-login-id`);
      assert.equal(await page.inputValue("#login-id"), loginId);
      await page.dblclick("#to-password");
      await visibleScreen(page, "step-password");
      await page.fill("#password", "demo-password");
      await page.dblclick("#to-otp");
      await visibleScreen(page, "step-otp");
      assert.equal(await page.isHidden("#error"), true, "a double click shows no refusal");
      assert.equal(await page.inputValue("#password"), "", "the password does not stay on the page");

      // Wrong codes until the lock-out: a way to start over.
      let lockout = "";
      for (let i = 0; i < 6 && !lockout.includes("最初から"); i++) {
        await page.fill("#otp", "000000");
        await page.press("#otp", "Enter");
        lockout = await errorText(page);
      }
      assert.match(lockout, /最初からやり直してください/);
      await step(page, `${kind}-meet-2-lockout`);
      await page.click("#error button");
      await visibleScreen(page, "step-login-id");

      // A passkey, then its deletion asks first.
      await virtualAuthenticator(page);
      await page.fill("#login-id", loginId);
      await page.press("#login-id", "Enter");
      await visibleScreen(page, "step-password");
      await page.fill("#password", "demo-password");
      await page.press("#password", "Enter");
      await visibleScreen(page, "step-otp");
      assert.equal(await page.inputValue("#otp"), "", "the old code does not stay on the page");
      await page.fill("#otp", latestCode(join(dataDir, "outbox"), `${loginId}@example.jp`));
      await page.press("#otp", "Enter");
      await visibleScreen(page, "step-passkey");
      await step(page, `${kind}-meet-2c-passkey-name`);
      assert.equal(await page.inputValue("#passkey-name"), kind === "pc" ? "Windows のパソコン（Chrome）" : "iPhone（Safari）");
      await page.press("#passkey-name", "Enter");
      await visibleScreen(page, "status");
      await step(page, `${kind}-meet-3-status`);
      const del = page.locator("#passkeys li.passkey button.delete-one");
      assert.match(await del.textContent(), /削除… \/ Delete…：パスキー「.+」/, "the button names the passkey it deletes");
      await del.click();
      await visibleScreen(page, "confirm");
      await step(page, `${kind}-meet-4-delete-confirm`);
      await page.click("#confirm-yes");
      assert.match(await errorText(page), /入力してください/, "an empty trading password is not sent");
      await page.click("#confirm-no");
      await visibleScreen(page, "status");
      assert.equal(await page.locator("#passkeys li.passkey").count(), 1, "nothing deleted without the confirmation");
      await del.click();
      await page.fill("#confirm-input", "wrong-trading");
      await page.press("#confirm-input", "Enter");
      assert.match(await errorText(page), /執行パスワードが正しくありません。お忘れの場合はサポートデスク（0120-555-123）/);
      await page.click("#confirm-no");
      await del.click();
      assert.equal(await page.inputValue("#confirm-input"), "", "the trading password does not stay on the page");
      await page.fill("#confirm-input", "demo-trading");
      await page.click("#confirm-yes");
      await page.waitForFunction(() => document.getElementById("message").textContent.includes("パスキーを1件削除しました"), null, { timeout: 15_000 });
      await page.waitForSelector("#register-here:not([hidden])");
      assert.equal(await page.isHidden("#delete-controls"), true, "no \"delete all\" with no passkey");
      await step(page, `${kind}-meet-5-deleted`);

      await page.click("#open-help-home");
      await visibleScreen(page, "help");
      assert.match(await page.textContent("#help"), /機種変更した場合[\s\S]*0120-555-123/);
      await step(page, `${kind}-meet-6-help`);
      await page.context().close();
    }
  });
});
