import { APIRequestContext, expect, Page, test } from "./fixtures";
import { openLab, uniqueName } from "./helpers";

// Issue 11: one list of a user's sign-ins across schemes, ending one (or all) from it, and the
// revocation delay of each scheme, measured in the browser from real answers.

const password = "correct horse battery staple";

test.beforeEach(async ({ request }) => {
  await request.post("/api/demo/clock", { data: { reset: true } });
});

/** A fresh user for this test: sign-outs end every sign-in of a user, so tests never share one. */
async function register(request: APIRequestContext, prefix: string): Promise<string> {
  const username = uniqueName(prefix);
  const response = await request.post("/api/accounts", { data: { username, password } });
  expect(response.status()).toBe(201);
  return username;
}

async function logInOnSessionPanel(page: Page, username: string) {
  const panel = page.getByTestId("session-panel");
  const form = panel.getByTestId("session-login");
  await form.getByLabel("Username").fill(username);
  await form.getByLabel("Password").fill(password);
  await form.getByRole("button", { name: "Log in" }).click();
  await expect(panel.getByTestId("session-user")).toContainText(username);
  return panel;
}

async function logInOnDevicePanel(page: Page, username: string) {
  const panel = page.getByTestId("device-panel");
  const form = panel.getByTestId("device-login");
  await form.getByLabel("Username").fill(username);
  await form.getByLabel("Password").fill(password);
  await form.getByLabel("hardened").check();
  await form.getByRole("button", { name: "Log in on this device" }).click();
  await expect(panel.getByTestId("device-mode")).toHaveText("hardened");
  return panel;
}

async function logInOnBearerPanel(page: Page, username: string) {
  const panel = page.getByTestId("bearer-panel");
  const form = panel.getByTestId("bearer-login");
  await form.getByLabel("Username").fill(username);
  await form.getByLabel("Password").fill(password);
  await form.getByRole("button", { name: "Log in (password grant)" }).click();
  await expect(panel.getByTestId("bearer-access")).toHaveText("in memory");
  return panel;
}

test("the sessions list shows every scheme's sign-in, and ending one signs that panel out", async ({ page, request }) => {
  const username = await register(request, "list");
  const failures = await openLab(page);
  const session = await logInOnSessionPanel(page, username);
  const device = await logInOnDevicePanel(page, username);
  const bearer = await logInOnBearerPanel(page, username);

  // The list follows the panels' sign-ins and asks with what the page holds: the access token.
  const sessions = page.getByTestId("sessions-panel");
  const list = sessions.getByTestId("sessions-list");
  await expect(list.locator("tr[data-scheme='session']")).toHaveCount(1);
  await expect(list.locator("tr[data-scheme='device']")).toHaveCount(1);
  await expect(list.locator("tr[data-scheme='refresh']")).toHaveCount(1);
  await expect(list.locator("tbody tr")).toHaveCount(3);
  await expect(sessions.getByTestId("sessions-asked-as")).toContainText("Asked as access token");
  await expect(sessions.getByLabel("access token")).toBeChecked();
  // The asker's own entry is marked, and it is the access token's refresh family.
  await expect(list.locator("tr[data-current='true']")).toHaveCount(1);
  await expect(list.locator("tr[data-current='true']")).toHaveAttribute("data-scheme", "refresh");
  await expect(list.locator("tr[data-current='true']")).toContainText("this one");
  // Ids are opaque handles, never a session id or a token.
  for (const id of await list.locator("tbody tr").evaluateAll((rows) => rows.map((r) => r.getAttribute("data-session-id")))) {
    expect(id).toMatch(/^[sdr]_[0-9a-f]+$/);
  }
  // The session-scheme login counts down its idle and absolute expiries on the server's clock.
  await expect(list.locator("tr[data-scheme='session']")).toContainText(/(29|30) min/);

  // End the device from the list: the device panel's next call is refused.
  await list.locator("tr[data-scheme='device']").getByRole("button", { name: "End" }).click();
  await expect(list.locator("tr[data-scheme='device']")).toHaveCount(0);
  await expect(list.locator("tbody tr")).toHaveCount(2);
  await device.getByRole("button", { name: "Call a protected API" }).click();
  await expect(device.locator(".refusal")).toHaveAttribute("data-reason", "device_revoked");
  await expect(device.getByTestId("device-login")).toBeVisible();

  // End the session-scheme login: the session panel is signed out at its next call.
  await list.locator("tr[data-scheme='session']").getByRole("button", { name: "End" }).click();
  await expect(list.locator("tr[data-scheme='session']")).toHaveCount(0);
  await session.getByRole("button", { name: "Call a protected API" }).click();
  await expect(session.getByTestId("session-login")).toBeVisible();
  await expect(session.locator(".refusal")).toHaveAttribute("data-reason", "not_logged_in");

  // End the refresh family the list is asked with: the list itself is refused with the access
  // token's new reason, and the access + refresh panel is signed out at its next call.
  await list.locator("tr[data-scheme='refresh']").getByRole("button", { name: "End" }).click();
  await expect(sessions.getByTestId("sessions-refused").locator(".refusal")).toHaveAttribute("data-reason", "token_revoked");
  await bearer.getByRole("button", { name: "Call a protected API" }).click();
  await expect(bearer.getByTestId("bearer-login-again")).toContainText("log in again");
  await expect(bearer.locator(".refusal")).toHaveAttribute("data-reason", "refresh_revoked");
  const timeline = page.getByTestId("timeline");
  await expect(timeline.locator("li.entry[data-reason='token_revoked']", { hasText: "/api/jwt/me" })).toHaveCount(1);
  expect(failures).toEqual([]);
});

test("sign out everywhere except this one, asked with the session cookie", async ({ page, request }) => {
  const username = await register(request, "keep");
  await openLab(page);
  const session = await logInOnSessionPanel(page, username);
  const device = await logInOnDevicePanel(page, username);

  const sessions = page.getByTestId("sessions-panel");
  const list = sessions.getByTestId("sessions-list");
  await sessions.getByLabel("session cookie").check();
  await expect(sessions.getByTestId("sessions-asked-as")).toContainText("Asked as session cookie");
  await expect(list.locator("tr[data-current='true']")).toHaveAttribute("data-scheme", "session");
  await expect(list.locator("tbody tr")).toHaveCount(2);

  await sessions.getByRole("button", { name: "Sign out everywhere except this one", exact: true }).click();
  await expect(sessions.getByTestId("sessions-outcome")).toContainText(
    // The device's own server sessions count as server sessions; the cookie's is kept.
    /ended \d+ server sessions?, 1 device and 0 refresh families/,
  );
  await expect(list.locator("tbody tr")).toHaveCount(1);
  await expect(list.locator("tr[data-current='true']")).toHaveAttribute("data-scheme", "session");

  await device.getByRole("button", { name: "Call a protected API" }).click();
  await expect(device.locator(".refusal")).toHaveAttribute("data-reason", "device_revoked");
  await session.getByRole("button", { name: "Call a protected API" }).click();
  await expect(session.getByTestId("session-call-result")).toContainText("200 OK");

  // And everywhere, this one included.
  await sessions.getByRole("button", { name: "Sign out everywhere", exact: true }).click();
  await expect(sessions.getByTestId("sessions-outcome")).toContainText("ended 1 server session, 0 devices");
  await expect(sessions.getByTestId("sessions-refused").locator(".refusal")).toHaveAttribute("data-reason", "not_logged_in");
  await session.getByRole("button", { name: "Call a protected API" }).click();
  await expect(session.locator(".refusal")).toHaveAttribute("data-reason", "not_logged_in");
});

test("the revocation-delay panel measures how long each scheme outlives a sign-out", async ({ page, request }) => {
  const username = await register(request, "delay");
  const failures = await openLab(page);
  const panel = page.getByTestId("revocation-panel");
  const form = panel.getByTestId("revocation-form");
  await form.getByLabel("Username").fill(username);
  await form.getByLabel("Password").fill(password);
  await form.getByRole("button", { name: "Sign out everywhere and measure" }).click();

  // Three seconds of calls every 100 ms after the sign-out.
  const report = panel.getByTestId("delay-report");
  await expect(report).toHaveAttribute("data-phase", "done", { timeout: 20_000 });
  await expect(panel.getByTestId("delay-ended")).toContainText(`Signed ${username} out everywhere`);

  // Server state ends at once: the very next request is refused, with its reason explained.
  for (const [key, reason] of [
    ["session", "not_logged_in"],
    ["device", "device_revoked"],
    ["refresh", "refresh_revoked"],
  ]) {
    const row = panel.getByTestId(`delay-row-${key}`);
    await expect(row).toHaveAttribute("data-outcome", "refused");
    await expect(row).toHaveAttribute("data-reason", reason);
    await expect(row).toHaveAttribute("data-kept-ms", "0");
    await expect(row).toHaveAttribute("data-polls", "1");
    await expect(panel.getByTestId(`delay-${key}`)).toContainText(`0 ms (next request refused: ${reason})`);
    await expect(row.locator(".reason-rule")).toHaveAttribute("data-reason", reason);
  }

  // The access token: refused within tokenlab's bound of one second.
  const access = panel.getByTestId("delay-row-access");
  await expect(access).toHaveAttribute("data-outcome", "refused");
  await expect(access).toHaveAttribute("data-reason", "token_revoked");
  expect(Number(await access.getAttribute("data-kept-ms"))).toBeLessThan(1000);
  await expect(panel.getByTestId("delay-access")).toContainText("tokenlab's bound ≤ 1000 ms");

  // Without a revocation check the same token is still accepted when the polling ends: until exp,
  // a month under the article's preset.
  const stateless = panel.getByTestId("delay-row-stateless");
  await expect(stateless).toHaveAttribute("data-outcome", "accepted");
  expect(Number(await stateless.getAttribute("data-kept-ms"))).toBeGreaterThanOrEqual(3000);
  await expect(panel.getByTestId("delay-stateless")).toContainText(
    /still accepted after 3\.\d s — until exp \(\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2} UTC, 30 days with the article preset\)/,
  );

  await expect(panel.getByTestId("revocation-verdict")).toHaveAttribute("data-state", "passed");
  await expect(panel.getByTestId("revocation-verdict")).toContainText("refused at the next request");

  // The timeline holds the real calls: the sign-out, and the stateless check answering 200 after it.
  const timeline = page.getByTestId("timeline");
  await expect(timeline.locator("li.entry", { hasText: "/api/sessions/revoke-all" })).toHaveAttribute("data-status", "200");
  expect(await timeline.locator("li.entry[data-status='200']", { hasText: "/api/demo/stateless-jwt" }).count()).toBeGreaterThanOrEqual(30);
  expect(failures).toEqual([]);
});
