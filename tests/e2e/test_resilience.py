"""The service survives what production throws at it: a wrong AMI secret, Asterisk restarting, and
its own crash while citizens wait. Real Asterisk, real service process, sipp."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from devtools.local_asterisk import LocalAsterisk, cli, ensure_running, stop
from tests.e2e.service import HotlineService, database
from tests.e2e.sipp import AgentPhone, place_call
from tests.e2e.test_call_flow import tickets_for
from tests.waiting import wait_until

pytestmark = pytest.mark.e2e

FAST_PING = {"ami_ping_interval": "1", "ami_ping_timeout": "1", "ami_reconnect_max_delay": "2"}


@pytest.fixture
def workdir(tmp_path: Path) -> Iterator[Path]:
    cli("channel request hangup all")
    yield tmp_path


def test_wrong_ami_secret_is_reported_and_retried_without_crashing(
    local_asterisk: LocalAsterisk, workdir: Path
) -> None:
    wrong = workdir / "wrong-secret"
    wrong.write_text("not-the-secret")
    with database("sqlite", workdir) as url:
        svc = HotlineService(local_asterisk, url, workdir, ami_secret_file=str(wrong), **FAST_PING)
        svc.start(probe="/healthz")
        try:
            _, body = wait_until(
                lambda: (
                    (r := svc.readiness())[0] == 503
                    and "authentication" in r[1]["checks"]["ami"]["status"]
                    and r
                ),
                15,
                "readyz to name the failed login",
            )
            assert body["checks"]["database"]["up"] is True
            time.sleep(3)  # it keeps retrying, and keeps living
            assert httpx.get(f"{svc.base_url}/healthz", timeout=5).status_code == 200
            log = svc.log()
            assert log.count("authentication failed") >= 2, log
            assert "not-the-secret" not in log and local_asterisk.ami_secret not in log
        finally:
            svc.stop()


async def test_asterisk_restart_is_survived_and_calls_flow_again(
    local_asterisk: LocalAsterisk, workdir: Path
) -> None:
    with database("sqlite", workdir) as url:
        svc = HotlineService(local_asterisk, url, workdir, ring_timeout="5", **FAST_PING)
        svc.create_users(["1004"])
        svc.start()
        try:
            stop()
            wait_until(lambda: svc.readiness()[0] == 503, 15, "readyz to notice Asterisk is gone")
            asterisk = await asyncio.to_thread(ensure_running, 10)
            wait_until(lambda: svc.readiness()[0] == 200, 20, "the link to come back")
            assert "reconnect" in svc.log().lower() or "logged in" in svc.log()

            with (
                AgentPhone("agent4", asterisk.agents["agent4"], "127.0.0.6") as phone,
                svc.client("agent1004") as agent,
            ):
                agent.post("/api/v1/agents/1004/login", json={"endpoint": "agent4"}).raise_for_status()
                agent.post("/api/v1/agents/1004/ready").raise_for_status()
                call = place_call("13800138100", hangup_after=6, max_seconds=30)
                result = await asyncio.to_thread(call.wait, 30)
                assert result.answered and result.completed, result.log
                await asyncio.to_thread(phone.wait_for, "INVITE", 5)
                [ticket] = wait_until(lambda: tickets_for(agent, "13800138100"), 10, "ticket")
                assert ticket["agent_id"] == "1004"
                agent.post("/api/v1/agents/1004/logout")
        finally:
            svc.stop()


async def test_caller_waiting_through_a_service_crash_is_served_after_restart_in_place(
    local_asterisk: LocalAsterisk, workdir: Path
) -> None:
    with database("sqlite", workdir) as url:
        first = HotlineService(local_asterisk, url, workdir)
        first.create_users(["1005"])
        first.start()
        caller = "13800138200"
        call = place_call(caller, hangup_after=25, max_seconds=45)
        with first.client("sup") as sup:
            wait_until(lambda: sup.get("/api/v1/queues/general").json()["calls_waiting"] == 1, 10, "waiting")
            enqueued = sup.get("/api/v1/queues/general").json()["calls"][0]["enqueued_at"]
        first.kill()  # a crash: no clean shutdown
        await asyncio.sleep(2)

        second = HotlineService(local_asterisk, url, workdir)
        second.start()
        try:
            with second.client("sup") as sup:
                queue = sup.get("/api/v1/queues/general").json()
                [waiting] = queue["calls"]
                # picked up from Asterisk with its original enqueue time (the dialplan's)
                assert waiting["enqueued_at"] == pytest.approx(enqueued, abs=0.001)
                assert waiting["wait_seconds"] >= 2
            with (
                AgentPhone("agent5", local_asterisk.agents["agent5"], "127.0.0.7") as phone,
                second.client("agent1005") as agent,
            ):
                agent.post("/api/v1/agents/1005/login", json={"endpoint": "agent5"}).raise_for_status()
                agent.post("/api/v1/agents/1005/ready").raise_for_status()
                await asyncio.to_thread(phone.wait_for, "ANSWERED", 10)
                result = await asyncio.to_thread(call.wait, 45)
                assert result.answered and result.completed, result.log
                [ticket] = wait_until(
                    lambda: [t for t in tickets_for(agent, caller) if t["ended_at"]], 10, "ticket"
                )
                assert ticket["agent_id"] == "1005"
                agent.post("/api/v1/agents/1005/logout")
        finally:
            second.stop()
            call.kill()


def test_agents_presence_is_restored_after_a_crash(local_asterisk: LocalAsterisk, workdir: Path) -> None:
    with database("sqlite", workdir) as url:
        first = HotlineService(local_asterisk, url, workdir)
        first.create_users(["1009", "1010"])
        first.start()
        with first.client("sup") as sup:
            sup.post("/api/v1/agents/1009/login", json={"endpoint": "agent9"}).raise_for_status()
            sup.post("/api/v1/agents/1009/busy", json={"reason": "break"}).raise_for_status()
            sup.post("/api/v1/agents/1010/login", json={"endpoint": "agent10"}).raise_for_status()
            sup.post("/api/v1/agents/1010/ready").raise_for_status()
        time.sleep(1)  # transitions are written off the event loop
        first.kill()

        second = HotlineService(local_asterisk, url, workdir)
        second.start()
        try:
            with second.client("sup") as sup:
                busy = sup.get("/api/v1/agents/1009").json()
                assert (busy["state"], busy["reason"], busy["endpoint"]) == ("busy", "break", "agent9")
                ready = sup.get("/api/v1/agents/1010").json()
                assert (ready["state"], ready["endpoint"]) == ("ready", "agent10")
                history = sup.get("/api/v1/compliance/agents/1010/history")
                assert history.status_code == 200, history.text
                restored = [t for t in history.json() if t["actor"] == "restore"]  # the restart shows
                assert {t["to_state"] for t in restored} == {"logged_in", "ready"}, history.json()
                for agent_id in ("1009", "1010"):
                    sup.post(f"/api/v1/agents/{agent_id}/logout")
        finally:
            second.stop()
