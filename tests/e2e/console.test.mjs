// The staff console in headless Chromium, each member with a DevTools
// virtual authenticator of their own: enrolment from the link that
// `ledger staff add` prints, sign-in, the job, sign-out, for each role; a
// support agent deletes a lost phone's passkey and the customer's next
// login is refused; a compliance officer filters, exports (the download is
// checked) and verifies; the role matrix; an idle session goes back to
// sign-in. Screenshots of every page go to tests/e2e/screenshots/console-*.png.

import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { createServer } from "node:http";
import { mkdirSync, mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium } from "playwright-core";
import { BROWSER_ARGS, CHROMIUM, LEDGER, freePort, latestCode, ledgerEnv, startLedger, startTsa, stop, virtualAuthenticator } from "./support.mjs";

const SHOTS = new URL("./screenshots/", import.meta.url).pathname;
const WINDOWS = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/148.0.0.0 Safari/537.36";
const IDLE_SECS = 4;
/** Webhook subscriptions may reach this machine (the test's receiver). */
const WEBHOOKS_INSIDE = { LEDGER_WEBHOOK_ALLOW_PRIVATE_NETWORKS: "1", LEDGER_WEBHOOK_RETRY_MAX_SECS: "2" };

/** `ledger webhooks add` as an operator runs it: the subscription's ID. */
function addWebhook(url) {
  const out = execFileSync(LEDGER, ["webhooks", "add", "--url", url], { env: { ...ledgerEnv(dataDir, port), ...WEBHOOKS_INSIDE } }).toString();
  const lines = out.trim().split("\n");
  assert.match(lines.at(-1), /^whsec_/, "the secret on the last line");
  return lines[0].match(/wh-[0-9a-f]+/)[0];
}

let dataDir, port, origin, ledger, browser, tsa;

before(async () => {
  mkdirSync(SHOTS, { recursive: true });
  dataDir = mkdtempSync(join(tmpdir(), "ledger-e2e-console-"));
  port = await freePort();
  origin = `http://localhost:${port}`;
  execFileSync(LEDGER, ["demo-seed"], { env: ledgerEnv(dataDir, port), stdio: "ignore" });
  // Checkpoints are timestamped by an RFC 3161 authority on loopback.
  tsa = await startTsa(join(dataDir, "tsa"));
  const stamped = { LEDGER_TSA_URL: tsa.url, LEDGER_TSA_CA_FILE: tsa.caFile };
  ledger = await startLedger(dataDir, port, { LEDGER_CONSOLE_IDLE_SECS: String(IDLE_SECS), ...WEBHOOKS_INSIDE, ...stamped });
  browser = await chromium.launch({ executablePath: CHROMIUM, args: BROWSER_ARGS });
});

after(async () => {
  await browser?.close();
  if (ledger) await stop(ledger);
  await tsa?.close();
});

/** `ledger staff add` as an operator runs it; the link on its last line. */
function addStaff(name, role) {
  const out = execFileSync(LEDGER, ["staff", "add", "--name", name, "--role", role], { env: ledgerEnv(dataDir, port) }).toString();
  const link = out.trim().split("\n").pop().trim();
  assert.match(link, /^http:\/\/localhost:\d+\/console\/enrol\/\S+$/);
  return link;
}

/** A staff member's browser with a platform authenticator of their own. */
async function staffBrowser() {
  const context = await browser.newContext({ userAgent: WINDOWS, acceptDownloads: true, viewport: { width: 1280, height: 900 } });
  const page = await context.newPage();
  await virtualAuthenticator(page);
  return page;
}

async function shot(page, name) {
  await page.screenshot({ path: join(SHOTS, `console-${name}.png`), fullPage: true });
}

async function enrol(page, link, name) {
  await page.goto(link);
  await shot(page, `enrol-${name}`);
  await page.getByRole("button", { name: /パスキーを登録/ }).click();
  await page.waitForURL(`${origin}/console`);
}

async function signOut(page) {
  await page.getByRole("button", { name: /サインアウト/ }).click();
  await page.waitForURL(`${origin}/console/sign-in`);
}

async function signIn(page) {
  await page.goto(`${origin}/console/sign-in`);
  await page.getByRole("button", { name: /パスキーでサインイン/ }).click();
  await page.waitForURL(`${origin}/console`);
}

describe("the staff console", () => {
  test("a support agent deletes a lost phone's passkey; the customer's next login is refused", { timeout: 120_000 }, async () => {
    // The customer registers a passkey on their phone through the demo page.
    const phoneContext = await browser.newContext({ userAgent: WINDOWS });
    const phone = await phoneContext.newPage();
    await virtualAuthenticator(phone);
    await phone.goto(origin + "/");
    await phone.click("#start-registration");
    await phone.fill("#login-id", "demo-001");
    await phone.click("#to-password");
    await phone.fill("#password", "demo-password");
    await phone.click("#to-otp");
    await phone.waitForSelector("#step-otp:not([hidden])");
    await phone.fill("#otp", latestCode(join(dataDir, "outbox")));
    await phone.click("#to-passkey");
    await phone.waitForSelector("#step-passkey:not([hidden])");
    await phone.fill("#passkey-name", "なくしたスマホ");
    await phone.click("#create-passkey");
    await phone.waitForSelector("#status:not([hidden]) li.passkey", { timeout: 15_000 });
    await phone.click("#logout");
    await phone.waitForSelector("#status[hidden]", { state: "attached" });
    await phone.evaluate(() => { document.getElementById("message").textContent = ""; });

    const page = await staffBrowser();
    await page.goto(`${origin}/console/accounts`);
    assert.equal(new URL(page.url()).pathname, "/console/sign-in", "no session: the sign-in");
    await shot(page, "sign-in");
    await enrol(page, addStaff("佐藤 サポート", "support"), "support");
    await shot(page, "home-support");
    await signOut(page);
    await signIn(page);

    await page.getByRole("link", { name: /口座検索/ }).first().click();
    await page.getByLabel(/ログインID/).fill("demo-001");
    await page.getByRole("button", { name: /検索/ }).click();
    await shot(page, "search");
    await page.getByRole("link", { name: "demo-001" }).click();
    await page.waitForSelector("li.passkey");
    assert.match(await page.textContent("ul.passkeys"), /なくしたスマホ/);
    await shot(page, "account");

    // Delete the passkey: a reason, then the confirmation.
    await page.getByLabel(/理由/).first().fill("スマートフォン紛失（お客様より電話）");
    await page.getByRole("button", { name: /このパスキーを削除/ }).click();
    await shot(page, "confirm");
    await page.getByRole("button", { name: /実行する/ }).click();
    await page.waitForSelector("p.done");
    assert.match(await page.textContent("p.done"), /パスキーを削除しました/);
    assert.match(await page.textContent("ul.passkeys"), /削除済み/);
    assert.match(await page.textContent("ol.timeline"), /スマートフォン紛失/);
    await shot(page, "account-after-delete");

    // The customer's next passkey login is refused.
    await phone.click("#passkey-login");
    await phone.waitForSelector("#error:not([hidden])", { timeout: 15_000 });
    assert.match(await phone.textContent("#error"), /このパスキーは削除されています/);

    // Support does not open compliance pages.
    const res = await page.goto(`${origin}/console/audit`);
    assert.equal(res.status(), 403);
    assert.match(await page.textContent("main"), /この画面は利用できません/);
    await shot(page, "forbidden");
    await page.goto(`${origin}/console`);
    await signOut(page);
    await page.context().close();
    await phoneContext.close();
  });

  test("a compliance officer filters, exports and verifies the trail, reviews a signal and reads the adoption report", { timeout: 120_000 }, async () => {
    const page = await staffBrowser();
    await enrol(page, addStaff("加藤 コンプライアンス", "compliance"), "compliance");
    await shot(page, "home-compliance");
    await page.getByRole("link", { name: /監査証跡/ }).first().click();
    await page.getByLabel(/イベント種別/).fill("ConsolePasskeyEnrolled,ConsoleSignedIn");
    await page.getByRole("button", { name: /絞り込む/ }).click();
    assert.match(page.url(), /type=ConsolePasskeyEnrolled%2CConsoleSignedIn/, "the filter is in the URL");
    const rows = await page.locator("table.trail tbody tr").count();
    assert.ok(rows >= 2, `rows: ${rows}`);
    await shot(page, "audit");

    // The export of the same filter, downloaded by the browser.
    const [download] = await Promise.all([page.waitForEvent("download"), page.click("#export-csv")]);
    const file = readFileSync(await download.path());
    assert.deepEqual([...file.subarray(0, 3)], [0xef, 0xbb, 0xbf], "Excel's BOM");
    const lines = file.toString("utf8").trim().split(/\r?\n/);
    assert.match(lines[0], /position/);
    assert.equal(lines.length - 1, rows, "the same rows as on the page");
    await page.click("#count-rows");
    assert.match(await page.textContent("#row-count"), new RegExp(`${rows}件`), "the count shown is the export's");

    await page.goto(`${origin}/console/audit/verify`);
    assert.match(await page.textContent("#verdict"), /改ざんはありません/);
    assert.match(await page.textContent("#head-hash"), /^[0-9a-f]{64}$/);
    await shot(page, "verify");

    // A row's inclusion proof, from the trail's position link, checked
    // against the newest signed checkpoint.
    await page.goto(`${origin}/console/audit`);
    await page.locator("table.trail tbody tr td a").first().click();
    assert.match(page.url(), /\/console\/proofs\?position=\d+/);
    assert.match(await page.textContent("#proof-verdict"), /署名付きチェックポイント（ツリーサイズ\d+）に含まれています/);
    assert.match(await page.textContent("#checkpoint-note"), /^localhost\/passkey-ledger\n\d+\n[A-Za-z0-9+/]{43}=\n\n— localhost\/passkey-ledger /);
    assert.match(await page.textContent("#verifier-key"), /^localhost\/passkey-ledger\+[0-9a-f]{8}\+[A-Za-z0-9+/]+=*$/);
    // The checkpoint's RFC 3161 timestamp, shown in JST, and its token
    // downloaded and checked by OpenSSL over the note on the page.
    assert.match(await page.textContent("#timestamp"), /\d{4}-\d{2}-\d{2} \d{2}:\d{2}.*シリアル/);
    const [token] = await Promise.all([page.waitForEvent("download"), page.click("#timestamp a")]);
    assert.match(tsa.verify(await page.textContent("#checkpoint-note"), readFileSync(await token.path())), /Verification: OK/);
    await shot(page, "proofs");
    await page.getByLabel(/証跡の位置/).fill("999999");
    await page.getByRole("button", { name: /証明して検証/ }).click();
    assert.match(await page.textContent("p.error"), /位置は1〜\d+で指定してください/);

    await page.goto(`${origin}/console/signals`);
    await shot(page, "signals");
    await page.goto(`${origin}/console/adoption`);
    assert.equal(await page.locator("svg.chart").count(), 1);
    await shot(page, "adoption");

    // Compliance cannot delete passkeys: no such form on the account page.
    await page.goto(`${origin}/console/accounts`);
    await page.getByLabel(/ログインID/).fill("demo-001");
    await page.getByRole("button", { name: /検索/ }).click();
    await page.getByRole("link", { name: "demo-001" }).click();
    assert.equal(await page.locator("form.action").count(), 0);
    await signOut(page);
    await page.context().close();
  });

  test("an administrator sees every page, disables a member; an idle session goes back to sign-in", { timeout: 120_000 }, async () => {
    const admin = await staffBrowser();
    await enrol(admin, addStaff("管理者 山田", "admin"), "admin");
    for (const path of ["/console/accounts", "/console/audit", "/console/proofs", "/console/signals", "/console/adoption", "/console/staff", "/console/streams"]) {
      const res = await admin.goto(origin + path);
      assert.equal(res.status(), 200, path);
    }
    const leaving = await staffBrowser();
    await enrol(leaving, addStaff("退職 予定", "support"), "leaving");
    await admin.goto(`${origin}/console/staff`);
    await shot(admin, "staff");
    const row = admin.locator("tr", { hasText: "退職 予定" });
    await row.getByRole("button", { name: /無効化/ }).click();
    await admin.getByRole("button", { name: /無効化する/ }).click();
    assert.match(await admin.textContent("p.done"), /無効化しました/);
    await leaving.goto(`${origin}/console`);
    assert.equal(new URL(leaving.url()).pathname, "/console/sign-in", "disabled: signed out at once");
    await leaving.context().close();

    // The streams page: one receiver taking every batch, one that does not answer.
    const receiver = createServer((req, res) => { req.resume(); req.on("end", () => { res.statusCode = 204; res.end(); }); });
    await new Promise((ok) => receiver.listen(0, "127.0.0.1", ok));
    const taking = addWebhook(`http://127.0.0.1:${receiver.address().port}/hook`);
    const failing = addWebhook(`http://127.0.0.1:${await freePort()}/hook`);
    const streamRow = (id) => admin.locator("tr", { hasText: id });
    for (let i = 0; i < 50; i++) {
      await admin.goto(`${origin}/console/streams`);
      // Caught up (no lag or failure badge) and the other failing.
      if ((await streamRow(taking).locator(".badge").count()) === 0 && /回連続失敗/.test(await streamRow(failing).textContent())) break;
      await new Promise((r) => setTimeout(r, 200));
    }
    assert.equal(await streamRow(taking).locator(".badge").count(), 0, "the taking receiver has no lag and no failure");
    assert.match(await streamRow(failing).textContent(), /回連続失敗 \/ failures in a row/);
    assert.match(await streamRow(failing).textContent(), /could not connect/);
    await shot(admin, "streams");
    receiver.close();

    // Idle past the limit.
    await new Promise((r) => setTimeout(r, (IDLE_SECS + 1.5) * 1000));
    await admin.goto(`${origin}/console/staff`);
    assert.equal(new URL(admin.url()).pathname, "/console/sign-in", "idle: back to sign-in");
    await admin.context().close();
  });
});
