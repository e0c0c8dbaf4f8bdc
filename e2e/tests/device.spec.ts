import * as path from "path";
import { expect, Page, test } from "./fixtures";
import { openLab, screenshotDir } from "./helpers";

test.beforeEach(async ({ request }) => {
  await request.post("/api/demo/clock", { data: { reset: true } });
});

async function logInOnDevicePanel(page: Page, mode: "as in the article — insecure" | "hardened") {
  const panel = page.getByTestId("device-panel");
  const form = panel.getByTestId("device-login");
  await form.getByLabel(mode).check();
  await form.getByLabel("Password").fill("wonderland-demo");
  await form.getByRole("button", { name: "Log in on this device" }).click();
  await expect(panel.getByTestId("device-mode")).toHaveText(mode);
  return panel;
}

async function logInOnSessionPanel(page: Page) {
  const panel = page.getByTestId("session-panel");
  const form = panel.getByTestId("session-login");
  await form.getByLabel("Password").fill("wonderland-demo");
  await form.getByRole("button", { name: "Log in" }).click();
  await expect(panel.getByTestId("session-user")).toContainText("alice");
  return panel;
}

for (const mode of ["as in the article — insecure", "hardened"] as const) {
  test(`device token (${mode}) survives the session timeout that ends the session-id scheme`, async ({ page }) => {
    await openLab(page);
    const session = await logInOnSessionPanel(page);
    const device = await logInOnDevicePanel(page, mode);
    if (mode === "hardened") {
      await expect(device.getByTestId("device-token")).toContainText("(64 chars)");
    } else {
      // As written, the token shown is the device id itself.
      const id = await device.getByTestId("device-id").innerText();
      await expect(device.getByTestId("device-token")).toContainText(`(${id.length} chars)`);
    }
    await device.getByRole("button", { name: "Call a protected API" }).click();
    await expect(device.getByTestId("device-call-result")).toContainText("200 OK");
    const tokenBefore = await device.getByTestId("device-token").innerText();

    await page.getByRole("button", { name: "+31 min" }).click();
    await expect(page.getByTestId("clock-offset")).toHaveText("31 min ahead");

    // C5: the device token is re-attached from the database...
    await device.getByRole("button", { name: "Call a protected API" }).click();
    await expect(device.getByTestId("device-renewed")).toContainText(
      "Server session had expired — re-attached from the database, no login needed",
    );
    const timeline = page.getByTestId("timeline");
    const renewedCall = timeline.locator("li.entry", { hasText: "/api/device/me" }).first();
    await expect(renewedCall).toContainText("x-session-renewed: 1");
    if (mode === "hardened") {
      await expect(device.getByTestId("device-renewed")).toContainText("secret was rotated");
      await expect(device.getByTestId("device-token")).not.toHaveText(tokenBefore);
    }
    // ...while C7: the session-id scheme asks for a new login.
    await session.getByRole("button", { name: "Call a protected API" }).click();
    await expect(session.getByTestId("session-expired")).toContainText("Session expired — log in again");

    // The rotated token works on the next call, from the new session.
    await device.getByRole("button", { name: "Call a protected API" }).click();
    await expect(device.getByTestId("device-call-result")).toContainText("200 OK");
    if (mode === "hardened") {
      // The README's picture of the lab: two schemes, one timeout, two outcomes.
      await page.screenshot({ path: path.join(screenshotDir, "lab.png") });
    }
  });
}

test("revoking this device from the device list drops the panel to logged out", async ({ page }) => {
  await openLab(page);
  const device = await logInOnDevicePanel(page, "hardened");
  const list = device.getByTestId("device-list");
  const row = list.locator("tr", { hasText: "(this device)" });
  await expect(row).toBeVisible();
  await row.getByRole("button", { name: "Revoke" }).click();
  await expect(device.locator(".refusal")).toHaveAttribute("data-reason", "device_revoked");
  await expect(device.getByTestId("device-login")).toBeVisible();
  await expect(device.getByTestId("device-token")).toHaveText("none");
});

test("the as-written mode is labelled insecure and says why", async ({ page }) => {
  await openLab(page);
  const form = page.getByTestId("device-panel").getByTestId("device-login");
  await form.getByLabel("as in the article — insecure").check();
  await expect(page.getByTestId("as-written-warning")).toContainText("anyone who learns it is you");
});
