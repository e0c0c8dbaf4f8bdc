#!/usr/bin/env python3
"""Schema-driven fuzzing of tokenlab's whole API with Schemathesis (`just fuzz-api`, and a bounded
pass in `just test`).

Starts the given tokenlab (demo profile, a fresh SQLite database, an unused port), then runs
`schemathesis run --checks all` against its served `/api/openapi.json` once per scheme: without
credentials, and signed in with the session cookie, with the device headers and with a bearer
token (fuzz/api/hooks.py signs the generated requests in, and again after every 401). Every phase
runs (examples, coverage, fuzzing, stateful). Any failure — a 5xx, a response or status the
document does not describe, a schema-valid request refused, a schema-invalid one accepted — fails
the run; each scheme's report lands in target/fuzz-api/.

Schemathesis comes from PyPI into a virtual environment of its own (--venv), created on first use.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent
HERE = Path(__file__).resolve().parent
# A known version: a newer Schemathesis may bring new checks, which is for a person to take up.
SCHEMATHESIS = "schemathesis==4.32.5"
SCHEMES = ("none", "session", "device", "bearer")


def say(message: str) -> None:
    print(f"==> {message}", file=sys.stderr, flush=True)


def parse_args() -> argparse.Namespace:
    target_dir = Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target"))
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--bin", type=Path, default=target_dir / "debug" / "tokenlab",
                   help="the tokenlab binary to fuzz")
    p.add_argument("--seconds", type=int, default=60,
                   help="Schemathesis's time budget per scheme (default 60)")
    p.add_argument("--schemes", default=",".join(SCHEMES),
                   help=f"comma-separated, of {', '.join(SCHEMES)} (default: all)")
    p.add_argument("--seed", type=int, help="Schemathesis's seed, to replay a run")
    p.add_argument("--venv", type=Path,
                   default=Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
                   / "tokenlab" / "schemathesis-venv",
                   help="where Schemathesis is installed (created when missing)")
    p.add_argument("--out-dir", type=Path, default=ROOT / "target" / "fuzz-api")
    args = p.parse_args()
    args.schemes = [s for s in args.schemes.split(",") if s]
    unknown = [s for s in args.schemes if s not in SCHEMES]
    if unknown:
        p.error(f"unknown scheme(s): {', '.join(unknown)}")
    return args


def schemathesis_binary(venv: Path) -> Path:
    binary = venv / "bin" / "schemathesis"
    version = ""
    if binary.exists():
        version = subprocess.run([str(binary), "--version"], capture_output=True,
                                 text=True).stdout.strip()
    if version.endswith(SCHEMATHESIS.split("==")[1]):
        return binary
    say(f"installing {SCHEMATHESIS} into {venv}")
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    subprocess.run([str(venv / "bin" / "pip"), "install", "--quiet", SCHEMATHESIS], check=True)
    return binary


class Server:
    """tokenlab on a fresh SQLite database and a port of its own; its log in `log_path`."""

    def __init__(self, binary: Path, work: Path):
        self.log_path = work / "server.log"
        self.log = open(self.log_path, "w")
        site = work / "site"
        site.mkdir()
        self.process = subprocess.Popen(
            [str(binary), "serve", "--profile", "demo", "--bind", "127.0.0.1:0",
             "--database-url", f"sqlite://{work / 'fuzz.db'}", "--site-root", str(site),
             # hooks.py signs in from addresses of its own (X-Forwarded-For), so that the
             # generated requests' guesses fill 127.0.0.1's throttles and not the harness's.
             "--trusted-proxies", "127.0.0.1"],
            stdout=subprocess.PIPE, stderr=self.log, text=True,
            env={**os.environ, "RUST_LOG": "warn"})
        assert self.process.stdout is not None
        for line in self.process.stdout:
            if line.startswith("listening on "):
                self.base = line.removeprefix("listening on ").strip()
                break
        else:
            raise SystemExit(f"tokenlab exited before listening; see {self.log_path}")
        # Keep draining stdout so that the server never blocks on a full pipe.
        self.drain = subprocess.Popen(["cat"], stdin=self.process.stdout,
                                      stdout=subprocess.DEVNULL)

    def stop(self) -> int | None:
        self.process.terminate()
        try:
            code = self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            code = self.process.wait()
        self.drain.wait()
        self.log.close()
        return code


def run_scheme(binary: Path, base: str, scheme: str, args: argparse.Namespace) -> tuple[bool, str]:
    report = args.out_dir / f"{scheme}.txt"
    command = [str(binary), "--config-file", str(HERE / "schemathesis.toml"), "run",
               f"{base}/api/openapi.json", "--checks", "all",
               "--max-time", str(args.seconds), "--workers", "1",
               "--phases", "examples,coverage,fuzzing,stateful", "--no-color"]
    if args.seed is not None:
        command += ["--seed", str(args.seed)]
    env = {**os.environ, "SCHEMATHESIS_HOOKS": "hooks", "PYTHONPATH": str(HERE),
           "TOKENLAB_FUZZ_SCHEME": scheme, "TOKENLAB_FUZZ_BASE": base}
    say(f"scheme {scheme}: schemathesis for up to {args.seconds} s")
    started = time.monotonic()
    with open(report, "w") as out:
        # In the report directory: Schemathesis keeps a cache (.schemathesis/) where it runs.
        finished = subprocess.run(command, stdout=out, stderr=subprocess.STDOUT, env=env,
                                  cwd=args.out_dir, timeout=args.seconds * 3 + 120)
    text = report.read_text()
    cases = re.search(r"(\d+) generated", text)
    summary = re.findall(r"^=+ (.*) =+$", text, re.M)
    line = (f"{scheme}: {cases.group(1) if cases else '?'} test cases in "
            f"{time.monotonic() - started:.0f} s, {summary[-1] if summary else 'no summary'}")
    return finished.returncode == 0, line


def main() -> int:
    args = parse_args()
    if not args.bin.is_file():
        raise SystemExit(f"no tokenlab binary at {args.bin}")
    binary = schemathesis_binary(args.venv)
    args.out_dir.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="tokenlab-fuzz-api-"))
    server = Server(args.bin, work)
    results = []
    try:
        for scheme in args.schemes:
            results.append(run_scheme(binary, server.base, scheme, args))
    finally:
        code = server.stop()
        log = server.log_path.read_text()
        shutil.copy(server.log_path, args.out_dir / "server.log")
        shutil.rmtree(work, ignore_errors=True)
    for passed, line in results:
        print(f"{'PASS' if passed else 'FAIL'}  {line}")
    # A panic is a failure even when every answer looked right.
    panicked = "panicked" in log
    if panicked:
        print(f"FAIL  the server panicked; see {args.out_dir / 'server.log'}")
    print(f"reports in {args.out_dir}; the server stopped with {code}")
    return 0 if all(passed for passed, _ in results) and not panicked else 1


if __name__ == "__main__":
    sys.exit(main())
