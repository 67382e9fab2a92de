"""The service under test and its accounts.

Loopback mode starts ``hotline run`` on a free port with a database of the run's own (a SQLite file
in the work directory unless one is given) against the local Asterisk. Against a staging service only
the accounts are made: an admin for the test itself and one agent user per phone, created in the
service's database before the run and deleted after it (their calls, tickets and presence history
stay, as records of the run).
"""

from __future__ import annotations

import os
import secrets
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
from sqlalchemy import delete, select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from app.db.models import User
from app.services.users import create_user


def free_tcp_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def cpu_seconds(pid: int | None) -> float | None:
    """User + system CPU seconds of a process so far (None if it cannot be read)."""
    if pid is None:
        return None
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class LocalService:
    """``hotline run`` as a child process on loopback (see the module docstring)."""

    def __init__(
        self, *, database_url: str, workdir: Path, ami: dict[str, str], log_level: str = "INFO"
    ) -> None:
        self.port = free_tcp_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = workdir / "service.log"
        self.env = {
            **os.environ,
            **ami,
            "HOTLINE_JWT_SECRET": secrets.token_urlsafe(32),
            "HOTLINE_STATE_DIR": str(workdir),
            "DATABASE_URL": database_url,
        }
        if "HOTLINE_AMI_SECRET_FILE" in ami:
            self.env.pop("HOTLINE_AMI_SECRET", None)
        self.log_level = log_level
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    def upgrade_database(self) -> None:
        done = subprocess.run(
            [sys.executable, "-m", "app.cli", "db", "upgrade"],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        if done.returncode != 0:
            raise RuntimeError(f"hotline db upgrade failed: {done.stderr[-2000:]}")

    def start(self, timeout: float = 40.0) -> None:
        log = self.log_path.open("ab")
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "app.cli", "run", "--port", str(self.port), "--log-level", self.log_level],
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise RuntimeError(f"hotline run exited {self._proc.returncode}:\n{self.log_tail()}")
            try:
                if httpx.get(f"{self.url}/readyz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"hotline run not ready within {timeout} s:\n{self.log_tail()}")

    def stop(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(15)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait(5)

    def log_lines(self) -> list[str]:
        try:
            return self.log_path.read_text(errors="replace").splitlines()
        except FileNotFoundError:
            return []

    def log_tail(self) -> str:
        return "\n".join(self.log_lines()[-40:])


class Accounts:
    """The run's admin and agent users, created in the service's database and deleted afterwards."""

    def __init__(self, engine: Engine, run_id: str, agent_ids: list[str]) -> None:
        self.engine = engine
        self.admin = f"loadtest-{run_id}-admin"
        self.admin_password = secrets.token_urlsafe(18)
        self.agents = {agent_id: f"loadtest-{run_id}-{agent_id}" for agent_id in agent_ids}

    def create(self) -> None:
        with Session(self.engine) as session:
            create_user(session, self.admin, self.admin_password, "admin")
            for agent_id, username in self.agents.items():
                # Nobody logs in as these: the admin acts for them. The password is thrown away.
                create_user(session, username, secrets.token_urlsafe(18), "agent", agent_id)

    def remove(self) -> int:
        names = [self.admin, *self.agents.values()]
        with Session(self.engine) as session:
            found = len(session.scalars(select(User.id).where(User.username.in_(names))).all())
            session.execute(delete(User).where(User.username.in_(names)))
            session.commit()
        return found
