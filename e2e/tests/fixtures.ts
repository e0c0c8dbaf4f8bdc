import * as fs from "fs";
import * as path from "path";
import { test as base, Request, Response } from "@playwright/test";

export { expect } from "@playwright/test";

/** Where each test leaves what it saw issued and requested, for `leak-check.ts` after the run. */
export const leakWatchDir = path.resolve(__dirname, "../.tmp/leak-watch");

/** Body and form fields that carry a secret, whichever way they travel. */
const SECRET_FIELDS = [
  "password",
  "current_password",
  "new_password",
  "access_token",
  "refresh_token",
  "device_token",
  "form_token",
  "token",
];
/** Cookies that carry a session id or a refresh token (any `__Host-`/`__Secure-` prefix). */
const SECRET_COOKIES = /^(?:__Host-|__Secure-)?(tl_session|tl_device|tl_refresh)=([^;]*)/;

function fieldsOf(text: string | null, contentType: string | undefined): string[] {
  if (!text) return [];
  const found: string[] = [];
  if (contentType?.includes("application/x-www-form-urlencoded")) {
    const form = new URLSearchParams(text);
    for (const name of SECRET_FIELDS) {
      const value = form.get(name);
      if (value) found.push(value);
    }
    return found;
  }
  try {
    const body = JSON.parse(text);
    if (body && typeof body === "object") {
      for (const name of SECRET_FIELDS) {
        if (typeof body[name] === "string") found.push(body[name]);
      }
    }
  } catch {
    // Not JSON: nothing of ours.
  }
  return found;
}

/**
 * Every test records the secrets that crossed the wire — passwords it sent, tokens, device
 * secrets and session ids it was given — and every URL its pages requested. `leak-check.ts` then
 * looks for each of them in the server's log and in those URLs.
 */
export const test = base.extend<{ leakWatch: void }>({
  leakWatch: [
    async ({ context }, use, testInfo) => {
      const secrets = new Set<string>();
      const urls: string[] = [];
      const pending: Promise<void>[] = [];
      const onRequest = (request: Request) => {
        urls.push(request.url());
        const type = request.headers()["content-type"];
        fieldsOf(request.postData(), type).forEach((s) => secrets.add(s));
        const device = request.headers()["x-device-token"];
        if (device) secrets.add(device);
        const bearer = request.headers()["authorization"]?.match(/^Bearer (.+)$/);
        if (bearer) secrets.add(bearer[1]);
      };
      const onResponse = (response: Response) => {
        pending.push(
          (async () => {
            for (const header of await response.headersArray()) {
              const name = header.name.toLowerCase();
              if (name === "set-cookie") {
                const cookie = header.value.match(SECRET_COOKIES);
                if (cookie && cookie[2]) secrets.add(cookie[2]);
              } else if (name === "x-device-token") {
                secrets.add(header.value);
              }
            }
            const type = (await response.allHeaders())["content-type"];
            if (type?.includes("application/json")) {
              const text = await response.text().catch(() => null);
              fieldsOf(text, type).forEach((s) => secrets.add(s));
            }
          })().catch(() => undefined),
        );
      };
      context.on("request", onRequest);
      context.on("response", onResponse);
      await use();
      await Promise.allSettled(pending);
      fs.mkdirSync(leakWatchDir, { recursive: true });
      const file = path.join(leakWatchDir, `${testInfo.testId}-${testInfo.retry}.json`);
      fs.writeFileSync(file, JSON.stringify({ test: testInfo.title, secrets: [...secrets], urls }));
    },
    { auto: true },
  ],
});

export type { APIRequestContext, Locator, Page } from "@playwright/test";
