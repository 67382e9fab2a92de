"""The running contact center: the core, driven by Asterisk over AMI, writing to storage.

This shell holds no rules of its own. It turns AMI events into core events, carries out the core's
commands on Asterisk (ring an agent, hang up a leg), and hands the core's notifications to the
recorder. Everything runs on the event loop, one event at a time, so the core needs no locks.
"""

from __future__ import annotations

import asyncio
import logging
import re
import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from math import ceil
from typing import Any, Protocol

from acd import commands as cmd
from acd import events as ev
from acd.ami import AmiError, AmiLink, AmiNotConnected, AmiTimeout
from acd.center import ContactCenter, Output
from acd.queues_config import DEFAULT_PRIORITY_STEP, DestinationKind, QueueConfig
from acd.views import AgentProfile, AgentSnapshot, CenterSnapshot
from agents.presence import AgentState, Cause, PresenceError, Transition
from app.services import telephony
from app.services.calls import OpenCall
from app.services.slices import in_slices
from app.services.writer import StorageWriter

log = logging.getLogger(__name__)

INBOUND_CONTEXT = "hotline-inbound"
ANNOUNCE_CONTEXT = "acd-announce"
OVERFLOW_CONTEXT = "acd-overflow"
# Where a caller is while it waits for an agent (the greeting excepted: ACD_ENQUEUED is not set yet).
WAITING_CONTEXTS = frozenset({INBOUND_CONTEXT, ANNOUNCE_CONTEXT})
FALLBACK_APPLICATION = "Queue"  # app_queue's fallback (extensions.conf), while the service was away
HEARTBEAT_VARIABLE = "ACD_HEARTBEAT"
#: The recorder's methods that run as storage writes (by name, so a stop can journal them).
RECORDER_WRITES = (
    "call_waiting", "call_ringing", "call_answered", "call_ended", "call_abandoned", "call_overflowed"
)  # fmt: skip
# A failed leg's Hangup (whose cause tells busy from no answer) may come just after its
# OriginateResponse (seen: 0.1-0.5 ms): wait this long for it.
LEG_HANGUP_WAIT = 2.0
# The uniqueid every agent leg gets (``DistributionService._leg_prefix`` + offer id), whichever run
# of the service originated it: the rebuild finds the legs of a crashed run (or another leader) by it.
LEG_UNIQUEID = re.compile(r"acd-[0-9a-f]{8}-.+")
GONE_WHILE_AWAY = "ended while the service was away"


class Recorder(Protocol):
    def call_waiting(
        self, call_id: str, queue: str, caller_number: str, priority: int, enqueued_at: datetime
    ) -> None: ...
    def call_ringing(self, call_id: str, agent_id: str) -> None: ...
    def call_answered(self, call_id: str, agent_id: str, answered_at: datetime) -> int | None: ...
    def call_ended(self, call_id: str, ended_at: datetime, cause: str) -> None: ...
    def call_abandoned(self, call_id: str, ended_at: datetime, cause: str) -> None: ...
    def call_overflowed(self, call_id: str, at: datetime, destination: str, reason: str) -> None: ...
    def recent_callers(self, since: datetime) -> list[tuple[str, datetime]]: ...
    def open_calls(self) -> list[OpenCall]: ...


class RepeatCallers:
    """Numbers that called within a window: a repeat caller's matter was not settled the first time."""

    def __init__(self, window_seconds: float) -> None:
        self.window = window_seconds
        self._last: dict[str, float] = {}

    PRUNE_AT = 50_000

    def add(self, number: str, at: float) -> None:
        if not number:
            return
        self._last[number] = max(at, self._last.get(number, at))
        if len(self._last) > self.PRUNE_AT:
            self._last = {n: t for n, t in self._last.items() if at - t <= self.window}

    def seen_recently(self, number: str, now: float) -> bool:
        last = self._last.get(number)
        return last is not None and now - last <= self.window


def _utc(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, tz=UTC)


@dataclass(frozen=True, slots=True)
class DistributionConfig:
    queues: tuple[QueueConfig, ...]
    agent_context: str = "acd-agent"
    channel_tech: str = "PJSIP"
    priority_step: float = DEFAULT_PRIORITY_STEP
    repeat_caller_seconds: float = 24 * 3600.0
    repeat_caller_priority: int = 1
    heartbeat_interval: float = 5.0  # the dialplan falls back to app_queue when this stops (queues.conf)


class DistributionService:
    """Owns the AMI link and the contact-center core for this process."""

    def __init__(
        self,
        config: DistributionConfig,
        link_factory: Callable[..., AmiLink],
        recorder: Recorder,
        clock: Callable[[], float] = time.time,
        writer: StorageWriter | None = None,
    ) -> None:
        self.config = config
        self.center = ContactCenter(config.queues, priority_step=config.priority_step)
        self.repeat_callers = RepeatCallers(config.repeat_caller_seconds)
        self.recorder = recorder
        self.writer = writer or StorageWriter()
        for op in RECORDER_WRITES:
            self.writer.register(op, getattr(recorder, op))
        self.clock = clock
        self.link = link_factory(
            on_event=self._on_event, on_connected=self._on_connected, on_disconnected=self._on_disconnected
        )
        # Agent legs get Asterisk uniqueids of our own, unique across restarts of this service.
        self._leg_prefix = f"acd-{secrets.token_hex(4)}-"
        self._leg_names: dict[str, str] = {}  # offer id -> agent channel name, learnt from Newchannel
        # offer id -> the Cause of its leg's Hangup, while its Originate is in flight
        self._leg_hangups: dict[str, asyncio.Future[str]] = {}
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at: float | None = None  # the deadline self._timer is set for
        self._tasks: set[asyncio.Task[Any]] = set()
        self._buffer: list[Mapping[str, str]] | None = None  # events held back while resyncing
        self._fallback_answered: dict[str, str] = {}  # call id -> endpoint of the phone that took it
        self._heartbeat: asyncio.Task[None] | None = None
        # Extension points: other services (compliance, metrics, live views) follow the center
        # through these instead of patching this shell. Both are called on the event loop and must
        # not raise or block.
        self.listeners: list[Callable[[Output], None]] = []  # every core output, after it is carried out
        self.event_observers: list[Callable[[Mapping[str, str]], None]] = []  # every AMI event
        self.queue_observers: list[Callable[[tuple[QueueConfig, ...]], None]] = []  # every queue reload

    # -- lifecycle --------------------------------------------------------------------------------

    async def start(self) -> None:
        self.writer.start()
        since = _utc(self.clock() - self.repeat_callers.window)
        for number, at in await asyncio.to_thread(self.recorder.recent_callers, since):
            self.repeat_callers.add(number, at.timestamp())
        await self.link.start()
        self._heartbeat = asyncio.create_task(self._beat(), name="acd-heartbeat")

    async def stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        if self._heartbeat is not None:
            self._heartbeat.cancel()
            await asyncio.gather(self._heartbeat, return_exceptions=True)
        await self.link.stop()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.writer.stop()

    # -- requests from the API (agents, supervisors) ----------------------------------------------

    def log_in(self, agent_id: str, endpoint: str, cause: Cause, actor: str) -> None:
        self._apply(self.center.log_in(agent_id, endpoint, self.clock(), cause, actor))

    def make_ready(self, agent_id: str, cause: Cause, actor: str) -> None:
        self._apply(self.center.make_ready(agent_id, self.clock(), cause, actor))

    def make_busy(self, agent_id: str, reason: str, cause: Cause, actor: str) -> None:
        self._apply(self.center.make_busy(agent_id, reason, self.clock(), cause, actor))

    def log_out(self, agent_id: str, cause: Cause, actor: str) -> None:
        self._apply(self.center.log_out(agent_id, self.clock(), cause, actor))

    def not_ready(self, agent_id: str, reason: str, cause: Cause, actor: str) -> None:
        """Take the agent out of distribution (left the post, forced by a supervisor)."""
        self._apply(self.center.not_ready(agent_id, reason, self.clock(), cause, actor))

    def restore_presence(self, last: list[tuple[str, str, str, str | None]]) -> None:
        """Put agents back where the previous run left them: (agent, state, reason, endpoint) each.

        Called before the AMI link starts. The restore is recorded as transitions by the system
        (actor ``restore``), so the log shows the restart. Call states (ringing, on a call, wrap-up)
        come back as ready: the calls themselves are rebuilt from Asterisk.
        """
        for agent_id, state, reason, endpoint in last:
            if state == AgentState.LOGGED_OUT or not endpoint:
                continue
            try:
                self.log_in(agent_id, endpoint, Cause.SYSTEM, "restore")
                if state == AgentState.BUSY:
                    self.make_busy(agent_id, reason, Cause.SYSTEM, "restore")
                elif state == AgentState.NOT_READY:
                    self.not_ready(agent_id, reason, Cause.SYSTEM, "restore")
                elif state != AgentState.LOGGED_IN:
                    self.make_ready(agent_id, Cause.SYSTEM, "restore")
            except PresenceError as exc:
                log.warning("presence of agent %s not restored: %s", agent_id, exc)
        log.info("presence restored", extra={"agents": sum(1 for a in last if a[1] != AgentState.LOGGED_OUT)})

    def agent_at(self, endpoint: str) -> str | None:
        """The agent logged in at this endpoint, if any."""
        return self.center.agent_at(endpoint)

    def set_profiles(self, profiles: list[AgentProfile], *, replace: bool = False) -> None:
        """Apply agent profiles now; no waiting call or ringing offer is dropped."""
        self._apply(self.center.set_profiles(profiles, self.clock(), replace=replace))

    # -- reads for the live views (on the event loop) ---------------------------------------------

    def snapshot(self) -> CenterSnapshot:
        return self.center.snapshot(self.clock())

    def agent(self, agent_id: str) -> AgentSnapshot:
        return self.center.agent(agent_id)

    def reload_queues(self, queues: tuple[QueueConfig, ...]) -> None:
        """Apply new queue definitions; waiting calls are kept (see ``ContactCenter.reconfigure``)."""
        self._apply(self.center.reconfigure(queues, self.clock()))
        for observer in self.queue_observers:
            try:
                observer(queues)
            except Exception:
                log.exception("queue observer failed")
        log.info("queues reloaded", extra={"queues": [q.name for q in queues]})

    # -- AMI events -------------------------------------------------------------------------------

    def _on_event(self, msg: Mapping[str, str]) -> None:
        if self._buffer is not None:
            self._buffer.append(msg)
            return
        try:
            self._dispatch_event(msg)
        except Exception:  # one bad event must never stop the hotline
            log.exception("AMI event skipped", extra={"event": msg.get("Event")})
        for observer in self.event_observers:
            try:
                observer(msg)
            except Exception:
                log.exception("AMI event observer failed", extra={"event": msg.get("Event")})

    def _dispatch_event(self, msg: Mapping[str, str]) -> None:
        name = msg.get("Event")
        now = self.clock()
        engine = self.center.engine
        if name == "UserEvent" and msg.get("UserEvent") == telephony.WAITING_EVENT:
            arrived = telephony.call_arrived(msg, now, self._default_queue())
            if arrived is None:
                log.warning("malformed %s skipped", telephony.WAITING_EVENT)
                return
            if (
                arrived.call_id not in engine.calls
                and arrived.priority < self.config.repeat_caller_priority
                and self.repeat_callers.seen_recently(arrived.caller_number, now)
            ):
                arrived = replace(arrived, priority=self.config.repeat_caller_priority)
            self._handle(arrived)
        elif name == "Newchannel":
            offer_id = self._offer_of(msg.get("Uniqueid"))
            if offer_id is not None and msg.get("Channel"):
                self._leg_names[offer_id] = msg["Channel"]
        elif name == "Hangup":
            uniqueid = msg.get("Uniqueid") or ""
            offer_id = self._offer_of(uniqueid)
            if offer_id is not None:
                self._leg_names.pop(offer_id, None)
                hangup = self._leg_hangups.get(offer_id)
                if hangup is not None and not hangup.done():
                    hangup.set_result(msg.get("Cause") or "")
                offer = engine.offers.get(offer_id)
                if offer is not None and offer.answered:
                    self._handle(ev.AgentLegEnded(now, offer_id))
                else:
                    # An unanswered leg's failure is settled with its OriginateResponse (see _ring);
                    # a withdrawn offer's agent may now be offered the next call.
                    self._handle(ev.AgentLegGone(now, offer_id))
            elif uniqueid in engine.calls:
                self._handle(ev.CallerHungUp(now, uniqueid, msg.get("Cause", "")))

    def _offer_of(self, uniqueid: str | None) -> str | None:
        """The offer id of an agent leg: ours by their suffix, another run's by the whole uniqueid."""
        if not uniqueid:
            return None
        if uniqueid.startswith(self._leg_prefix):
            return uniqueid[len(self._leg_prefix) :]
        return uniqueid if LEG_UNIQUEID.fullmatch(uniqueid) else None

    async def _on_connected(self) -> None:
        """After every (re)connect: rebuild the picture from Asterisk and the database.

        Callers waiting, calls in progress and agent legs still ringing come from Asterisk (see
        ``ev.Resynced``); the database adds what Asterisk does not keep (answer times) and its open
        calls that Asterisk no longer has are ended.
        """
        self._buffer = []
        await self._send_heartbeat()  # first, so that no caller falls back while we rebuild
        started = time.monotonic()
        try:
            stored = await self._open_calls()
            snapshot = await self._read_live_calls(stored)
            self._handle(snapshot)
            ended = self._end_stored_calls_gone(stored, snapshot)
            log.info(
                "resynced with Asterisk",
                extra={"calls": len(snapshot.calls), "legs_found": len(snapshot.legs), "ended": ended,
                       "seconds": round(time.monotonic() - started, 3)},
            )  # fmt: skip
        except (AmiError, AmiNotConnected, AmiTimeout):
            log.exception("resync failed; the link will retry on reconnect")
        finally:
            held, self._buffer = self._buffer, None
            for msg in held:
                self._on_event(msg)

    async def _open_calls(self) -> dict[str, OpenCall]:
        """The database's open calls (read before Asterisk: any not in Asterisk's list after is gone)."""
        try:
            return {c.call_id: c for c in await asyncio.to_thread(self.recorder.open_calls)}
        except Exception as exc:  # the database away must not stop the rebuild from Asterisk
            log.warning("open calls not read from the database: %s", exc)
            return {}

    def _end_stored_calls_gone(self, stored: Mapping[str, OpenCall], snapshot: ev.Resynced) -> int:
        """Open calls in the database that neither Asterisk nor the core has: they ended while away."""
        engine_calls = self.center.engine.calls
        gone = [cid for cid in stored if cid not in snapshot.live_channels and cid not in engine_calls]
        at = _utc(snapshot.at)
        for call_id in gone:
            self.writer.submit("call_ended", call_id, at, GONE_WHILE_AWAY)
        return len(gone)

    async def _found_legs(
        self, channels: list[Mapping[str, str]], stored: Mapping[str, OpenCall]
    ) -> list[ev.LiveLeg]:
        """Agent legs in Asterisk that the core has no offer for (another run originated them)."""
        legs = []
        for channel in channels:
            offer_id = self._offer_of(channel.get("Uniqueid"))
            if offer_id is None or offer_id in self.center.engine.offers:
                continue
            try:
                reply = await self.link.send(
                    {"Action": "Getvar", "Channel": channel["Channel"], "Variable": "ACD_CALL_ID"}
                )
            except AmiError:  # the leg left meanwhile
                continue
            call_id = reply.get("Value") or ""
            if not call_id:
                continue
            endpoint = telephony.endpoint_of(channel.get("Channel") or "")
            record = stored.get(call_id)
            agent_id = self.agent_at(endpoint) or (record.agent_id if record else None) or f"phone:{endpoint}"
            answered_at = record.answered_at.timestamp() if record and record.answered_at else None
            legs.append(
                ev.LiveLeg(offer_id, call_id, endpoint, agent_id, bool(channel.get("BridgeId")), answered_at)
            )
        return legs

    async def _read_live_calls(self, stored: Mapping[str, OpenCall] | None = None) -> ev.Resynced:
        channels = await self.link.send_list({"Action": "CoreShowChannels"})
        now = self.clock()
        legs = await self._found_legs(channels, stored or {})
        leg_callers = {leg.call_id for leg in legs}
        live_ids = set()
        calls: list[ev.LiveCall] = []
        reclaim: list[str] = []
        async for channel in in_slices(channels):
            uniqueid = channel.get("Uniqueid") or ""
            offer_id = self._offer_of(uniqueid)
            live_ids.add(offer_id or uniqueid)
            if offer_id is not None:
                self._leg_names[offer_id] = channel.get("Channel") or ""
                continue
            known = uniqueid in self.center.engine.calls
            in_queue = channel.get("Context") in WAITING_CONTEXTS
            if not known and not in_queue and uniqueid not in leg_callers:
                continue
            variables = {}
            for name in ("ACD_QUEUE", "ACD_PRIORITY", "ACD_ENQUEUED"):
                action = {"Action": "Getvar", "Channel": channel["Channel"], "Variable": name}
                try:
                    reply = await self.link.send(action)
                except AmiError:  # the channel left meanwhile; defaults do for it
                    continue
                variables[name] = reply.get("Value") or ""
            if not known and not variables.get("ACD_ENQUEUED"):
                continue  # still in the greeting: its AcdCallWaiting event is yet to come
            bridged = bool(channel.get("BridgeId"))
            waiting = in_queue and not bridged
            if uniqueid in leg_callers:
                calls.append(telephony.live_call(channel, variables, waiting, self._default_queue(), now))
                continue
            if waiting and channel.get("Application") == FALLBACK_APPLICATION:
                reclaim.append(channel["Channel"])  # back from app_queue to the service's wait
            live = telephony.live_call(channel, variables, waiting, self._default_queue(), now)
            if bridged and in_queue:
                endpoint = await self._fallback_endpoint(channel["Channel"])
                if endpoint:
                    self._fallback_answered[uniqueid] = endpoint
                    if not known:
                        self._record_fallback_answer(live, endpoint, now)
                    else:
                        calls.append(live)
                    continue
            calls.append(live)
        for channel_name in reclaim:
            self._spawn(self._reclaim(channel_name))
        return ev.Resynced(now, tuple(calls), frozenset(live_ids), tuple(legs))

    def _on_disconnected(self, reason: str) -> None:
        log.warning("AMI link down", extra={"reason": reason})

    # -- core ---------------------------------------------------------------------------------------

    def _handle(self, event: ev.Event) -> None:
        self._apply(self.center.handle(event))

    def _apply(self, outputs: list[Output]) -> None:
        for output in outputs:
            try:
                self._carry_out(output)
            except Exception:
                log.exception("carrying out %s failed", type(output).__name__)
            for listener in self.listeners:
                try:
                    listener(output)
                except Exception:
                    log.exception("listener failed on %s", type(output).__name__)
        self._schedule_wakeup()

    def _carry_out(self, output: Output) -> None:
        match output:
            case cmd.RingAgent():
                self._spawn(self._ring(output))
            case cmd.HangUpOffer(offer_id=offer_id):
                self._spawn(self._hang_up_leg(offer_id))
            case cmd.SendCallTo():
                self._spawn(self._send_to(output))
            case cmd.AnnouncePosition():
                self._spawn(self._announce(output))
            case cmd.CallOverflowed(call_id=cid, destination=dest, reason=why, at=at):
                if dest.kind is not DestinationKind.QUEUE:
                    target = f"{dest.kind}:{dest.target}" if dest.target else str(dest.kind)
                    self.writer.submit("call_overflowed", cid, _utc(at), target, why)
            case cmd.CallTakenOver():
                endpoint = self._fallback_answered.pop(output.call_id, "")
                agent = self._agent_for(endpoint)
                self.writer.submit("call_answered", output.call_id, agent, _utc(output.at))
            case cmd.CallResumed():
                # Recorded as waiting first (a no-op if the run that answered it did) so that the
                # answer, and the ticket, always find their call.
                r = output
                self.writer.submit("call_waiting", r.call_id, r.queue, r.caller_number, r.priority,
                                   _utc(r.enqueued_at))  # fmt: skip
                self.writer.submit("call_answered", r.call_id, r.agent_id, _utc(r.answered_at))
            case cmd.CallQueued(call_id=cid, queue=q, caller_number=num, priority=prio, enqueued_at=at):
                self.repeat_callers.add(num, at)
                self.writer.submit("call_waiting", cid, q, num, prio, _utc(at))
            case cmd.CallOffered(call_id=cid, agent_id=agent):
                self.writer.submit("call_ringing", cid, agent)
            case cmd.CallAnswered(call_id=cid, agent_id=agent, answered_at=at):
                self.writer.submit("call_answered", cid, agent, _utc(at))
            case cmd.CallFinished(call_id=cid, at=at):
                self.writer.submit("call_ended", cid, _utc(at), "normal")
            case cmd.CallAbandoned(call_id=cid, at=at, cause=cause):
                self.writer.submit("call_abandoned", cid, _utc(at), cause)
            case Transition():
                log.info(
                    "agent %s: %s -> %s",
                    output.agent_id,
                    output.from_state,
                    output.to_state,
                    extra={"reason": output.reason, "cause": output.cause, "actor": output.actor},
                )

    def _schedule_wakeup(self) -> None:
        """Keep one timer on the core's next deadline; most events leave it where it is."""
        deadline = self.center.next_deadline()
        if deadline == self._timer_at:
            return
        if self._timer is not None:
            self._timer.cancel()
        self._timer, self._timer_at = None, deadline
        if deadline is not None:
            delay = max(0.0, deadline - self.clock())
            self._timer = asyncio.get_running_loop().call_later(delay, self._wake_up)

    def _wake_up(self) -> None:
        self._timer, self._timer_at = None, None
        self._handle(ev.TimePassed(self.clock()))

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _default_queue(self) -> str:
        return self.config.queues[0].name

    # -- actions on Asterisk ------------------------------------------------------------------------

    async def _ring(self, ring: cmd.RingAgent) -> None:
        hangup = self._leg_hangups[ring.offer_id] = asyncio.get_running_loop().create_future()
        try:
            await self._ring_and_settle(ring, hangup)
        finally:
            del self._leg_hangups[ring.offer_id]

    async def _ring_and_settle(self, ring: cmd.RingAgent, hangup: asyncio.Future[str]) -> None:
        try:
            result = await self.link.originate(
                channel=f"{self.config.channel_tech}/{ring.endpoint}",
                context=self.config.agent_context,
                exten="s",
                priority=1,
                caller_id=f'"{ring.caller_number}" <{ring.caller_number}>',
                variables={
                    "ACD_CALLER": ring.caller_channel,
                    "ACD_CALL_ID": ring.call_id,
                    "ACD_OFFER_ID": ring.offer_id,
                },
                timeout=ring.timeout,
                channel_id=self._leg_prefix + ring.offer_id,
            )
        except (AmiNotConnected, AmiTimeout) as exc:
            # The resync after reconnect (or the offer's deadline) settles this offer.
            log.warning("offer %s outcome unknown: %s", ring.offer_id, exc)
            return
        except AmiError as exc:
            log.warning("offer %s refused by Asterisk: %s", ring.offer_id, exc)
            self._handle(ev.OfferFailed(self.clock(), ring.offer_id, ev.OfferFailure.ERROR))
            return
        if result.success:
            self._handle(ev.OfferAnswered(self.clock(), ring.offer_id))
            return
        cause: str | None = None
        # Newchannel comes long before the outcome (~0.3 s seen); none means no leg was ever created.
        leg_created = hangup.done() or ring.offer_id in self._leg_names
        if leg_created:
            try:
                cause = await asyncio.wait_for(asyncio.shield(hangup), LEG_HANGUP_WAIT)
            except TimeoutError:
                log.warning("offer %s: no Hangup of its leg within %gs", ring.offer_id, LEG_HANGUP_WAIT)
        if ring.offer_id not in self.center.engine.offers:
            # The core took it back meanwhile (the caller left, or its ring timed out): not the phone's fault.
            log.info("offer %s to %s withdrawn", ring.offer_id, ring.agent_id, extra={"cause": cause})
            if not leg_created:
                self._handle(ev.AgentLegGone(self.clock(), ring.offer_id))  # there never was a leg
            return
        failure = telephony.offer_failure(result.reason_code, cause)
        log.info(
            "offer %s to %s failed: %s",
            ring.offer_id,
            ring.agent_id,
            failure,
            extra={"originate_reason": result.reason_code, "hangup_cause": cause},
        )
        self._handle(ev.OfferFailed(self.clock(), ring.offer_id, failure))

    async def _beat(self) -> None:
        """Tell the dialplan the service is there; without it, waiting callers go to app_queue."""
        while True:
            if self.link.up:
                await self._send_heartbeat()
            await asyncio.sleep(self.config.heartbeat_interval)

    async def _send_heartbeat(self) -> None:
        try:
            await self.link.send(
                {"Action": "Setvar", "Variable": HEARTBEAT_VARIABLE, "Value": str(int(self.clock()))}
            )
        except (AmiError, AmiNotConnected, AmiTimeout) as exc:
            log.warning("heartbeat not sent: %s", exc)

    async def _reclaim(self, channel: str) -> None:
        """Take a caller back from app_queue's fallback into the service's wait (it keeps its place)."""
        try:
            await self.link.send(
                {"Action": "Redirect", "Channel": channel, "Context": INBOUND_CONTEXT, "Exten": "12345",
                 "Priority": "wait"}
            )  # fmt: skip
            log.info("caller taken back from the fallback queue", extra={"channel": channel})
        except (AmiError, AmiNotConnected, AmiTimeout) as exc:
            log.warning("could not take %s back from the fallback queue: %s", channel, exc)

    async def _fallback_endpoint(self, channel: str) -> str:
        """The agent phone that answered this caller in app_queue's fallback, if one did."""
        try:
            reply = await self.link.send(
                {"Action": "Getvar", "Channel": channel, "Variable": "SHARED(ACD_FALLBACK_ENDPOINT)"}
            )
        except AmiError:
            return ""
        return reply.get("Value") or ""

    def _agent_for(self, endpoint: str) -> str:
        """The agent logged in at a phone; a phone nobody logged in at is named as such."""
        return self.agent_at(endpoint) or f"phone:{endpoint}"

    def _record_fallback_answer(self, live: ev.LiveCall, endpoint: str, now: float) -> None:
        """A call answered in the fallback while this process was not running: one ticket for it."""
        agent = self._agent_for(endpoint)
        number, enqueued_at = live.caller_number, _utc(live.enqueued_at)
        self.writer.submit("call_waiting", live.call_id, live.queue, number, live.priority, enqueued_at)
        self.writer.submit("call_answered", live.call_id, agent, _utc(now))

    async def _send_to(self, send: cmd.SendCallTo) -> None:
        """Overflow: the caller leaves the queue for voicemail, a callback request or a message."""
        try:
            await self.link.send(
                {"Action": "Setvar", "Channel": send.channel, "Variable": "ACD_OVERFLOW_TARGET",
                 "Value": send.destination.target}
            )  # fmt: skip
            await self.link.send(
                {"Action": "Redirect", "Channel": send.channel, "Context": OVERFLOW_CONTEXT,
                 "Exten": str(send.destination.kind), "Priority": "1"}
            )  # fmt: skip
        except (AmiError, AmiNotConnected, AmiTimeout) as exc:
            log.warning("overflow of call %s to %s failed: %s", send.call_id, send.destination, exc)

    async def _announce(self, announce: cmd.AnnouncePosition) -> None:
        """Play the caller its position and estimated wait (whole minutes, rounded up); then it waits on."""
        minutes = (
            "" if announce.estimated_wait_seconds is None else str(ceil(announce.estimated_wait_seconds / 60))
        )
        try:
            for name, value in (("ACD_POSITION", str(announce.position)), ("ACD_ESTIMATE", minutes)):
                await self.link.send(
                    {"Action": "Setvar", "Channel": announce.channel, "Variable": name, "Value": value}
                )
            call = self.center.engine.calls.get(announce.call_id)
            if call is None or call.agent_id is not None:
                return  # answered or offered meanwhile: no announcement over an agent's ring
            await self.link.send(
                {"Action": "Redirect", "Channel": announce.channel, "Context": ANNOUNCE_CONTEXT,
                 "Exten": "s", "Priority": "1"}
            )  # fmt: skip
        except (AmiError, AmiNotConnected, AmiTimeout) as exc:
            log.info("announcement to call %s skipped: %s", announce.call_id, exc)

    async def _hang_up_leg(self, offer_id: str) -> None:
        # The leg's channel name is learnt from its Newchannel event; wait for it briefly.
        for _ in range(20):
            name = self._leg_names.get(offer_id)
            if name:
                try:
                    await self.link.send({"Action": "Hangup", "Channel": name, "Cause": "16"})
                except (AmiError, AmiNotConnected, AmiTimeout) as exc:
                    log.info("hangup of offer %s: %s", offer_id, exc)
                return
            await asyncio.sleep(0.1)
