# tokenlab — `just run` serves the lab, `just test` checks everything. `just --list` shows the rest.

set shell := ["bash", "-euo", "pipefail", "-c"]

target_dir := env("CARGO_TARGET_DIR", justfile_directory() / "target")
site := justfile_directory() / "target" / "site"
# The wasm-bindgen CLI must be exactly the version of the `wasm-bindgen` crate the front end links.
wasm_bindgen_version := `sed -n 's/^wasm-bindgen = "=\(.*\)"$/\1/p' Cargo.toml`
e2e_port := env("TOKENLAB_E2E_PORT", "3107")

# Build and serve the lab on http://127.0.0.1:3000 (demo profile, SQLite in ./data).
run: setup site
    @echo "==> building the server (release; the first build takes a few minutes)"
    cargo build --release --locked -p tokenlab-server
    @echo "==> starting; the database ./data/tokenlab.db is created and migrated on start"
    TOKENLAB_PROFILE=demo TOKENLAB_SITE_ROOT="{{site}}" "{{target_dir}}/release/tokenlab" serve

# Formatting, lints, unit + API tests, the browser tests against the built app, and a short pass
# of each robustness tool.
test: setup setup-test fmt-check clippy test-rust site e2e e2e-dbsc e2e-stack-when-available fuzz-api-short fuzz-smoke

fmt-check:
    cargo fmt --all -- --check

clippy:
    cargo clippy --locked --workspace --all-targets -- -D warnings
    cargo clippy --locked -p tokenlab-frontend --target wasm32-unknown-unknown -- -D warnings

# Unit tests (crates/core, …) and API tests (crates/server/tests). Set TEST_DATABASE_URL to a
# PostgreSQL URL to run the API tests on PostgreSQL as well as SQLite.
test-rust:
    cargo nextest run --locked --workspace --no-fail-fast
    cargo test --locked --workspace --doc

# Playwright in Debian's Chromium, against the debug server and the release front end.
e2e:
    @echo "==> building the server for the browser tests"
    cargo build --locked -p tokenlab-server
    cd e2e && TOKENLAB_BIN="{{target_dir}}/debug/tokenlab" TOKENLAB_SITE_ROOT="{{site}}" TOKENLAB_E2E_PORT="{{e2e_port}}" npx playwright test

# Device Bound Session Credentials, done by Debian's Chromium itself: the lab over https on
# https://localhost:8443 (TOKENLAB_DBSC_PORT moves it) behind nginx, with a certificate from a
# throwaway CA that only the test browser trusts (a private NSS database in e2e/.tmp/dbsc); the
# browser binds its session to a key of its own and renews the short-lived bound cookie with it.
e2e-dbsc: setup site setup-dbsc
    @echo "==> building the server for the DBSC browser test"
    cargo build --locked -p tokenlab-server
    cd e2e && TOKENLAB_BIN="{{target_dir}}/debug/tokenlab" TOKENLAB_SITE_ROOT="{{site}}" npx playwright test -c dbsc.config.ts

# What `just e2e-dbsc` needs: Debian's nginx (TLS in front of the lab), openssl (the throwaway CA)
# and certutil (the browser's private trust store).
setup-dbsc:
    #!/usr/bin/env bash
    set -euo pipefail
    missing=()
    command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || missing+=(nginx)
    command -v openssl >/dev/null || missing+=(openssl)
    command -v certutil >/dev/null || missing+=(libnss3-tools)
    if [ ${#missing[@]} -gt 0 ]; then
        if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
            echo "==> installing Debian's ${missing[*]}"
            apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
        else
            echo "missing: ${missing[*]} (Debian packages; install them as root)" >&2
            exit 1
        fi
    fi

# Schema-driven fuzzing of the whole API (Schemathesis, every check and phase), without
# credentials and signed in with each scheme: `just fuzz-api` runs 5 minutes per scheme with a new
# seed; `--seconds N`, `--schemes session,bearer`, `--seed S` (to replay) change that. Reports in
# target/fuzz-api/; docs/reliability.md says what it covers.
fuzz-api *args:
    cargo build --locked -p tokenlab-server
    python3 fuzz/api/run.py --bin "{{target_dir}}/debug/tokenlab" --seconds 300 {{args}}

# The bounded pass `just test` runs: 20 s per scheme, one fixed seed, so that a failure replays.
fuzz-api-short:
    cargo build --locked -p tokenlab-server
    python3 fuzz/api/run.py --bin "{{target_dir}}/debug/tokenlab" --seconds 20 --seed 20261201

# Coverage-guided fuzzing (cargo fuzz, libFuzzer) of the rules that read untrusted input, each
# target until 10 million executions (or an hour): `just fuzz`, or `just fuzz client_address`.
# Optimised, with overflow checks and debug assertions on (`-a`), without AddressSanitizer (`-s
# none`: the code under test is safe Rust, and ASan made the Ed25519 target 4× slower). Each
# starts from its seeds (fuzz/seeds/, written by fuzz/seeds.py from the tests' inputs) and what
# earlier runs found (kept under the target directory, never in the repository). Only the stable
# toolchain exists here; RUSTC_BOOTSTRAP lets it take libFuzzer's flags, for fuzzing only. A
# crash leaves its input in fuzz/artifacts/ and fails the recipe.
fuzz *targets: setup-fuzz
    #!/usr/bin/env bash
    set -euo pipefail
    cd fuzz
    targets="{{targets}}"
    for target in ${targets:-$(RUSTC_BOOTSTRAP=1 cargo fuzz list)}; do
        echo "==> fuzz $target: 10 million runs"
        log="{{target_dir}}/fuzz/$target.log"
        mkdir -p "$(dirname "$log")"
        corpus="{{target_dir}}/fuzz/corpus/$target"
        mkdir -p "$corpus"
        if ! RUSTC_BOOTSTRAP=1 CARGO_TARGET_DIR="{{target_dir}}/fuzz" cargo fuzz run -O -a -s none "$target" \
            "$corpus" "seeds/$target" -- -runs=10000000 -max_total_time=3600 > "$log" 2>&1; then
            tail -40 "$log"
            exit 1
        fi
        grep -E '^Done' "$log"
    done

# The short pass `just test` runs: 20 seconds of each fuzz target.
fuzz-smoke: setup-fuzz
    #!/usr/bin/env bash
    set -euo pipefail
    cd fuzz
    for target in $(RUSTC_BOOTSTRAP=1 cargo fuzz list); do
        echo "==> fuzz $target: 20 s"
        log="{{target_dir}}/fuzz/$target.log"
        mkdir -p "$(dirname "$log")"
        corpus="{{target_dir}}/fuzz/corpus/$target"
        mkdir -p "$corpus"
        if ! RUSTC_BOOTSTRAP=1 CARGO_TARGET_DIR="{{target_dir}}/fuzz" cargo fuzz run -O -a -s none "$target" \
            "$corpus" "seeds/$target" -- -max_total_time=20 > "$log" 2>&1; then
            tail -40 "$log"
            exit 1
        fi
        grep -E '^Done' "$log"
    done

# cargo-fuzz, when missing.
setup-fuzz:
    #!/usr/bin/env bash
    set -euo pipefail
    if ! cargo fuzz --version >/dev/null 2>&1; then
        echo "==> installing cargo-fuzz"
        cargo install cargo-fuzz --locked
    fi

# The crash harness at length: 200 SIGKILLs of a server on PostgreSQL (a database of its own,
# dropped afterwards) in the middle of orders and refreshes, then the database checked against what
# the clients were told. `just test` runs 20 on SQLite. TOKENLAB_CRASH_KILLS and TOKENLAB_CRASH_SEED
# (printed by every run) change or replay it.
crash:
    TOKENLAB_CRASH_BACKEND=postgres TOKENLAB_CRASH_KILLS="${TOKENLAB_CRASH_KILLS:-200}" \
        TEST_DATABASE_URL="${TEST_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/test}" \
        cargo nextest run --locked -p tokenlab-server --test crash --no-capture

# Whether a failed login's answer time tells an unknown username from a wrong password: 200 of
# each, interleaved, on a release server; the medians must be within 10 % (a report, not a test).
login-timing *args:
    cargo build --release --locked -p tokenlab-server
    python3 loadtest/login_timing.py --bin "{{target_dir}}/release/tokenlab" {{args}}

# The browser half: wasm (release, size-optimised), its JS glue, the stylesheet and favicon, the API docs.
site:
    #!/usr/bin/env bash
    set -euo pipefail
    echo "==> building the front end (wasm)"
    cargo build --locked -p tokenlab-frontend --target wasm32-unknown-unknown --profile wasm-release
    wasm="{{target_dir}}/wasm32-unknown-unknown/wasm-release/tokenlab_frontend.wasm"
    mkdir -p "{{site}}/pkg" "{{site}}/api-docs"
    if [ ! "{{site}}/pkg/tokenlab_bg.wasm" -nt "$wasm" ]; then
        echo "==> wasm-bindgen + wasm-opt (binaryen from npm; Debian's wasm-opt 108 breaks hydration)"
        wasm-bindgen --target web --no-typescript --out-dir "{{site}}/pkg" --out-name tokenlab "$wasm"
        frontend/node_modules/.bin/wasm-opt -Oz --enable-bulk-memory --enable-nontrapping-float-to-int \
            --enable-sign-ext --enable-mutable-globals --enable-reference-types --enable-multivalue \
            "{{site}}/pkg/tokenlab_bg.wasm" -o "{{site}}/pkg/tokenlab_bg.wasm"
    fi
    cp frontend/style.css "{{site}}/pkg/tokenlab.css"
    cp frontend/static/favicon.svg "{{site}}/favicon.svg"
    cp frontend/static/api-docs/init.js "{{site}}/api-docs/init.js"
    cp frontend/node_modules/swagger-ui-dist/swagger-ui.css frontend/node_modules/swagger-ui-dist/swagger-ui-bundle.js "{{site}}/api-docs/"

# Run this after `just e2e` (or `just test`) when the README's pictures should show the app as it is
# now: the browser tests write their screenshots under target/screenshots/, so that a test run leaves
# the tree clean, and this copies them to where the README shows them.
# Copy the browser tests' screenshots from target/screenshots/ into docs/screenshots/.
screenshots:
    #!/usr/bin/env bash
    set -euo pipefail
    shopt -s nullglob
    shots=(target/screenshots/*.png)
    if [ ${#shots[@]} -eq 0 ]; then
        echo "no screenshots in target/screenshots/: run \`just e2e\` first" >&2
        exit 1
    fi
    mkdir -p docs/screenshots
    cp "${shots[@]}" docs/screenshots/
    echo "==> copied ${#shots[@]} screenshots into docs/screenshots/"

# Install what a fresh machine lacks; every step is skipped when already done.
setup:
    #!/usr/bin/env bash
    set -euo pipefail
    if ! rustup target list --installed | grep -qx wasm32-unknown-unknown; then
        echo "==> adding the wasm32-unknown-unknown target"
        rustup target add wasm32-unknown-unknown
    fi
    if [ "$(wasm-bindgen --version 2>/dev/null | cut -d' ' -f2)" != "{{wasm_bindgen_version}}" ]; then
        echo "==> installing wasm-bindgen-cli {{wasm_bindgen_version}} (about 2 minutes, once)"
        # Not --locked: the crate's own lock file pins a dependency version the registry no longer serves.
        cargo install wasm-bindgen-cli --version "={{wasm_bindgen_version}}" --force
    fi
    for dir in frontend e2e; do
        if [ ! -d "$dir/node_modules" ] || [ "$dir/package-lock.json" -nt "$dir/node_modules/.package-lock.json" ]; then
            echo "==> npm packages in $dir/"
            (cd "$dir" && npm ci --no-audit --no-fund)
        fi
    done

# Test tools: cargo-nextest, Debian's Chromium (Playwright never downloads a browser here), and
# where PostgreSQL and Redis answer, what the cross-instance suite and `e2e-stack` need (nginx).
setup-test:
    #!/usr/bin/env bash
    set -euo pipefail
    if (exec 3<>/dev/tcp/127.0.0.1/5432) 2>/dev/null && (exec 3<>/dev/tcp/127.0.0.1/6379) 2>/dev/null; then
        just setup-stack
    fi
    if ! cargo nextest --version >/dev/null 2>&1; then
        echo "==> installing cargo-nextest"
        cargo install cargo-nextest --locked
    fi
    browser="${TOKENLAB_CHROMIUM:-/usr/bin/chromium}"
    if [ ! -x "$browser" ]; then
        if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
            echo "==> installing Debian's chromium"
            apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
        else
            echo "Chromium not found at $browser: install Debian's 'chromium' package or set TOKENLAB_CHROMIUM." >&2
            exit 1
        fi
    fi

# What recognising a caller costs per request, scheme by scheme (time and database statements),
# through the real server on a fresh SQLite database. Release build; reports land in target/criterion.
bench:
    cargo bench --locked -p tokenlab-server --bench authentication

# Figures from one machine are only comparable within one run, so every endpoint is measured beside
# `/livez` (no database, no authentication) in the same run, on a release server pinned to core 0
# with wrk pinned to core 1 (both at nice -10 when run as root, so that builds on the same machine
# disturb them less), and the report says how much of each core other processes took meanwhile.
# `just loadtest --help` lists the durations; `just loadtest --database-url
# postgres://postgres@127.0.0.1:5432/x` runs it on PostgreSQL (in a database of its own).
# Load test: each scheme's requests/s as a ratio to /livez, /livez beside a bare axum handler,
# the 64-login storm, resident memory. As root on a KVM guest with the haltpoll idle driver, idle
# cores poll up to 200 µs before halting for the run (the setting is put back after it;
# `--idle-poll-ns 0` leaves it alone): see loadtest/run.py's IdlePolling.
loadtest *args: setup-loadtest
    cargo build --release --locked -p tokenlab-server
    cargo build --release --locked -p tokenlab-server --example bare_axum
    python3 loadtest/run.py --bin "{{target_dir}}/release/tokenlab" --bin-bare "{{target_dir}}/release/examples/bare_axum" {{args}}

# What the working tree's change does to each endpoint's requests/s, against REV (default HEAD):
# both builds alternated in one run (loadtest/ab.py), B ÷ A per round and the median. Two
# `just loadtest` runs minutes apart differ by more than most changes do. REV is built in a git
# worktree with a target directory of its own (the first run builds its dependencies too): cargo
# names a workspace crate's build by the crate, not by its folder, so two checkouts sharing one
# target directory would take each other's builds as up to date, and B could silently be A.
# `just loadtest-ab HEAD` with no change is an A/A run, the measurement's own noise.
# `just loadtest-ab main~1 --rounds 20 --endpoints session,device`; `--help` lists the rest.
loadtest-ab rev="HEAD" *args: setup-loadtest
    #!/usr/bin/env bash
    set -euo pipefail
    ab="{{target_dir}}/ab"
    commit=$(git rev-parse --verify "{{rev}}^{commit}")
    short=$(git rev-parse --short "$commit")
    mkdir -p "$ab"
    if [ -d "$ab/worktree" ]; then
        git -C "$ab/worktree" checkout --quiet --detach "$commit"
    else
        git worktree prune
        git worktree add --quiet --detach "$ab/worktree" "$commit"
    fi
    echo "==> building A: $short"
    (cd "$ab/worktree" && CARGO_TARGET_DIR="$ab/target" cargo build --release --locked -p tokenlab-server)
    cp "$ab/target/release/tokenlab" "$ab/tokenlab-a"
    echo "==> building B: the working tree"
    cargo build --release --locked -p tokenlab-server
    head=$(git rev-parse --short HEAD)
    if [ -n "$(git status --porcelain --untracked-files=no)" ]; then head="$head with uncommitted changes"; fi
    python3 loadtest/ab.py --a "$ab/tokenlab-a" --b "{{target_dir}}/release/tokenlab" \
        --label-a "$short" --label-b "the working tree, $head" --out "$ab/report.md" {{args}}

# The load generator of `just loadtest`: Debian's wrk.
setup-loadtest:
    #!/usr/bin/env bash
    set -euo pipefail
    if ! command -v wrk >/dev/null; then
        if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
            echo "==> installing Debian's wrk"
            apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null
        else
            echo "wrk not found: install Debian's 'wrk' package." >&2
            exit 1
        fi
    fi

# Instances A and B of the release server behind nginx on http://127.0.0.1:8080 (round robin), sharing
# PostgreSQL (the database tokenlab_stack on 127.0.0.1:5432, created when missing) and, when the
# server has a Redis session store, Redis on 127.0.0.1:6379; Ctrl-C stops all of it.
# TOKENLAB_STACK_DATABASE_URL, TOKENLAB_STACK_REDIS_URL and TOKENLAB_STACK_PORT point it elsewhere.
# `just stack --check` starts it on a fresh database, checks through nginx that every instance
# answers and that one login holds on all of them, stops it and exits 0 or 1; `just stack --help`.
# Several instances behind nginx on this machine (PostgreSQL, Redis); `--check` tests it.
stack *args: setup site setup-stack
    cargo build --release --locked -p tokenlab-server
    python3 deploy/stack.py --bin "{{target_dir}}/release/tokenlab" --site-root "{{site}}" {{args}}

# The stack's browser smoke test whenever the local PostgreSQL and Redis answer (as CI has).
e2e-stack-when-available:
    #!/usr/bin/env bash
    set -euo pipefail
    if (exec 3<>/dev/tcp/127.0.0.1/5432) 2>/dev/null && (exec 3<>/dev/tcp/127.0.0.1/6379) 2>/dev/null; then
        just e2e-stack
    else
        echo "==> e2e-stack: NOT RUN — it needs PostgreSQL on 127.0.0.1:5432 and Redis on 127.0.0.1:6379"
    fi

# The browser tests through the stack of `just stack`: each scheme logs in and calls, and instances
# A and B both answer. The stack gets a fresh database, dropped afterwards, and Redis keys of its own
# (`deploy/stack.py --scratch`), so the accounts and sessions of `just stack` are left alone; both
# want port 8080 though, and TOKENLAB_STACK_PORT moves this one.
# Playwright through nginx against instances A and B (PostgreSQL, Redis).
e2e-stack: setup site setup-stack
    @echo "==> building the release server for the stack"
    cargo build --release --locked -p tokenlab-server
    cd e2e && TOKENLAB_BIN="{{target_dir}}/release/tokenlab" TOKENLAB_SITE_ROOT="{{site}}" npx playwright test -c stack.config.ts

# What `just stack` needs beyond the build: Debian's nginx and psql.
setup-stack:
    #!/usr/bin/env bash
    set -euo pipefail
    missing=()
    command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || missing+=(nginx)
    command -v psql >/dev/null || missing+=(postgresql-client)
    if [ ${#missing[@]} -gt 0 ]; then
        if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
            # Where services may start, Debian's package also starts the system's nginx on port 80;
            # the stack runs its own nginx from a configuration of its own and does not use it.
            echo "==> installing Debian's ${missing[*]}"
            apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
        else
            echo "missing: ${missing[*]} (Debian packages; install them as root)" >&2
            exit 1
        fi
    fi

# Remove the demo database (the next `just run` starts from a fresh, seeded one).
reset-db:
    rm -f data/tokenlab.db data/tokenlab.db-wal data/tokenlab.db-shm
