"""Schemathesis hooks for tokenlab: signs the generated requests in as one scheme.

`fuzz/api/run.py` loads this module (SCHEMATHESIS_HOOKS) once per scheme, naming the scheme in
TOKENLAB_FUZZ_SCHEME (`none`, `session`, `device` or `bearer`) and the server in
TOKENLAB_FUZZ_BASE. The run's own account (TOKENLAB_FUZZ_USER / TOKENLAB_FUZZ_PASSWORD) is
registered on first use, so the generated requests, which guess and change passwords, log out and
reset the demo, never lock the harness out: whenever an answer is 401 the provider signs in again,
registering the account anew if a demo reset removed it.
"""

from __future__ import annotations

import os
import secrets

import requests
import schemathesis

SCHEME = os.environ.get("TOKENLAB_FUZZ_SCHEME", "none")
BASE = os.environ.get("TOKENLAB_FUZZ_BASE", "http://127.0.0.1:3000")
USER = os.environ.get("TOKENLAB_FUZZ_USER", "fuzz-harness")
PASSWORD = os.environ.get("TOKENLAB_FUZZ_PASSWORD", "fuzz-harness-passphrase")
TIMEOUT = 10


def cookie_from(response: requests.Response, name: str) -> str:
    value = response.cookies.get(name)
    if not value:
        raise RuntimeError(f"{response.request.method} {response.url} set no {name} cookie: "
                           f"{response.status_code} {response.text[:200]}")
    return value


def expect(response: requests.Response, status: int) -> requests.Response:
    if response.status_code != status:
        raise RuntimeError(f"{response.request.method} {response.url}: expected {status}, got "
                           f"{response.status_code} {response.text[:200]}")
    return response


def sign_in() -> dict[str, str]:
    """The headers one request of SCHEME carries, from a fresh sign-in."""
    credentials = {"username": USER, "password": PASSWORD}
    # The generated requests guess passwords and register accounts from 127.0.0.1 until its
    # throttles refuse it, which they should. The harness signs in as a client of its own: the
    # server believes X-Forwarded-For from 127.0.0.1 (run.py starts it so), and each sign-in comes
    # from an address of its own in the documentation range.
    client = {"X-Forwarded-For": f"198.51.100.{secrets.randbelow(254) + 1}"}
    # 201 the first time, 409 afterwards (or after a demo reset, 201 again).
    requests.post(f"{BASE}/api/accounts", json=credentials, headers=client, timeout=TIMEOUT)
    if SCHEME == "session":
        login = expect(requests.post(f"{BASE}/api/session/login", json=credentials,
                                     headers=client, timeout=TIMEOUT), 200)
        return {"Cookie": f"tl_session={cookie_from(login, 'tl_session')}"}
    if SCHEME == "device":
        device_id = f"fuzz-{secrets.token_hex(8)}"
        login = expect(requests.post(f"{BASE}/api/device/login",
                                     json={**credentials, "device_id": device_id,
                                           "mode": "hardened"}, headers=client,
                                     timeout=TIMEOUT), 200)
        return {
            "Cookie": f"tl_device={cookie_from(login, 'tl_device')}",
            "X-Device-Id": device_id,
            "X-Device-Token": login.json()["device_token"],
        }
    if SCHEME == "bearer":
        grant = expect(requests.post(f"{BASE}/api/oauth/token",
                                     data={"grant_type": "password", **credentials},
                                     headers=client, timeout=TIMEOUT), 200)
        return {"Authorization": f"Bearer {grant.json()['access_token']}"}
    raise RuntimeError(f"unknown TOKENLAB_FUZZ_SCHEME {SCHEME!r}")


if SCHEME != "none":

    # A sign-in is kept for a minute and taken anew after any 401: the generated requests end
    # sign-ins (logouts, sign-out everywhere, demo resets) as often as they make them.
    @schemathesis.auth(refresh_interval=60, retry_on=[401])
    class TokenlabSignIn:
        def get(self, case, ctx):
            return sign_in()

        def set(self, case, data, ctx):
            case.headers = {**(case.headers or {}), **data}
