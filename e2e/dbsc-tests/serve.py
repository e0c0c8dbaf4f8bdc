#!/usr/bin/env python3
"""The lab over https for the Device Bound Session Credentials browser test (`just e2e-dbsc`).

Chromium binds a session (DBSC) only for an https origin whose certificate it trusts: plain http,
and `--ignore-certificate-errors`, make it skip registration without a word. So this script:

1. makes a throwaway certificate authority and a certificate for `localhost` with openssl, in the
   run directory (e2e/.tmp/dbsc), never anywhere else;
2. trusts that CA in a private NSS database under the run directory's `home/`, which the test
   browser gets as its HOME (the machine's own trust store is left alone);
3. starts `tokenlab serve` (demo profile, a fresh SQLite database, `--public-url
   https://localhost:PORT`) on a free loopback port, and Debian's nginx terminating TLS on PORT in
   front of it;
4. waits; SIGTERM or SIGINT stops nginx, then tokenlab.

Only the standard library, openssl, certutil (Debian's libnss3-tools) and nginx.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

E2E = Path(__file__).resolve().parent.parent
RUN = E2E / ".tmp" / "dbsc"


def run(*command: str) -> None:
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def certificates() -> None:
    """A CA valid for two days, and a certificate it signs for localhost and 127.0.0.1."""
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"]
    run("openssl", "req", "-x509", *ec, "-keyout", str(RUN / "ca.key"), "-out", str(RUN / "ca.pem"),
        "-days", "2", "-subj", "/CN=tokenlab e2e throwaway CA",
        "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign")
    run("openssl", "req", *ec, "-keyout", str(RUN / "server.key"), "-out", str(RUN / "server.csr"),
        "-subj", "/CN=localhost")
    (RUN / "server.ext").write_text(
        "subjectAltName=DNS:localhost,IP:127.0.0.1\n"
        "basicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n")
    run("openssl", "x509", "-req", "-in", str(RUN / "server.csr"), "-CA", str(RUN / "ca.pem"),
        "-CAkey", str(RUN / "ca.key"), "-CAcreateserial", "-out", str(RUN / "server.pem"),
        "-days", "2", "-extfile", str(RUN / "server.ext"))
    nssdb = RUN / "home" / ".pki" / "nssdb"
    nssdb.mkdir(parents=True)
    run("certutil", "-d", f"sql:{nssdb}", "-N", "--empty-password")
    run("certutil", "-d", f"sql:{nssdb}", "-A", "-t", "C,,", "-n", "tokenlab-e2e-ca",
        "-i", str(RUN / "ca.pem"))


def start_tokenlab(binary: str, site_root: str, port: int) -> tuple[subprocess.Popen, int]:
    log = open(RUN / "tokenlab.log", "w")
    server = subprocess.Popen(
        [binary, "serve", "--profile", "demo", "--bind", "127.0.0.1:0",
         "--database-url", f"sqlite://{RUN / 'dbsc.db'}", "--site-root", site_root,
         "--public-url", f"https://localhost:{port}", "--trusted-proxies", "127.0.0.1"],
        stdout=subprocess.PIPE, stderr=log, text=True)
    assert server.stdout is not None
    line = server.stdout.readline()
    if not line.startswith("listening on http://"):
        server.kill()
        sys.exit(f"tokenlab did not start: {line!r} (see {RUN / 'tokenlab.log'})")
    bound = int(line.strip().rsplit(":", 1)[1])
    return server, bound


def start_nginx(port: int, upstream: int) -> subprocess.Popen:
    # Debian puts it in /usr/sbin, which a user's PATH may lack.
    nginx = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)
    if nginx is None:
        sys.exit("nginx not found: `just setup-dbsc` installs Debian's nginx")
    (RUN / "logs").mkdir()
    config = RUN / "nginx.conf"
    config.write_text(f"""
pid {RUN}/nginx.pid;
error_log {RUN}/logs/error.log;
events {{ worker_connections 256; }}
http {{
    access_log {RUN}/logs/access.log;
    client_body_temp_path {RUN}/body;
    proxy_temp_path {RUN}/proxy;
    fastcgi_temp_path {RUN}/fastcgi;
    uwsgi_temp_path {RUN}/uwsgi;
    scgi_temp_path {RUN}/scgi;
    server {{
        listen 127.0.0.1:{port} ssl;
        server_name localhost;
        ssl_certificate {RUN}/server.pem;
        ssl_certificate_key {RUN}/server.key;
        location / {{
            proxy_pass http://127.0.0.1:{upstream};
            proxy_http_version 1.1;
            proxy_set_header Host $host:$server_port;
            proxy_set_header X-Forwarded-For $remote_addr;
            proxy_set_header X-Forwarded-Proto https;
        }}
    }}
}}
""")
    return subprocess.Popen([nginx, "-c", str(config), "-p", str(RUN), "-g", "daemon off;"],
                            stderr=open(RUN / "logs" / "nginx.stderr", "w"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bin", required=True, help="the tokenlab binary")
    parser.add_argument("--site-root", required=True, help="the built front end")
    parser.add_argument("--port", type=int, default=int(os.environ.get("TOKENLAB_DBSC_PORT", "8443")))
    args = parser.parse_args()
    shutil.rmtree(RUN, ignore_errors=True)
    RUN.mkdir(parents=True)
    certificates()
    server, upstream = start_tokenlab(args.bin, args.site_root, args.port)
    nginx = start_nginx(args.port, upstream)

    def stop(*_: object) -> None:
        for process in (nginx, server):
            process.terminate()
        for process in (nginx, server):
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
        sys.exit(0)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    print(f"the lab over https on https://localhost:{args.port} (tokenlab on 127.0.0.1:{upstream})",
          flush=True)
    while True:
        for name, process in (("nginx", nginx), ("tokenlab", server)):
            if process.poll() is not None:
                other = server if process is nginx else nginx
                other.terminate()
                sys.exit(f"{name} exited with {process.returncode} (logs in {RUN})")
        time.sleep(0.5)


if __name__ == "__main__":
    main()
