"""The running contact center: the core, driven by Asterisk over AMI, writing to storage.

This shell holds no rules of its own. It turns AMI events into core events, carries out the core's
commands on Asterisk (ring an agent, hang up a leg), and hands the core's notifications to the
recorder. Everything runs on the event loop, one event at a time, so the core needs no locks.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from acd import commands as cmd
from acd import events as ev
from acd.ami import AmiError, AmiLink, AmiNotConnected, AmiTimeout
from acd.center import ContactCenter, Output
from acd.engine import QueueConfig
from agents.presence import Cause, Transition
from app.services import telephony
from app.services.writer import StorageWriter

log = logging.getLogger(__name__)

INBOUND_CONTEXT = "hotline-inbound"
WAITING_APPLICATION = "MusicOnHold"


class Recorder(Protocol):
    def call_waiting(
        self, call_id: str, queue: str, caller_number: str, priority: int, enqueued_at: datetime
    ) -> None: ...
    def call_ringing(self, call_id: str, agent_id: str) -> None: ...
    def call_answered(self, call_id: str, agent_id: str, answered_at: datetime) -> int | None: ...
    def call_ended(self, call_id: str, ended_at: datetime, cause: str) -> None: ...
    def call_abandoned(self, call_id: str, ended_at: datetime, cause: str) -> None: ...


def _utc(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, tz=UTC)


@dataclass(frozen=True, slots=True)
class DistributionConfig:
    queues: tuple[QueueConfig, ...]
    agent_context: str = "acd-agent"
    channel_tech: str = "PJSIP"


class DistributionService:
    """Owns the AMI link and the contact-center core for this process."""

    def __init__(
        self,
        config: DistributionConfig,
        link_factory: Callable[..., AmiLink],
        recorder: Recorder,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.config = config
        self.center = ContactCenter(config.queues)
        self.recorder = recorder
        self.writer = StorageWriter()
        self.clock = clock
        self.link = link_factory(
            on_event=self._on_event, on_connected=self._on_connected, on_disconnected=self._on_disconnected
        )
        # Agent legs get Asterisk uniqueids of our own, unique across restarts of this service.
        self._leg_prefix = f"acd-{secrets.token_hex(4)}-"
        self._leg_names: dict[str, str] = {}  # offer id -> agent channel name, learnt from Newchannel
        self._timer: asyncio.TimerHandle | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._buffer: list[Mapping[str, str]] | None = None  # events held back while resyncing
        self.transitions: list[Transition] = []
        # Extension points: other services (compliance, metrics, live views) follow the center
        # through these instead of patching this shell. Both are called on the event loop and must
        # not raise or block.
        self.listeners: list[Callable[[Output], None]] = []  # every core output, after it is carried out
        self.event_observers: list[Callable[[Mapping[str, str]], None]] = []  # every AMI event

    # -- lifecycle --------------------------------------------------------------------------------

    async def start(self) -> None:
        self.writer.start()
        await self.link.start()

    async def stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
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

    def agent_at(self, endpoint: str) -> str | None:
        """The agent logged in at this endpoint, if any."""
        for agent in self.center.presence.agents.values():
            if agent.endpoint == endpoint:
                return agent.agent_id
        return None

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
                offer = engine.offers.get(offer_id)
                # An unanswered leg's end is settled by its OriginateResponse, which says why it failed.
                if offer is not None and offer.answered:
                    self._handle(ev.AgentLegEnded(now, offer_id))
            elif uniqueid in engine.calls:
                self._handle(ev.CallerHungUp(now, uniqueid, msg.get("Cause", "")))

    def _offer_of(self, uniqueid: str | None) -> str | None:
        if uniqueid and uniqueid.startswith(self._leg_prefix):
            return uniqueid[len(self._leg_prefix) :]
        return None

    async def _on_connected(self) -> None:
        """After every (re)connect: rebuild the picture of waiting callers from Asterisk."""
        self._buffer = []
        try:
            snapshot = await self._read_live_calls()
            self._handle(snapshot)
            log.info("resynced with Asterisk", extra={"calls": len(snapshot.calls)})
        except (AmiError, AmiNotConnected, AmiTimeout):
            log.exception("resync failed; the link will retry on reconnect")
        finally:
            held, self._buffer = self._buffer, None
            for msg in held:
                self._on_event(msg)

    async def _read_live_calls(self) -> ev.Resynced:
        channels = await self.link.send_list({"Action": "CoreShowChannels"})
        now = self.clock()
        live_ids = set()
        calls: list[ev.LiveCall] = []
        for channel in channels:
            uniqueid = channel.get("Uniqueid") or ""
            offer_id = self._offer_of(uniqueid)
            live_ids.add(offer_id or uniqueid)
            if offer_id is not None:
                self._leg_names[offer_id] = channel.get("Channel") or ""
            if channel.get("Context") != INBOUND_CONTEXT and uniqueid not in self.center.engine.calls:
                continue
            waiting = channel.get("Application") == WAITING_APPLICATION and not channel.get("BridgeId")
            if not waiting and uniqueid not in self.center.engine.calls:
                continue  # still in the greeting: its AcdCallWaiting event is yet to come
            variables = {}
            for name in ("ACD_QUEUE", "ACD_PRIORITY", "ACD_ENQUEUED"):
                action = {"Action": "Getvar", "Channel": channel["Channel"], "Variable": name}
                try:
                    reply = await self.link.send(action)
                except AmiError:  # the channel left meanwhile; defaults do for it
                    continue
                variables[name] = reply.get("Value") or ""
            calls.append(telephony.live_call(channel, variables, waiting, self._default_queue(), now))
        return ev.Resynced(now, tuple(calls), frozenset(live_ids))

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
        rec = self.recorder
        match output:
            case cmd.RingAgent():
                self._spawn(self._ring(output))
            case cmd.HangUpOffer(offer_id=offer_id):
                self._spawn(self._hang_up_leg(offer_id))
            case cmd.CallQueued(call_id=cid, queue=q, caller_number=num, priority=prio, enqueued_at=at):
                self.writer.submit("call_waiting", lambda: rec.call_waiting(cid, q, num, prio, _utc(at)))
            case cmd.CallOffered(call_id=cid, agent_id=agent):
                self.writer.submit("call_ringing", lambda: rec.call_ringing(cid, agent))
            case cmd.CallAnswered(call_id=cid, agent_id=agent, answered_at=at):
                self.writer.submit("call_answered", lambda: rec.call_answered(cid, agent, _utc(at)))
            case cmd.CallFinished(call_id=cid, at=at):
                self.writer.submit("call_ended", lambda: rec.call_ended(cid, _utc(at), "normal"))
            case cmd.CallAbandoned(call_id=cid, at=at, cause=cause):
                self.writer.submit("call_abandoned", lambda: rec.call_abandoned(cid, _utc(at), cause))
            case Transition():
                self.transitions.append(output)
                log.info(
                    "agent %s: %s -> %s",
                    output.agent_id,
                    output.from_state,
                    output.to_state,
                    extra={"reason": output.reason, "cause": output.cause, "actor": output.actor},
                )

    def _schedule_wakeup(self) -> None:
        deadline = self.center.next_deadline()
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if deadline is None:
            return
        delay = max(0.0, deadline - self.clock())
        self._timer = asyncio.get_running_loop().call_later(delay, self._wake_up)

    def _wake_up(self) -> None:
        self._timer = None
        self._handle(ev.TimePassed(self.clock()))

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _default_queue(self) -> str:
        return self.config.queues[0].name

    # -- actions on Asterisk ------------------------------------------------------------------------

    async def _ring(self, ring: cmd.RingAgent) -> None:
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
        else:
            failure = telephony.offer_failure(result.reason_code)
            log.info("offer %s to %s failed: %s", ring.offer_id, ring.agent_id, failure)
            self._handle(ev.OfferFailed(self.clock(), ring.offer_id, failure))

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
