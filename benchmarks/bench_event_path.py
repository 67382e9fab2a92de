"""The AMI event path: from the socket to the presence rules, as agents are added.

Run (from the repository root): ``PYTHONPATH=. .venv/bin/python benchmarks/bench_event_path.py
[--events N]``.

A socket-level fake AMI server (the tests' ``FakeAmi``, in a child process so that its CPU is not
counted) replays bursts of real wire-format events into, side by side in one run:

* bare parsers: a split on ``\\r\\n\\r\\n`` only (the limit), and split + decode + dict;
* the link's protocol (``AmiProtocol``): the previous per-line parser and today's;
* the link (``AmiLink``: login, pings, ActionID bookkeeping), events to a no-op;
* the whole service: ``DistributionService`` + ``PresenceWatch`` (real objects, storage a null stand-in)
  with 0, 200 and 2,000 agents logged in and ready, on the mix the service's AMI user receives (its
  ``eventfilter`` in asterisk-config/manager.conf) and on the unfiltered mix; at 200 agents also with
  the previous compliance tracker (every agent evaluated on every event) for comparison;
* a re-registration storm: 4,000 ContactStatus / DeviceStateChange for the 2,000 agents' phones;
* the rebuild after a reconnect: DeviceStateList and CoreShowChannels of 2,000 devices / channels,
  sliced (today) and in one stretch (slicing off).

Reported: CPU µs per event (this process, all threads), the ratio to split + decode + dict, the
longest event-loop stall (a 2 ms ticker's worst lateness), RSS after the variant, link reconnects.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import faulthandler
import gc
import logging
import multiprocessing
import os
import random
import statistics
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import partial
from typing import Any

from panoramisk.ami_protocol import AMIProtocol

from acd.ami import AmiLink
from acd.ami.model import AmiMessage
from acd.ami.protocol import AmiProtocol
from acd.engine import QueueConfig
from agents.busy_reasons import DEFAULT_CONFIG
from agents.presence import Cause
from app.services import slices
from app.services.distribution import DistributionConfig, DistributionService
from app.services.presence_watch import PresenceWatch
from tests.ami.fake_ami import FakeAmi, encode
from tests.unit.test_compliance_index import ScanningTracker

SENTINEL = "BenchEnd"
CHUNK = 64 * 1024  # bytes the server writes at a time (cut at message boundaries)
AGENT_COUNTS = (0, 200, 2000)
CENTER = 2000  # phones p0..p1999: the devices the mixes speak of


# -- the mixes ---------------------------------------------------------------------------------------


def _channel(rng: random.Random, i: int) -> list[tuple[str, str]]:
    endpoint = f"p{rng.randrange(CENTER)}" if rng.random() < 0.5 else "citizens"
    uid = f"1764620000.{i}"
    return [
        ("Channel", f"PJSIP/{endpoint}-{i:08x}"),
        ("ChannelState", "4"),
        ("ChannelStateDesc", "Ring"),
        ("CallerIDNum", f"138{rng.randrange(10**8):08d}"),
        ("CallerIDName", "张伟"),
        ("ConnectedLineNum", "<unknown>"),
        ("ConnectedLineName", "<unknown>"),
        ("Language", "zh"),
        ("AccountCode", ""),
        ("Context", "from-citizens"),
        ("Exten", "12345"),
        ("Priority", "1"),
        ("Uniqueid", uid),
        ("Linkedid", uid),
    ]


def _event(rng: random.Random, name: str, i: int) -> list[tuple[str, str]]:
    head = [("Event", name), ("Privilege", "call,all"), ("Timestamp", f"1764620000.{i:06d}")]
    device = f"p{rng.randrange(CENTER)}" if rng.random() < 0.8 else f"trunk{rng.randrange(20)}"
    if name == "DeviceStateChange":
        return [
            *head,
            ("Device", f"PJSIP/{device}"),
            ("State", rng.choice(("NOT_INUSE", "INUSE", "RINGING"))),
        ]
    if name == "ContactStatus":
        return [
            ("Event", name),
            ("Privilege", "system,all"),
            ("URI", f"sip:{device}@127.0.0.3:5060"),
            ("ContactStatus", rng.choice(("Reachable", "Reachable", "Updated"))),
            ("AOR", device),
            ("EndpointName", device),
            ("RoundtripUsec", str(rng.randrange(200, 5000))),
        ]
    if name == "UserEvent":
        return [*head[:2], ("UserEvent", "AcdFallback"), *_channel(rng, i)[:5], ("Queue", "general")]
    if name == "Hangup":
        return [*head, *_channel(rng, i), ("Cause", "16"), ("Cause-txt", "Normal Clearing")]
    if name == "VarSet":
        return [*head, *_channel(rng, i), ("Variable", "ACD_QUEUE"), ("Value", "general")]
    if name == "Newexten":
        return [*head, *_channel(rng, i), ("Extension", "12345"), ("Application", "Wait"), ("AppData", "1")]
    return [*head, *_channel(rng, i)]  # Newchannel, Newstate, DialBegin, BridgeEnter...


FILTERED = {"Newchannel": 25, "Hangup": 25, "DeviceStateChange": 30, "ContactStatus": 5, "UserEvent": 15}
UNFILTERED = {
    **FILTERED,
    "VarSet": 120,
    "Newexten": 80,
    "Newstate": 25,
    "DialBegin": 10,
    "BridgeEnter": 10,
    "NewConnectedLine": 10,
}


def _chunks(messages: list[bytes]) -> list[bytes]:
    out: list[bytes] = []
    current: list[bytes] = []
    size = 0
    for m in messages:
        current.append(m)
        size += len(m)
        if size >= CHUNK:
            out.append(b"".join(current))
            current, size = [], 0
    end = encode([("Event", "UserEvent"), ("Privilege", "user,all"), ("UserEvent", SENTINEL)])
    out.append(b"".join([*current, end]))
    return out


def mix(weights: Mapping[str, int], n: int, seed: int = 7) -> list[bytes]:
    rng = random.Random(seed)
    names = rng.choices(list(weights), weights=list(weights.values()), k=n)
    return _chunks([encode(_event(rng, name, i)) for i, name in enumerate(names)])


def storm(agents: int) -> list[bytes]:
    """What a network blip causes: every phone re-registers and reports its state."""
    messages = []
    for i in range(agents):
        p = f"p{i}"
        contact = [("Event", "ContactStatus"), ("Privilege", "system,all"), ("URI", f"sip:{p}@127.0.0.3")]
        messages.append(encode([*contact, ("ContactStatus", "Reachable"), ("AOR", p), ("EndpointName", p)]))
        messages.append(
            encode([("Event", "DeviceStateChange"), ("Device", f"PJSIP/{p}"), ("State", "NOT_INUSE")])
        )
    return _chunks(messages)


# -- the server (child process) ------------------------------------------------------------------------


class ReplayAmi(FakeAmi):
    """The tests' fake AMI server, plus ``Action: BenchBurst`` (``Mix: <name>``): replay that mix."""

    def __init__(self, mixes: dict[str, list[bytes]]) -> None:
        super().__init__()
        self.mixes = mixes
        self.devices = [(f"PJSIP/p{i}", "NOT_INUSE") for i in range(CENTER)]
        self.channels = [
            {
                "Channel": f"PJSIP/p{i}-{i:08x}",
                "Uniqueid": f"1764620000.{i}",
                "Context": "acd-agent",
                "Application": "Bridge",
                "BridgeId": "",
            }
            for i in range(CENTER)
        ]

    async def _answer(self, conn: Any, action: Any) -> None:
        if str(action.get("action", "")).lower() != "benchburst":
            await super()._answer(conn, action)
            return
        conn.write(encode([("Response", "Success"), ("ActionID", str(action.get("actionid", "")))]))
        task = asyncio.create_task(self._burst(conn, self.mixes[str(action.get("mix"))]))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _burst(self, conn: Any, chunks: list[bytes]) -> None:
        for chunk in chunks:
            conn.write(chunk)
            await conn.writer.drain()


def _serve(mixes: dict[str, list[bytes]], port: Any) -> None:
    async def main() -> None:
        server = ReplayAmi(mixes)
        await server.start()
        port.value = server.port
        await asyncio.Event().wait()

    asyncio.run(main())


# -- measuring -------------------------------------------------------------------------------------------


class StallMonitor:
    """How long the loop was held: a 2 ms ticker's worst lateness (wall, which on a loaded machine
    includes time the process was not scheduled) and the most CPU the loop's thread spent between two
    of its turns (the work itself, whatever the machine's load)."""

    def __init__(self) -> None:
        self.worst = self.worst_cpu = 0.0
        self._task = asyncio.get_running_loop().create_task(self._run())

    def reset(self) -> None:
        self.worst = self.worst_cpu = 0.0

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            before, cpu = loop.time(), time.thread_time()
            await asyncio.sleep(0.002)
            self.worst = max(self.worst, loop.time() - before - 0.002)
            self.worst_cpu = max(self.worst_cpu, time.thread_time() - cpu)

    def stop(self) -> tuple[float, float]:
        self._task.cancel()
        return self.worst, self.worst_cpu


def rss_mb() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


@dataclass
class Row:
    variant: str
    events: int
    cpu: float  # seconds, median of the repeats
    wall: float  # seconds, median
    stall: float  # seconds, worst of the repeats (wall)
    stall_cpu: float  # seconds, worst of the repeats (CPU of the loop's thread between two turns)
    rss: float
    reconnects: int | str = "-"

    @property
    def us(self) -> float:
        return self.cpu / self.events * 1e6 if self.events else 0.0


REPEATS = 3


async def measure(
    variant: str, events: int, run: Callable[[], Any], reconnects: Callable[[], int] | None = None
) -> Row:
    before = reconnects() if reconnects else 0
    cpus, walls, stalls, stalls_cpu = [], [], [], []
    for _ in range(REPEATS):
        gc.collect()
        monitor = StallMonitor()
        await asyncio.sleep(0.01)
        monitor.reset()
        cpu, wall = time.process_time(), time.perf_counter()
        await run()
        cpus.append(time.process_time() - cpu)
        walls.append(time.perf_counter() - wall)
        stall, stall_cpu = monitor.stop()
        stalls.append(stall)
        stalls_cpu.append(stall_cpu)
    row = Row(
        variant,
        events,
        statistics.median(cpus),
        statistics.median(walls),
        max(stalls),
        max(stalls_cpu),
        rss_mb(),
        reconnects() - before if reconnects else "-",
    )
    print(
        f"  {variant}: {row.us:.2f} µs/event, wall {row.wall:.2f} s, stall {row.stall * 1000:.1f} ms "
        f"(CPU {row.stall_cpu * 1000:.1f} ms)",
        flush=True,
    )
    return row


# -- bare parsers ------------------------------------------------------------------------------------------


class BareSplit(asyncio.Protocol):
    def __init__(self, expected: int, to_dict: bool) -> None:
        self.expected, self.to_dict = expected, to_dict
        self.count = 0
        self.buffer = b""
        self.done = asyncio.get_running_loop().create_future()
        self.last: dict[str, str] = {}

    def data_received(self, data: bytes) -> None:
        parts = (self.buffer + data).split(b"\r\n\r\n")
        self.buffer = parts.pop()
        if self.to_dict:
            for part in parts:
                self.last = dict(line.split(": ", 1) for line in part.decode().split("\r\n") if ": " in line)
        self.count += len(parts)
        if self.count >= self.expected and not self.done.done():
            self.done.set_result(None)


class PreviousProtocol(AmiProtocol):
    """The protocol with the parser as it was before this benchmark (per-line partition, a list of
    pairs, then the message; panoramisk's handle_message)."""

    def _handle_raw(self, raw: bytes) -> None:
        pairs: list[tuple[str, str]] = []
        for line in raw.decode("utf-8", errors="replace").split("\r\n"):
            key, colon, value = line.partition(":")
            if colon and key.strip():
                pairs.append((key.strip(), value.removeprefix(" ")))
            elif self.version is None and line.startswith("Asterisk Call Manager/"):
                self.version = line.removeprefix("Asterisk Call Manager/").strip()
            elif line:
                self._warnings.warn("line", "AMI: skipping malformed line %r", line[:200])
        if not pairs:
            return
        message = AmiMessage(pairs)
        if "event" not in message and "response" not in message:
            return
        with contextlib.suppress(Exception):
            AMIProtocol.handle_message(self, message)  # panoramisk's, as before


async def _burst_over(protocol: asyncio.BaseProtocol, transport: asyncio.Transport, name: str) -> None:
    transport.write(f"Action: BenchBurst\r\nMix: {name}\r\nActionID: b\r\n\r\n".encode())


def bare(port: int, name: str, events: int, to_dict: bool) -> Callable[[], Any]:
    async def run() -> None:
        loop = asyncio.get_running_loop()
        transport, protocol = await loop.create_connection(
            lambda: BareSplit(events + 2, to_dict), "127.0.0.1", port
        )
        await _burst_over(protocol, transport, name)
        await asyncio.wait_for(protocol.done, 120)
        transport.close()

    return run


def protocol_only(port: int, name: str, cls: type[AmiProtocol]) -> Callable[[], Any]:
    async def run() -> None:
        loop = asyncio.get_running_loop()
        done = loop.create_future()

        def on_event(message: Mapping[str, str]) -> None:
            if message.get("UserEvent") == SENTINEL and not done.done():
                done.set_result(None)

        transport, protocol = await loop.create_connection(lambda: cls(on_event), "127.0.0.1", port)
        protocol.release_events()
        await _burst_over(protocol, transport, name)
        await asyncio.wait_for(done, 120)
        transport.close()

    return run


# -- the link and the whole service ------------------------------------------------------------------------


def _link_factory(port: int) -> Callable[..., AmiLink]:
    return partial(
        AmiLink,
        host="127.0.0.1",
        port=port,
        username="hotline",
        secret="s3cret",
        ping_interval=1.0,
        ping_timeout=1.0,
        reconnect_min_delay=0.05,
        reconnect_max_delay=0.5,
    )


class Sentinel:
    def __init__(self) -> None:
        self.future: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def __call__(self, message: Mapping[str, str]) -> None:
        if message.get("UserEvent") == SENTINEL and not self.future.done():
            self.future.set_result(None)

    async def burst(self, link: AmiLink, name: str) -> None:
        self.future = asyncio.get_running_loop().create_future()
        await link.send({"Action": "BenchBurst", "Mix": name})
        await asyncio.wait_for(self.future, 300)


class NullRecorder:
    def __getattr__(self, name: str) -> Callable[..., Any]:
        return lambda *args, **kwargs: [] if name == "recent_callers" else None


class NullStore:
    def close_dangling(self, at: float) -> int:
        return 0

    def __getattr__(self, name: str) -> Callable[..., None]:
        return lambda *args, **kwargs: None


async def _up(link: AmiLink) -> None:
    for _ in range(500):
        if link.up:
            return
        await asyncio.sleep(0.01)
    raise RuntimeError("link not up")


async def service_with(port: int, agents: int, tracker: type | None = None) -> tuple[Any, Any, Sentinel]:
    service = DistributionService(
        DistributionConfig((QueueConfig("general"),)),
        _link_factory(port),
        NullRecorder(),  # type: ignore[arg-type]
    )
    watch = PresenceWatch(service, NullStore(), DEFAULT_CONFIG)  # type: ignore[arg-type]
    if tracker is not None:
        watch.tracker = tracker(DEFAULT_CONFIG, new_id=watch.tracker._new_id)
    sentinel = Sentinel()
    service.event_observers.append(sentinel)
    for i in range(agents):
        service.log_in(f"a{i}", f"p{i}", Cause.AGENT, "bench")
        service.make_ready(f"a{i}", Cause.AGENT, "bench")
    await service.start()
    await _up(service.link)
    for _ in range(1000):  # the DeviceStateList rebuild after login
        if len(watch.tracker.phones) >= CENTER:
            break
        await asyncio.sleep(0.01)
    return service, watch, sentinel


async def stop(service: Any, watch: Any) -> None:
    await asyncio.wait_for(watch.stop(), 30)
    await asyncio.wait_for(service.stop(), 30)


# -- the run ---------------------------------------------------------------------------------------------


async def main(events: int, port: int) -> list[Row]:
    rows: list[Row] = []
    print("bare parsers and the protocol", flush=True)
    rows.append(await measure("bare split on \\r\\n\\r\\n", events, bare(port, "filtered", events, False)))
    rows.append(await measure("bare split + decode + dict", events, bare(port, "filtered", events, True)))
    rows.append(
        await measure(
            "AmiProtocol, previous parser", events, protocol_only(port, "filtered", PreviousProtocol)
        )
    )
    rows.append(
        await measure("AmiProtocol, today's parser", events, protocol_only(port, "filtered", AmiProtocol))
    )

    print("the link", flush=True)
    sentinel = Sentinel()
    link = _link_factory(port)(on_event=sentinel, on_connected=None, on_disconnected=None)
    await link.start()
    await _up(link)
    rows.append(
        await measure("AmiLink", events, partial(sentinel.burst, link, "filtered"), lambda: link.reconnects)
    )
    await link.stop()

    print("the whole service", flush=True)
    for agents in AGENT_COUNTS:
        service, watch, sentinel = await service_with(port, agents)
        reconnects = partial(getattr, service.link, "reconnects")
        rows.append(
            await measure(
                f"service, {agents} agents ready",
                events,
                partial(sentinel.burst, service.link, "filtered"),
                reconnects,
            )
        )
        if agents == CENTER:
            rows.append(
                await measure(
                    f"service, {agents} agents ready, unfiltered mix",
                    events,
                    partial(sentinel.burst, service.link, "unfiltered"),
                    reconnects,
                )
            )
            rows.append(
                await measure(
                    f"storm: {2 * CENTER} ContactStatus/DeviceStateChange, {agents} agents",
                    2 * CENTER,
                    partial(sentinel.burst, service.link, "storm"),
                    reconnects,
                )
            )
            rows.append(
                await measure(f"rebuild: DeviceStateList, {CENTER} devices", CENTER, watch._rebuild_phones)
            )
            rows.append(
                await measure(f"rebuild: CoreShowChannels, {CENTER} channels", CENTER, service._on_connected)
            )
            saved = slices.SLICE_SECONDS
            slices.SLICE_SECONDS = 1e9
            rows.append(
                await measure(
                    f"rebuild: DeviceStateList, {CENTER} devices, not sliced", CENTER, watch._rebuild_phones
                )
            )
            slices.SLICE_SECONDS = saved
        await stop(service, watch)
    small = AGENT_COUNTS[1]
    service, watch, sentinel = await service_with(port, small, ScanningTracker)
    reconnects = partial(getattr, service.link, "reconnects")
    rows.append(
        await measure(
            f"service, {small} agents ready, previous tracker (full scan)",
            events // 5,
            partial(sentinel.burst, service.link, "filtered_small"),
            reconnects,
        )
    )
    await stop(service, watch)
    return rows


def report(rows: list[Row]) -> None:
    base = next(r for r in rows if r.variant.startswith("bare split + decode")).us
    print()
    print(f"load average before/after: {os.getloadavg()}")
    print(f"median of {REPEATS} repeats; stalls: worst of the repeats, wall (CPU of the loop's thread)")
    print(
        "| variant | events | CPU µs/event | × split+decode+dict | longest stall | wall | RSS | reconnects |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r.variant} | {r.events:,} | {r.us:.2f} | {r.us / base:.1f} | {r.stall * 1000:.0f} "
            f"({r.stall_cpu * 1000:.0f}) ms | {r.wall:.2f} s | {r.rss:.0f} MB | {r.reconnects} |"
        )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=20_000, help="events per burst (default 20,000)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)  # the service's own logging, not the benchmark's output
    faulthandler.dump_traceback_later(600, exit=True)
    print(f"load average: {os.getloadavg()}; building the mixes", flush=True)
    mixes = {
        "filtered": mix(FILTERED, args.events),
        "filtered_small": mix(FILTERED, args.events // 5),
        "unfiltered": mix(UNFILTERED, args.events),
        "storm": storm(CENTER),
    }
    port = multiprocessing.Value("i", 0)
    server = multiprocessing.get_context("fork").Process(target=_serve, args=(mixes, port), daemon=True)
    server.start()
    try:
        for _ in range(500):
            if port.value:
                break
            time.sleep(0.01)
        report(asyncio.run(main(args.events, port.value)))
    finally:
        server.terminate()
        server.join(5)
