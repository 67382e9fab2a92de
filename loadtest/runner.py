"""One load run, start to end: set up, the ACD phase, the app_queue phase, checks, clean up.

1. Take the shared Asterisk's lock (the one the end-to-end tests take), start the local Asterisk
   with N agent endpoints (loopback mode), start the service with a database of its own, create the
   run's accounts, register N phones, log the agents in at them and make them ready (one admin token).
2. ACD phase: Poisson citizen calls for ``duration`` seconds; a caller whose patience runs out while
   waiting is hung up over AMI; agents the service set not ready (missed call) are made ready again
   after ``reready_after`` seconds, as a person would. Then drain: until every caller and leg is gone.
3. Checks: AMI against the database, the API, ``/metrics`` and the service log (loadtest.invariants).
4. app_queue phase (loopback mode): the agents log out and the service stops; new citizens, at the
   same rate, are redirected to app_queue (``hotline-loadtest`` in queues.conf: the same phones,
   one at a time, longest idle first), to measure Asterisk's own dispatch latency at the same load.
5. Phones unregister, accounts are deleted, the lock is released; the report is written.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import httpx
from sqlalchemy import func, select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from acd.queues_config import QueueConfig
from app.db.engine import make_engine
from app.db.models import AgentTransition, Call, CallOutcome, WorkOrder
from app.services.kpi import CallFacts, KpiDefinitions, KpiTotals, add_call
from loadtest import invariants as inv
from loadtest.ami import AmiListener, Message
from loadtest.observe import CAUSE_BUSY, Observation, dispatch_latencies
from loadtest.plan import Profile, citizen_calls, phone_calls
from loadtest.report import build
from loadtest.service import Accounts, LocalService, cpu_seconds
from loadtest.sipp import Citizens, Phone, PlannedCall, start_phones

#: Asterisk hangup cause "call rejected": the queue's reject delay applies, like busy_delay for 17
CAUSE_REJECTED = 21
LOCK_WAIT_SECONDS = 1800
METRIC_NAMES = {
    "offered": "hotline_calls_offered_total",
    "answered": "hotline_calls_answered_total",
    "abandoned": "hotline_calls_abandoned_total",
    "overflowed": "hotline_calls_overflowed_total",
    "tickets_opened": "hotline_tickets_opened_total",
}


@dataclass
class Options:
    profile: Profile
    workdir: Path
    queue: str = "general"
    number: str = "12345"
    app_queue_seconds: float = 60.0  # 0: no app_queue phase
    reready_after: float = 3.0
    patience_max: float = 300.0
    replicas: int = 200
    database_url: str | None = None
    # staging mode (all None: loopback, everything started here)
    service_url: str | None = None
    service_log: Path | None = None
    sip_target: str | None = None
    trunk_address: str = "127.0.0.2"
    phone_network: str = "127.0.1."  # phone i gets <network><i>
    ami: dict[str, str] = field(default_factory=dict)  # host, port, username, secret
    agents_file: Path | None = None  # staging: endpoint -> SIP password (JSON)
    trace_sip: bool = False  # phones write every SIP message to messages.log (slow; for diagnosis)


@dataclass
class PhaseResult:
    name: str
    obs: Observation
    started: float
    ended: float
    placed: int
    sipp: dict[str, int]
    ready_series: list[tuple[float, int]] = field(default_factory=list)
    made_ready_again: int = 0
    patience_hangups: int = 0
    left_up: int = 0  # channels still up when the phase ended (hung up then by the load test)
    cpu: dict[str, float | None] = field(default_factory=dict)


@contextlib.contextmanager
def asterisk_lock(state: Path, wait: float = LOCK_WAIT_SECONDS) -> Iterator[None]:
    """The end-to-end tests' lock on the shared local Asterisk (tests/e2e/conftest.py)."""
    state.mkdir(parents=True, exist_ok=True)
    with open(state / "e2e.lock", "w") as lock:
        deadline = time.monotonic() + wait
        while True:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"the local Asterisk stayed locked for {wait:.0f} s") from None
                time.sleep(1)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _parse_metrics(text: str, queue: str) -> dict[str, float]:
    out = dict.fromkeys(METRIC_NAMES, 0.0)
    wanted = {name: key for key, name in METRIC_NAMES.items()}
    for line in text.splitlines():
        if line.startswith("#") or "{" not in line:
            continue
        name, rest = line.split("{", 1)
        labels, _, value = rest.rpartition("}")
        if name in wanted and f'queue="{queue}"' in labels:
            out[wanted[name]] += float(value.split()[0])
    return out


class Run:
    def __init__(self, options: Options) -> None:
        self.o = options
        self.p = options.profile
        self.run_id = uuid.uuid4().hex[:6]
        # 11-digit caller numbers, unique to this run and phase
        self.prefix = f"139{int(self.run_id, 16) % 1000:03d}"
        self.agent_ids = [f"lt{self.run_id}{i:03d}" for i in range(1, self.p.agents + 1)]
        self.endpoints = {a: f"agent{i}" for i, a in enumerate(self.agent_ids, start=1)}
        self.workdir = options.workdir
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.asterisk_pid: int | None = None
        self.service: LocalService | None = None
        self.engine: Engine | None = None
        self.accounts: Accounts | None = None
        self.phones: list[Phone] = []
        self.api: httpx.AsyncClient | None = None
        self.ami: AmiListener | None = None
        self.ring_timeout = QueueConfig(options.queue).ring_timeout

    # -- set-up

    def _setup_local(self) -> tuple[str, dict[str, str], dict[str, str]]:
        from devtools.local_asterisk import cli, ensure_running

        asterisk = ensure_running(agents=self.p.agents)
        cli("channel request hangup all")  # a clean slate: leftovers of an interrupted run
        self.asterisk_pid = asterisk.pid
        self.o.trunk_address = asterisk.trunk_address
        ami = {
            "HOTLINE_AMI_HOST": asterisk.ami_host,
            "HOTLINE_AMI_PORT": str(asterisk.ami_port),
            "HOTLINE_AMI_USERNAME": asterisk.ami_username,
            "HOTLINE_AMI_SECRET_FILE": str(asterisk.ami_secret_file),
        }
        self.o.ami = {  # the listener needs every event: the service's own user has an event filter
            "host": asterisk.ami_host,
            "port": str(asterisk.ami_port),
            "username": asterisk.observer_username,
            "secret": asterisk.ami_secret,
        }
        url = self.o.database_url or f"sqlite:///{self.workdir / 'hotline.sqlite3'}"
        self.service = LocalService(database_url=url, workdir=self.workdir, ami=ami)
        self.service.upgrade_database()
        self.engine = make_engine(url)
        return f"{asterisk.sip_host}:{asterisk.sip_port}", asterisk.agents, ami

    async def setup(self) -> str:
        if self.o.service_url is None:
            target, passwords, _ = await asyncio.to_thread(self._setup_local)
        else:
            if not (self.o.database_url and self.o.sip_target and self.o.agents_file and self.o.ami):
                raise ValueError(
                    "a staging run needs --database-url, --sip-target, --agents-file and AMI settings"
                )
            target = self.o.sip_target
            passwords = json.loads(self.o.agents_file.read_text())
            self.engine = make_engine(self.o.database_url)
        missing = [e for e in self.endpoints.values() if e not in passwords]
        if missing:
            raise ValueError(f"no SIP password for {missing[:3]}... ({len(missing)} endpoints)")
        assert self.engine is not None
        self.accounts = Accounts(self.engine, self.run_id, self.agent_ids)
        await asyncio.to_thread(self.accounts.create)
        if self.service is not None:
            await asyncio.to_thread(self.service.start)
        base = self.o.service_url or (self.service.url if self.service else "")
        token = httpx.post(
            f"{base}/api/v1/token",
            data={"username": self.accounts.admin, "password": self.accounts.admin_password},
            timeout=10,
        )
        token.raise_for_status()
        self.api = httpx.AsyncClient(
            base_url=base, headers={"Authorization": f"Bearer {token.json()['access_token']}"}, timeout=20
        )
        self.phones = [
            Phone(
                endpoint,
                passwords[endpoint],
                f"{self.o.phone_network}{i}",
                phone_calls(self.p, i),
                self.workdir / "phones",
                target=target,
                max_seconds=self._bound() + self.o.app_queue_seconds + 300,
                trace=self.o.trace_sip,
            )
            for i, endpoint in enumerate(self.endpoints.values(), start=1)
        ]
        await asyncio.to_thread(start_phones, self.phones)
        for agent_id, endpoint in self.endpoints.items():
            await self._post(f"/api/v1/agents/{agent_id}/login", json={"endpoint": endpoint})
            await self._post(f"/api/v1/agents/{agent_id}/ready")
        self.ami = AmiListener()
        a = self.o.ami
        await self.ami.connect(a["host"], int(a["port"]), a["username"], a["secret"])
        return target

    async def _post(self, path: str, **kwargs: object) -> httpx.Response:
        assert self.api is not None
        response = await self.api.post(path, **kwargs)  # type: ignore[arg-type]
        if response.status_code >= 400:
            raise RuntimeError(f"POST {path}: {response.status_code} {response.text[:300]}")
        return response

    def _bound(self, duration: float | None = None) -> float:
        """Longest a phase can take: arrivals, then the longest wait, rings and talk."""
        arrivals = self.p.duration if duration is None else duration
        return arrivals + self.o.patience_max + 4 * self.ring_timeout + self.p.talk_max + 30

    # -- phases

    def _plan(self, phase: str, duration: float) -> list[PlannedCall]:
        profile = Profile(**{**self.p.as_dict(), "duration": duration})
        prefix = self.prefix + ("0" if phase == "acd" else "1")
        calls = citizen_calls(profile, prefix, phase=phase)
        return [PlannedCall(c.at, c.number, min(c.patience, self.o.patience_max)) for c in calls]

    async def phase(self, name: str, target: str, duration: float) -> PhaseResult:
        assert self.ami is not None
        calls = self._plan(name, duration)
        patience = {c.number: c.patience for c in calls}
        to_app_queue = name == "app_queue"
        obs = Observation(
            set(patience),
            set(self.endpoints.values()),
            "AcdLoadtestQueued" if to_app_queue else "AcdCallWaiting",
        )
        result = PhaseResult(name, obs, time.time(), 0.0, len(calls), {})
        loop = asyncio.get_running_loop()
        tasks: set[asyncio.Task[object]] = set()

        def spawn(coro: object) -> None:
            task = loop.create_task(coro)  # type: ignore[arg-type]
            tasks.add(task)
            task.add_done_callback(tasks.discard)

        async def give_up(uid: str) -> None:
            caller = obs.callers.get(uid)
            if caller is not None and caller.bridged_at is None and caller.ended_at is None:
                result.patience_hangups += 1
                with contextlib.suppress(Exception):
                    await self.ami.action("Hangup", Channel=caller.channel, Cause="16")  # type: ignore[union-attr]

        def on_event(event: Message) -> None:
            obs.feed(event)
            if event.get("UserEvent") == "AcdCallWaiting" and event.get("CallerIDNum") in patience:
                number, channel, uid = (
                    event["CallerIDNum"],
                    event.get("Channel", ""),
                    event.get("Uniqueid", ""),
                )
                if to_app_queue:
                    spawn(
                        self.ami.action(  # type: ignore[union-attr]
                            "Redirect",
                            Channel=channel,
                            Context="acd-loadtest-app-queue",
                            Exten="s",
                            Priority="1",
                        )
                    )
                loop.call_later(patience[number], lambda: spawn(give_up(uid)))

        self.ami.on_event = on_event
        citizens = Citizens(
            calls,
            self.workdir / f"citizens-{name}",
            target=target,
            source_ip=self.o.trunk_address,
            number=self.o.number,
            max_call_seconds=self._bound(duration),
        )
        cpu_before = {"service": cpu_seconds(self.service.pid if self.service else None),
                      "asterisk": cpu_seconds(self.asterisk_pid)}  # fmt: skip
        started = time.monotonic()
        citizens.start()
        last_arrival = max((c.at for c in calls), default=0.0)
        deadline = started + self._bound(duration)
        not_ready_since: dict[str, float] = {}
        while time.monotonic() < deadline:
            await asyncio.sleep(1.0)
            if not to_app_queue:
                result.made_ready_again += await self._poll_agents(result, not_ready_since)
            else:
                result.ready_series.append((time.time(), -1))
            arrivals_over = time.monotonic() - started > last_arrival + 5
            callers_gone = all(c.ended_at is not None for c in obs.callers.values())
            legs_gone = all(leg.ended_at is not None for leg in obs.legs.values())
            if arrivals_over and callers_gone and legs_gone:
                break
        await asyncio.sleep(1.0)  # the last Hangups reach the service
        citizens.stop()
        result.sipp = citizens.counts()
        result.ended = time.time()
        elapsed = time.monotonic() - started
        cpu_after = {"service": cpu_seconds(self.service.pid if self.service else None),
                     "asterisk": cpu_seconds(self.asterisk_pid)}  # fmt: skip
        for proc, before in cpu_before.items():
            after = cpu_after[proc]
            result.cpu[proc] = None if before is None or after is None else (after - before) / elapsed
        self.ami.on_event = obs.feed
        for task in list(tasks):
            task.cancel()
        return result

    async def _poll_agents(self, result: PhaseResult, not_ready_since: dict[str, float]) -> int:
        """Sample how many agents are ready; make ready again those the service set not ready."""
        assert self.api is not None
        response = await self.api.get("/api/v1/agents")
        if response.status_code != 200:
            return 0
        ours = [a for a in response.json() if a["id"] in self.endpoints]
        result.ready_series.append((time.time(), sum(1 for a in ours if a["state"] == "ready")))
        again = 0
        now = time.monotonic()
        for agent in ours:
            out = agent["state"] == "not_ready" or (
                agent["state"] == "busy" and "no_answer" in agent["reason"]
            )
            if not out:
                not_ready_since.pop(agent["id"], None)
                continue
            since = not_ready_since.setdefault(agent["id"], now)
            if now - since >= self.o.reready_after:
                response = await self.api.post(f"/api/v1/agents/{agent['id']}/ready")
                again += response.status_code == 200
                not_ready_since.pop(agent["id"], None)
        return again

    # -- checks

    def _rows(self, numbers: set[str]) -> dict[str, inv.CallRow]:
        assert self.engine is not None
        # the work orders each call opened (one per answered call)
        tickets = (
            select(WorkOrder.origin_call_id.label("call_id"), func.count(WorkOrder.id).label("n"))
            .group_by(WorkOrder.origin_call_id)
            .subquery()
        )
        stmt = (
            select(Call, tickets.c.n)
            .outerjoin(tickets, tickets.c.call_id == Call.id)
            .where(Call.caller_number.in_(sorted(numbers)))
        )
        with self.engine.connect() as conn, Session(bind=conn) as session:
            return {
                call.id: inv.CallRow(
                    call.id,
                    call.caller_number,
                    call.outcome.value,
                    call.agent_id,
                    call.enqueued_at,
                    call.answered_at,
                    call.ended_at,
                    int(n or 0),
                )
                for call, n in session.execute(stmt)
            }

    def _transitions(self, since: float) -> list[inv.Transition]:
        assert self.engine is not None
        stmt = select(AgentTransition).where(
            AgentTransition.agent_id.in_(self.agent_ids),
            AgentTransition.at >= datetime.fromtimestamp(since - 60, UTC),
        )
        with Session(self.engine) as session:
            return [
                inv.Transition(t.agent_id, t.at.timestamp(), t.to_state, t.reason)
                for t in session.scalars(stmt.order_by(AgentTransition.at))
            ]

    async def metrics(self) -> dict[str, float]:
        assert self.api is not None
        response = await self.api.get("/metrics")
        response.raise_for_status()
        return _parse_metrics(response.text, self.o.queue)

    async def live_channels(self, obs: Observation) -> list[str]:
        assert self.ami is not None
        items = await self.ami.action("CoreShowChannels", timeout=20)
        ours = {c.channel for c in obs.callers.values()} | {leg.channel for leg in obs.legs.values()}
        return [
            m.get("Channel", "")
            for m in items
            if m.get("Event") == "CoreShowChannel" and m.get("Channel") in ours
        ]

    async def hang_up_leftovers(self, obs: Observation) -> int:
        """Hang up the phase's channels still up (after the checks), so the next phase starts clean."""
        assert self.ami is not None
        left = await self.live_channels(obs)
        for channel in left:
            with contextlib.suppress(Exception):
                await self.ami.action("Hangup", Channel=channel, Cause="16")
        return len(left)

    async def api_waiting(self) -> int:
        assert self.api is not None
        response = await self.api.get(f"/api/v1/queues/{self.o.queue}")
        response.raise_for_status()
        return int(response.json()["calls_waiting"])

    async def teardown_agents(self) -> None:
        if self.api is None:
            return
        for agent_id in self.agent_ids:
            with contextlib.suppress(httpx.HTTPError):
                await self.api.post(f"/api/v1/agents/{agent_id}/logout")

    async def close(self) -> None:
        if self.ami is not None:
            await self.ami.close()
        if self.api is not None:
            await self.api.aclose()
        await asyncio.to_thread(lambda: [phone.stop() for phone in self.phones])
        if self.service is not None:
            await asyncio.to_thread(self.service.stop)
        if self.accounts is not None:
            await asyncio.to_thread(self.accounts.remove)


async def execute(options: Options) -> dict[str, object]:
    """Run the whole load test; return everything the report needs (see loadtest.report)."""
    run = Run(options)
    try:
        target = await run.setup()
        before = await run.metrics()
        acd = await run.phase("acd", target, options.profile.duration)
        after = await run.metrics()
        rows = await asyncio.to_thread(run._rows, acd.obs.numbers)
        transitions = await asyncio.to_thread(run._transitions, acd.started)
        waiting = await run.api_waiting()
        channels = await run.live_channels(acd.obs)
        acd.left_up = await run.hang_up_leftovers(acd.obs)
        await run.teardown_agents()
        if run.service is not None:
            await asyncio.to_thread(run.service.stop)
        log_lines = (
            run.service.log_lines()
            if run.service is not None
            else (options.service_log.read_text(errors="replace").splitlines() if options.service_log else [])
        )
        totals = KpiTotals()
        for row in rows.values():
            if row.outcome in inv.FINAL_OUTCOMES:
                facts = CallFacts(
                    options.queue,
                    CallOutcome(row.outcome),
                    row.enqueued_at,
                    row.answered_at,
                    row.ended_at,
                    row.tickets > 0,
                )
                add_call(totals, facts, KpiDefinitions())
        database = {k: int(v) for k, v in totals.as_dict().items() if k in METRIC_NAMES}
        deltas = {k: after[k] - before[k] for k in METRIC_NAMES}
        open_rows = sum(1 for r in rows.values() if r.outcome not in inv.FINAL_OUTCOMES)
        checks = [
            inv.one_final_outcome(acd.obs, rows),
            inv.answered_iff_bridged(acd.obs, rows, run.endpoints),
            inv.one_ticket_per_answered(rows),
            inv.no_caller_offered_twice(acd.obs),
            inv.no_offer_over_live_leg(acd.obs),
            inv.busy_is_not_missed(acd.obs, transitions, run.endpoints),
            inv.nothing_waiting(waiting, open_rows, channels),
            inv.metrics_match_database(deltas, database),
            inv.clean_log(log_lines),
        ]
        queue = QueueConfig(options.queue)
        delays = {CAUSE_BUSY: queue.busy_delay, CAUSE_REJECTED: queue.reject_delay}
        free: dict[str, list[float]] = {}
        for t in transitions:
            if t.to_state == "ready":
                free.setdefault(run.endpoints[t.agent_id], []).append(t.at)
        acd_latency = dispatch_latencies(acd.obs, free, delays)
        app_queue = None
        app_latency: list[float] = []
        if options.app_queue_seconds > 0 and options.service_url is None:
            app_queue = await run.phase("app_queue", target, options.app_queue_seconds)
            app_queue.left_up = await run.hang_up_leftovers(app_queue.obs)
            app_latency = dispatch_latencies(app_queue.obs, {}, {})
        return build(
            options=options,
            run=run,
            acd=acd,
            app_queue=app_queue,
            rows=rows,
            totals=totals,
            checks=checks,
            acd_latency=acd_latency,
            app_latency=app_latency,
        )
    finally:
        await run.close()
