import { expect, Locator, test } from "@playwright/test";
import { cell, openLab, race } from "../tests/helpers";

// The names deploy/stack.py gives its instances by default.
const INSTANCES = ["A", "B"];

/** The newest timeline entry for `path` answered 200, and names an instance of the stack. */
async function expectAnswered(timeline: Locator, path: string) {
  const entry = timeline.locator("li.entry", { hasText: path }).first();
  await expect(entry).toHaveAttribute("data-status", "200");
  await expect(entry.getByTestId("instance")).toHaveText(new RegExp(`^(${INSTANCES.join("|")})$`));
}

test("through nginx, every scheme logs in, calls and logs out with no instance to stick to, and both instances answer", async ({ page }) => {
  const failures = await openLab(page);
  const timeline = page.getByTestId("timeline");

  // Nothing ties the browser to an instance: a login answered by one is used on whichever the round
  // robin picks next, which works only because they share the sessions (Redis), the devices and
  // refresh tokens (PostgreSQL) and the signing keys.
  const session = page.getByTestId("session-panel");
  const sessionForm = session.getByTestId("session-login");
  await sessionForm.getByLabel("Username").fill("alice");
  await sessionForm.getByLabel("Password").fill("wonderland-demo");
  await sessionForm.getByRole("button", { name: "Log in" }).click();
  await expect(session.getByTestId("session-user")).toContainText("alice");
  await session.getByRole("button", { name: "Call a protected API" }).click();
  await expect(session.getByTestId("session-call-result")).toContainText("200 OK — signed in as alice");
  await expectAnswered(timeline, "/api/session/me");

  const device = page.getByTestId("device-panel");
  const deviceForm = device.getByTestId("device-login");
  await deviceForm.getByLabel("hardened").check();
  await deviceForm.getByLabel("Password").fill("wonderland-demo");
  await deviceForm.getByRole("button", { name: "Log in on this device" }).click();
  await expect(device.getByTestId("device-mode")).toHaveText("hardened");
  await device.getByRole("button", { name: "Call a protected API" }).click();
  await expect(device.getByTestId("device-call-result")).toContainText("200 OK");
  await expectAnswered(timeline, "/api/device/me");

  const bearer = page.getByTestId("bearer-panel");
  const bearerForm = bearer.getByTestId("bearer-login");
  await bearerForm.getByLabel("Password").fill("wonderland-demo");
  await bearerForm.getByRole("button", { name: "Log in (password grant)" }).click();
  await expect(bearer.getByTestId("bearer-access")).toHaveText("in memory");
  await bearer.getByRole("button", { name: "Call a protected API" }).click();
  await expect(bearer.getByTestId("bearer-call-result")).toContainText("200 OK");
  await expectAnswered(timeline, "/api/jwt/me");

  // Redis is shared with whatever else runs on this machine, and a session there lives 12 hours:
  // logging out leaves none of this run's behind.
  await session.getByRole("button", { name: "Log out" }).click();
  await expect(sessionForm).toBeVisible();
  await device.getByRole("button", { name: "Log out", exact: true }).click();
  await expect(deviceForm).toBeVisible();
  await bearer.getByRole("button", { name: "Log out (revoke)" }).click();
  await expect(bearerForm).toBeVisible();

  // Read in one go in the page: an entry is added only once its answer has arrived, with the
  // instance that sent it, so a call still in flight cannot make this read inconsistent.
  const answeredBy = await timeline
    .locator("li.entry")
    .evaluateAll((entries) =>
      entries.map((entry) => entry.querySelector("[data-testid=instance]")?.textContent ?? null),
    );
  // Every entry names A or B: none went unanswered, and none came from anything but the stack.
  expect(answeredBy.filter((name) => !INSTANCES.includes(name ?? ""))).toEqual([]);
  // nginx alternates requests between the instances, and the page's calls above (page load,
  // three logins, calls and logouts, the panels' refreshes) follow one another: both must show.
  expect([...new Set(answeredBy)].sort()).toEqual(INSTANCES);
  expect(failures).toEqual([]);
});

test("the race console through nginx: copies land on both instances and each guarantee holds across them", async ({ page }) => {
  const failures = await openLab(page);
  const session = page.getByTestId("session-panel");
  const sessionForm = session.getByTestId("session-login");
  await sessionForm.getByLabel("Password").fill("wonderland-demo");
  await sessionForm.getByRole("button", { name: "Log in" }).click();
  await expect(session.getByTestId("session-user")).toContainText("alice");

  // The round robin sends every other copy to the other instance; the one form token is consumed
  // in the shared database, so the instance that loses the race says so like the one that won.
  let panel = await race(page, /one form token/, 60);
  await expect(panel.getByTestId("race-verdict")).toHaveAttribute("data-held", "true");
  for (const instance of INSTANCES) {
    const answered = (await cell(panel, instance, "created")) + (await cell(panel, instance, "duplicate"));
    expect(answered, `copies answered by ${instance}`).toBeGreaterThan(0);
  }
  expect(await cell(panel, "all", "created")).toBe(1);
  expect(await cell(panel, "all", "duplicate")).toBe(59);

  await panel.getByLabel(/one refresh token/).check();
  await panel.getByLabel("Password").fill("wonderland-demo");
  panel = await race(page, /one refresh token/, 60);
  await expect(panel.getByTestId("race-verdict")).toHaveAttribute("data-held", "true");
  for (const instance of INSTANCES) {
    const answered = (await cell(panel, instance, "rotated")) + (await cell(panel, instance, "repeated"));
    expect(answered, `refreshes answered by ${instance}`).toBeGreaterThan(0);
  }
  expect(await cell(panel, "all", "rotated")).toBe(1);

  await session.getByRole("button", { name: "Log out" }).click();
  await expect(sessionForm).toBeVisible();
  expect(failures).toEqual([]);
});
