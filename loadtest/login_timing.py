#!/usr/bin/env python3
"""`just login-timing`: does a failed login tell an unknown username from a wrong password?

A login for a name nobody has must take as long as one with a wrong password, or the answer time
tells an attacker which names exist (the server hashes a dummy password for an unknown name). This
is a report, not a test: it starts the given tokenlab (demo profile, a fresh SQLite database),
sends 200 logins of each kind, interleaved so that any drift of the machine falls on both alike,
and prints both distributions and whether the medians are within 10 % of each other (exit 1 when
they are not). Every login comes from an address of its own (X-Forwarded-For, believed from
127.0.0.1 only) and the wrong passwords are spread over 20 accounts, so that no throttle answers
instead of the password check.

Only the standard library.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ACCOUNTS = 20
PASSWORD = "the right passphrase"
TOLERANCE = 0.10


def parse_args() -> argparse.Namespace:
    target_dir = Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target"))
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--bin", type=Path, default=target_dir / "release" / "tokenlab")
    # Each account takes a tenth of the wrong passwords: beyond 2000 its ceiling would answer.
    p.add_argument("--logins", type=int, default=200, choices=range(10, 2001), metavar="10..2000",
                   help="of each kind (default 200)")
    return p.parse_args()


class Server:
    def __init__(self, binary: Path, work: Path):
        site = work / "site"
        site.mkdir()
        self.process = subprocess.Popen(
            [str(binary), "serve", "--profile", "demo", "--bind", "127.0.0.1:0",
             "--database-url", f"sqlite://{work / 'timing.db'}", "--site-root", str(site),
             "--trusted-proxies", "127.0.0.1"],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
            env={**os.environ, "RUST_LOG": "warn"})
        assert self.process.stdout is not None
        for line in self.process.stdout:
            if line.startswith("listening on "):
                address = line.removeprefix("listening on ").strip().removeprefix("http://")
                self.host, port = address.rsplit(":", 1)
                self.port = int(port)
                return
        raise SystemExit("tokenlab exited before listening")

    def post(self, path: str, body: dict, client: str) -> tuple[int, float]:
        """The status and the seconds the answer took, on a fresh connection."""
        connection = http.client.HTTPConnection(self.host, self.port, timeout=30)
        payload = json.dumps(body)
        headers = {"content-type": "application/json", "x-forwarded-for": client}
        started = time.perf_counter()
        connection.request("POST", path, payload, headers)
        response = connection.getresponse()
        response.read()
        took = time.perf_counter() - started
        connection.close()
        return response.status, took

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=15)


def addresses():
    """A new client address for every request: 10.x.y.z, from the private range."""
    n = 0
    while True:
        n += 1
        yield f"10.{(n >> 16) & 255}.{(n >> 8) & 255}.{n & 255}"


def describe(name: str, seconds: list[float]) -> str:
    ms = sorted(s * 1000 for s in seconds)
    p90 = ms[int(len(ms) * 0.9) - 1]
    return (f"| {name} | {len(ms)} | {statistics.median(ms):.1f} | {p90:.1f} | "
            f"{min(ms):.1f} | {max(ms):.1f} |")


def main() -> int:
    args = parse_args()
    if not args.bin.is_file():
        raise SystemExit(f"no tokenlab binary at {args.bin}")
    clients = addresses()
    with tempfile.TemporaryDirectory(prefix="tokenlab-login-timing-") as work:
        server = Server(args.bin, Path(work))
        try:
            names = [f"timing-{i}-{secrets.token_hex(3)}" for i in range(ACCOUNTS)]
            for name in names:
                status, _ = server.post("/api/accounts",
                                        {"username": name, "password": PASSWORD}, next(clients))
                assert status == 201, f"registering {name}: {status}"
            unknown, wrong = [], []

            def unknown_user() -> None:
                status, took = server.post("/api/session/login", {
                    "username": f"nobody-{secrets.token_hex(6)}", "password": "a wrong one"},
                    next(clients))
                assert status == 401, f"unknown user: {status}"
                unknown.append(took)

            def wrong_password(i: int) -> None:
                status, took = server.post("/api/session/login", {
                    "username": names[i % ACCOUNTS], "password": f"wrong password {i}"},
                    next(clients))
                assert status == 401, f"wrong password: {status}"
                wrong.append(took)

            for i in range(args.logins):
                # Interleaved, each kind first every other time, so that whatever the machine
                # does meanwhile falls on both alike.
                if i % 2 == 0:
                    unknown_user()
                    wrong_password(i)
                else:
                    wrong_password(i)
                    unknown_user()
        finally:
            server.stop()
    a, b = statistics.median(unknown), statistics.median(wrong)
    gap = abs(a - b) / max(a, b)
    within = gap <= TOLERANCE
    print("| login | n | median ms | p90 ms | min ms | max ms |")
    print("| --- | --- | --- | --- | --- | --- |")
    print(describe("unknown username", unknown))
    print(describe("known username, wrong password", wrong))
    print(f"\nmedians differ by {gap:.1%}: {'within' if within else 'NOT within'} "
          f"{TOLERANCE:.0%}")
    return 0 if within else 1


if __name__ == "__main__":
    sys.exit(main())
