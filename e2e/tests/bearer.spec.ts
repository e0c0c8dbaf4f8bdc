import { expect, Page, test } from "./fixtures";
import { openLab } from "./helpers";

test.beforeEach(async ({ request }) => {
  await request.post("/api/demo/clock", { data: { reset: true } });
});

async function logIn(page: Page) {
  const panel = page.getByTestId("bearer-panel");
  const form = panel.getByTestId("bearer-login");
  await form.getByLabel("Password").fill("wonderland-demo");
  await form.getByRole("button", { name: "Log in (password grant)" }).click();
  await expect(panel.getByTestId("bearer-access")).toHaveText("in memory");
  return panel;
}

test("access token expires on the demo clock; the call still succeeds through a silent refresh", async ({ page }) => {
  await openLab(page);
  const panel = await logIn(page);
  // The decoded claims are shown; the article's policy gives a month and two months.
  await expect(panel.getByTestId("bearer-claims")).toContainText('"aud": "tokenlab-api"');
  await expect(panel.getByTestId("bearer-access-left")).toContainText(/^(29|30) d/);
  await expect(panel.getByTestId("bearer-refresh-left")).toContainText(/^(59|60) d/);
  await expect(panel.getByTestId("bearer-family").locator("li")).toHaveCount(1);
  // Neither token is reachable from the page's storage: the refresh cookie is HttpOnly.
  expect(await page.evaluate(() => document.cookie)).not.toContain("tl_refresh");

  await panel.getByRole("button", { name: "Call a protected API" }).click();
  await expect(panel.getByTestId("bearer-call-result")).toContainText("200 OK");

  await page.getByRole("button", { name: "+31 days" }).click();
  await expect(page.getByTestId("clock-offset")).toHaveText("31 d ahead");
  await expect(panel.getByTestId("bearer-access-left")).toContainText("expired");
  await panel.getByRole("button", { name: "Call a protected API" }).click();
  await expect(panel.getByTestId("bearer-call-result")).toContainText("after a silent refresh");

  // The timeline shows it: 401 token_expired → refresh → retry.
  const calls = page.getByTestId("timeline").locator("li.entry", { hasText: "/api/jwt/me" });
  await expect(calls.nth(0)).toHaveAttribute("data-status", "200");
  await expect(calls.nth(1)).toHaveAttribute("data-reason", "token_expired");
  await expect(page.getByTestId("timeline").locator("li.entry", { hasText: "token_expired" })).toHaveCount(1);
  await expect(page.getByTestId("timeline").locator("li.entry", { hasText: "/api/oauth/token" })).toHaveCount(2);
  // The family now has a rotated token and the active one.
  await expect(panel.getByTestId("bearer-family").locator("li.rotated")).toHaveCount(1);
  await expect(panel.getByTestId("bearer-family").locator("li.active")).toHaveCount(1);
});

test("past the refresh expiry the panel asks for a login", async ({ page }) => {
  await openLab(page);
  const panel = await logIn(page);
  await page.getByRole("button", { name: "+61 days" }).click();
  await expect(page.getByTestId("clock-offset")).toHaveText("61 d ahead");
  await panel.getByRole("button", { name: "Call a protected API" }).click();
  await expect(panel.getByTestId("bearer-login-again")).toContainText("log in again");
  await expect(panel.locator(".refusal")).toHaveAttribute("data-reason", "refresh_expired");
  await expect(panel.getByTestId("bearer-login")).toBeVisible();
});

test("two tabs calling at the same moment after expiry both stay logged in, with one rotation", async ({ context, page }) => {
  await openLab(page);
  const first = await logIn(page);
  const other = await context.newPage();
  await openLab(other);
  const second = other.getByTestId("bearer-panel");
  // The second tab sees the live login through the refresh cookie; it has no access token yet.
  await expect(second.getByTestId("bearer-family").locator("li")).toHaveCount(1);

  await page.getByRole("button", { name: "+31 days" }).click();
  await expect(page.getByTestId("clock-offset")).toHaveText("31 d ahead");
  await Promise.all([
    first.getByRole("button", { name: "Call a protected API" }).click(),
    second.getByRole("button", { name: "Call a protected API" }).click(),
  ]);
  await expect(first.getByTestId("bearer-call-result")).toContainText("200 OK");
  await expect(second.getByTestId("bearer-call-result")).toContainText("200 OK");

  // One rotation for both tabs: the family is the login's token, rotated, and one active child.
  await first.getByRole("button", { name: "Call a protected API" }).click();
  await expect(first.getByTestId("bearer-family").locator("li.rotated")).toHaveCount(1);
  await expect(first.getByTestId("bearer-family").locator("li.active")).toHaveCount(1);
  const rotations = await page.request.get("/api/oauth/family");
  const family = await rotations.json();
  expect(family.tokens.length).toBe(2);
  await other.close();
});
