// The web UI in a real browser (Debian's chromium, driven by playwright-core) against a running
// `depot serve`: sign in, search, open a package, copy its curl command and run it, download a
// file and check its SHA-256, reject duplicates and see the API refuse one, delete a package as
// a maintainer, and see what a guest does not. Screenshots of every page go to SCREENSHOTS.
// Prints OK when every check held; exits non-zero with the failed check otherwise.
import { createRequire } from "node:module";
import { createHash } from "node:crypto";
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, mkdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const { DEPOT_URL: base, OWNER_TOKEN: owner, GUEST_TOKEN: guest, SCREENSHOTS: shots, PLAYWRIGHT } = process.env;
const { chromium } = createRequire(import.meta.url)(PLAYWRIGHT);
mkdirSync(shots, { recursive: true });

function check(ok, what) {
  if (!ok) throw new Error(`check failed: ${what}`);
}
const sha256 = (bytes) => createHash("sha256").update(bytes).digest("hex");

const context = await chromium.launchPersistentContext(mkdtempSync(join(tmpdir(), "depot-ui-")), {
  executablePath: "/usr/bin/chromium",
  headless: true,
  acceptDownloads: true,
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync"],
});
await context.grantPermissions(["clipboard-read", "clipboard-write"], { origin: base });
const page = context.pages()[0] ?? (await context.newPage());
page.on("dialog", (dialog) => dialog.accept());
const errors = [];
page.on("console", (m) => { if (m.type() === "error") errors.push(m.text()); });
const shot = (name) => page.screenshot({ path: join(shots, `${name}.png`), fullPage: true });

async function signIn(token) {
  await page.goto(`${base}/-/sign_in`);
  await page.getByLabel("Personal access token").fill(token);
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.waitForURL(`${base}/`);
}

// Anonymous: public projects only.
await page.goto(`${base}/`);
await shot("01-home-anonymous");
check(!(await page.content()).includes("demo/app"), "an anonymous visitor sees no private project");
await page.goto(`${base}/-/sign_in`);
await shot("02-sign-in");
await signIn(owner);
await shot("03-home-signed-in");
check((await page.content()).includes("demo/app"), "the signed-in owner sees demo/app");

// Find a package by search, and open it.
await page.getByRole("searchbox", { name: "Search packages by name" }).fill("tool");
await page.getByRole("button", { name: "Search" }).click();
await shot("04-search");
await page.getByRole("link", { name: "tool", exact: true }).first().click();
await page.waitForURL(/\/-\/packages\/\d+$/);
await shot("05-package");
const listedSha = (await page.locator("td code").first().textContent()).trim();

// Copy the curl command and run it.
const curlCopy = page.locator("p", { hasText: "curl" }).getByRole("button", { name: "Copy" }).first();
await page.bringToFront();
// Watch the button before clicking: it says "Copied" for a moment once the copy is done.
await curlCopy.evaluate((el) => {
  window.sawCopied = false;
  new MutationObserver(() => { if (el.textContent === "Copied") window.sawCopied = true; })
    .observe(el, { childList: true, characterData: true, subtree: true });
});
await curlCopy.click();
const said = await page
  .waitForFunction(() => window.sawCopied === true, null, { timeout: 10000 })
  .then(() => true, () => false);
check(said, "the copy button says it copied");
const copied = await page.evaluate(() => navigator.clipboard.readText());
check(copied.startsWith("curl --fail"), `the copy button copied the curl command (${copied})`);
const work = mkdtempSync(join(tmpdir(), "depot-curl-"));
execFileSync("sh", ["-c", copied], { cwd: work, env: { ...process.env, TOKEN: owner } });
const fetched = readFileSync(join(work, "tool.txt"));
check(sha256(fetched) === listedSha, "the curl command fetched the file the page lists");

// Download it through the page, and compare its SHA-256.
const [download] = await Promise.all([
  page.waitForEvent("download"),
  page.getByRole("link", { name: "Download" }).first().click(),
]);
const saved = join(work, "downloaded");
await download.saveAs(saved);
check(sha256(readFileSync(saved)) === listedSha, "the downloaded file's SHA-256 is the listed one");

// Reject duplicates for the group; the API then refuses a duplicate.
await page.goto(`${base}/groups/demo/-/settings/packages_and_registries`);
await shot("06-group-settings");
await page.getByLabel("Reject duplicates").check();
await page.getByRole("button", { name: "Save changes" }).click();
await page.getByText("Settings saved.").waitFor();
await shot("07-group-settings-saved");
const api = `${base}/api/v4/projects/demo%2Fapp/packages/generic/tool/1.0.0/bin/tool.txt`;
const refused = await fetch(api, { method: "PUT", headers: { "PRIVATE-TOKEN": owner }, body: "again" });
check(refused.status === 400, `a duplicate is refused through the API (${refused.status})`);
check((await refused.json()).message === "400 Bad request - Duplicate package is not allowed", "with GitLab's message");

// The project's packages, then delete one as a maintainer.
await page.goto(`${base}/demo/app/-/packages`);
await shot("08-project-packages");
await page.getByRole("link", { name: "old-tool", exact: true }).click();
await page.waitForURL(/\/-\/packages\/\d+$/);
await page.getByRole("button", { name: "Delete package" }).click();
await page.waitForURL(/\/demo\/app\/-\/packages$/);
await shot("09-after-delete");
check(!(await page.content()).includes(">old-tool<"), "the deleted package is gone from the list");
const gone = await fetch(`${base}/api/v4/projects/demo%2Fapp/packages/generic/old-tool/0.1/old.txt`, { headers: { "PRIVATE-TOKEN": owner } });
check(gone.status === 404, "the deleted package's file is gone from the API");

// Tokens, and an error page.
await page.goto(`${base}/-/user_settings/personal_access_tokens`);
await shot("10-tokens");
await page.goto(`${base}/demo/app/-/settings/repository`);
await shot("11-deploy-tokens");
const before = errors.length;
const missing = await page.goto(`${base}/no/such/-/packages`);
check(missing.status() === 404, "an unknown project's page is a 404 page");
await shot("12-not-found");
errors.length = before; // the 404 just asked for is the one console error it logs

// A guest: no delete button anywhere, and the hidden package nowhere.
await page.goto(`${base}/`);
await page.getByRole("button", { name: "Sign out" }).click();
await page.waitForURL(`${base}/`);
await signIn(guest);
await page.goto(`${base}/demo/app/-/packages`);
await shot("13-guest-packages");
check(!(await page.content()).includes("secret-tool"), "a guest does not see the hidden package listed");
await page.getByRole("link", { name: "tool", exact: true }).first().click();
await page.waitForURL(/\/-\/packages\/\d+$/);
await shot("14-guest-package");
check((await page.getByRole("button", { name: /Delete/ }).count()) === 0, "a guest sees no delete button");
await page.goto(`${base}/?search=secret`);
check(!(await page.content()).includes("secret-tool"), "a guest does not find the hidden package by search");
// A phone's width in the dark scheme: nothing runs off the side.
await page.setViewportSize({ width: 390, height: 844 });
await page.emulateMedia({ colorScheme: "dark" });
await page.goto(`${base}/demo/app/-/packages`);
await shot("15-phone-dark-packages");
const background = await page.evaluate(() => getComputedStyle(document.body).backgroundColor);
check(background === "rgb(23, 23, 28)", `the dark scheme applies (body background ${background})`);
const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
check(overflow <= 0, `the list fits a phone's width (${overflow} px over)`);
await page.getByRole("link", { name: "tool", exact: true }).first().click();
await page.waitForURL(/\/-\/packages\/\d+$/);
await shot("16-phone-dark-package");
check(errors.length === 0, `no console errors (CSP or script): ${errors.join("; ")}`);
await context.close();
console.log("OK");
