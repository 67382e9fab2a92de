"""Agent profiles and the phone PIN end to end: real Asterisk, the service, sipp phones.

A skill queue's call goes to the agent an imported profile gives the skill, not to an idle agent
without it (before profiles had a writer, a skill queue admitted nobody). Feature-code login needs
the agent's PIN; wrong PINs are counted, and a burst of them is an incident and a metric.
"""

from __future__ import annotations

import asyncio
from contextlib import ExitStack
from pathlib import Path

import httpx
import pytest

from devtools.local_asterisk import LocalAsterisk, cli
from tests.e2e.ami_raw import RawAmi
from tests.e2e.service import HotlineService, database
from tests.e2e.sipp import AgentPhone, place_call
from tests.e2e.sipp_agent_calls import dial_from_agent_phone
from tests.e2e.test_call_flow import tickets_for
from tests.waiting import wait_until

pytestmark = pytest.mark.e2e


def queue_agents(client: httpx.Client, queue: str) -> list[str]:
    return [a["id"] for a in client.get(f"/api/v1/queues/{queue}").json()["agents"]]


async def test_a_skill_queue_call_goes_to_the_agent_with_the_skill(
    local_asterisk: LocalAsterisk, tmp_path: Path
) -> None:
    cli("channel request hangup all")
    queues = tmp_path / "queues.toml"
    queues.write_text('[[queue]]\nname = "general"\nskill = "tibetan"\nring_timeout = 5\n')
    caller = "13800138401"
    with database("postgresql", tmp_path) as url:
        svc = HotlineService(local_asterisk, url, tmp_path, queues_file=str(queues))
        svc.create_users(["1002", "1003"])
        svc.start()
        try:
            with ExitStack() as stack, svc.client("sup") as sup:
                phones = {}
                for agent, endpoint, ip in (("1002", "agent2", "127.0.0.4"), ("1003", "agent3", "127.0.0.5")):
                    phones[agent] = stack.enter_context(
                        AgentPhone(endpoint, local_asterisk.agents[endpoint], ip)
                    )
                    sup.post(f"/api/v1/agents/{agent}/login", json={"endpoint": endpoint}).raise_for_status()
                    sup.post(f"/api/v1/agents/{agent}/ready").raise_for_status()
                    await asyncio.sleep(0.2)  # 1002 has been idle longest: it would get the call
                assert queue_agents(sup, "general") == []  # nobody has the skill yet
                profiles = tmp_path / "agents.csv"
                profiles.write_text(
                    "id,name,queues,skills,order\n1003,卓玛,general,tibetan:4,1\n", encoding="utf-8"
                )
                svc.cli("agents", "import", str(profiles))  # the running service follows (Redis)
                wait_until(lambda: queue_agents(sup, "general") == ["1003"], 10, "profile applied")

                call = place_call(caller, hangup_after=3, max_seconds=30)
                result = await asyncio.to_thread(call.wait, 30)
                assert result.answered and result.completed, result.log
                [ticket] = wait_until(lambda: tickets_for(sup, caller), 10, "ticket")
                assert ticket["agent_id"] == "1003"
                assert [i.caller_number for i in phones["1003"].invites_seen()] == [caller]
                assert phones["1002"].invites_seen() == []
                names = {a["id"]: a["name"] for a in sup.get("/api/v1/supervisor/agents").json()}
                assert names["1003"] == "卓玛"
                board = {a["id"]: a["name"] for a in sup.get("/api/v1/wallboard").json()["agents"]}
                assert board["1003"] == "卓玛"
                for agent in phones:
                    sup.post(f"/api/v1/agents/{agent}/logout")
        finally:
            svc.stop()


AGENT, ENDPOINT, IP, PIN = "1004", "agent4", "127.0.0.6", "4711"
WRONG_PINS = ("5550121", "5550122", "5550123")


async def dial(local_asterisk: LocalAsterisk, number: str) -> None:
    call = dial_from_agent_phone(ENDPOINT, local_asterisk.agents[ENDPOINT], IP, number, max_seconds=25)
    result = await asyncio.to_thread(call.wait, 30)
    assert result.answered and result.completed, result.log + result.errors


def metric(client: httpx.Client, line_start: str) -> float:
    text = client.get("/metrics").text
    [value] = [line.rsplit(" ", 1)[1] for line in text.splitlines() if line.startswith(line_start)]
    return float(value)


async def test_feature_code_login_needs_the_agent_s_pin(
    local_asterisk: LocalAsterisk, tmp_path: Path
) -> None:
    cli("channel request hangup all")
    with database("sqlite", tmp_path) as url:
        svc = HotlineService(local_asterisk, url, tmp_path)
        svc.create_users([AGENT])
        svc.cli("agents", "set", AGENT, "--name", "李雷", "--pin-stdin", stdin=f"{PIN}\n")
        svc.start()
        ami = await RawAmi.connect(local_asterisk.ami_host, local_asterisk.ami_port)
        try:
            await ami.login(local_asterisk.ami_username, local_asterisk.ami_secret)
            with (
                AgentPhone(ENDPOINT, local_asterisk.agents[ENDPOINT], IP),
                svc.client("sup") as sup,
            ):
                state = lambda: sup.get(f"/api/v1/agents/{AGENT}").json()["state"]  # noqa: E731
                for wrong in WRONG_PINS:
                    await dial(local_asterisk, f"*21{AGENT}*{wrong}")
                    assert state() == "logged_out"
                await dial(local_asterisk, f"*21{AGENT}")  # the prompt: nothing entered
                assert state() == "logged_out"
                [incident] = wait_until(
                    lambda: sup.get(
                        "/api/v1/compliance/incidents", params={"kind": "login_pin_failures"}
                    ).json(),
                    10,
                    "incident",
                )
                assert (incident["agent_id"], incident["reason"], incident["open"]) == (AGENT, ENDPOINT, True)
                assert metric(sup, "hotline_login_pin_failures_total") == 4
                assert metric(sup, 'hotline_agent_incidents_total{kind="login_pin_failures"}') == 1

                await dial(local_asterisk, f"*21{AGENT}*{PIN}")
                assert state() == "logged_in"
                wait_until(
                    lambda: (
                        not sup.get(
                            "/api/v1/compliance/incidents", params={"kind": "login_pin_failures"}
                        ).json()[0]["open"]
                    ),
                    10,
                    "incident closed by the good login",
                )
                await dial(local_asterisk, "*24")
                assert state() == "logged_out"
            done = [
                (e["Action"], e["Result"]) for e in ami.events if e.get("UserEvent") == "AcdFeatureCodeDone"
            ]
            assert done == [("login", "wrong_pin")] * 4 + [("login", "ok"), ("logout", "ok")]
        finally:
            await ami.close()
            svc.stop()
        log = svc.log_path.read_text(errors="replace")
        lines = [line for line in log.splitlines() if "feature code login" in line]
        assert len(lines) == 5 and all(AGENT in line for line in lines), lines
        assert not [line for line in lines if any(p in line for p in (PIN, *WRONG_PINS))]  # PINs never logged
