import * as path from "path";
import { expect, Page } from "@playwright/test";

/** Opens the lab and waits until hydration has attached the event handlers. */
export async function openLab(page: Page, path = "/") {
  const failures: string[] = [];
  page.on("pageerror", (err) => failures.push(err.message));
  await page.goto(path);
  await expect(page.locator("main.lab[data-hydrated='true']")).toBeVisible();
  return failures;
}

/** A username no other test uses, within the 32-character limit. */
export function uniqueName(prefix: string): string {
  const suffix = `${Date.now().toString(36)}${Math.floor(Math.random() * 1e6).toString(36)}`;
  return `${prefix}-${suffix}`.slice(0, 32);
}

/**
 * Where the tests write the README's screenshots: produced by these tests, never by hand. They land
 * under the repository's target/ so that a test run leaves the tree clean; `just screenshots` copies
 * them into docs/screenshots/, where the README links them.
 */
export const screenshotDir = path.resolve(__dirname, "../../target/screenshots");
