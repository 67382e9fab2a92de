"""Agent profiles on SQLite and PostgreSQL: the API, the file import, the CLI, the PIN, and the
profiles reaching the running core at once (a skill queue's call goes to the agent given the skill).

The core runs for real behind a service whose AMI link is never started.
"""

from __future__ import annotations

import argparse
import asyncio
import io
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
import redis
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from acd import commands as cmd
from acd import events as ev
from acd.engine import QueueConfig
from agents.busy_reasons import DEFAULT_CONFIG
from app.api import agent_profiles, agents, auth, compliance, queues, supervisor
from app.api.deps import get_settings_dep
from app.commands import agents as agents_cli
from app.db.models import Role
from app.services.agent_profiles import PinCheck, load_profiles
from app.services.compliance import ComplianceStore
from app.services.distribution import DistributionConfig, DistributionService
from app.services.presence_watch import PresenceWatch
from app.services.profile_sync import ProfileSync
from app.settings import Settings, get_settings

QUEUES = (QueueConfig("general"), QueueConfig("tibetan", skill="tibetan"))


class _Recorder:
    def __getattr__(self, name: str) -> Callable[..., None]:
        return lambda *args: None


@pytest.fixture
def app(sessions: sessionmaker[Session], settings: Settings) -> Iterator[FastAPI]:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        service = DistributionService(DistributionConfig(QUEUES), lambda **callbacks: object(), _Recorder())
        service.rings = []  # type: ignore[attr-defined]
        service.listeners.append(lambda o: service.rings.append(o) if isinstance(o, cmd.RingAgent) else None)  # type: ignore[attr-defined]
        service._spawn = lambda coro: coro.close()  # type: ignore[method-assign]  # no Asterisk here
        app.state.distribution = service
        app.state.presence_watch = PresenceWatch(
            service, ComplianceStore(sessions), DEFAULT_CONFIG, login_check=PinCheck(sessions)
        )
        service.writer.start()
        yield
        await service.writer.stop()

    app = FastAPI(lifespan=lifespan)
    for module in (auth, agents, agent_profiles, compliance, queues, supervisor):
        app.include_router(module.router)
    app.state.session_factory = sessions
    app.dependency_overrides[get_settings_dep] = lambda: settings
    yield app


@pytest.fixture
def api(app: FastAPI, make_user: Callable[..., None]) -> Iterator[TestClient]:
    make_user("alice", Role.agent, "1001")
    make_user("bob", Role.agent, "1002")
    make_user("sam", Role.supervisor)
    with TestClient(app) as client:
        yield client


def on_loop(api: TestClient, fn: Callable[[], Any]) -> Any:
    async def run() -> Any:
        return fn()

    return api.portal.call(run)


def test_a_profile_put_over_the_api_reaches_the_core_at_once(
    api: TestClient, app: FastAPI, login: Callable[..., dict[str, str]]
) -> None:
    sam, alice = login("sam"), login("alice")
    service: DistributionService = app.state.distribution
    for agent_id, user in (("1001", alice), ("1002", login("bob"))):
        assert api.post(f"/api/v1/agents/{agent_id}/login", json={"endpoint": f"agent{agent_id[-1]}"},
                        headers=user).status_code == 200  # fmt: skip
        assert api.post(f"/api/v1/agents/{agent_id}/ready", headers=user).status_code == 200
    on_loop(api, lambda: service._handle(ev.CallArrived(service.clock(), "c1", "tibetan", "139", "PJSIP/x")))
    assert service.rings == []  # type: ignore[attr-defined]  # nobody has the skill yet

    body = {"name": "卓玛", "queues": ["tibetan", "general"], "skills": {"tibetan": 4}, "order": 2}
    put = api.put("/api/v1/agent-profiles/1002", json=body, headers=sam)
    assert put.status_code == 200, put.text
    assert put.json() == {"id": "1002", "name": "卓玛", "queues": ["general", "tibetan"],
                          "skills": {"tibetan": 4}, "order": 2, "has_pin": False}  # fmt: skip
    [ring] = service.rings  # type: ignore[attr-defined]
    assert (ring.call_id, ring.agent_id) == ("c1", "1002")  # the waiting call went to the skilled agent
    tibetan = api.get("/api/v1/queues/tibetan", headers=sam).json()
    assert [(a["id"], a["name"]) for a in tibetan["agents"]] == [("1002", "卓玛")]
    assert api.get("/api/v1/agents/1002", headers=sam).json()["name"] == "卓玛"
    assert api.get("/api/v1/agent-profiles/1002", headers=sam).json()["skills"] == {"tibetan": 4}


def test_only_supervisors_manage_profiles_and_bad_ones_get_422(
    api: TestClient, login: Callable[..., dict[str, str]]
) -> None:
    alice, sam = login("alice"), login("sam")
    assert api.put("/api/v1/agent-profiles/1001", json={"name": "x"}, headers=alice).status_code == 403
    assert api.get("/api/v1/agent-profiles", headers=alice).status_code == 403
    for bad in ({"skills": {"tibetan": 6}}, {"skills": {"tibetan": 0}}, {"pin": "12"}, {"pin": "12ab"},
                {"queues": [""]}, {"order": "first"}):  # fmt: skip
        response = api.put("/api/v1/agent-profiles/1001", json=bad, headers=sam)
        assert response.status_code == 422, (bad, response.text)
    assert api.put("/api/v1/agent-profiles/bad%20id", json={}, headers=sam).status_code == 422


def test_import_hundreds_of_agents_from_csv_all_or_nothing(
    api: TestClient, app: FastAPI, sessions: sessionmaker[Session], login: Callable[..., dict[str, str]]
) -> None:
    sam = login("sam")
    lines = ["id,name,queues,skills,order,pin"]
    lines += [
        f"{2000 + i},坐席{i},general;tibetan,tibetan:{1 + i % 5};mandarin:5,{i},{4000 + i}"
        for i in range(300)
    ]
    response = api.post("/api/v1/agent-profiles/import?format=csv", content="\n".join(lines).encode(),
                        headers={**sam, "content-type": "text/csv"})  # fmt: skip
    assert response.status_code == 200, response.text
    assert response.json() == {"imported": 300}
    with sessions() as session:
        stored = {p.agent_id: p for p in load_profiles(session)}
    assert stored["2007"].skill_levels() == {"mandarin": 5, "tibetan": 3}
    assert stored["2007"].queues == {"general", "tibetan"} and stored["2007"].order == 7
    assert PinCheck(sessions)("2007", "4007") == "ok"
    assert PinCheck(sessions)("2007", "4008") == "wrong_pin"
    service: DistributionService = app.state.distribution
    assert on_loop(api, lambda: service.agent("2007").name) == "坐席7"  # applied to the core

    bad = "id,name,skills\n3001,甲,tibetan:5\n3002,乙,tibetan:9\n"
    refused = api.post("/api/v1/agent-profiles/import?format=csv", content=bad.encode(), headers=sam)
    assert refused.status_code == 422 and "line 3" in refused.json()["detail"][0]["msg"], refused.text
    with sessions() as session:
        assert "3001" not in {p.agent_id for p in load_profiles(session)}  # nothing of it stored


def test_import_toml(
    api: TestClient, sessions: sessionmaker[Session], login: Callable[..., dict[str, str]]
) -> None:
    text = """
[[agent]]
id = "1001"
name = "张三"
queues = ["general"]
skills = { mandarin = 5, cantonese = 3 }
order = 1
pin = "4711"

[[agent]]
id = "1005"
"""
    response = api.post(
        "/api/v1/agent-profiles/import?format=toml", content=text.encode(), headers=login("sam")
    )
    assert response.status_code == 200, response.text
    with sessions() as session:
        stored = {p.agent_id: p for p in load_profiles(session)}
    assert stored["1001"].skill_levels() == {"cantonese": 3, "mandarin": 5} and stored["1001"].name == "张三"
    assert stored["1005"].queues == frozenset()  # every queue
    assert PinCheck(sessions)("1001", "4711") == "ok"
    assert PinCheck(sessions)("1005", "4711") == "no_pin"
    assert PinCheck(sessions)("9999", "4711") == "unknown_agent"
    refused = api.post("/api/v1/agent-profiles/import?format=toml", content=b"[[agent]]\nid = 1\nfoo = 2\n",
                       headers=login("sam"))  # fmt: skip
    assert refused.status_code == 422 and "foo" in refused.json()["detail"][0]["msg"]


def test_three_wrong_pins_are_an_incident(
    api: TestClient, app: FastAPI, sessions: sessionmaker[Session], login: Callable[..., dict[str, str]]
) -> None:
    sam = login("sam")
    api.put("/api/v1/agent-profiles/1001", json={"pin": "4711"}, headers=sam).raise_for_status()
    watch: PresenceWatch = app.state.presence_watch
    failures: list[None] = []
    watch.pin_failure_listeners.append(lambda: failures.append(None))
    results = [api.portal.call(watch._feature_result, "login", arg, "agent1")
               for arg in ("1001*1234", "1001", "1001*0000", "1001*4711")]  # fmt: skip
    assert results == ["wrong_pin", "wrong_pin", "wrong_pin", "ok"]
    assert len(failures) == 3
    api.portal.call(app.state.distribution.writer.drain)
    incidents = api.get("/api/v1/compliance/incidents", params={"kind": "login_pin_failures"}, headers=sam)
    assert incidents.status_code == 200, incidents.text
    [incident] = incidents.json()
    assert (incident["agent_id"], incident["reason"], incident["open"]) == ("1001", "agent1", False)
    assert on_loop(api, lambda: app.state.distribution.agent("1001").state.value) == "logged_in"


# -- the CLI ---------------------------------------------------------------------------------------


@pytest.fixture
def hotline(
    db_url: str, monkeypatch: pytest.MonkeyPatch, sessions: sessionmaker[Session]
) -> Iterator[Callable[..., int]]:
    monkeypatch.setenv("HOTLINE_DATABASE_URL", db_url)
    get_settings.cache_clear()
    parser = argparse.ArgumentParser(prog="hotline")
    agents_cli.register(parser.add_subparsers(dest="command", required=True))

    def run(*argv: str, stdin: str = "") -> int:
        monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
        args = parser.parse_args(argv)
        return args.handler(args)

    yield run
    get_settings.cache_clear()


def test_cli_set_import_list_and_the_running_service_follows(
    hotline: Callable[..., int],
    sessions: sessionmaker[Session],
    tmp_path: Any,
    capsys: pytest.CaptureFixture[str],
) -> None:
    settings = get_settings()

    async def scenario() -> None:
        service = DistributionService(DistributionConfig(QUEUES), lambda **callbacks: object(), _Recorder())
        sync = ProfileSync(service, sessions, settings.redis_url, settings.profiles_channel)
        sync.start()
        await asyncio.wait_for(sync.subscribed.wait(), 10)
        argv = ("agents", "set", "1010", "--name", "李雷", "--queue", "tibetan", "--skill", "tibetan=5",
                "--order", "3", "--pin-stdin")  # fmt: skip
        rc = await asyncio.to_thread(hotline, *argv, stdin="123456\n")
        assert rc == 0
        for _ in range(100):  # bounded: 10 s
            if service.agent("1010").name == "李雷":
                break
            await asyncio.sleep(0.1)
        await sync.stop()
        profile = service.agent("1010").profile
        assert (profile.name, profile.queues, profile.skill_levels(), profile.order) == (
            "李雷",
            frozenset({"tibetan"}),
            {"tibetan": 5},
            3,
        )

    try:
        redis.Redis.from_url(settings.redis_url).ping()
    except redis.RedisError as exc:
        pytest.fail(f"Redis not reachable at {settings.redis_url}: {exc}")
    asyncio.run(scenario())
    assert PinCheck(sessions)("1010", "123456") == "ok"

    path = tmp_path / "agents.csv"
    path.write_text("id,name,skills\n1011,韩梅梅,mandarin:4\n", encoding="utf-8")
    assert hotline("agents", "import", str(path)) == 0
    assert hotline("agents", "set", "1012", "--skill", "x=7") == 1
    assert "level 7" in capsys.readouterr().err
    assert hotline("agents", "list") == 0
    out = capsys.readouterr().out
    assert "李雷" in out and "韩梅梅" in out and "mandarin:4" in out
    assert hotline("agents", "clear-pin", "1010") == 0
    assert PinCheck(sessions)("1010", "123456") == "no_pin"
