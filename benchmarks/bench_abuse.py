"""Abuse on loopback: huge request bodies and a burst of logins against a real ``hotline run``.

Starts the service (SQLite in a temporary directory, its AMI link pointed at a closed port) as a
child process, then measures in the same run:

1. eight concurrent unauthenticated 50 MB JSON bodies: their statuses, the slowest ``/healthz``
   answer while they are sent, and the server's peak resident memory;
2. forty parallel logins (wrong passwords) and one genuine login among them: the genuine login's
   time, the statuses, and the server's peak resident memory.

``PYTHONPATH=. python benchmarks/bench_abuse.py [--source DIR]``: ``--source`` runs another checkout's
code (e.g. the commit before the limits) for a side-by-side comparison. Bounded: every request has a
timeout, each phase a fixed count.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import secrets
import socket
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

BODY_MB = 50
UPLOADS = 8
LOGINS = 40
PASSWORD = "bench-password-123"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


class PeakRss:
    def __init__(self, pid: int) -> None:
        self.pid, self.peak, self._stop = pid, 0.0, threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(0.02):
            self.peak = max(self.peak, rss_mib(self.pid))

    def __enter__(self) -> PeakRss:
        self.peak = rss_mib(self.pid)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def start(source: Path, tmp: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    env = {
        **os.environ,
        "PYTHONPATH": str(source),
        "HOTLINE_DATABASE_URL": f"sqlite:///{tmp / 'hotline.sqlite3'}",
        "HOTLINE_JWT_SECRET": secrets.token_urlsafe(32),
        "HOTLINE_AMI_PORT": str(free_port()),
        "HOTLINE_AMI_SECRET": "unused",
    }
    python = sys.executable
    subprocess.run(
        [python, "-m", "app.cli", "db", "upgrade"], env=env, cwd=source, check=True, capture_output=True
    )
    subprocess.run(
        [python, "-m", "app.cli", "users", "create", "alice", "--role", "supervisor", "--password-stdin"],
        input=f"{PASSWORD}\n".encode(), env=env, cwd=source, check=True, capture_output=True,
    )  # fmt: skip
    server = subprocess.Popen(
        [python, "-m", "app.cli", "run", "--port", str(port), "--log-level", "ERROR"],
        env=env, cwd=source, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                return server, base
        except httpx.HTTPError:
            time.sleep(0.2)
    server.kill()
    raise RuntimeError("the service did not start")


def uploads(base: str, pid: int) -> None:
    body = b'{"agent_id": "1001", "reason": "' + b"x" * (BODY_MB * 2**20) + b'"}'
    slowest, done = 0.0, threading.Event()

    def probe() -> None:
        nonlocal slowest
        while not done.is_set():
            began = time.monotonic()
            with contextlib.suppress(httpx.HTTPError):
                httpx.get(f"{base}/healthz", timeout=30)
            slowest = max(slowest, time.monotonic() - began)
            time.sleep(0.05)

    def send(_: int) -> str:
        try:
            headers = {"content-type": "application/json"}
            r = httpx.post(f"{base}/api/v1/busy-requests", content=body, headers=headers, timeout=60)
            return str(r.status_code)
        except httpx.HTTPError as exc:
            return type(exc).__name__

    prober = threading.Thread(target=probe)
    with PeakRss(pid) as rss:
        began = time.monotonic()
        prober.start()
        with ThreadPoolExecutor(UPLOADS) as pool:
            statuses = list(pool.map(send, range(UPLOADS)))
        took = time.monotonic() - began
        done.set()
        prober.join()
    print(f"  {UPLOADS} x {BODY_MB} MB bodies: statuses {sorted(set(statuses))} in {took:.2f} s; "
          f"slowest /healthz {slowest * 1000:.0f} ms; peak RSS {rss.peak:.0f} MiB")  # fmt: skip


def logins(base: str, pid: int) -> None:
    def attempt(i: int) -> tuple[str, float]:
        began = time.monotonic()
        password = PASSWORD if i == LOGINS // 2 else f"wrong-{i}"
        try:
            r = httpx.post(
                f"{base}/api/v1/token", data={"username": "alice", "password": password}, timeout=60
            )
            status = str(r.status_code)
        except httpx.HTTPError as exc:
            status = type(exc).__name__
        return status, time.monotonic() - began

    with PeakRss(pid) as rss, ThreadPoolExecutor(LOGINS) as pool:
        results = list(pool.map(attempt, range(LOGINS)))
    genuine_status, genuine_time = results[LOGINS // 2]
    counts: dict[str, int] = {}
    for status, _ in results:
        counts[status] = counts.get(status, 0) + 1
    print(f"  {LOGINS} parallel logins: {counts}; the genuine one {genuine_status} in {genuine_time:.2f} s; "
          f"peak RSS {rss.peak:.0f} MiB")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--source", type=Path, default=Path(__file__).resolve().parent.parent)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        server, base = start(args.source.resolve(), Path(tmp))
        try:
            print(f"{args.source}: idle RSS {rss_mib(server.pid):.0f} MiB")
            uploads(base, server.pid)
            logins(base, server.pid)
        finally:
            server.terminate()
            server.wait(20)


if __name__ == "__main__":
    main()
