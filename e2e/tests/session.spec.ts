import { expect, test } from "./fixtures";
import { openLab } from "./helpers";

test.beforeEach(async ({ request }) => {
  await request.post("/api/demo/clock", { data: { reset: true } });
});

test("session id as token: log in, call, expire on the demo clock, log in again", async ({ page }) => {
  await openLab(page);
  const panel = page.getByTestId("session-panel");
  const form = panel.getByTestId("session-login");
  await form.getByLabel("Username").fill("alice");
  await form.getByLabel("Password").fill("wonderland-demo");
  await form.getByRole("button", { name: "Log in" }).click();

  await expect(panel.getByTestId("session-user")).toContainText("alice");
  await expect(panel.getByTestId("session-id")).toContainText("chars");
  await expect(panel.getByTestId("session-idle-left")).toHaveText(/^(29 min|30 min)/);
  await expect(panel.getByTestId("session-absolute-left")).toHaveText(/^1[12] h/);

  // The page's JavaScript cannot read the session cookie: it is HttpOnly.
  expect(await page.evaluate(() => document.cookie)).not.toContain("tl_session");
  const cookies = await page.context().cookies();
  expect(cookies.find((c) => c.name === "tl_session")?.httpOnly).toBe(true);

  await panel.getByRole("button", { name: "Call a protected API" }).click();
  await expect(panel.getByTestId("session-call-result")).toContainText("200 OK");
  const timeline = page.getByTestId("timeline");
  await expect(timeline.locator("li.entry").first()).toContainText("/api/session/me");
  await expect(timeline.locator("li.entry").first()).toContainText("sent=tl_session");

  // Past the idle timeout on the server's clock, moved from the UI.
  await page.getByRole("button", { name: "+31 min" }).click();
  await expect(page.getByTestId("clock-offset")).toHaveText("31 min ahead");
  await expect(panel.getByTestId("session-idle-left")).toHaveText("expired");
  await panel.getByRole("button", { name: "Call a protected API" }).click();
  await expect(panel.getByTestId("session-expired")).toContainText("Session expired — log in again");
  await expect(timeline.locator("li.entry").first()).toHaveAttribute("data-reason", "session_expired");

  // The only way back in this scheme: log in again.
  await form.getByLabel("Password").fill("wonderland-demo");
  await form.getByRole("button", { name: "Log in" }).click();
  await expect(panel.getByTestId("session-user")).toContainText("alice");
  await panel.getByRole("button", { name: "Call a protected API" }).click();
  await expect(panel.getByTestId("session-call-result")).toContainText("200 OK");

  await panel.getByRole("button", { name: "Log out" }).click();
  await expect(form).toBeVisible();
});

test("a reload keeps the session; a wrong password is explained", async ({ page }) => {
  await openLab(page);
  const panel = page.getByTestId("session-panel");
  const form = panel.getByTestId("session-login");
  await form.getByLabel("Password").fill("not the password");
  await form.getByRole("button", { name: "Log in" }).click();
  await expect(panel.locator(".refusal")).toHaveAttribute("data-reason", "invalid_credentials");

  await form.getByLabel("Password").fill("wonderland-demo");
  await form.getByRole("button", { name: "Log in" }).click();
  await expect(panel.getByTestId("session-user")).toContainText("alice");
  await openLab(page);
  await expect(panel.getByTestId("session-user")).toContainText("alice");
});
