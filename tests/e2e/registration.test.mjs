// Seed 000's registration and passkey login through the demo pages, in
// headless Chromium with a DevTools virtual authenticator (a PC platform
// authenticator: transport "internal"). Proves that the options the ledger
// sends and the JSON it accepts are what a real browser uses.
//
// Needs: the `ledger` binary (LEDGER_BIN, default ../../target/debug/ledger)
// and Chromium (CHROMIUM, default /usr/bin/chromium).

import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn, execFileSync } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import net from "node:net";
import { chromium } from "playwright-core";

const LEDGER = resolve(process.env.LEDGER_BIN ?? "../../target/debug/ledger");
const CHROMIUM = process.env.CHROMIUM ?? "/usr/bin/chromium";

function freePort() {
  return new Promise((ok) => {
    const s = net.createServer();
    s.listen(0, "127.0.0.1", () => { const p = s.address().port; s.close(() => ok(p)); });
  });
}

function ledgerEnv(dataDir, port) {
  return { ...process.env, LEDGER_DATA_DIR: dataDir, LEDGER_BIND: `127.0.0.1:${port}`, LEDGER_ORIGIN: `http://localhost:${port}`, DATABASE_URL: "", RUST_LOG: "warn" };
}

async function startLedger(dataDir, port) {
  const child = spawn(LEDGER, ["serve"], { env: ledgerEnv(dataDir, port), stdio: ["ignore", "pipe", "inherit"] });
  for (let i = 0; i < 100; i++) {
    try { if ((await fetch(`http://127.0.0.1:${port}/healthz`)).ok) return child; } catch { /* not yet */ }
    await new Promise((r) => setTimeout(r, 100));
  }
  child.kill();
  throw new Error("ledger did not start");
}

function stop(child) {
  return new Promise((ok) => { child.once("exit", ok); child.kill("SIGINT"); });
}

// The newest .eml in the outbox, quoted-printable decoded; the code is the
// line of six digits.
function latestCode(outbox) {
  const files = readdirSync(outbox).filter((f) => f.endsWith(".eml"))
    .map((f) => join(outbox, f)).sort((a, b) => statSync(b).mtimeMs - statSync(a).mtimeMs);
  assert.ok(files.length > 0, "a code e-mail was written");
  const raw = readFileSync(files[0], "latin1").replace(/=\r?\n/g, "");
  const decoded = Buffer.from(raw.replace(/=([0-9A-F]{2})/g, (_, h) => String.fromCharCode(parseInt(h, 16))), "latin1").toString("utf8");
  const line = decoded.split(/\r?\n/).map((l) => l.trim()).find((l) => /^\d{6}$/.test(l));
  assert.ok(line, "the e-mail holds a six-digit code");
  return line;
}

async function virtualAuthenticator(page) {
  const cdp = await page.context().newCDPSession(page);
  await cdp.send("WebAuthn.enable");
  const { authenticatorId } = await cdp.send("WebAuthn.addVirtualAuthenticator", {
    options: { protocol: "ctap2", transport: "internal", hasResidentKey: true, hasUserVerification: true, isUserVerified: true, automaticPresenceSimulation: true },
  });
  return { cdp, authenticatorId };
}

test("a customer registers a passkey through the demo page and logs in with it, also after a restart", { timeout: 120_000 }, async () => {
  const dataDir = mkdtempSync(join(tmpdir(), "ledger-e2e-"));
  const port = await freePort();
  const origin = `http://localhost:${port}`;
  execFileSync(LEDGER, ["demo-seed"], { env: ledgerEnv(dataDir, port), stdio: "ignore" });
  let ledger = await startLedger(dataDir, port);
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
  try {
    const page = await browser.newPage({ userAgent: "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/148.0.0.0 Safari/537.36" });
    const { cdp, authenticatorId } = await virtualAuthenticator(page);
    await page.goto(origin + "/");

    await page.fill("#login-id", "demo-001");
    await page.click("#to-password");
    await page.fill("#password", "demo-password");
    await page.click("#to-otp");
    await page.waitForSelector("#step-otp:not([hidden])");
    await page.fill("#otp", latestCode(join(dataDir, "outbox")));
    await page.click("#to-passkey");
    await page.waitForSelector("#step-passkey:not([hidden])");
    assert.equal(await page.inputValue("#passkey-name"), "Chrome 148.0.0 / Windows 10.0.0");
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
