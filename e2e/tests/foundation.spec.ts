import { expect, test } from "./fixtures";
import { openLab, uniqueName } from "./helpers";

test("the lab page hydrates without errors", async ({ page }) => {
  const failures = await openLab(page);
  // The clock is loaded by the browser after hydration, through the public API.
  await expect(page.getByTestId("server-now")).toHaveText(/^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2} UTC$/);
  const clockCall = page.getByTestId("timeline").locator("li.entry", { hasText: "/api/demo/clock" });
  await expect(clockCall).toHaveCount(1);
  // Which instance answered (X-Tokenlab-Instance): unnamed, the host name and the port.
  await expect(clockCall.getByTestId("instance")).toHaveText(new RegExp(`:${process.env.TOKENLAB_E2E_PORT ?? "3107"}$`));
  expect(failures).toEqual([]);
});

test("registering an account in the UI works and shows in the timeline", async ({ page }) => {
  await openLab(page);
  const name = uniqueName("e2e");
  const form = page.getByTestId("register-form");
  await form.getByLabel("Username").fill(name);
  await form.getByLabel(/Password/).fill("a long enough password");
  await form.getByRole("button", { name: "Register" }).click();

  await expect(page.getByTestId("account-created")).toContainText(name);
  const entry = page.getByTestId("timeline").locator("li.entry").first();
  await expect(entry).toContainText("POST");
  await expect(entry).toContainText("/api/accounts");
  await expect(entry).toHaveAttribute("data-status", "201");

  // The same name again is refused, and the panel shows the reason and what it means.
  await form.getByLabel(/Password/).fill("a long enough password");
  await form.getByRole("button", { name: "Register" }).click();
  await expect(page.locator(".account .refusal")).toHaveAttribute("data-reason", "username_taken");
  await expect(page.locator(".account .refusal .explanation")).toContainText("already has this username");
  await expect(page.getByTestId("timeline").locator("li.entry").first()).toHaveAttribute("data-reason", "username_taken");
});

test("a weak password is explained before and after submitting", async ({ page }) => {
  await openLab(page);
  const form = page.getByTestId("register-form");
  await form.getByLabel("Username").fill(uniqueName("weak"));
  await form.getByLabel(/Password/).fill("short");
  await expect(form.locator(".hint")).toContainText("8 to 128 characters");
  await form.getByRole("button", { name: "Register" }).click();
  await expect(page.locator(".account .refusal")).toHaveAttribute("data-reason", "weak_password");
});

test("a clock button moves the header's time", async ({ page, request }) => {
  await request.post("/api/demo/clock", { data: { reset: true } });
  await openLab(page);
  const now = page.getByTestId("server-now");
  await expect(now).toHaveText(/UTC$/);
  const before = Date.parse((await now.innerText()).replace(" UTC", "Z").replace(" ", "T"));

  await page.getByRole("button", { name: "+31 days" }).click();
  await expect(page.getByTestId("clock-offset")).toHaveText("31 d ahead");
  const after = Date.parse((await now.innerText()).replace(" UTC", "Z").replace(" ", "T"));
  const movedDays = (after - before) / 86_400_000;
  expect(movedDays).toBeGreaterThanOrEqual(31);
  expect(movedDays).toBeLessThan(31.01);

  await page.getByRole("button", { name: "reset" }).click();
  await expect(page.getByTestId("clock-offset")).toHaveText("real time");
});

test("no page logs a console error or misses a file, the favicon included", async ({ page, baseURL }) => {
  const origin = new URL(baseURL!).origin;
  const isApi = (url: URL) => url.origin === origin && url.pathname.startsWith("/api/");
  const problems: string[] = [];
  page.on("console", (message) => {
    if (message.type() !== "error") return;
    const at = message.location().url;
    // The panels' own API calls answer 401 or 404 on purpose before anyone logs in (that is the
    // lesson), and the browser logs each as a failed resource. Anything else is a fault.
    if (at && isApi(new URL(at))) return;
    problems.push(`console error: ${message.text()} (${at || "no location"})`);
  });
  page.on("response", (response) => {
    const url = new URL(response.url());
    if (url.origin === origin && !isApi(url) && response.status() >= 400) {
      problems.push(`${response.status()} ${url.pathname}`);
    }
  });

  for (const path of ["/", "/walkthrough", "/attacks"]) {
    const failures = await openLab(page, path);
    await page.waitForLoadState("networkidle");
    expect(failures, path).toEqual([]);
    // The page names its icon, so the browser never asks for a missing /favicon.ico; and the
    // server has the icon it names.
    const icon = page.locator("head link[rel='icon']");
    await expect(icon).toHaveAttribute("type", "image/svg+xml");
    const href = await icon.getAttribute("href");
    const served = await page.request.get(new URL(href!, origin).toString());
    expect(served.status(), href!).toBe(200);
    expect(served.headers()["content-type"]).toContain("image/svg+xml");
  }
  expect(problems).toEqual([]);
});

test("the inspector's tables stay inside their panel and scroll sideways to every column", async ({ page }) => {
  const failures = await openLab(page);
  // A device login fills the widest table: seven columns of ids, hashes and times.
  const device = page.getByTestId("device-panel");
  const form = device.getByTestId("device-login");
  await form.getByLabel("hardened").check();
  await form.getByLabel("Password").fill("wonderland-demo");
  await form.getByRole("button", { name: "Log in on this device" }).click();
  await expect(device.getByTestId("device-mode")).toHaveText("hardened");

  const inspector = page.getByTestId("inspector");
  const devices = inspector.getByTestId("inspector-devices");
  await expect(devices.locator("tbody tr").first()).toBeVisible();
  await inspector.scrollIntoViewIfNeeded();
  const panel = (await inspector.boundingBox())!;
  const scrollers = inspector.locator(".table-scroll");
  expect(await scrollers.count()).toBeGreaterThan(0);
  for (const scroller of await scrollers.all()) {
    const box = (await scroller.boundingBox())!;
    expect(box.x).toBeGreaterThanOrEqual(panel.x);
    expect(box.x + box.width).toBeLessThanOrEqual(panel.x + panel.width);
    expect(await scroller.evaluate((el) => getComputedStyle(el).overflowX)).toBe("auto");
  }
  // Whatever the width, the last column can be scrolled wholly into the panel.
  const last = devices.locator("th").last();
  await expect(last).toHaveText("state");
  await last.scrollIntoViewIfNeeded();
  const column = (await last.boundingBox())!;
  const shown = (await devices.locator(".table-scroll").boundingBox())!;
  expect(column.x).toBeGreaterThanOrEqual(shown.x - 1);
  expect(column.x + column.width).toBeLessThanOrEqual(shown.x + shown.width + 1);
  expect(failures).toEqual([]);
});
