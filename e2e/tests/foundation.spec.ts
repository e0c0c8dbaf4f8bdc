import { expect, test } from "@playwright/test";
import { openLab, uniqueName } from "./helpers";

test("the lab page hydrates without errors", async ({ page }) => {
  const failures = await openLab(page);
  // The clock is loaded by the browser after hydration, through the public API.
  await expect(page.getByTestId("server-now")).toHaveText(/^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2} UTC$/);
  await expect(page.getByTestId("timeline").locator("li.entry", { hasText: "/api/demo/clock" })).toHaveCount(1);
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
