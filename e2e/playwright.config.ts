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
  webServer: {
    command: `rm -rf e2e/.tmp && mkdir -p e2e/.tmp && "${bin}" serve --bind 127.0.0.1:${port} --database-url sqlite://e2e/.tmp/e2e.db --profile demo --site-root "${siteRoot}"`,
    cwd: "..",
    url: `http://127.0.0.1:${port}/healthz`,
    reuseExistingServer: false,
    timeout: 60_000,
    stdout: "pipe",
    stderr: "pipe",
  },
});
