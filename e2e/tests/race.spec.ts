import { expect, Page, test } from "./fixtures";
import { cell, openLab, race } from "./helpers";

test.beforeEach(async ({ request }) => {
  await request.post("/api/demo/clock", { data: { reset: true } });
});

async function signIn(page: Page) {
  const session = page.getByTestId("session-panel");
  const form = session.getByTestId("session-login");
  await form.getByLabel("Password").fill("wonderland-demo");
  await form.getByRole("button", { name: "Log in" }).click();
  await expect(session.getByTestId("session-user")).toContainText("alice");
}

test("forty copies of one form token at once: one order, thirty-nine duplicates naming it, and the guarantee beside them", async ({ page }) => {
  const failures = await openLab(page);
  await signIn(page);
  const panel = await race(page, /one form token/, 40);

  await expect(panel.getByTestId("race-guarantee")).toContainText("a form token is consumed once");
  const verdict = panel.getByTestId("race-verdict");
  await expect(verdict).toHaveAttribute("data-held", "true");
  await expect(verdict).toContainText(/Held\. 1 order \(#\d+\) from 40 copies: 39 × 409 duplicate_submit/);
  expect(await cell(panel, "all", "created")).toBe(1);
  expect(await cell(panel, "all", "duplicate")).toBe(39);
  for (const failure of ["refused", "server-error", "no-answer"]) {
    expect(await cell(panel, "all", failure)).toBe(0);
  }
  // One server: every copy was answered by the same instance, named in its own row.
  await expect(panel.getByTestId("race-table").locator("tbody tr")).toHaveCount(2);
  await expect(panel.getByTestId("race-table").locator("tr.total [data-testid=p99]")).toHaveText(/^\d+ ms$/);

  // The orders list agrees: the order the verdict names is the newest one.
  const made = (await verdict.innerText()).match(/#(\d+)/)![1];
  const orders = page.getByTestId("orders-panel");
  await orders.getByRole("button", { name: "Refresh orders" }).click();
  await expect(orders.getByTestId("order-list").locator("li").first()).toHaveAttribute("data-order-id", made);
  expect(failures).toEqual([]);
});

test("one Idempotency-Key forty times at once: one order, the rest replays of it or told it is in use", async ({ page }) => {
  const failures = await openLab(page);
  await signIn(page);
  const panel = await race(page, /one Idempotency-Key/, 40);
  await expect(panel.getByTestId("race-verdict")).toHaveAttribute("data-held", "true");
  expect(await cell(panel, "all", "created")).toBe(1);
  const replayed = await cell(panel, "all", "replayed");
  const inUse = await cell(panel, "all", "in-use");
  expect(replayed + inUse).toBe(39);
  expect(failures).toEqual([]);
});

test("one refresh token forty times at once: one rotation, thirty-nine repeats of the same child, no theft alarm", async ({ page }) => {
  const failures = await openLab(page);
  const panel = page.getByTestId("race-panel");
  await panel.getByLabel(/one refresh token/).check();
  await panel.getByLabel("Password").fill("wonderland-demo");
  const tokenCalls = page.getByTestId("timeline").locator("li.entry", { hasText: "/api/oauth/token" });
  const before = await tokenCalls.count();
  await race(page, /one refresh token/, 40);

  const verdict = panel.getByTestId("race-verdict");
  await expect(verdict).toHaveAttribute("data-held", "true");
  await expect(verdict).toContainText("1 rotation from 40 copies: 39 × repeated with the same child");
  expect(await cell(panel, "all", "rotated")).toBe(1);
  expect(await cell(panel, "all", "repeated")).toBe(39);
  expect(await cell(panel, "all", "refused")).toBe(0);
  // The login the race made is in the timeline; the forty copies are not.
  await expect(tokenCalls).toHaveCount(before + 1);
  expect(failures).toEqual([]);
});

test("a race of orders without a sign-in says what is missing", async ({ page }) => {
  await openLab(page);
  const panel = page.getByTestId("race-panel");
  await panel.getByLabel(/one form token/).check();
  await panel.getByRole("button", { name: "Fire 50 at once" }).click();
  await expect(panel.getByTestId("race-status")).toContainText("log in on the session panel first");
  await expect(panel.getByTestId("race-verdict")).toHaveCount(0);
});
