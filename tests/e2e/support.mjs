// Shared by the end-to-end tests: the ledger binary on a free port over a
// fresh data folder, the outbox, Chromium with DevTools virtual authenticators.

import assert from "node:assert/strict";
import { execFileSync, spawn } from "node:child_process";
import { createServer } from "node:http";
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import net from "node:net";
import { chromium } from "playwright-core";

export const LEDGER = resolve(process.env.LEDGER_BIN ?? "../../target/debug/ledger");
export const CHROMIUM = process.env.CHROMIUM ?? "/usr/bin/chromium";

export function freePort() {
  return new Promise((ok) => {
    const s = net.createServer();
    s.listen(0, "127.0.0.1", () => { const p = s.address().port; s.close(() => ok(p)); });
  });
}

export function ledgerEnv(dataDir, port) {
  return { ...process.env, LEDGER_DATA_DIR: dataDir, LEDGER_BIND: `127.0.0.1:${port}`, LEDGER_ORIGIN: `http://localhost:${port}`, DATABASE_URL: "", RUST_LOG: "warn" };
}

export async function startLedger(dataDir, port, extraEnv = {}) {
  const child = spawn(LEDGER, ["serve"], { env: { ...ledgerEnv(dataDir, port), ...extraEnv }, stdio: ["ignore", "pipe", "inherit"] });
  for (let i = 0; i < 100; i++) {
    try { if ((await fetch(`http://127.0.0.1:${port}/healthz`)).ok) return child; } catch { /* not yet */ }
    await new Promise((r) => setTimeout(r, 100));
  }
  child.kill();
  throw new Error("ledger did not start");
}

export function stop(child) {
  return new Promise((ok) => { child.once("exit", ok); child.kill("SIGINT"); });
}

// The newest .eml in the outbox, quoted-printable decoded; the code is the
// line of six digits.
export function latestCode(outbox, to) {
  const files = readdirSync(outbox).filter((f) => f.endsWith(".eml"))
    .map((f) => join(outbox, f)).sort((a, b) => statSync(b).mtimeMs - statSync(a).mtimeMs);
  for (const file of files) {
    const raw = readFileSync(file, "latin1").replace(/=\r?\n/g, "");
    if (to && !raw.includes(to)) continue;
    const decoded = Buffer.from(raw.replace(/=([0-9A-F]{2})/g, (_, h) => String.fromCharCode(parseInt(h, 16))), "latin1").toString("utf8");
    const line = decoded.split(/\r?\n/).map((l) => l.trim()).find((l) => /^\d{6}$/.test(l));
    if (line) return line;
  }
  assert.fail(`no code e-mail${to ? " to " + to : ""} in ${outbox}`);
}

export async function virtualAuthenticator(page, options = {}) {
  const cdp = await page.context().newCDPSession(page);
  await cdp.send("WebAuthn.enable");
  const { authenticatorId } = await cdp.send("WebAuthn.addVirtualAuthenticator", {
    options: { protocol: "ctap2", transport: "internal", hasResidentKey: true, hasUserVerification: true, isUserVerified: true, automaticPresenceSimulation: true, ...options },
  });
  return { cdp, authenticatorId };
}

export const IPHONE = "Mozilla/5.0 (iPhone; CPU iPhone OS 18_6_2 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.6 Mobile/15E148 Safari/604.1";
export const WINDOWS = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/148.0.0.0 Safari/537.36";

/** What a customer-page test starts from: the demo accounts on a fresh
 * ledger (`extraEnv` added to its settings), and Chromium. */
export async function demoLedger(prefix, extraEnv = {}) {
  const dataDir = mkdtempSync(join(tmpdir(), prefix));
  const port = await freePort();
  execFileSync(LEDGER, ["demo-seed"], { env: ledgerEnv(dataDir, port), stdio: "ignore" });
  const ledger = await startLedger(dataDir, port, extraEnv);
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: BROWSER_ARGS });
  return {
    dataDir, port, origin: `http://localhost:${port}`, browser,
    async close() { await browser.close(); await stop(ledger); },
  };
}

export const BROWSER_ARGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"];

const TSA_CONFIG = readFileSync(new URL("../fixtures/tsa.cnf", import.meta.url), "utf8");

/** An RFC 3161 time-stamp authority on loopback: `openssl ts -reply`
 * behind a small HTTP server, with a root CA made for the test. */
export async function startTsa(dir) {
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, "tsa.cnf"), TSA_CONFIG);
  writeFileSync(join(dir, "serial"), "01\n");
  const openssl = (args, input) => execFileSync("openssl", args, { cwd: dir, stdio: ["pipe", "pipe", "ignore"], input });
  openssl(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.crt", "-subj", "/CN=Test Root CA", "-days", "30"]);
  openssl(["req", "-newkey", "rsa:2048", "-nodes", "-keyout", "tsa.key", "-out", "tsa.csr", "-subj", "/CN=Test TSA"]);
  openssl(["x509", "-req", "-in", "tsa.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial", "-out", "tsa.crt", "-days", "30", "-extfile", "tsa.cnf", "-extensions", "tsa_ext"]);
  let n = 0;
  const server = createServer((req, res) => {
    const chunks = [];
    req.on("data", (c) => chunks.push(c));
    req.on("end", () => {
      const query = `query-${++n}.tsq`;
      writeFileSync(join(dir, query), Buffer.concat(chunks));
      openssl(["ts", "-reply", "-queryfile", query, "-signer", "tsa.crt", "-inkey", "tsa.key", "-config", "tsa.cnf", "-out", `reply-${n}.tsr`]);
      res.writeHead(200, { "content-type": "application/timestamp-reply" }).end(readFileSync(join(dir, `reply-${n}.tsr`)));
    });
  });
  const port = await freePort();
  await new Promise((ok) => server.listen(port, "127.0.0.1", ok));
  const caFile = join(dir, "ca.crt");
  return {
    url: `http://127.0.0.1:${port}/`,
    caFile,
    /** `openssl ts -verify` of a token over `data`: its output, or a throw. */
    verify(data, token) {
      writeFileSync(join(dir, "data"), data);
      writeFileSync(join(dir, "token.tsr"), token);
      return openssl(["ts", "-verify", "-data", "data", "-in", "token.tsr", "-CAfile", "ca.crt", "-untrusted", "tsa.crt"]).toString();
    },
    close: () => new Promise((ok) => server.close(ok)),
  };
}
