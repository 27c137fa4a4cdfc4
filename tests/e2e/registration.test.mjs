// Seed 000's registration and passkey login through the demo pages, in
// headless Chromium with a DevTools virtual authenticator (a PC platform
// authenticator: transport "internal"). Proves that the options the ledger
// sends and the JSON it accepts are what a real browser uses.
//
// Needs: the `ledger` binary (LEDGER_BIN, default ../../target/debug/ledger)
// and Chromium (CHROMIUM, default /usr/bin/chromium).

import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium } from "playwright-core";
import { BROWSER_ARGS, CHROMIUM, LEDGER, freePort, latestCode, ledgerEnv, startLedger, stop, virtualAuthenticator } from "./support.mjs";

test("a customer registers a passkey through the demo page and logs in with it, also after a restart", { timeout: 120_000 }, async () => {
  const dataDir = mkdtempSync(join(tmpdir(), "ledger-e2e-"));
  const port = await freePort();
  const origin = `http://localhost:${port}`;
  execFileSync(LEDGER, ["demo-seed"], { env: ledgerEnv(dataDir, port), stdio: "ignore" });
  let ledger = await startLedger(dataDir, port);
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: BROWSER_ARGS,
  });
  try {
    const page = await browser.newPage({ userAgent: "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/148.0.0.0 Safari/537.36" });
    const { cdp, authenticatorId } = await virtualAuthenticator(page);
    await page.goto(origin + "/");

    await page.click("#start-registration");
    await page.fill("#login-id", "demo-001");
    await page.click("#to-password");
    await page.fill("#password", "demo-password");
    await page.click("#to-otp");
    await page.waitForSelector("#step-otp:not([hidden])");
    await page.fill("#otp", latestCode(join(dataDir, "outbox")));
    await page.click("#to-passkey");
    await page.waitForSelector("#step-passkey:not([hidden])");
    assert.equal(await page.inputValue("#passkey-name"), "Windows のパソコン（Chrome）", "named as people name the device");
    await page.fill("#passkey-name", "自宅のパソコン");
    await page.click("#create-passkey");
    await page.waitForSelector("#status:not([hidden]) li.passkey", { timeout: 15_000 });
    assert.match(await page.textContent("#passkeys"), /自宅のパソコン/);
    const { credentials } = await cdp.send("WebAuthn.getCredentials", { authenticatorId });
    assert.equal(credentials.length, 1);
    assert.equal(credentials[0].isResidentCredential, true, "a discoverable credential was created");

    // Password login is now refused on every channel.
    for (const channel of ["web", "mobile_web", "mobile_app", "desktop_app"]) {
      const res = await page.evaluate(async (channel) => {
        const r = await fetch("/api/v1/sessions/password", { method: "POST", headers: { "Content-Type": "application/json", "X-Channel": channel }, body: JSON.stringify({ login_id: "demo-001", password: "demo-password" }) });
        return { status: r.status, body: await r.json() };
      }, channel);
      assert.equal(res.status, 403);
      assert.equal(res.body.error.code, "passkey_required");
    }

    await page.click("#logout");
    await stop(ledger);
    ledger = await startLedger(dataDir, port);

    await page.click("#passkey-login");
    await page.waitForSelector("#status:not([hidden]) li.passkey", { timeout: 15_000 });
    assert.match(await page.textContent("#message"), /ログインしました/);
  } finally {
    await browser.close();
    await stop(ledger);
  }
});
