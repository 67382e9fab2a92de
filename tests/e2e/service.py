"""The hotline service as a real process for the end-to-end tests: ``hotline run`` on loopback."""

from __future__ import annotations

import os
import secrets
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
from sqlalchemy import pool

from app.db.engine import make_engine, normalize_url
from devtools.local_asterisk import LocalAsterisk

PG_URL = os.environ.get("HOTLINE_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
PASSWORD = "e2e-password-not-a-secret"


def free_tcp_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def database(kind: str, tmp: Path) -> Iterator[str]:
    """A fresh database: a SQLite file, or a schema of its own in the PostgreSQL ``test`` database."""
    if kind == "sqlite":
        yield f"sqlite:///{tmp / 'hotline.sqlite3'}"
        return
    schema = f"hotline_e2e_{uuid.uuid4().hex[:10]}"
    admin = make_engine(PG_URL, poolclass=pool.NullPool)
    with admin.begin() as conn:
        conn.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
    try:
        url = normalize_url(PG_URL).update_query_dict({"options": f"-csearch_path={schema}"})
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.begin() as conn:
            conn.exec_driver_sql(f'DROP SCHEMA "{schema}" CASCADE')
        admin.dispose()


class HotlineService:
    """``hotline run`` against the local Asterisk, with users for agents 1001.. and a supervisor."""

    def __init__(self, asterisk: LocalAsterisk, database_url: str, workdir: Path, **settings: str) -> None:
        self.port = free_tcp_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.workdir = workdir
        self.log_path = workdir / "service.log"
        self.env = {
            **os.environ,
            "HOTLINE_AMI_HOST": asterisk.ami_host,
            "HOTLINE_AMI_PORT": str(asterisk.ami_port),
            "HOTLINE_AMI_USERNAME": asterisk.ami_username,
            "HOTLINE_AMI_SECRET_FILE": str(asterisk.ami_secret_file),
            "HOTLINE_JWT_SECRET": secrets.token_urlsafe(32),
            "HOTLINE_STATE_DIR": str(workdir),
            "DATABASE_URL": database_url,
            **{f"HOTLINE_{k.upper()}": v for k, v in settings.items()},
        }
        self.env.pop("HOTLINE_AMI_SECRET", None)
        self._proc: subprocess.Popen[bytes] | None = None

    def cli(self, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            [sys.executable, "-m", "app.cli", *args],
            input=stdin,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        if done.returncode != 0:
            raise RuntimeError(f"hotline {' '.join(args)} exited {done.returncode}: {done.stderr[-2000:]}")
        return done

    def start(self, timeout: float = 30.0, *, probe: str = "/readyz") -> None:
        """Start ``hotline run`` and wait until ``probe`` answers 200."""
        self._log = self.log_path.open("ab")
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "app.cli", "run", "--port", str(self.port)],
            env=self.env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise RuntimeError(f"hotline run exited {self._proc.returncode}:\n{self.log()}")
            try:
                if httpx.get(f"{self.base_url}{probe}", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"hotline not ready within {timeout} s:\n{self.log()}")

    def stop(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait(5)
        self._proc = None

    def kill(self) -> None:
        """Die without any shutdown (a crash)."""
        if self._proc is not None:
            self._proc.kill()
            self._proc.wait(5)
            self._proc = None

    def readiness(self) -> tuple[int, dict]:
        response = httpx.get(f"{self.base_url}/readyz", timeout=5)
        return response.status_code, response.json()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-6000:] if self.log_path.exists() else ""

    def create_users(self, agent_ids: list[str]) -> None:
        self.cli("db", "upgrade")
        self.cli("users", "create", "sup", "--role", "supervisor", "--password-stdin", stdin=PASSWORD + "\n")
        for agent_id in agent_ids:
            self.cli(
                "users", "create", f"agent{agent_id}", "--role", "agent", "--agent", agent_id,
                "--password-stdin", stdin=PASSWORD + "\n",
            )  # fmt: skip

    def client(self, username: str) -> httpx.Client:
        token = httpx.post(
            f"{self.base_url}/api/v1/token", data={"username": username, "password": PASSWORD}, timeout=10
        )
        token.raise_for_status()
        return httpx.Client(
            base_url=self.base_url,
            headers={"Authorization": f"Bearer {token.json()['access_token']}"},
            timeout=10,
        )
