#!/usr/bin/env python3
"""`just loadtest-ab REV`: two builds of tokenlab measured in one run, so that what a change does
to each endpoint's requests/s is a figure anyone can reproduce, not a claim.

Two load-test runs minutes apart differ by more than most changes do (this machine's speed drifts
by 10-20 % within a minute; see run.py), so comparing a `just loadtest` before a change with one
after it says little. Here both builds run at once, each on a fresh SQLite database, both on core
0 with wrk on core 1 (as in `just loadtest`), and every round drives each endpoint on A and on B
one right after the other, A first in one round and B first in the next. What a round gives is
B ÷ A for each endpoint, from runs seconds apart; the report judges nothing, it gives the median
over the rounds the hypervisor left alone (steal at most `--max-steal`), the spread, and each
build's device ÷ session (#14's target) from the same runs.

The servers idle while the other is measured: the idle one's background reloads (a few a second)
fall on both alike.
"""

from __future__ import annotations

import argparse
import datetime
import os
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import run  # noqa: E402  (the load test's machinery: servers, wrk, CPU windows, idle polling)

ENDPOINTS = {
    "livez": ("/livez", None),
    "session": ("/api/session/me", "session"),
    "device": ("/api/device/me", "device"),
    "bearer": ("/api/jwt/me", "bearer"),
}


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description="Two tokenlab builds alternated in one run: each endpoint's requests/s on B "
        "÷ on A, per round, with the median over the rounds.")
    p.add_argument("--a", type=Path, required=True, help="the server binary before the change")
    p.add_argument("--b", type=Path, required=True, help="the server binary after it")
    p.add_argument("--label-a", default="A", help="what A is (a revision, say)")
    p.add_argument("--label-b", default="B", help="what B is")
    p.add_argument("--endpoints", default="livez,session,device,bearer",
                   help=f"which, comma-separated, of {', '.join(ENDPOINTS)} (default: all)")
    p.add_argument("--rounds", type=int, default=10, help="judged rounds (default 10)")
    p.add_argument("--round-duration", type=int, default=2,
                   help="seconds of each run in a round (default 2)")
    p.add_argument("--connections", type=int, default=32, help="per run (default 32)")
    p.add_argument("--max-steal", type=float, default=0.05,
                   help="a round in which the hypervisor took more than this share of either "
                   "core is shown, not counted, and run again, up to three times --rounds in all "
                   "(default 0.05; 1 counts every round)")
    p.add_argument("--idle-poll-ns", type=int, default=200_000,
                   help="as `just loadtest --idle-poll-ns` (default 200000; 0 leaves it alone)")
    p.add_argument("--nice", type=int, default=-10 if os.geteuid() == 0 else 0,
                   help="the nice value of the servers and wrk (default -10 as root, else 0)")
    p.add_argument("--out", type=Path, help="also write the report here")
    args = p.parse_args()
    args.endpoints = [e.strip() for e in args.endpoints.split(",") if e.strip()]
    unknown = [e for e in args.endpoints if e not in ENDPOINTS]
    if unknown or not args.endpoints:
        p.error(f"--endpoints takes some of {', '.join(ENDPOINTS)}, not {','.join(unknown)}")
    if args.rounds < 1 or args.round_duration < 1:
        p.error("--rounds and --round-duration take 1 or more")
    if not 0 < args.max_steal <= 1:
        p.error("--max-steal takes a share above 0 and at most 1")
    for binary in (args.a, args.b):
        if not binary.is_file():
            p.error(f"no server binary at {binary}")
    return args


def median_and_spread(values: list[float]) -> str:
    if not values:
        return "—"
    return f"{statistics.median(values):.3f} ({min(values):.3f}–{max(values):.3f})"


def render(args: argparse.Namespace, rounds: list[dict], polling: run.IdlePolling) -> str:
    judged = [r for r in rounds if r["judged"]]
    lines = [
        f"### tokenlab A/B, {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC",
        "",
        f"Machine: {len(os.sched_getaffinity(0))} cores, {run.cpu_model()}. "
        f"A: {args.label_a} (`{args.a}`); B: {args.label_b} (`{args.b}`). Both release servers "
        f"(demo profile, a fresh SQLite database each) on core 0 at nice {args.nice}, wrk on "
        f"core 1; {len(judged)} judged rounds of {args.round_duration} s runs at "
        f"{args.connections} connections, A first in odd rounds and B first in even ones. Idle "
        f"polling: {polling.note}.",
        "",
        "| endpoint | B ÷ A: median of the rounds (range) | A requests/s (median) "
        "| B requests/s (median) |",
        "| --- | ---: | ---: | ---: |",
    ]
    for name in args.endpoints:
        path = ENDPOINTS[name][0]
        ratios = [r["b"][name]["rate"] / r["a"][name]["rate"] for r in judged]
        a_rates = [r["a"][name]["rate"] for r in judged]
        b_rates = [r["b"][name]["rate"] for r in judged]
        lines.append(f"| `GET {path}` | {median_and_spread(ratios)} | "
                     f"{run.rate(statistics.median(a_rates)) if a_rates else '—'} | "
                     f"{run.rate(statistics.median(b_rates)) if b_rates else '—'} |")
    if {"session", "device"} <= set(args.endpoints):
        lines.append("")
        lines.append("Device ÷ session within each round (#14's target is ≥ 0.9): "
                     + "; ".join(
                         f"{label} {median_and_spread([r[side]['device']['rate'] / r[side]['session']['rate'] for r in judged])}"  # noqa: E501
                         for side, label in (("a", "A"), ("b", "B"))))
    lines += ["", "| round | first | " + " | ".join(
        f"{name} A | {name} B | B ÷ A" for name in args.endpoints) + " | steal | judged |",
        "| ---: | --- | " + " | ".join("---: | ---: | ---:" for _ in args.endpoints)
        + " | ---: | --- |"]
    for number, r in enumerate(rounds, 1):
        cells = []
        for name in args.endpoints:
            a, b = r["a"][name]["rate"], r["b"][name]["rate"]
            cells.append(f"{run.rate(a)} | {run.rate(b)} | {b / a:.3f}")
        lines.append(f"| {number} | {r['first']} | " + " | ".join(cells)
                     + f" | {100 * r['steal']:.1f} % | {'yes' if r['judged'] else 'no'} |")
    failed = sum(leg["failed"] for r in rounds for side in ("a", "b")
                 for leg in r[side].values())
    lines += ["", f"Non-2xx or unanswered requests in all rounds: {failed}."]
    return "\n".join(lines) + "\n"


def main() -> int:
    args = parse_args()
    if not shutil.which("wrk"):
        raise SystemExit("wrk not found (Debian: apt-get install wrk; `just setup-loadtest`)")
    for unwinding in (run.signal.SIGTERM, run.signal.SIGHUP):
        run.signal.signal(unwinding, lambda signum, _frame: sys.exit(128 + signum))
    cores = len(os.sched_getaffinity(0))
    server_cpu, load_cpu = (0, 1) if cores >= 2 else (0, 0)
    prefix = f"ab{os.getpid()}"
    workdirs = {side: Path(tempfile.mkdtemp(prefix=f"tokenlab-ab-{side}-")) for side in "ab"}
    servers: dict[str, run.Server] = {}
    polling = run.IdlePolling(args.idle_poll_ns).start()
    rounds: list[dict] = []
    try:
        for side, binary in (("a", args.a), ("b", args.b)):
            run.say(f"starting {side.upper()} on core {server_cpu}: {binary}")
            servers[side] = run.Server(binary, f"sqlite://{workdirs[side] / 'ab.db'}",
                                       workdirs[side], server_cpu, args.nice, 1, [])
        sign_ins = {side: run.sign_in(server) for side, server in servers.items()}

        def measure(side: str, name: str) -> dict:
            path, scheme = ENDPOINTS[name]
            headers = sign_ins[side][scheme] if scheme else {}
            server = servers[side]
            window = run.CpuWindow(server.pid, server_cpu, load_cpu, None)
            load = run.Load(path, args.connections, args.round_duration, headers)
            result = run.Wrk(server, load, load_cpu, prefix, args.nice).result()
            result.update(window.close())
            return result

        most_rounds = args.rounds if args.max_steal >= 1 else 3 * args.rounds
        while sum(r["judged"] for r in rounds) < args.rounds and len(rounds) < most_rounds:
            # Alternated by the judged rounds so far, so that a round run again in place of a
            # disturbed one goes the same way and the judged ones still alternate.
            first = "a" if sum(r["judged"] for r in rounds) % 2 == 0 else "b"
            order = (first, "b" if first == "a" else "a")
            run.say(f"round {len(rounds) + 1}: {', '.join(args.endpoints)}, "
                    f"{order[0].upper()} first")
            legs: dict[str, dict] = {"a": {}, "b": {}}
            for name in args.endpoints:
                for side in order:
                    legs[side][name] = measure(side, name)
            stolen = max(run.steal(leg) for side in legs.values() for leg in side.values())
            rounds.append({**legs, "first": first.upper(), "steal": stolen,
                           "judged": stolen <= args.max_steal})
    finally:
        polling.restore()
        for server in servers.values():
            server.stop()
        for workdir in workdirs.values():
            shutil.rmtree(workdir, ignore_errors=True)

    report = render(args, rounds, polling)
    print(report, end="")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(report)
        run.say(f"written to {args.out}")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except RuntimeError as err:
        print(f"loadtest-ab: {err}", file=sys.stderr)
        sys.exit(1)
