import { defineConfig } from "@playwright/test";

import base from "./playwright.config";

// The browser tests of `just e2e-stack`: the lab through nginx, in front of instances A and B of
// deploy/stack.py (PostgreSQL, sessions in Redis). `just e2e` covers the lab itself on one server.
const port = Number(process.env.TOKENLAB_STACK_PORT ?? "8080");
// Unset, stack.py's own defaults apply: $CARGO_TARGET_DIR/release/tokenlab and target/site.
const bin = process.env.TOKENLAB_BIN ? ` --bin "${process.env.TOKENLAB_BIN}"` : "";
const siteRoot = process.env.TOKENLAB_SITE_ROOT ? ` --site-root "${process.env.TOKENLAB_SITE_ROOT}"` : "";

export default defineConfig({
  // The single-server run's browser, timeouts and one-at-a-time workers; only where the lab is
  // served differs.
  ...base,
  testDir: "./stack-tests",
  // The leak check reads the single server's log; the stack's instances log elsewhere.
  globalTeardown: undefined,
  // Apart from the single-server run's results, which that run removes when it starts.
  outputDir: "test-results/stack",
  use: {
    ...base.use,
    // Exactly the stack's --public-url: the instances refuse state-changing requests from any
    // other origin, 127.0.0.1 and localhost being different origins.
    baseURL: `http://127.0.0.1:${port}`,
  },
  webServer: {
    // --scratch: a fresh database, dropped when the stack stops, and Redis keys of this run's own,
    // so that the tests find the demo account as seeded and never touch the interactive stack's
    // sessions. `exec`, so that the stop signal reaches stack.py itself rather than a shell.
    command: `exec python3 deploy/stack.py --scratch tokenlab_e2e_stack --port ${port}${bin}${siteRoot}`,
    cwd: "..",
    // nginx listens only once both instances do; /readyz also says whether PostgreSQL and Redis
    // answer the instance that nginx passes it to.
    url: `http://127.0.0.1:${port}/readyz`,
    reuseExistingServer: false,
    // Migrating a fresh database and seeding it, one instance after the other.
    timeout: 120_000,
    // SIGTERM lets stack.py stop nginx and the instances and drop the scratch database; without
    // it Playwright would SIGKILL stack.py, leaving the database and the run directory behind.
    // stack.py gives nginx 10 s and the instances 15 s to drain.
    gracefulShutdown: { signal: "SIGTERM", timeout: 40_000 },
    stdout: "pipe",
    stderr: "pipe",
  },
});
