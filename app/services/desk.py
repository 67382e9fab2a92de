"""The agent's desk: each agent's live picture (state, the call ringing, the call in hand), pushed.

The process running distribution follows the core's outputs (:class:`DeskPublisher`): on every change
that concerns an agent it publishes that agent's whole desk to a Redis channel; every API process
fans the messages out to the stream clients of that agent only (:class:`DeskHub`). Each message is a
complete desk, so a client that misses one loses nothing.

The *screen pop* is the ``offer`` of a desk: published the moment the core decides to ring the
agent's phone (before Asterisk is even asked), with the caller's number, queue and wait; a second
message adds what the database knows: whether the number called before within the repeat-caller
window, and its earlier work orders, newest first. On answer the desk's ``call`` names the work
order the call opened, so the page opens the intake form on it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import redis.asyncio as aioredis
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from acd import commands as cmd
from acd.center import Output
from agents.presence import AgentPresence, AgentState, Transition
from app.db.models import Call
from app.services import redis_channel, work_orders
from app.services.distribution import DistributionService
from app.settings import Settings

log = logging.getLogger(__name__)

#: Queued messages per stream client; a client this far behind is dropped and reconnects.
CLIENT_BACKLOG = 100
#: How long the answer waits for the call's work order to be written before it is pushed without.
ORDER_WAIT_SECONDS = 2.0


def channel_name(settings: Settings) -> str:
    return f"{settings.wallboard_channel.split(':', 1)[0]}:desk"


@dataclass(slots=True)
class _AgentDesk:
    offer: dict[str, Any] | None = None
    call: dict[str, Any] | None = None


class DeskHub:
    """One Redis subscription per process, delivering each agent's desk to that agent's clients."""

    def __init__(self, redis_url: str, channel: str) -> None:
        self.redis_url = redis_url
        self.channel = channel
        self.subscribed = asyncio.Event()
        self._clients: dict[str, set[asyncio.Queue[str | None]]] = defaultdict(set)
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="desk-hub")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    def connect(self, agent_id: str) -> asyncio.Queue[str | None]:
        queue: asyncio.Queue[str | None] = asyncio.Queue(maxsize=CLIENT_BACKLOG)
        self._clients[agent_id].add(queue)
        return queue

    def disconnect(self, agent_id: str, queue: asyncio.Queue[str | None]) -> None:
        clients = self._clients.get(agent_id)
        if clients is not None:
            clients.discard(queue)
            if not clients:
                del self._clients[agent_id]

    def deliver(self, agent_id: str, data: str) -> None:
        for queue in list(self._clients.get(agent_id, ())):
            if queue.full():  # far behind: end its stream (None), it reconnects and gets a full desk
                self.disconnect(agent_id, queue)
                with contextlib.suppress(asyncio.QueueEmpty):
                    queue.get_nowait()
                queue.put_nowait(None)
                continue
            queue.put_nowait(data)

    async def _run(self) -> None:
        await redis_channel.follow(
            self.redis_url, self.channel, self._on_message, self.subscribed, "desk subscription"
        )

    def _on_message(self, data: str) -> None:
        try:
            agent_id = json.loads(data)["agent_id"]
        except (ValueError, KeyError, TypeError):
            log.warning("malformed desk message skipped")
            return
        self.deliver(agent_id, data)


class DeskPublisher:
    """In the process running distribution: turns the core's outputs into agents' desks."""

    def __init__(
        self,
        service: DistributionService,
        settings: Settings,
        sessions: sessionmaker[Session],
        hub: DeskHub,
    ) -> None:
        self.service = service
        self.settings = settings
        self.sessions = sessions
        self.hub = hub
        self._desks: dict[str, _AgentDesk] = defaultdict(_AgentDesk)
        self._outbox: asyncio.Queue[str] = asyncio.Queue()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._sender: asyncio.Task[None] | None = None
        self._redis: aioredis.Redis | None = None
        self._redis_failing = False
        service.listeners.append(self.observe)

    def start(self) -> None:
        self._redis = aioredis.from_url(self.settings.redis_url)
        self._sender = asyncio.get_running_loop().create_task(self._send_loop(), name="desk-publish")

    async def stop(self) -> None:
        tasks = [*self._tasks, *([self._sender] if self._sender else [])]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._redis is not None:
            await self._redis.aclose()
            self._redis = None

    # -- the desk -----------------------------------------------------------------------------------

    def snapshot(self, agent_id: str) -> dict[str, Any]:
        """The agent's desk now (on the event loop, where the core runs)."""
        center, now = self.service.center, self.service.clock()
        # Reading must not create: an id nobody uses stays unknown to the core (logged out).
        presence = center.presence.agents.get(agent_id) or AgentPresence(agent_id)
        engine_agent = center.engine.agents.get(agent_id)
        wrap_up_until = engine_agent.wrap_up_until if engine_agent is not None else None
        desk = self._desks.get(agent_id) or _AgentDesk()
        return {
            "agent_id": agent_id,
            "server_time": now,
            "state": presence.state.value,
            "reason": presence.reason,
            "since": presence.since or None,
            "endpoint": presence.endpoint,
            "pending": presence.pending.state.value if presence.pending else None,
            "wrap_up_until": wrap_up_until if presence.state is AgentState.WRAP_UP else None,
            "offer": desk.offer,
            "call": desk.call,
        }

    def observe(self, output: Output) -> None:
        """The listener on the core's outputs."""
        match output:
            case cmd.RingAgent(agent_id=agent_id, call_id=call_id):
                desk = self._desks[agent_id]
                desk.offer = self._offer(output)
                if desk.call is not None and desk.call["ended"]:
                    desk.call = None  # the last call is over: the new one takes its place
                self._push(agent_id)
                self._spawn(self._add_history(agent_id, call_id, output.caller_number))
            case cmd.HangUpOffer(agent_id=agent_id) | cmd.AgentMissedOffer(agent_id=agent_id):
                desk = self._desks[agent_id]
                if desk.offer is not None and desk.offer.get("answered") is not True:
                    desk.offer = None
                self._push(agent_id)
            case cmd.CallAnswered(agent_id=agent_id, call_id=call_id):
                desk = self._desks[agent_id]
                offer = desk.offer if desk.offer and desk.offer["call_id"] == call_id else None
                desk.offer = None
                desk.call = {
                    "call_id": call_id,
                    "caller_number": output.caller_number,
                    "queue": output.queue,
                    "answered_at": output.answered_at,
                    "wait_seconds": round(output.answered_at - output.enqueued_at, 3),
                    "ended": False,
                    "work_order_id": None,
                    "repeat_caller": offer.get("repeat_caller") if offer else None,
                    "previous_orders": offer.get("previous_orders") if offer else None,
                }
                self._push(agent_id)
                self._spawn(self._add_order(agent_id, call_id))
            case cmd.CallFinished(agent_id=agent_id, call_id=call_id):
                call = self._desks[agent_id].call
                if call is not None and call["call_id"] == call_id:
                    call["ended"] = True
                self._push(agent_id)
            case Transition(agent_id=agent_id):
                self._push(agent_id)

    def _offer(self, ring: cmd.RingAgent) -> dict[str, Any]:
        call = self.service.center.engine.calls.get(ring.call_id)
        enqueued_at = call.enqueued_at if call is not None else None
        return {
            "call_id": ring.call_id,
            "caller_number": ring.caller_number,
            "queue": call.queue if call is not None else None,
            "enqueued_at": enqueued_at,
            "priority": call.priority if call is not None else None,
            "rang_at": self.service.clock(),
            "repeat_caller": None,  # not known yet: the second message says
            "previous_orders": None,
        }

    # -- what the database adds ---------------------------------------------------------------------

    def _history(self, call_id: str, number: str) -> tuple[bool, list[dict[str, Any]]]:
        window = timedelta(hours=self.settings.repeat_caller_hours)
        since = datetime.fromtimestamp(self.service.clock(), UTC) - window
        with self.sessions() as session:
            earlier = session.scalar(
                select(Call.id)
                .where(Call.caller_number == number, Call.id != call_id, Call.enqueued_at >= since)
                .limit(1)
            )
            views = work_orders.previous_orders(
                session, number, exclude_call=call_id, limit=self.settings.screen_pop_previous_orders
            )
        return earlier is not None, [
            {
                "id": v.order.id,
                "date": (v.call.answered_at or v.order.created_at).isoformat(),
                "category": v.order.category,
                "status": v.order.status.value,
                "disposition": v.order.disposition.value if v.order.disposition else None,
                "summary": (v.order.description or "")[:120],
            }
            for v in views
        ]

    async def _add_history(self, agent_id: str, call_id: str, number: str) -> None:
        try:
            repeat, previous = await asyncio.wait_for(asyncio.to_thread(self._history, call_id, number), 5.0)
        except Exception:
            log.exception("caller history for the screen pop not readable")
            return
        for part in (self._desks[agent_id].offer, self._desks[agent_id].call):
            if part is not None and part["call_id"] == call_id:
                part["repeat_caller"], part["previous_orders"] = repeat, previous
        self._push(agent_id)

    async def _add_order(self, agent_id: str, call_id: str) -> None:
        with contextlib.suppress(TimeoutError):
            await self.service.writer.drain(timeout=ORDER_WAIT_SECONDS)

        def read() -> int | None:
            with self.sessions() as session:
                return work_orders.order_of_call(session, call_id)

        try:
            order_id = await asyncio.to_thread(read)
        except Exception:
            log.exception("work order of call %s not readable", call_id)
            return
        call = self._desks[agent_id].call
        if call is not None and call["call_id"] == call_id:
            call["work_order_id"] = order_id
            self._push(agent_id)

    # -- sending ------------------------------------------------------------------------------------

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _push(self, agent_id: str) -> None:
        self._outbox.put_nowait(json.dumps(self.snapshot(agent_id), separators=(",", ":")))

    async def _send_loop(self) -> None:
        channel = self.hub.channel
        while True:
            data = await self._outbox.get()
            try:
                assert self._redis is not None, "publisher not started"
                await self._redis.publish(channel, data)
                if self._redis_failing:
                    log.info("desk publishing to Redis again")
                self._redis_failing = False
            except Exception as exc:
                if not self._redis_failing:
                    log.warning("desk cannot publish to Redis (local clients still served): %s", exc)
                self._redis_failing = True
                self.hub.deliver(json.loads(data)["agent_id"], data)
