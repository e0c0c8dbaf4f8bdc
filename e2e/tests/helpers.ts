import * as path from "path";
import { expect, Locator, Page } from "@playwright/test";

const cspListeners = new WeakMap<Page, ((violation: string) => void)[]>();

/**
 * Calls `report` with every Content-Security-Policy violation that `page` reports from its next
 * navigation on, both ways a browser tells: the `securitypolicyviolation` event, and the console
 * message, which also comes from frames the event listener does not reach (the attack lab's
 * sandboxed `srcdoc` frame, which inherits the page's policy).
 */
export async function onCspViolation(page: Page, report: (violation: string) => void) {
  let listeners = cspListeners.get(page);
  if (!listeners) {
    const all: ((violation: string) => void)[] = [];
    listeners = all;
    cspListeners.set(page, all);
    await page.exposeBinding("tokenlabCspViolation", ({ frame }, violation: string) => {
      all.forEach((listener) => listener(`${violation} (frame ${frame.url()})`));
    });
    await page.addInitScript(() => {
      document.addEventListener("securitypolicyviolation", (event) => {
        const page = window as unknown as { tokenlabCspViolation: (violation: string) => void };
        const blocked = event.blockedURI || "(inline)";
        page.tokenlabCspViolation(`${event.effectiveDirective} refused ${blocked}: ${event.sample}`);
      });
    });
    page.on("console", (message) => {
      if (/content security policy/i.test(message.text())) {
        all.forEach((listener) => listener(`console: ${message.text()}`));
      }
    });
  }
  listeners.push(report);
}

/**
 * Opens the lab and waits until hydration has attached the event handlers. The failures it returns
 * collect uncaught errors and Content-Security-Policy violations from then on.
 */
export async function openLab(page: Page, path = "/") {
  const failures: string[] = [];
  page.on("pageerror", (err) => failures.push(err.message));
  await onCspViolation(page, (violation) => failures.push(`CSP: ${violation}`));
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

/** Chooses a race, sets the number of copies, fires, and waits for the verdict. */
export async function race(page: Page, kind: RegExp, copies: number): Promise<Locator> {
  const panel = page.getByTestId("race-panel");
  await panel.getByLabel(kind).check();
  await panel.getByLabel("Copies").fill(String(copies));
  await panel.getByRole("button", { name: `Fire ${copies} at once` }).click();
  await expect(panel.getByTestId("race-verdict")).toBeVisible({ timeout: 20_000 });
  return panel;
}

/** The count in the table's `row` ("all" or an instance) under `outcome`. */
export async function cell(panel: Locator, row: string, outcome: string): Promise<number> {
  const text = await panel
    .getByTestId("race-table")
    .locator(`tr[data-instance="${row}"] td[data-outcome="${outcome}"]`)
    .innerText();
  return Number(text);
}
