import { APIRequestContext, CDPSession, Page } from "@playwright/test";
import { expect, test } from "../tests/fixtures";
import { openLab } from "../tests/helpers";

// Device Bound Session Credentials, performed by Chromium itself: at login the browser makes a
// key of its own and registers it; the session then needs a ten-minute cookie that only that key
// renews. The browser's side is watched through the DevTools protocol, as the draft intends.

type DbscEvent = {
  succeeded: boolean;
  creationEventDetails?: { fetchResult: string };
  refreshEventDetails?: { refreshResult: string };
  challengeEventDetails?: { challengeResult: string };
};

async function watchDbsc(page: Page): Promise<DbscEvent[]> {
  const events: DbscEvent[] = [];
  const cdp: CDPSession = await page.context().newCDPSession(page);
  cdp.on("Network.deviceBoundSessionEventOccurred" as never, (event: DbscEvent) => events.push(event));
  await cdp.send("Network.enable");
  await cdp.send("Network.enableDeviceBoundSessions" as never, { enable: true } as never);
  return events;
}

/** Another machine: none of this browser's cookies or keys, only what it is handed. */
async function thief(page: Page): Promise<APIRequestContext> {
  const context = await page.context().browser()!.newContext({ baseURL: new URL(page.url()).origin, ignoreHTTPSErrors: true });
  return context.request;
}

async function reasonOf(response: { json(): Promise<unknown> }): Promise<string> {
  return ((await response.json()) as { reason: string }).reason;
}

test("the browser binds the session to its own key; a copied session cookie stops working with the short-lived one", async ({ page }) => {
  const failures = await openLab(page);
  const events = await watchDbsc(page);
  const panel = page.getByTestId("session-panel");
  await panel.getByTestId("session-login").getByLabel("Password").fill("wonderland-demo");
  await panel.getByRole("button", { name: "Log in" }).click();
  await expect(panel.getByTestId("session-user")).toContainText("alice");

  // Chromium registered a key: its own fetch to the registration path, reported by DevTools.
  await expect.poll(() => events.filter((e) => e.creationEventDetails?.fetchResult === "Success").length).toBe(1);
  await panel.getByRole("button", { name: "Call a protected API" }).click();
  await expect(panel.getByTestId("session-call-result")).toContainText("200 OK");
  const key = await panel.getByTestId("session-bound-key").innerText();
  expect(key).toMatch(/^[A-Za-z0-9_-]{43}$/);

  // A thief copies the session cookie — and, for good measure, the short-lived one too.
  const cookies = await page.context().cookies();
  const session = cookies.find((c) => c.name === "__Host-tl_session");
  const bound = cookies.find((c) => c.name === "__Host-tl_bound");
  expect(session?.httpOnly && bound?.httpOnly && bound?.secure).toBe(true);
  const other = await thief(page);
  const sessionOnly = await other.get("/api/session/me", { headers: { cookie: `__Host-tl_session=${session!.value}` } });
  expect(sessionOnly.status()).toBe(401);
  expect(await reasonOf(sessionOnly)).toBe("dbsc_refresh_required");
  const both = `__Host-tl_session=${session!.value}; __Host-tl_bound=${bound!.value}`;
  expect((await other.get("/api/session/me", { headers: { cookie: both } })).status()).toBe(200);

  // Eleven minutes on the demo clock: the copy is spent, and the thief has no key to renew it.
  const moved = await other.post("/api/demo/clock", { data: { advance_seconds: 660 } });
  expect(moved.status()).toBe(200);
  const stale = await other.get("/api/session/me", { headers: { cookie: both } });
  expect(await reasonOf(stale)).toBe("dbsc_refresh_required");
  const challenged = await other.post("/api/session/dbsc/refresh", {
    headers: { cookie: both, "sec-secure-session-id": "guess" },
  });
  expect(await reasonOf(challenged)).toBe("dbsc_proof_invalid");

  // The browser renews it with its key: challenged, then signed (DevTools shows both), and the
  // page's call goes through.
  const refreshesBefore = events.filter((e) => e.refreshEventDetails?.refreshResult === "Refreshed").length;
  await panel.getByRole("button", { name: "Call a protected API" }).click();
  await expect(panel.getByTestId("session-call-result")).toContainText("after the browser renewed the bound cookie with its key");
  await expect.poll(() => events.filter((e) => e.refreshEventDetails?.refreshResult === "Refreshed").length).toBeGreaterThan(refreshesBefore);
  expect(events.some((e) => e.challengeEventDetails?.challengeResult === "Success")).toBe(true);
  await expect(panel.getByTestId("session-bound-key")).toHaveText(key);
  expect(failures).toEqual([]);
});
