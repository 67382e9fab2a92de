"""Presence and the unauthorized-busy log end to end: real Asterisk, the service, sipp phones.

Feature codes dialled from the agent's phone change its state and get an answer; a phone that
unregisters makes its agent leave the post; a personal call while ready and a busy over its limit
become incidents with the right duration. Busy limits and grace periods are seconds here (a
busy-reasons file of the test's own).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import httpx
import pytest

from devtools.local_asterisk import LocalAsterisk, cli
from tests.e2e.ami_raw import RawAmi
from tests.e2e.service import HotlineService, database
from tests.e2e.sipp import AgentPhone
from tests.e2e.sipp_agent_calls import dial_from_agent_phone
from tests.waiting import wait_until

pytestmark = pytest.mark.e2e

AGENT, ENDPOINT, IP = "1001", "agent1", "127.0.0.3"
PIN = "8642"  # the agent's phone PIN (feature-code login)
BREAK_LIMIT = 3.0  # seconds (limit_minutes = 0.05)
LEFT_POST_GRACE = 2.0
PERSONAL_CALL_GRACE = 3.0  # longer than a feature-code call that ends "ready"

BUSY_REASONS = f"""
[reasons.break]
code = 1
limit_minutes = {BREAK_LIMIT / 60}

[reasons.meal]
code = 3
needs_approval = true

[rules]
left_post_grace_seconds = {LEFT_POST_GRACE}
personal_call_grace_seconds = {PERSONAL_CALL_GRACE}
"""


@pytest.fixture(scope="module")
def service(
    local_asterisk: LocalAsterisk, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[HotlineService]:
    workdir = tmp_path_factory.mktemp("presence")
    reasons = Path(workdir / "busy_reasons.toml")
    reasons.write_text(BUSY_REASONS)
    cli("channel request hangup all")
    with database("sqlite", workdir) as url:
        svc = HotlineService(local_asterisk, url, workdir, busy_reasons_file=str(reasons))
        svc.create_users([AGENT])
        svc.cli("agents", "set", AGENT, "--pin-stdin", stdin=f"{PIN}\n")
        svc.start()
        try:
            yield svc
        finally:
            svc.stop()


@pytest.fixture
def supervisor(service: HotlineService) -> Iterator[httpx.Client]:
    with service.client("sup") as client:
        yield client
        client.post(f"/api/v1/agents/{AGENT}/logout")


@pytest.fixture
def phone(local_asterisk: LocalAsterisk, supervisor: httpx.Client) -> Iterator[AgentPhone]:
    with AgentPhone(ENDPOINT, local_asterisk.agents[ENDPOINT], IP) as registered:
        yield registered


def state(client: httpx.Client) -> tuple[str, str]:
    agent = client.get(f"/api/v1/agents/{AGENT}").json()
    return agent["state"], agent["reason"]


def incidents(client: httpx.Client, kind: str) -> list[dict]:
    response = client.get("/api/v1/compliance/incidents", params={"agent": AGENT, "kind": kind})
    assert response.status_code == 200, response.text
    return response.json()


def _ts(iso: str) -> float:
    return datetime.fromisoformat(iso).timestamp()


async def dial(local_asterisk: LocalAsterisk, number: str, hangup_after: float | None = None) -> None:
    call = dial_from_agent_phone(
        ENDPOINT, local_asterisk.agents[ENDPOINT], IP, number, hangup_after=hangup_after, max_seconds=20
    )
    result = await asyncio.to_thread(call.wait, 25)
    assert result.answered and result.completed, result.log + result.errors


async def test_feature_codes_change_the_state_and_are_answered(
    local_asterisk: LocalAsterisk, service: HotlineService, supervisor: httpx.Client, phone: AgentPhone
) -> None:
    ami = await RawAmi.connect(local_asterisk.ami_host, local_asterisk.ami_port)
    try:
        await ami.login(local_asterisk.ami_username, local_asterisk.ami_secret)
        expected = [
            (f"*21{AGENT}*{PIN}", ("logged_in", "")),
            ("*23", ("ready", "")),
            ("*221", ("busy", "break")),
            ("*229", ("busy", "break")),  # unknown reason code: refused, nothing changes
            ("*24", ("logged_out", "")),
        ]
        for number, after in expected:
            await dial(local_asterisk, number)
            assert state(supervisor) == after, number
        done = [e for e in ami.events if e.get("UserEvent") == "AcdFeatureCodeDone"]
        assert [(e["Action"], e["Result"]) for e in done] == [
            ("login", "ok"),
            ("ready", "ok"),
            ("busy", "ok"),
            ("busy", "unknown_reason"),
            ("logout", "ok"),
        ]
    finally:
        await ami.close()
    history = supervisor.get(f"/api/v1/compliance/agents/{AGENT}/history").json()
    assert {h["actor"] for h in history} == {f"phone:{ENDPOINT}"}
    assert [h["to_state"] for h in reversed(history)] == ["logged_in", "ready", "busy", "logged_out"]


async def test_an_unregistered_phone_leaves_the_post(
    service: HotlineService, supervisor: httpx.Client, phone: AgentPhone
) -> None:
    assert supervisor.post(f"/api/v1/agents/{AGENT}/login", json={"endpoint": ENDPOINT}).status_code == 200
    supervisor.post(f"/api/v1/agents/{AGENT}/ready")
    await asyncio.sleep(0.5)
    gone = await asyncio.to_thread(lambda: (phone.stop(unregister=True), datetime.now().timestamp())[1])
    assert state(supervisor) == ("ready", "")  # within the grace period
    wait_until(lambda: state(supervisor) == ("not_ready", "left_post"), LEFT_POST_GRACE + 10, "left post")
    [incident] = wait_until(lambda: incidents(supervisor, "left_post"), 10, "left_post incident")
    assert incident["open"]
    assert abs(_ts(incident["started_at"]) - gone) < 1.5  # from when the phone went, not the grace's end
    live = supervisor.get("/api/v1/supervisor/agents").json()
    assert [(a["id"], a["open_incidents"], a["phone"]) for a in live] == [
        (AGENT, ["left_post"], "UNAVAILABLE")
    ]
    supervisor.post(f"/api/v1/agents/{AGENT}/logout")  # the incident ends with the login
    [closed] = wait_until(
        lambda: [i for i in incidents(supervisor, "left_post") if not i["open"]], 10, "incident closed"
    )
    assert closed["duration_seconds"] >= LEFT_POST_GRACE


async def test_a_personal_call_while_ready_is_an_incident(
    local_asterisk: LocalAsterisk, service: HotlineService, supervisor: httpx.Client, phone: AgentPhone
) -> None:
    assert supervisor.post(f"/api/v1/agents/{AGENT}/login", json={"endpoint": ENDPOINT}).status_code == 200
    supervisor.post(f"/api/v1/agents/{AGENT}/ready")
    talk = PERSONAL_CALL_GRACE + 3
    await dial(local_asterisk, "*43", hangup_after=talk)  # the echo test: a call the ACD did not give
    [incident] = wait_until(
        lambda: [i for i in incidents(supervisor, "phone_busy_while_ready") if not i["open"]], 10, "incident"
    )
    assert incident["reason"] == "BUSY"  # device_state_busy_at = 1: one call makes the phone BUSY
    assert talk - 1.5 < incident["duration_seconds"] < talk + 1.5
    assert state(supervisor) == ("ready", "")


async def test_busy_over_the_limit_is_an_incident_with_the_overrun(
    service: HotlineService, supervisor: httpx.Client, phone: AgentPhone
) -> None:
    with service.client(f"agent{AGENT}") as agent:
        assert agent.post(f"/api/v1/agents/{AGENT}/login", json={"endpoint": ENDPOINT}).status_code == 200
        assert agent.post(f"/api/v1/agents/{AGENT}/busy", json={"reason": "break"}).json()["state"] == "busy"
        await asyncio.sleep(BREAK_LIMIT + 2.5)
        [open_incident] = incidents(supervisor, "busy_over_limit")
        assert open_incident["open"] and open_incident["reason"] == "break"
        assert agent.post(f"/api/v1/agents/{AGENT}/ready").json()["state"] == "ready"
    [incident] = wait_until(
        lambda: [i for i in incidents(supervisor, "busy_over_limit") if not i["open"]], 10, "closed incident"
    )
    history = supervisor.get(f"/api/v1/compliance/agents/{AGENT}/history").json()
    busy = next(h for h in history if h["to_state"] == "busy")
    ready = next(h for h in history if h["from_state"] == "busy")
    busy_for = _ts(ready["at"]) - _ts(busy["at"])
    assert incident["duration_seconds"] == pytest.approx(busy_for - BREAK_LIMIT, abs=0.01)
    assert _ts(incident["started_at"]) == pytest.approx(_ts(busy["at"]) + BREAK_LIMIT, abs=0.01)
    # the log is intact and the CSV export has it
    assert supervisor.get("/api/v1/compliance/verify").json()["ok"]
    exported = supervisor.get("/api/v1/compliance/incidents", params={"format": "csv"}).text
    assert incident["id"] in exported
