import * as fs from "fs";
import * as path from "path";

import { leakWatchDir } from "./tests/fixtures";

/**
 * After the whole browser suite: no secret that crossed the wire — a password a test typed, an
 * access or refresh token, a device secret, a session id, a form token — appears in the server's
 * log (written at `debug`, see playwright.config.ts) or in any URL the browser requested.
 * Secrets shorter than 8 characters are left out: they would match by chance (none of ours is).
 */
/**
 * The demo account's password is published — in the README, on the lab page and in the demo
 * server's start message — so a test typing it leaks nothing. Nothing else is exempt.
 */
const PUBLISHED = new Set(["wonderland-demo"]);

export default async function leakCheck() {
  const logPath = path.resolve(__dirname, ".tmp/server.log");
  if (!fs.existsSync(logPath) || !fs.existsSync(leakWatchDir)) {
    throw new Error(`leak check: nothing to check (${logPath}, ${leakWatchDir})`);
  }
  const log = fs.readFileSync(logPath, "utf8");
  const secrets = new Map<string, string>();
  const urls: { test: string; url: string }[] = [];
  for (const file of fs.readdirSync(leakWatchDir)) {
    const seen = JSON.parse(fs.readFileSync(path.join(leakWatchDir, file), "utf8"));
    for (const secret of seen.secrets) {
      if (secret.length >= 8 && !PUBLISHED.has(secret)) secrets.set(secret, seen.test);
    }
    for (const url of seen.urls) urls.push({ test: seen.test, url });
  }
  const leaks: string[] = [];
  for (const [secret, test] of secrets) {
    const shown = `${secret.slice(0, 4)}…(${secret.length} chars, from "${test}")`;
    if (log.includes(secret)) leaks.push(`in the server log: ${shown}`);
    const inUrl = urls.find(({ url }) => url.includes(secret) || url.includes(encodeURIComponent(secret)));
    if (inUrl) leaks.push(`in a URL requested by "${inUrl.test}": ${shown}`);
  }
  console.log(
    `leak check: ${secrets.size} secrets issued or sent during the suite, looked for in ` +
      `${(log.length / 1e6).toFixed(1)} MB of server log (debug) and ${urls.length} URLs: ${leaks.length} found`,
  );
  if (leaks.length > 0) {
    throw new Error(`secrets leaked:\n${leaks.join("\n")}`);
  }
}
