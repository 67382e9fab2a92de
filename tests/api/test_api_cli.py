"""``hotline db upgrade`` and ``hotline users create|list``, then logging in with the new account."""

from __future__ import annotations

import argparse
import io
from collections.abc import Callable, Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from app.commands import db, users
from app.db.models import Agent, User
from app.settings import get_settings

Hotline = Callable[..., int]


@pytest.fixture
def hotline(
    db_url: str, sessions: sessionmaker[Session], monkeypatch: pytest.MonkeyPatch
) -> Iterator[Hotline]:
    """Run ``hotline ARGS`` (the db and users subcommands) against the test database."""
    monkeypatch.setenv("HOTLINE_DATABASE_URL", db_url)
    get_settings.cache_clear()
    parser = argparse.ArgumentParser(prog="hotline")
    sub = parser.add_subparsers(dest="command", required=True)
    db.register(sub)
    users.register(sub)

    def run(*argv: str, stdin: str = "") -> int:
        monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
        args = parser.parse_args(argv)
        return args.handler(args)

    yield run
    get_settings.cache_clear()


def test_db_upgrade_is_idempotent(hotline: Hotline, capsys: pytest.CaptureFixture[str]) -> None:
    assert hotline("db", "upgrade") == 0
    assert "database upgraded to head" in capsys.readouterr().out


def test_create_user_from_stdin_then_log_in(
    hotline: Hotline, client: TestClient, sessions: sessionmaker[Session], capsys: pytest.CaptureFixture[str]
) -> None:
    rc = hotline(
        "users",
        "create",
        "li",
        "--role",
        "agent",
        "--agent",
        "1001",
        "--password-stdin",
        stdin="s3cret-passw0rd\n",
    )
    assert rc == 0
    assert capsys.readouterr().out.strip() == "created user li (agent, agent 1001)"
    with sessions() as session:
        agent = session.get(Agent, "1001")
        assert agent is not None and agent.name == "li"

    response = client.post("/api/v1/token", data={"username": "li", "password": "s3cret-passw0rd"})
    assert response.status_code == 200
    assert response.json()["agent_id"] == "1001"
    assert (
        client.post("/api/v1/token", data={"username": "li", "password": "s3cret-passw0rd\n"}).status_code
        == 401
    )

    assert hotline("users", "list") == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].split() == ["USERNAME", "ROLE", "AGENT", "ACTIVE"]
    assert out[1].split() == ["li", "agent", "1001", "yes"]


def test_interactive_password_prompts_twice(
    hotline: Hotline, monkeypatch: pytest.MonkeyPatch, sessions: sessionmaker[Session]
) -> None:
    answers = iter(["first-password", "other-password", "same-password", "same-password"])
    monkeypatch.setattr("getpass.getpass", lambda prompt="": next(answers))
    assert hotline("users", "create", "boss", "--role", "supervisor") == 1  # mismatch
    assert hotline("users", "create", "boss", "--role", "supervisor") == 0
    with sessions() as session:
        assert session.scalars(select(User).where(User.username == "boss")).one().agent_id is None


@pytest.mark.parametrize(
    ("argv", "stdin", "error"),
    [
        (
            ("users", "create", "li", "--role", "agent"),
            "long-enough-pw\n",
            "--role agent requires --agent ID",
        ),
        (("users", "create", "li", "--role", "admin"), "\n", "password must be at least 8 characters"),
        (("users", "create", "li", "--role", "admin"), "", "password must be at least 8 characters"),
        (("users", "create", "li", "--role", "admin"), "short\n", "password must be at least 8 characters"),
    ],
)
def test_create_user_refusals(
    hotline: Hotline, capsys: pytest.CaptureFixture[str], argv: tuple[str, ...], stdin: str, error: str
) -> None:
    assert hotline(*argv, "--password-stdin", stdin=stdin) == 1
    assert capsys.readouterr().err.strip() == f"error: {error}"


def test_duplicate_user_refused(hotline: Hotline, capsys: pytest.CaptureFixture[str]) -> None:
    assert (
        hotline("users", "create", "root", "--role", "admin", "--password-stdin", stdin="long-enough-pw\n")
        == 0
    )
    assert (
        hotline("users", "create", "root", "--role", "admin", "--password-stdin", stdin="long-enough-pw\n")
        == 1
    )
    assert capsys.readouterr().err.strip() == "error: user 'root' already exists"


def test_role_choices_enforced(hotline: Hotline) -> None:
    with pytest.raises(SystemExit):
        hotline("users", "create", "x", "--role", "god", "--password-stdin")


def test_disable_set_role_revoke_and_delete_from_the_console(
    hotline: Hotline, client: TestClient, make_user: Callable[..., None], capsys: pytest.CaptureFixture[str]
) -> None:
    make_user("wang", "agent", "1007")
    password = "correct horse battery"  # the make_user default

    def token() -> dict[str, str]:
        response = client.post("/api/v1/token", data={"username": "wang", "password": password})
        return {"Authorization": f"Bearer {response.json().get('access_token')}"}

    for argv in (("revoke", "wang"), ("set-role", "wang", "--role", "supervisor"), ("disable", "wang")):
        headers = token()
        assert client.get("/api/v1/tickets", headers=headers).status_code == 200
        assert hotline("users", *argv) == 0
        assert client.get("/api/v1/tickets", headers=headers).status_code == 401, argv
    assert hotline("users", "enable", "wang") == 0
    assert client.get("/api/v1/tickets", headers=headers).status_code == 401  # stays revoked
    headers = token()
    assert hotline("users", "delete", "wang") == 0
    assert client.get("/api/v1/tickets", headers=headers).status_code == 401
    assert hotline("users", "delete", "wang") == 1
    assert "no user 'wang'" in capsys.readouterr().err
