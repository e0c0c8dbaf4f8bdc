#!/usr/bin/env python3
"""`just stack`: several tokenlab instances behind nginx on one machine, as a load balancer would
run them.

Instances A and B (release build, demo profile) share one PostgreSQL database and, when the server
has a Redis session store, one Redis; nginx (Debian's package, run as its own master from a
configuration generated from deploy/nginx.conf.template into a temporary run directory) spreads
requests over them round robin on http://127.0.0.1:8080. Every instance is told that public URL:
the cookies, the token issuer and the cross-site guard must agree with the address browsers use,
not with the instance's own port.

Ctrl-C (SIGINT) or SIGTERM stops nginx, then the instances; if any of them exits on its own, the
others are stopped too and the script says which one died. `--check` starts the same stack on a
fresh database of its own, checks through nginx that both instances answer and share sessions,
stops everything and exits 0 or 1. `--scratch NAME` runs the stack as usual (until stopped) on a
fresh database NAME, dropped when it stops, with Redis keys of its own: for test runs such as
`just e2e-stack`, which must neither see nor change the interactive stack's accounts and sessions.

Settings from the environment:
  TOKENLAB_STACK_DATABASE_URL  a postgres:// URL to use as is (it must exist); default: the
                               database tokenlab_stack on postgres://postgres@127.0.0.1:5432,
                               created when missing (--check: tokenlab_stack_check, --scratch NAME:
                               NAME, created fresh and dropped afterwards)
  TOKENLAB_STACK_REDIS_URL     the session store (default redis://127.0.0.1:6379); used only when
                               `tokenlab serve --help` offers --session-store
  TOKENLAB_STACK_PORT          nginx's port (default 8080)

Only the standard library, nginx and psql. Progress goes to stderr, the stack's addresses and the
check's results to stdout; each process's output goes to a log file in the run directory.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import http.client
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE = Path(__file__).resolve().parent / "nginx.conf.template"
PG_ADMIN_URL = "postgres://postgres@127.0.0.1:5432/postgres"
STACK_DATABASE = "tokenlab_stack"
# The check starts from a fresh database so that the seeded demo account has its published
# password, whatever was done in the lab's own database meanwhile.
CHECK_DATABASE = "tokenlab_stack_check"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379"
# Keys of the stack's sessions start with this; a check's own with CHECK_REDIS_PREFIX and its
# process id, so that it never reads or ends a session of the interactive stack or of an earlier
# check (whose fresh database numbered its users the same), and it deletes them when it stops.
REDIS_PREFIX = "tokenlab-stack:"
CHECK_REDIS_PREFIX = "tokenlab-stack-check"
DEMO_USER = "alice"
DEMO_PASSWORD = "wonderland-demo"
INSTANCE_HEADER = "x-tokenlab-instance"
# A first start migrates and seeds; a server that neither listens nor exits by then is stuck.
START_TIMEOUT = 120.0
# tokenlab drains requests in flight on SIGTERM, and a demo request may be held 10 s.
STOP_TIMEOUT = 15.0


class Stop(Exception):
    """Raised by the signal handler: a stop asked for by the user, not a failure."""


class Failed(Exception):
    """The stack could not start, or a part of it died."""


def say(message: str) -> None:
    print(f"==> {message}", file=sys.stderr, flush=True)


def redact(url: str) -> str:
    parts = urllib.parse.urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urllib.parse.urlunsplit(parts._replace(netloc=netloc))


def parse_args() -> tuple[argparse.Namespace, list[str]]:
    argv = sys.argv[1:]
    server_args: list[str] = []
    if "--" in argv:
        split = argv.index("--")
        argv, server_args = argv[:split], argv[split + 1:]
    target_dir = Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target"))
    p = argparse.ArgumentParser(
        description="tokenlab instances behind nginx on one machine; Ctrl-C stops them all. "
        "Arguments after `--` are passed to every instance's `tokenlab serve`.",
        epilog="Environment: TOKENLAB_STACK_DATABASE_URL, TOKENLAB_STACK_REDIS_URL, "
        "TOKENLAB_STACK_PORT (see the top of deploy/stack.py).",
    )
    p.add_argument("--check", action="store_true",
                   help="start the stack on a fresh database, check through nginx that every "
                   "instance answers and that a session works on all of them, stop, exit 0/1")
    p.add_argument("--scratch", metavar="NAME",
                   help="run on a database NAME of its own, created fresh and dropped when the "
                   "stack stops, with Redis keys of its own (for test runs)")
    p.add_argument("--instances", default="A,B",
                   help="the instances' names, comma-separated (default A,B)")
    p.add_argument("--port", type=int, default=int(os.environ.get("TOKENLAB_STACK_PORT", 8080)),
                   help="nginx's port on 127.0.0.1 (TOKENLAB_STACK_PORT, default 8080)")
    p.add_argument("--bin", type=Path, default=target_dir / "release" / "tokenlab",
                   help="the server binary (default: $CARGO_TARGET_DIR/release/tokenlab)")
    p.add_argument("--site-root", type=Path, default=ROOT / "target" / "site",
                   help="the built front end (default: target/site, from `just site`)")
    p.add_argument("--keep", action="store_true",
                   help="keep the run directory (configuration and logs) after a clean stop; "
                   "it is always kept after a failure")
    args = p.parse_args(argv)
    if args.check and args.scratch:
        p.error("--check runs on a database of its own already; --scratch is for the normal mode")
    # Spliced into SQL as a quoted identifier and into Redis keys: nothing that needs escaping.
    if args.scratch is not None and not re.fullmatch(r"[a-z_][a-z0-9_]{0,62}", args.scratch):
        p.error("--scratch takes a database name of lower-case letters, digits and underscores")
    names = [n.strip() for n in args.instances.split(",") if n.strip()]
    if not names or len(set(names)) != len(names):
        p.error("--instances takes distinct names, e.g. A,B")
    args.instances = names
    return args, server_args


# --- processes -----------------------------------------------------------------------------------

try:
    _LIBC = ctypes.CDLL(None, use_errno=True)
except OSError:
    _LIBC = None
PR_SET_PDEATHSIG = 1
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


def child_setup(parent: int):
    def setup() -> None:
        # Should this script be killed outright (no chance to clean up), the kernel stops its
        # children instead of leaving a stack nobody controls serving port 8080.
        if _LIBC is not None:
            _LIBC.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
            if os.getppid() != parent:
                os.kill(os.getpid(), signal.SIGTERM)
        # The stop signals are held while this script forks (see `held_signals`); a child that
        # inherited the mask could never be stopped gracefully.
        signal.pthread_sigmask(signal.SIG_SETMASK, [])
    return setup


@contextlib.contextmanager
def held_signals():
    """A stop arriving between fork and recording the child would leave that child untracked;
    held here, it is raised right after."""
    signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)


class Child:
    """A process of the stack, in a process group of its own: Ctrl-C reaches only this script,
    which stops nginx before the instances so that no request is sent to an instance already
    draining, and a group can be killed whole (nginx's workers with their master)."""

    def __init__(self, role: str, command: list[str], log_path: Path):
        self.role, self.log_path = role, log_path
        log = open(log_path, "ab")
        try:
            with held_signals():
                self.process = subprocess.Popen(
                    command, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                    start_new_session=True, preexec_fn=child_setup(os.getpid()))
                self.pid = self.process.pid
                STACK.append(self)
        finally:
            log.close()

    def exited(self) -> int | None:
        return self.process.poll()

    def how_it_ended(self) -> str:
        code = self.process.returncode
        if code is not None and code < 0:
            return f"was killed by {signal.Signals(-code).name}"
        return f"exited with status {code}"

    def log_tail(self, lines: int = 25) -> str:
        try:
            text = self.log_path.read_text(errors="replace").splitlines()
        except OSError:
            return "(no log)"
        return "\n".join("    " + line for line in text[-lines:]) or "    (empty log)"

    def stop(self, first: signal.Signals, timeout: float) -> None:
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, first)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                say(f"{self.role} did not stop within {timeout:.0f} s: killing it")
        # Whatever is left of the group (a stuck master, or workers it left behind).
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pid, signal.SIGKILL)
        self.process.wait()


STACK: list[Child] = []


class Instance(Child):
    def __init__(self, name: str, binary: Path, flags: list[str], run_dir: Path):
        self.name = name
        super().__init__(f"instance {name}", [str(binary), "serve", "--instance", name, *flags],
                         run_dir / f"{name}.log")
        self.origin = self._await_listening()

    def _await_listening(self) -> str:
        # The server prints `listening on http://HOST:PORT` on stdout once bound (after its
        # migrations); stdout and stderr share the log file, so the line is looked for there.
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            match = re.search(r"listening on (http://\S+)",
                              self.log_path.read_text(errors="replace"))
            if match:
                return match.group(1)
            if self.exited() is not None:
                raise Failed(f"{self.role} {self.how_it_ended()} before listening; "
                             f"the end of {self.log_path}:\n{self.log_tail()}")
            time.sleep(0.05)
        raise Failed(f"{self.role} did not listen within {START_TIMEOUT:.0f} s; the end of "
                     f"{self.log_path}:\n{self.log_tail()}")

    @property
    def host_port(self) -> str:
        return self.origin.removeprefix("http://")


class Nginx(Child):
    def __init__(self, binary: str, run_dir: Path, port: int):
        config = run_dir / "nginx.conf"
        super().__init__("nginx", [binary, "-p", str(run_dir), "-c", str(config),
                                   "-g", "daemon off;"], run_dir / "nginx.log")
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if self.exited() is not None:
                raise Failed(f"nginx {self.how_it_ended()} at start; "
                             f"the end of {self.log_path}:\n{self.log_tail()}")
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 1):
                return
            time.sleep(0.05)
        raise Failed(f"nginx did not listen on port {port} within 15 s; "
                     f"the end of {self.log_path}:\n{self.log_tail()}")


def stop_all() -> None:
    """nginx first, gracefully (SIGQUIT lets requests in flight finish), so that nothing new
    reaches the instances; then every instance at once (SIGTERM: each drains its requests)."""
    def hurry(signum, _frame):
        say(f"{signal.Signals(signum).name} again: still stopping, please wait")
    for sig in STOP_SIGNALS:
        signal.signal(sig, hurry)
    for child in STACK:
        if isinstance(child, Nginx):
            child.stop(signal.SIGQUIT, 10)
    instances = [c for c in STACK if not isinstance(c, Nginx)]
    for child in instances:
        if child.exited() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(child.pid, signal.SIGTERM)
    for child in instances:
        child.stop(signal.SIGTERM, STOP_TIMEOUT)
    STACK.clear()


# --- PostgreSQL and Redis ------------------------------------------------------------------------


def psql(sql: str) -> str:
    done = subprocess.run(["psql", "-X", "-q", "-t", "-A", "-v", "ON_ERROR_STOP=1",
                           "-d", PG_ADMIN_URL, "-c", sql],
                          capture_output=True, text=True, timeout=60)
    if done.returncode != 0:
        raise Failed(f"psql on {PG_ADMIN_URL}: {sql}: {done.stderr.strip()}\n"
                     "Is PostgreSQL running there? Or point TOKENLAB_STACK_DATABASE_URL at "
                     "another database.")
    return done.stdout.strip()


def prepare_database(fresh: str | None) -> tuple[str, str | None]:
    """The instances' database URL, and the database this script must drop when done: `fresh`
    (created anew, a leftover of an earlier run dropped first) when given."""
    given = os.environ.get("TOKENLAB_STACK_DATABASE_URL")
    if given:
        if not given.startswith(("postgres://", "postgresql://")):
            raise Failed("TOKENLAB_STACK_DATABASE_URL takes a postgres:// URL: the instances "
                         "must share one database, which SQLite files cannot be across processes")
        say(f"database {redact(given)} (TOKENLAB_STACK_DATABASE_URL), used as it is")
        return given, None
    if not shutil.which("psql"):
        raise Failed("psql is missing (Debian: postgresql-client; `just setup-stack` installs it)")
    base = PG_ADMIN_URL.rsplit("/", 1)[0]
    if fresh:
        psql(f'DROP DATABASE IF EXISTS "{fresh}" WITH (FORCE)')
        psql(f'CREATE DATABASE "{fresh}"')
        say(f"database {fresh} created fresh (dropped when the stack stops)")
        return f"{base}/{fresh}", fresh
    exists = psql(f"SELECT 1 FROM pg_database WHERE datname = '{STACK_DATABASE}'")
    if exists != "1":
        psql(f'CREATE DATABASE "{STACK_DATABASE}"')
        say(f"database {STACK_DATABASE} created on {base}")
    else:
        say(f"database {STACK_DATABASE} on {base} (kept between runs; "
            "TOKENLAB_STACK_DATABASE_URL points the stack elsewhere)")
    return f"{base}/{STACK_DATABASE}", None


def redis_answers(url: str) -> str | None:
    """None when Redis answers PING, else why not. Only plain redis:// without a password is
    probed; anything else is left for the server to judge."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme != "redis" or parts.password:
        return None
    try:
        with socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 6379), 3) as s:
            s.sendall(b"PING\r\n")
            answer = s.recv(64)
    except OSError as err:
        return str(err)
    return None if answer.startswith(b"+PONG") else f"answered {answer!r} to PING"


def read_reply(stream) -> object:
    """One RESP reply: enough of the protocol for SCAN and DEL."""
    line = stream.readline()
    kind, rest = line[:1], line[1:].rstrip(b"\r\n")
    if kind == b"-":
        raise Failed(f"Redis answered: {rest.decode(errors='replace')}")
    if kind in (b"+", b":"):
        return rest.decode()
    if kind == b"$":
        size = int(rest)
        return None if size < 0 else stream.read(size + 2)[:-2].decode(errors="replace")
    if kind == b"*":
        size = int(rest)
        return [] if size < 0 else [read_reply(stream) for _ in range(size)]
    raise Failed(f"Redis answered something unexpected: {line!r}")


def delete_redis_keys(url: str, prefix: str) -> int:
    """Deletes the keys under `prefix` (a prefix this script made up: no glob characters)."""
    parts = urllib.parse.urlsplit(url)
    database = parts.path.strip("/") or "0"
    deleted = 0
    with socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 6379), 5) as s:
        stream = s.makefile("rb")

        def command(*words: str) -> object:
            encoded = [w.encode() for w in words]
            s.sendall(b"*%d\r\n" % len(encoded)
                      + b"".join(b"$%d\r\n%s\r\n" % (len(w), w) for w in encoded))
            return read_reply(stream)

        command("SELECT", database)
        cursor = "0"
        while True:
            cursor, keys = command("SCAN", cursor, "MATCH", f"{prefix}*", "COUNT", "500")
            if keys:
                deleted += int(command("DEL", *keys))
            if cursor == "0":
                return deleted


def session_store_flags(binary: Path, prefix: str) -> list[str]:
    help_text = subprocess.run([str(binary), "serve", "--help"], capture_output=True, text=True,
                               timeout=30).stdout
    if "--session-store" not in help_text:
        say("this tokenlab has no --session-store: sessions stay in PostgreSQL "
            "(TOKENLAB_STACK_REDIS_URL is not used)")
        return []
    url = os.environ.get("TOKENLAB_STACK_REDIS_URL", DEFAULT_REDIS_URL)
    problem = redis_answers(url)
    if problem:
        raise Failed(f"Redis at {redact(url)}: {problem}. Start it, or point "
                     "TOKENLAB_STACK_REDIS_URL at another one.")
    flags = ["--session-store", url]
    if "--redis-prefix" in help_text:
        flags += ["--redis-prefix", prefix]
        say(f"sessions in Redis at {redact(url)}, keys {prefix}*")
    else:
        say(f"sessions in Redis at {redact(url)}")
    return flags


# --- nginx ---------------------------------------------------------------------------------------


def find_nginx() -> str:
    found = shutil.which("nginx") or next(
        (p for p in ("/usr/sbin/nginx", "/usr/local/sbin/nginx") if os.access(p, os.X_OK)), None)
    if not found:
        raise Failed("nginx is missing: `just setup-stack` installs Debian's package (as root)")
    return found


def port_free(port: int) -> bool:
    with socket.socket() as s:
        # As nginx binds: a closed connection's TIME_WAIT does not make the port busy.
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
            s.listen()
        except OSError:
            return False
    return True


def write_nginx_config(run_dir: Path, port: int, instances: list[Instance]) -> None:
    servers = "\n".join(f"        server {i.host_port};  # instance {i.name}" for i in instances)
    text = (TEMPLATE.read_text()
            .replace("@UPSTREAM_SERVERS@", servers)
            .replace("@LISTEN@", f"127.0.0.1:{port}")
            .replace("@RUN_DIR@", str(run_dir)))
    left = sorted(set(re.findall(r"@[A-Z_]+@", text)))
    if left:
        raise Failed(f"{TEMPLATE}: placeholders this script does not fill: {', '.join(left)}")
    (run_dir / "nginx.conf").write_text(text)


# --- the check -----------------------------------------------------------------------------------


def call(port: int, method: str, path: str, body: str | None = None,
         headers: dict[str, str] | None = None) -> tuple[int, http.client.HTTPMessage, str]:
    # A connection per request, as separate clients would open: the round robin is per request
    # anyway, and nothing here may depend on landing on the same instance twice.
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        connection.request(method, path, body=body, headers=headers or {})
        response = connection.getresponse()
        return response.status, response.headers, response.read().decode(errors="replace")
    finally:
        connection.close()


def tally(names: list[str]) -> str:
    return ", ".join(f"{n} ×{names.count(n)}" for n in sorted(set(names)))


def reason_of(body: str) -> str:
    with contextlib.suppress(ValueError, AttributeError):
        return str(json.loads(body).get("reason"))
    return body[:80]


def run_check(port: int, names: list[str]) -> bool:
    public = f"http://127.0.0.1:{port}"
    results: list[tuple[bool, str]] = []

    def record(ok: bool, what: str) -> bool:
        results.append((ok, what))
        print(f"{'PASS' if ok else 'FAIL'}  {what}", flush=True)
        return ok

    rounds = 4 * len(names)
    answered, statuses = [], []
    for _ in range(rounds):
        status, headers, _ = call(port, "GET", "/livez")
        statuses.append(status)
        answered.append(headers.get(INSTANCE_HEADER, "(none)"))
    record(set(statuses) == {200} and set(answered) == set(names),
           f"GET /livez ×{rounds} through nginx: {tally(answered)} "
           f"(statuses {sorted(set(statuses))}; expected every one of {', '.join(names)})")

    status, headers, body = call(port, "GET", "/")
    record(status == 200 and "text/html" in headers.get("content-type", ""),
           f"GET / (the lab page): {status} {headers.get('content-type')} "
           f"from {headers.get(INSTANCE_HEADER)}")

    json_type = {"Content-Type": "application/json"}
    login = json.dumps({"username": DEMO_USER, "password": DEMO_PASSWORD})
    status, headers, body = call(port, "POST", "/api/session/login", login,
                                 {**json_type, "Origin": "http://evil.example"})
    record(status == 403 and reason_of(body) == "cross_site_request",
           f"POST /api/session/login from another origin: {status} {reason_of(body)} "
           f"from {headers.get(INSTANCE_HEADER)} (the instances know their public URL)")

    status, headers, body = call(port, "POST", "/api/session/login", login,
                                 {**json_type, "Origin": public})
    cookie = None
    for value in headers.get_all("set-cookie") or []:
        first = value.split(";", 1)[0]
        if first.split("=", 1)[0].endswith("tl_session"):
            cookie = first
    if not record(status == 200 and cookie is not None,
                  f"POST /api/session/login as {DEMO_USER} with Origin {public}: {status} "
                  f"from {headers.get(INSTANCE_HEADER)}"
                  + ("" if cookie else f", no tl_session cookie; {body[:200]}")):
        return False

    answered, failures = [], []
    for _ in range(rounds):
        status, headers, body = call(port, "GET", "/api/session/me", headers={"Cookie": cookie})
        answered.append(headers.get(INSTANCE_HEADER, "(none)"))
        user = None
        with contextlib.suppress(ValueError, AttributeError, TypeError):
            user = json.loads(body)["user"]["username"]
        if status != 200 or user != DEMO_USER:
            failures.append(f"{status} {reason_of(body)} from {answered[-1]}")
    record(not failures and set(answered) == set(names),
           f"GET /api/session/me ×{rounds} with that cookie: {tally(answered)}, "
           + ("every one 200 as alice" if not failures else "; ".join(failures)))

    status, headers, body = call(port, "POST", "/api/session/logout",
                                 headers={"Cookie": cookie, "Origin": public})
    record(status == 204, f"POST /api/session/logout: {status} from {headers.get(INSTANCE_HEADER)}")

    answered, statuses = [], []
    for _ in range(2 * len(names)):
        status, headers, body = call(port, "GET", "/api/session/me", headers={"Cookie": cookie})
        answered.append(headers.get(INSTANCE_HEADER, "(none)"))
        statuses.append(f"{status} {reason_of(body)}")
    record(all(s.startswith("401") for s in statuses) and set(answered) == set(names),
           f"GET /api/session/me after the logout: {tally(answered)}, "
           f"answers {sorted(set(statuses))} (the ending holds on every instance)")

    return all(ok for ok, _ in results)


# --- main ----------------------------------------------------------------------------------------


def on_signal(signum, _frame):
    raise Stop(signal.Signals(signum).name)


def watch() -> Child:
    """Waits until a child exits (signals interrupt the wait by raising `Stop`)."""
    while True:
        for child in STACK:
            if child.exited() is not None:
                return child
        time.sleep(0.25)


def main() -> int:
    args, server_args = parse_args()
    for sig in STOP_SIGNALS:
        signal.signal(sig, on_signal)

    run_dir: Path | None = None
    drop_database: str | None = None
    # A check's or a scratch run's Redis keys, deleted when it stops: (URL, prefix).
    own_redis_keys: tuple[str, str] | None = None
    failed = True
    try:
        if not args.bin.is_file():
            raise Failed(f"no server binary at {args.bin}: "
                         "cargo build --release --locked -p tokenlab-server")
        if not (args.site_root / "pkg").is_dir():
            say(f"warning: {args.site_root} has no pkg/: the lab page will not load "
                "(`just site` builds it)")
        nginx = find_nginx()
        if not port_free(args.port):
            raise Failed(f"127.0.0.1:{args.port} is taken (another stack?); "
                         "TOKENLAB_STACK_PORT picks another port")

        database_url, drop_database = prepare_database(
            CHECK_DATABASE if args.check else args.scratch)
        if args.check:
            redis_prefix = f"{CHECK_REDIS_PREFIX}-{os.getpid()}:"
        elif args.scratch:
            # Of this run alone: the fresh database numbers its users from 1 again, and an earlier
            # run's sessions, alive in Redis until they expire, would be listed as theirs.
            redis_prefix = f"{args.scratch}-{os.getpid()}:"
        else:
            redis_prefix = REDIS_PREFIX
        store_flags = session_store_flags(args.bin, redis_prefix)
        if (args.check or args.scratch) and "--session-store" in store_flags:
            own_redis_keys = (store_flags[store_flags.index("--session-store") + 1], redis_prefix)
        public_url = f"http://127.0.0.1:{args.port}"
        flags = [
            "--profile", "demo",
            "--bind", "127.0.0.1:0",
            "--database-url", database_url,
            "--site-root", str(args.site_root.resolve()),
            "--public-url", public_url,
            # nginx connects from here; X-Forwarded-For from anyone else is ignored.
            "--trusted-proxies", "127.0.0.1",
            *store_flags,
            *server_args,
        ]

        run_dir = Path(tempfile.mkdtemp(prefix="tokenlab-stack-"))
        # nginx's workers run as nobody when the master is root, and must reach the temp
        # directories nginx creates in here; nothing secret is kept in it.
        run_dir.chmod(0o755)
        say(f"run directory {run_dir} (configuration and logs)")

        instances = []
        for name in args.instances:
            # One after another: tokenlab migrates and seeds the demo account at start, and two
            # servers doing that at once on a fresh database would race.
            say(f"starting instance {name}")
            instances.append(Instance(name, args.bin, flags, run_dir))
        write_nginx_config(run_dir, args.port, instances)
        say(f"starting nginx on 127.0.0.1:{args.port}")
        proxy = Nginx(nginx, run_dir, args.port)

        print(f"\ntokenlab stack: {public_url}  (round robin over "
              f"{', '.join(i.name for i in instances)}; answers say who in X-Tokenlab-Instance)")
        for i in instances:
            print(f"  instance {i.name:<3} {i.origin:<24} pid {i.pid:<8} log {i.log_path}")
        print(f"  nginx        {public_url:<24} pid {proxy.pid:<8} log {run_dir}/nginx.log, "
              f"{run_dir}/nginx-access.log")
        print(f"  database     {redact(database_url)}", flush=True)

        if args.check:
            print(flush=True)
            try:
                ok = run_check(args.port, args.instances)
            except (OSError, http.client.HTTPException) as err:
                raise Failed(f"the check could not talk to nginx: {err!r}") from err
            print(f"\ncheck {'passed' if ok else 'FAILED'}", flush=True)
            failed = not ok
            return 0 if ok else 1

        print(f"Open {public_url} (use exactly this origin: the instances refuse "
              "state-changing requests from any other). Ctrl-C stops everything.\n", flush=True)
        died = watch()
        raise Failed(f"{died.role} (pid {died.pid}) {died.how_it_ended()}; stopping the rest. "
                     f"The end of {died.log_path}:\n{died.log_tail()}")
    except Stop as stop:
        say(f"{stop}: stopping")
        failed = args.check
        return 130 if args.check else 0
    except Failed as err:
        say(f"error: {err}")
        return 1
    finally:
        stop_all()
        if drop_database:
            with contextlib.suppress(Failed, subprocess.SubprocessError):
                psql(f'DROP DATABASE IF EXISTS "{drop_database}" WITH (FORCE)')
        if own_redis_keys:
            try:
                deleted = delete_redis_keys(*own_redis_keys)
                say(f"deleted this run's {deleted} Redis keys ({own_redis_keys[1]}*)")
            except (Failed, OSError, ValueError) as err:
                say(f"warning: this run's Redis keys ({own_redis_keys[1]}*) stay: {err}")
        if run_dir is not None:
            if failed or args.keep:
                say(f"logs kept in {run_dir}")
            else:
                shutil.rmtree(run_dir, ignore_errors=True)
        say("stopped")


if __name__ == "__main__":
    sys.exit(main())
