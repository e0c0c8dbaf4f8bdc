import { defineConfig } from "@playwright/test";

const port = Number(process.env.TOKENLAB_E2E_PORT ?? "3107");
const bin = process.env.TOKENLAB_BIN ?? "../target/debug/tokenlab";
const siteRoot = process.env.TOKENLAB_SITE_ROOT ?? "target/site";

export default defineConfig({
  testDir: "./tests",
  // One server and one database for the run: tests create their own users so they never collide,
  // and they run one at a time because the demo clock is shared.
  workers: 1,
  fullyParallel: false,
  forbidOnly: true,
  retries: 0,
  timeout: 30_000,
  expect: { timeout: 10_000 },
  reporter: [["list"]],
  use: {
    baseURL: `http://127.0.0.1:${port}`,
    trace: "retain-on-failure",
    launchOptions: {
      // Debian's Chromium; set TOKENLAB_CHROMIUM where Playwright's own browser should be used.
      executablePath: process.env.TOKENLAB_CHROMIUM ?? "/usr/bin/chromium",
      args: [
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
      ],
    },
  },
  // After the suite: no secret the tests saw issued or sent is in the server's log or in a URL
  // (tests/fixtures.ts records them).
  globalTeardown: "./leak-check.ts",
  webServer: {
    // The log goes to e2e/.tmp/server.log at `debug`, everything a server would log, for the leak
    // check to read.
    command: `rm -rf e2e/.tmp && mkdir -p e2e/.tmp && RUST_LOG=debug "${bin}" serve --bind 127.0.0.1:${port} --database-url sqlite://e2e/.tmp/e2e.db --profile demo --site-root "${siteRoot}" > e2e/.tmp/server.log 2>&1`,
    cwd: "..",
    url: `http://127.0.0.1:${port}/healthz`,
    reuseExistingServer: false,
    timeout: 60_000,
    stdout: "pipe",
    stderr: "pipe",
  },
});
