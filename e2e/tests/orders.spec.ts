import { expect, Page, test } from "./fixtures";
import { openLab } from "./helpers";

test.beforeEach(async ({ request }) => {
  await request.post("/api/demo/clock", { data: { reset: true } });
});

async function signInAndCountOrders(page: Page): Promise<number> {
  await openLab(page);
  const session = page.getByTestId("session-panel");
  const form = session.getByTestId("session-login");
  await form.getByLabel("Password").fill("wonderland-demo");
  await form.getByRole("button", { name: "Log in" }).click();
  await expect(session.getByTestId("session-user")).toContainText("alice");
  const orders = page.getByTestId("orders-panel");
  await orders.getByRole("button", { name: "Refresh orders" }).click();
  const text = await orders.getByTestId("order-count").innerText();
  return Number(text.split(" ")[0]);
}

test("slow network, double click with a form token: one new order, the duplicate explained", async ({ page }) => {
  const before = await signInAndCountOrders(page);
  const orders = page.getByTestId("orders-panel");
  await orders.getByLabel("one-time form token").check();
  await orders.getByLabel(/slow network/).check();
  await orders.getByRole("button", { name: "Double-click (send twice)" }).click();

  const attempts = orders.getByTestId("order-attempts");
  await expect(attempts.locator("li")).toHaveCount(2, { timeout: 15_000 });
  await expect(attempts).toContainText(/order #\d+ placed/);
  await expect(attempts).toContainText(/409 duplicate_submit — recognised as a duplicate of order #\d+/);
  await expect(orders.getByTestId("order-count")).toHaveText(`${before + 1} order(s)`);

  // The duplicate names the order the first click created.
  const placed = (await attempts.innerText()).match(/order #(\d+) placed/)![1];
  await expect(attempts).toContainText(`duplicate of order #${placed}`);
  await expect(orders.getByTestId("order-list").locator("li").first()).toHaveAttribute("data-order-id", placed);
});

test("retry after a timeout with an Idempotency-Key: the same order comes back, not a new one", async ({ page }) => {
  const before = await signInAndCountOrders(page);
  const orders = page.getByTestId("orders-panel");
  await orders.getByLabel("Idempotency-Key header").check();
  await orders.getByRole("button", { name: "Retry after timeout" }).click();

  const attempts = orders.getByTestId("order-attempts");
  await expect(attempts.locator("li").first()).toContainText("attempt 1: no response — gave up after 1000 ms");
  await expect(attempts.locator("li").last()).toContainText(/201 replayed — .* order #\d+/, { timeout: 15_000 });
  await expect(orders.getByTestId("order-count")).toHaveText(`${before + 1} order(s)`);
  const replayedId = (await attempts.locator("li").last().innerText()).match(/order #(\d+)/)![1];
  await expect(orders.getByTestId("order-list").locator("li").first()).toHaveAttribute("data-order-id", replayedId);

  // The timeline shows the request that gave up, and the replay header on the last answer.
  const timeline = page.getByTestId("timeline");
  await expect(timeline.locator("li.entry", { hasText: "gave up after 1000 ms" })).toHaveCount(1);
  await expect(timeline.locator("li.entry", { hasText: "idempotent-replayed: true" }).first()).toBeVisible();
});

test("a user signed in with the device token places orders the same way", async ({ page }) => {
  await openLab(page);
  const device = page.getByTestId("device-panel");
  await device.getByTestId("device-login").getByLabel("Password").fill("wonderland-demo");
  await device.getByRole("button", { name: "Log in on this device" }).click();
  await expect(device.getByTestId("device-mode")).toHaveText("hardened");

  const orders = page.getByTestId("orders-panel");
  await orders.getByLabel("device token").check();
  await orders.getByLabel("one-time form token").check();
  await orders.getByRole("button", { name: "Double-click (send twice)" }).click();
  const attempts = orders.getByTestId("order-attempts");
  await expect(attempts.locator("li")).toHaveCount(2);
  await expect(attempts).toContainText(/order #\d+ placed/);
  await expect(attempts).toContainText(/duplicate of order #\d+/);
  const entry = page.getByTestId("timeline").locator("li.entry", { hasText: "POST" }).first();
  await expect(entry).toContainText("x-device-id");
});
