"""Dispatch latency on the real Asterisk: the service's ACD over AMI beside Asterisk's own app_queue.

Run (root, from the repository root):
``PYTHONPATH=. python benchmarks/bench_dispatch_latency.py [--calls N]``.

What is measured, per call, from Asterisk's own event timestamps (``timestampevents=yes``, µs):

* service ACD: from the dialplan's ``UserEvent(AcdCallWaiting)`` (the moment the call is handed to the
  ACD) to the ``Newchannel`` of the agent's leg (the phone is being called). In between: the event
  travels over AMI, the service's core decides, an ``Originate`` travels back.
* app_queue: the same caller is sent (AMI ``Redirect``, service stopped) to the dialplan's fallback
  step: from ``UserEvent(AcdFallback)``, emitted right before ``Queue()``, to the ``Newchannel`` of the
  agent's leg that app_queue creates.

One registered sipp agent phone (it answers after 0.3 s); calls one after the other, so each dispatch
finds the agent idle. Both paths run in the same invocation on the same Asterisk; quote the ratio.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
from pathlib import Path

from devtools.local_asterisk import cli, ensure_running
from tests.e2e.ami_raw import RawAmi, event_is
from tests.e2e.service import HotlineService, database
from tests.e2e.sipp import AgentPhone, place_call

AGENT, ENDPOINT, PHONE_IP = "1001", "agent1", "127.0.0.3"


def _ts(event: dict[str, str]) -> float:
    return float(event["Timestamp"])


async def _agent_leg_after(ami: RawAmi, since: int) -> dict[str, str]:
    return await ami.wait_event(
        lambda e: e.get("Event") == "Newchannel" and e.get("Channel", "").startswith(f"PJSIP/{ENDPOINT}-"),
        10,
        since=since,
    )


async def service_path(ami: RawAmi, calls: int) -> list[float]:
    latencies = []
    for i in range(calls):
        number = f"1390001{i:04d}"
        mark = len(ami.events)
        call = place_call(number, hangup_after=2.5, max_seconds=20)
        waiting = await ami.wait_event(
            event_is("UserEvent", UserEvent="AcdCallWaiting", CallerIDNum=number), 10
        )
        leg = await _agent_leg_after(ami, mark)
        latencies.append(_ts(leg) - _ts(waiting))
        await asyncio.to_thread(call.wait, 20)
        await asyncio.sleep(0.5)
    return latencies


async def app_queue_path(ami: RawAmi, calls: int) -> list[float]:
    latencies = []
    for i in range(calls):
        number = f"1390002{i:04d}"
        call = place_call(number, hangup_after=4.5, max_seconds=20)
        waiting = await ami.wait_event(
            event_is("UserEvent", UserEvent="AcdCallWaiting", CallerIDNum=number), 10
        )
        mark = len(ami.events)
        await ami.action(
            "Redirect",
            ("Channel", waiting["Channel"]),
            ("Context", "hotline-inbound"),
            ("Exten", "12345"),
            ("Priority", "fallback"),
        )
        fallback = await ami.wait_event(event_is("UserEvent", UserEvent="AcdFallback"), 10, since=mark)
        leg = await _agent_leg_after(ami, mark)
        latencies.append(_ts(leg) - _ts(fallback))
        await asyncio.to_thread(call.wait, 20)
        await asyncio.sleep(0.5)
    return latencies


def _summary(name: str, values: list[float]) -> tuple[str, float]:
    ms = sorted(v * 1000 for v in values)
    p90 = ms[min(len(ms) - 1, int(0.9 * len(ms)))]
    median = statistics.median(ms)
    print(f"{name:<28} n={len(ms):<3} median {median:7.2f} ms   p90 {p90:7.2f} ms   max {ms[-1]:7.2f} ms")
    return name, median


async def main(calls: int) -> None:
    asterisk = ensure_running(agents=10)
    cli("channel request hangup all")
    ami = await RawAmi.connect(asterisk.ami_host, asterisk.ami_port)
    await ami.login(asterisk.ami_username, asterisk.ami_secret)
    with (
        tempfile.TemporaryDirectory() as tmp,
        database("sqlite", Path(tmp)) as url,
        AgentPhone(ENDPOINT, asterisk.agents[ENDPOINT], PHONE_IP, ring_seconds=0.3, max_seconds=600),
    ):
        svc = HotlineService(asterisk, url, Path(tmp))
        svc.create_users([AGENT])
        svc.start()
        try:
            with svc.client(f"agent{AGENT}") as agent:
                agent.post(f"/api/v1/agents/{AGENT}/login", json={"endpoint": ENDPOINT}).raise_for_status()
                agent.post(f"/api/v1/agents/{AGENT}/ready").raise_for_status()
                ours = await service_path(ami, calls)
                agent.post(f"/api/v1/agents/{AGENT}/logout")
        finally:
            svc.stop()
        theirs = await app_queue_path(ami, calls)
    await ami.close()
    _, a = _summary("service ACD (AMI round trip)", ours)
    _, b = _summary("app_queue (in Asterisk)", theirs)
    print(f"median ratio service / app_queue: {a / b:.2f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=20)
    asyncio.run(main(parser.parse_args().calls))
