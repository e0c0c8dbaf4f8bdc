import * as path from "path";
import { defineConfig } from "@playwright/test";

import base from "./playwright.config";

// The browser test of `just e2e-dbsc`: Device Bound Session Credentials, which Chromium performs
// only on an https origin it trusts. dbsc-tests/serve.py puts the lab behind nginx with a certificate
// from a throwaway CA, trusted only in a private NSS database that this browser gets as its HOME.
const port = Number(process.env.TOKENLAB_DBSC_PORT ?? "8443");
const bin = process.env.TOKENLAB_BIN ?? "../target/debug/tokenlab";
const siteRoot = process.env.TOKENLAB_SITE_ROOT ?? "target/site";
const home = path.resolve(__dirname, ".tmp/dbsc/home");

export default defineConfig({
  ...base,
  testDir: "./dbsc-tests",
  // The leak check reads the single server's log; this server logs elsewhere.
  globalTeardown: undefined,
  outputDir: "test-results/dbsc",
  use: {
    ...base.use,
    baseURL: `https://localhost:${port}`,
    launchOptions: {
      ...base.use?.launchOptions,
      env: { ...process.env, HOME: home },
      args: [
        ...(base.use?.launchOptions?.args ?? []),
        // The features Chromium 156 gates DBSC behind; software keys, since a test machine has no
        // TPM (the browser still never lets a page read the key).
        "--enable-features=DeviceBoundSessions,EnableBoundSessionCredentials,EnableBoundSessionCredentialsSoftwareKeysForManualTesting,UseUnexportableKeyServiceInBrowserProcess,DeviceBoundSessionsDevTools",
      ],
    },
  },
  webServer: {
    command: `exec python3 e2e/dbsc-tests/serve.py --bin "${bin}" --site-root "${siteRoot}" --port ${port}`,
    cwd: "..",
    url: `https://localhost:${port}/healthz`,
    // Playwright's own readiness probe does not use the browser's trust store.
    ignoreHTTPSErrors: true,
    reuseExistingServer: false,
    timeout: 60_000,
    stdout: "pipe",
    stderr: "pipe",
  },
});
