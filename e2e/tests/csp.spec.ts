import { expect, test } from "./fixtures";
import { onCspViolation, openLab } from "./helpers";

// The pages' Content-Security-Policy (ADR 0024) as a browser enforces it: the app hydrates, Swagger
// UI renders, and the attack lab's sandboxed frame posts its form, and no frame reports a violation.
// `openLab` counts violations among its failures, so every spec checks them on the pages it opens.

test.beforeEach(async ({ request }) => {
  expect((await request.post("/api/demo/reset")).status()).toBe(200);
});
test.afterEach(async ({ request }) => {
  expect((await request.post("/api/demo/reset")).status()).toBe(200);
});

test("the lab's pages hydrate under the policy without a violation", async ({ page }) => {
  for (const path of ["/", "/walkthrough", "/attacks"]) {
    const served = page.waitForResponse((response) => new URL(response.url()).pathname === path);
    const failures = await openLab(page, path);
    const policy = (await served).headers()["content-security-policy"];
    expect(policy, path).toContain("script-src 'self' 'wasm-unsafe-eval' 'sha256-");
    expect(policy, path).not.toContain("unsafe-inline");
    await page.waitForLoadState("networkidle");
    expect(failures, path).toEqual([]);
  }
});

test("the not-found page hydrates too: its link navigates without a reload", async ({ page }) => {
  const violations: string[] = [];
  await onCspViolation(page, (violation) => violations.push(violation));
  const response = await page.goto("/no/such/page");
  expect(response?.status()).toBe(404);
  expect(response?.headers()["content-security-policy"]).toContain("'wasm-unsafe-eval'");
  await expect(page.locator("main.not-found[data-hydrated='true']")).toBeVisible();
  // Set in this document: it survives only if the lab's router follows the link, not a reload.
  await page.evaluate(() => ((window as unknown as { sameDocument: boolean }).sameDocument = true));
  await page.getByRole("link", { name: "Back to the lab" }).click();
  await expect(page.locator("main.lab[data-hydrated='true']")).toBeVisible();
  expect(await page.evaluate(() => (window as unknown as { sameDocument?: boolean }).sameDocument)).toBe(true);
  expect(violations).toEqual([]);
});

test("the API reference renders under its own policy without a violation", async ({ page }) => {
  const violations: string[] = [];
  await onCspViolation(page, (violation) => violations.push(violation));
  const response = await page.goto("/api/docs");
  const policy = response?.headers()["content-security-policy"] ?? "";
  expect(policy).toContain("script-src 'self';");
  expect(policy).not.toContain("unsafe");
  await expect(page.locator(".swagger-ui .info .title")).toContainText("tokenlab");
  // Open one operation: its parameters and responses render from the document.
  const operation = page.locator(".opblock").first();
  await operation.locator(".opblock-summary").click();
  await expect(operation.locator(".opblock-body")).toBeVisible();
  await page.waitForLoadState("networkidle");
  expect(violations).toEqual([]);
});

test("the attack lab's cross-site frame posts under the policy of the page it was reached from", async ({ page }) => {
  test.setTimeout(60_000);
  // Reached through the lab's router, /attacks runs under the policy that / was served with.
  const failures = await openLab(page, "/");
  await page.getByRole("navigation", { name: "Pages" }).getByRole("link", { name: "Attack lab" }).click();
  await expect(page.locator("main.attacks-page[data-hydrated='true']")).toBeVisible();
  const card = page.getByTestId("attack-cross-site");
  await card.getByRole("button", { name: "Run the attack" }).click();
  // A refused script leaves the card running: then the poll shows the violation, not the state.
  const outcome = async () => (failures.length > 0 ? failures : await card.getAttribute("data-state"));
  await expect.poll(outcome, { timeout: 15_000 }).toBe("passed");
  await expect(card.getByTestId("attack-result")).toContainText("refused it as cross_site_request (refusals 0 → 1)");
  await expect(card.frameLocator("iframe[data-testid='attacker-frame']").locator("body")).toContainText(
    "cross_site_request",
  );
  expect(failures).toEqual([]);
});

test("an inline script the policy does not list is refused, and reported", async ({ page }) => {
  // The other tests would pass vacuously if violations went unseen, or if nothing were enforced.
  const failures = await openLab(page, "/");
  await page.evaluate(() => {
    const script = document.createElement("script");
    script.textContent = "window.injected = true;";
    document.head.append(script);
  });
  await expect.poll(() => failures.length).toBeGreaterThan(0);
  expect(failures.join("\n")).toContain("script-src");
  expect(await page.evaluate(() => (window as unknown as { injected?: boolean }).injected)).toBeUndefined();
});
