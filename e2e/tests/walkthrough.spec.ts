import * as path from "path";
import { expect, test } from "./fixtures";
import { openLab, screenshotDir } from "./helpers";

// The article's chapters; chapter 7 ("binding", beyond the article) runs last, on its own, since
// its clean start would wipe what the checks below read from chapter 6.
const chapters = ["why", "device", "session", "submit", "refresh", "leftout"];

async function runChapter(page: import("@playwright/test").Page, key: string) {
  const chapter = page.getByTestId(`chapter-${key}`);
  await chapter.getByRole("button", { name: "Run the chapter from a clean state" }).click();
  await expect(chapter).toHaveAttribute("data-done", "true", { timeout: 20_000 });
  const steps = chapter.locator("li.step");
  const count = await steps.count();
  for (let i = 0; i < count; i++) {
    await expect(steps.nth(i)).toHaveAttribute("data-state", "passed");
  }
  return chapter;
}

// Before and after: a test that switches the preset or moves the clock must not leave it so for
// the specs that run after it.
test.beforeEach(async ({ request }) => {
  expect((await request.post("/api/demo/reset")).status()).toBe(200);
});
test.afterEach(async ({ request }) => {
  expect((await request.post("/api/demo/reset")).status()).toBe(200);
});

test("every chapter runs from a clean state and shows what the article claims", async ({ page }) => {
  test.setTimeout(120_000);
  const failures = await openLab(page, "/walkthrough");
  await page.evaluate(() => localStorage.removeItem("tokenlab.walkthrough.done"));
  await page.getByRole("button", { name: "Reset demo" }).click();
  await expect(page.getByTestId("progress")).toContainText("0 of 7 chapters done");

  for (const key of chapters) {
    await runChapter(page, key);
  }
  await expect(page.getByTestId("progress")).toContainText("6 of 7 chapters done");

  // What the chapters said they would show, read back from the page.
  const device = page.getByTestId("chapter-device");
  await expect(device.locator("li.step").nth(4)).toContainText("x-session-renewed: 1");
  await expect(device.locator("li.step").nth(5)).toContainText("the attacker is in");
  await expect(device.locator("li.step").nth(7)).toContainText("device_unknown");
  await expect(page.getByTestId("chapter-session").locator("li.step").nth(3)).toContainText("session_expired");
  await expect(page.getByTestId("chapter-submit").locator("li.step").nth(2)).toContainText("duplicate_submit");
  await expect(page.getByTestId("chapter-refresh").locator("li.step").nth(6)).toContainText("refresh_reused");

  // Sign out everywhere, measured: server state ends at the next request, the access token within
  // tokenlab's bound, and a JWT check without revocation still accepts it when the polling stops.
  const leftout = page.getByTestId("chapter-leftout");
  await expect(leftout.locator("li.step").nth(0)).toContainText("refused at the next request");
  for (const key of ["session", "device", "refresh", "access"]) {
    await expect(leftout.getByTestId(`delay-row-${key}`)).toHaveAttribute("data-outcome", "refused");
  }
  await expect(leftout.getByTestId("delay-row-access")).toHaveAttribute("data-reason", "token_revoked");
  await expect(leftout.getByTestId("delay-row-stateless")).toHaveAttribute("data-outcome", "accepted");
  await expect(leftout.getByTestId("delay-stateless")).toContainText("until exp");

  // The comparator: the same moment through three schemes.
  const comparison = page.getByTestId("comparison");
  await expect(comparison.locator("tr[data-scheme='session id as token']")).toContainText("401 not_logged_in");
  await expect(comparison.locator("tr[data-scheme='device token']")).toContainText("re-attached from the database");
  await expect(comparison.locator("tr[data-scheme='access token']")).toContainText("200, until its own expiry");
  // The sessions are read from the database; the access token is checked in memory.
  const statements = async (scheme: string) =>
    Number(await comparison.locator(`tr[data-scheme='${scheme}'] td.queries`).textContent());
  expect(await statements("session id as token")).toBeGreaterThan(0);
  expect(await statements("device token")).toBeGreaterThan(0);
  expect(await statements("access token")).toBe(0);
  // The one-button comparator: the sessions re-attached a moment ago are expired again.
  await comparison.getByRole("button", { name: "Expire every server session now, then call through each scheme" }).click();
  await expect(page.getByTestId("comparator-verdict")).toContainText("✓ session: log in again; device: re-attached");
  await expect(comparison.locator("tr[data-scheme]")).toHaveCount(3);

  // The inspector followed along: the last chapter's sessions and the as-written device.
  const inspector = page.getByTestId("inspector");
  await expect(inspector.getByTestId("inspector-devices")).toContainText("as_written");
  await expect(inspector.getByTestId("inspector-devices")).toContainText("plain text");
  await expect(inspector.getByTestId("inspector-sessions")).toContainText("tl_device");

  await comparison.scrollIntoViewIfNeeded();
  await page.screenshot({ path: path.join(screenshotDir, "walkthrough.png") });

  // Beyond the article: the key no script can export, and what a copied credential is worth.
  const binding = await runChapter(page, "binding");
  await expect(binding.locator("li.step").nth(0)).toContainText("no token to steal");
  await expect(binding.locator("li.step").nth(2)).toContainText("dpop_proof_replayed");
  await expect(binding.locator("li.step").nth(3)).toContainText("token_type DPoP");
  await expect(binding.locator("li.step").nth(4)).toContainText("401 token_bound");
  await expect(binding.locator("li.step").nth(6)).toContainText("400 dpop_proof_invalid; with one: 200");
  await expect(binding.locator("li.step").nth(7)).toContainText("Secure-Session-Registration: (ES256)");
  await expect(binding.getByTestId("binding-ladder").locator("tbody tr")).toHaveCount(5);
  await expect(page.getByTestId("progress")).toContainText("7 of 7 chapters done");

  // Progress survives a reload; "Reset demo" starts over.
  await page.reload();
  await expect(page.locator("main.lab[data-hydrated='true']")).toBeVisible();
  await expect(page.getByTestId("progress")).toContainText("7 of 7 chapters done");
  await page.getByRole("button", { name: "Reset demo" }).click();
  await expect(page.getByTestId("progress")).toContainText("0 of 7 chapters done");
  expect(failures).toEqual([]);
});

test("single steps: do it, one button at a time, with the inspector following", async ({ page }) => {
  await openLab(page, "/walkthrough");
  const chapter = page.getByTestId("chapter-session");
  const steps = chapter.locator("li.step");
  const inspector = page.getByTestId("inspector");

  await steps.nth(0).getByRole("button", { name: "do it" }).click();
  await expect(steps.nth(0)).toHaveAttribute("data-state", "passed");
  await expect(inspector.getByTestId("inspector-sessions").locator("tr[data-state='live']")).toHaveCount(1);

  await steps.nth(2).getByRole("button", { name: "do it" }).click();
  await expect(steps.nth(2)).toHaveAttribute("data-state", "passed");
  await expect(page.getByTestId("clock-offset")).toHaveText("31 min ahead");
  await expect(inspector.getByTestId("inspector-sessions").locator("tr[data-state='idle_expired']")).toHaveCount(1);

  await steps.nth(3).getByRole("button", { name: "do it" }).click();
  await expect(steps.nth(3)).toContainText("✓ 401 session_expired");
  await expect(page.getByTestId("timeline").locator("li.entry").first()).toHaveAttribute("data-reason", "session_expired");

  // A step out of order fails and says why, instead of pretending.
  await steps.nth(1).getByRole("button", { name: "do it" }).click();
  await expect(steps.nth(1)).toHaveAttribute("data-state", "failed");
  await expect(steps.nth(1)).toContainText("expected 200, got 401 not_logged_in");
  await expect(chapter).not.toHaveAttribute("data-done", "true");
});

test("policy presets: the same chapter, run from a clean state under another preset", async ({ page }) => {
  test.setTimeout(60_000);
  await openLab(page, "/walkthrough");
  const chapter = page.getByTestId("chapter-refresh");
  const picker = chapter.getByTestId("policy-picker");
  await expect(picker.getByTestId("policy-current")).toContainText("article");
  await picker.getByRole("radio", { name: /^keycloak/ }).check();
  await expect(picker.getByTestId("policy-current")).toContainText("keycloak");
  await expect(picker).toContainText("Keycloak");

  // A clean start keeps the chosen preset, so the scenario runs under it.
  await chapter.getByRole("button", { name: "Run the chapter from a clean state" }).click();
  await expect(chapter).toHaveAttribute("data-done", "true", { timeout: 20_000 });
  const steps = chapter.locator("li.step");
  await expect(steps.nth(0)).toContainText("preset keycloak: access for 300 s, refresh for 1800 s");
  await expect(steps.nth(2)).toContainText("the clock moved 360 s");
  await expect(steps.nth(8)).toContainText("400 refresh_expired after 31 min");
  await expect(picker.getByTestId("policy-current")).toContainText("keycloak");

  // "Reset demo" puts everything back, the preset included, and the picker follows.
  await page.getByRole("button", { name: "Reset demo" }).click();
  await expect(picker.getByTestId("policy-current")).toContainText("article");
});

test("leaving the page while a step is in flight does not break the app", async ({ page }) => {
  const failures = await openLab(page, "/walkthrough");
  const chapter = page.getByTestId("chapter-submit");
  await chapter.getByRole("button", { name: "Run the chapter from a clean state" }).click();
  // The double submit holds each request 1.5 s; leave while it is in flight.
  await expect(chapter.locator("li.step").nth(2)).toHaveAttribute("data-state", "running", { timeout: 10_000 });
  await page.getByRole("navigation", { name: "Pages" }).getByRole("link", { name: "Attack lab" }).click();
  await expect(page.getByRole("heading", { name: "Attack lab" })).toBeVisible();
  const card = page.getByTestId("attack-device-hardened");
  await card.getByRole("button", { name: "Run the attack" }).click();
  await expect(card).toHaveAttribute("data-state", "passed");
  expect(failures).toEqual([]);
});
