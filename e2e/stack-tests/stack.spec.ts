import { expect, Locator, test } from "@playwright/test";
import { openLab } from "../tests/helpers";

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
