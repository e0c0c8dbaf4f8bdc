import * as path from "path";
import { expect, test } from "./fixtures";
import { openLab, screenshotDir } from "./helpers";

test.beforeEach(async ({ request }) => {
  expect((await request.post("/api/demo/reset")).status()).toBe(200);
});
test.afterEach(async ({ request }) => {
  expect((await request.post("/api/demo/reset")).status()).toBe(200);
});

/** Runs one attack card and waits for its verdict. */
async function runAttack(page: import("@playwright/test").Page, key: string) {
  const card = page.getByTestId(`attack-${key}`);
  await card.getByRole("button", { name: "Run the attack" }).click();
  await expect(card).toHaveAttribute("data-state", "passed", { timeout: 15_000 });
  return card;
}

test("every attack ends as the lab says, with the reason and the rule that stops it", async ({ page }) => {
  test.setTimeout(90_000);
  const failures = await openLab(page, "/attacks");
  const timeline = page.getByTestId("timeline");

  const asWritten = await runAttack(page, "device-as-written");
  await expect(asWritten.getByTestId("attack-result")).toContainText("attacker got in: 200, signed in as alice");
  await expect(asWritten).toContainText("Nothing stops it");
  await expect(timeline.locator("li.entry").first()).toContainText("attacker");

  const hardened = await runAttack(page, "device-hardened");
  await expect(hardened.getByTestId("attack-result")).toContainText("401 device_unknown");
  await expect(hardened.locator(".reason-rule[data-reason='device_unknown']")).toBeVisible();

  const replay = await runAttack(page, "refresh-replay");
  await expect(replay.getByTestId("attack-result")).toContainText("refresh_reused");
  await expect(replay.getByTestId("attack-result")).toContainText("refresh_revoked");
  await expect(replay.locator(".reason-rule[data-reason='refresh_reused']")).toContainText("RFC 9700 §4.14.2");
  await expect(page.getByTestId("inspector-refresh_families").locator("li[data-state='reused']")).toHaveCount(1);

  const fixation = await runAttack(page, "fixation");
  await expect(fixation.getByTestId("attack-result")).toContainText("the planted cookie is gone");
  const sessionCookie = (await page.context().cookies()).find((c) => c.name === "tl_session");
  expect(sessionCookie?.value).not.toBe("AAAAAAAAAAAAAAAAAAAAAA");
  expect(sessionCookie?.httpOnly).toBe(true);

  const crossSite = await runAttack(page, "cross-site");
  await expect(crossSite.getByTestId("attack-result")).toContainText("refused it as cross_site_request (refusals 0 → 1)");
  await expect(page.getByTestId("cross-site-refusals")).toHaveText("1");
  // The sandboxed frame is another origin; Playwright can read what the server told it.
  await expect(crossSite.frameLocator("iframe[data-testid='attacker-frame']").locator("body")).toContainText(
    "cross_site_request",
  );
  await expect(crossSite.locator(".reason-rule[data-reason='cross_site_request']")).toContainText("OWASP");
  // Again: the frame loads the attacker's page afresh, and the server refuses again.
  await crossSite.getByRole("button", { name: "Run the attack" }).click();
  await expect(crossSite.getByTestId("attack-result")).toContainText("(refusals 1 → 2)", { timeout: 15_000 });

  const forged = await runAttack(page, "forged-jwt");
  const verdict = forged.getByTestId("attack-result");
  await expect(verdict).toContainText("alg: none → 401 token_invalid (malformed token)");
  await expect(verdict).toContainText("exp pushed 10 years out → 401 token_invalid");
  await expect(verdict).toContainText("unknown kid → 401 token_invalid (unknown or retired kid)");

  const doubleSubmit = await runAttack(page, "double-submit");
  await expect(doubleSubmit.getByTestId("attack-result")).toContainText("409 duplicate_submit");
  await expect(doubleSubmit.getByTestId("attack-result")).toContainText("exactly one new order");

  await page.getByTestId("attack-cross-site").scrollIntoViewIfNeeded();
  await page.screenshot({ path: path.join(screenshotDir, "attack-lab.png") });

  // What the attacks left on the server, as the inspector shows it: both device modes, the
  // revoked family, the spent form token, the one order.
  const inspector = page.getByTestId("inspector");
  await expect(inspector.getByTestId("inspector-devices").locator("tr")).toHaveCount(3);
  await expect(inspector.getByTestId("inspector-form_tokens")).toContainText("token (SHA-256)");
  await page.setViewportSize({ width: 1280, height: 1600 });
  await inspector.screenshot({ path: path.join(screenshotDir, "inspector.png") });
  expect(failures).toEqual([]);
});
