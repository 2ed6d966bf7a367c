"""What the binding tests share: the generated Python module, a real `flexwork serve` on a
free loopback port with its own data folder, and the platform side of a worker's day (accounts,
a published task, an order) made the way scripts/walkthrough makes them: the server's command
line for accounts, its HTTP API for the rest.

Environment (scripts/bindings-test sets these):
  FLEXWORK_BINDINGS_DIR  the generated flexwork_mobile.py with the library beside it
  FLEXWORK_BIN_DIR       where the `flexwork` server binary is
  FLEXWORK_FIXTURES      the shared fixtures folder (default: ../shared/fixtures)
"""

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
BINDINGS = Path(os.environ.get("FLEXWORK_BINDINGS_DIR", ROOT / "target/bindings/python"))
BIN_DIR = Path(os.environ.get("FLEXWORK_BIN_DIR", ROOT / "target/debug"))
FIXTURES = Path(os.environ.get("FLEXWORK_FIXTURES", ROOT.parent / "shared/fixtures"))

sys.path.insert(0, str(BINDINGS))

# Where DSCN0010.jpg was taken (its EXIF GPS position), and the work window around it.
SITE_LAT, SITE_LON = 43.467448, 11.885127
WINDOW_FROM, WINDOW_TO = "2008-10-23T12:00:00Z", "2008-10-23T18:00:00Z"
# 2008-10-23T14:27:07Z, the GPS time of DSCN0010.jpg.
CAPTURE_MS = 1_224_772_027_000
PASSWORDS = {
    "operator": "operator-secret-1",
    "acme": "acme-secret-12",
}


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class HttpError(Exception):
    def __init__(self, status, body):
        super().__init__(f"{status}: {body}")
        self.status = status
        self.body = body


class Server:
    """One `flexwork serve` on loopback; can be stopped and started again on the same data."""

    def __init__(self, data_dir):
        self.data_dir = Path(data_dir)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = dict(
            os.environ,
            FLEXWORK_DATA_DIR=str(self.data_dir),
            FLEXWORK_LISTEN=f"127.0.0.1:{self.port}",
            FLEXWORK_LOG="warn",
        )
        self.process = None

    def cli(self, *args, password=None):
        env = dict(self.env)
        if password is not None:
            env["FLEXWORK_NEW_PASSWORD"] = password
        done = subprocess.run(
            [str(BIN_DIR / "flexwork"), *args],
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0:
            raise RuntimeError(f"flexwork {' '.join(args)} failed: {done.stderr}")
        return done.stdout.strip()

    def add_account(self, role, login, name, teams=()):
        args = ["account", "add", "--role", role, "--login", login, "--name", name]
        for team in teams:
            args += ["--team", team]
        self.cli(*args, password=PASSWORDS.get(login, f"{login}-secret-12"))

    def start(self):
        log = open(self.data_dir / "server.log", "ab")
        self.process = subprocess.Popen(
            [str(BIN_DIR / "flexwork"), "serve"], env=self.env, stdout=log, stderr=log
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError("the server stopped at start; see server.log")
            try:
                with urllib.request.urlopen(self.url + "/healthz", timeout=1):
                    return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError("the server did not answer within a minute")

    def stop(self):
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=30)
            self.process = None

    def call(self, method, path, token=None, body=None):
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.url + "/api/v1" + path, data=data, method=method)
        if data is not None:
            request.add_header("content-type", "application/json")
        if token:
            request.add_header("authorization", f"Bearer {token}")
        try:
            with urllib.request.urlopen(request, timeout=30) as answer:
                text = answer.read().decode()
        except urllib.error.HTTPError as e:
            raise HttpError(e.code, e.read().decode()) from None
        return json.loads(text) if text else None

    def sign_in(self, login):
        """First sign-in of an enterprise or operator: set up the authenticator, return a
        full token (`flexwork totp-code` plays the authenticator app)."""
        password = PASSWORDS[login]
        setup = self.call("POST", "/sessions", body={"login": login, "password": password})
        secret = self.call("POST", "/me/totp", token=setup["token"])["secret"]
        code = self.cli("totp-code", secret)
        confirmed = self.call("POST", "/me/totp/confirm", token=setup["token"], body={"code": code})
        return confirmed["token"]


class Platform:
    """The platform side of a worker's day: a server with an operator, an enterprise and one
    worker, and a published task at the place DSCN0010.jpg was taken, assigned to the worker."""

    def __init__(self, server, worker):
        self.server = server
        self.worker = worker
        self.worker_password = f"{worker}-secret-12"
        self.acme = server.sign_in("acme")
        self.operator = server.sign_in("operator")
        self.order_id = self.make_order()

    def make_order(self):
        call = self.server.call
        task = call("POST", "/tasks", self.acme, {
            "title": "Photograph the shop front", "description": "Arezzo, via Roma",
            "site_lat": SITE_LAT, "site_lon": SITE_LON, "site_radius_m": 2000,
            "window_from": WINDOW_FROM, "window_to": WINDOW_TO,
            "fee_fen": 300000, "min_photos": 1, "require_signature": True,
        })["id"]
        call("PATCH", f"/tasks/{task}", self.acme, {
            "skills": [], "qualifications": [], "health_requirements": [],
            "hardware": "a phone with a camera", "acceptance_criteria": "the entrance in focus",
            "fee_basis": "per_order", "min_fee_fen": 300000, "min_service_minutes": 30,
            "max_minutes_per_day": 480, "min_rest_minutes": 60, "headcount": 1,
            "estimated_minutes_per_person": 60,
        })
        call("POST", f"/tasks/{task}/submit", self.acme)
        call("POST", f"/tasks/{task}/review", self.operator, {
            "decision": "publish",
            "checks": [{"kind": "phone_call", "note": "called Acme: the job is real"}],
        })
        order = call("POST", f"/tasks/{task}/orders", self.acme, {"worker_login": self.worker})
        return order["id"]

    def order(self):
        return self.server.call("GET", f"/orders/{self.order_id}", self.acme)

    def wait_for_verdict(self, timeout=60):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            order = self.order()
            if not order["verification_pending"] and order["verdict"] is not None:
                return order
            time.sleep(0.2)
        raise AssertionError("verification did not finish within a minute")


def start_server(tmp_path, workers):
    server = Server(tmp_path / "server")
    server.data_dir.mkdir(parents=True)
    server.add_account("operator", "operator", "Platform operator", ["reviewer", "administrator"])
    server.add_account("enterprise", "acme", "Acme Retail")
    for login in workers:
        server.add_account("worker", login, f"Worker {login}")
    server.start()
    return server


@pytest.fixture
def platform(tmp_path):
    server = start_server(tmp_path, ["wang"])
    try:
        yield Platform(server, "wang")
    finally:
        server.stop()


@pytest.fixture
def server(tmp_path):
    server = start_server(tmp_path, ["zhao"])
    try:
        yield server
    finally:
        server.stop()


def fixture(relative):
    path = FIXTURES / relative
    assert path.exists(), f"missing fixture {path}"
    return path
