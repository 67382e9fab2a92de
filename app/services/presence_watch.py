"""The compliance rules running beside call distribution: phones, feature codes, incidents.

:class:`PresenceWatch` follows the :class:`DistributionService` through its extension points and
changes nothing in it: ``listeners`` give every presence transition (stored, and fed to the rules),
``event_observers`` every AMI event (ContactStatus and DeviceStateChange for the phones, the
dialplan's AcdFeatureCode, FullyBooted after each login, which starts a DeviceStateList rebuild).
The rules themselves are :class:`agents.compliance.ComplianceTracker`; this shell stores what it
says, keeps its deadline timer, and carries out "left the post" by setting the agent not ready.

Everything runs on the event loop; storage goes through the distribution's ordered writer.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import tomllib
import uuid
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from pydantic_settings import BaseSettings, SettingsConfigDict

from acd.ami import AmiError, AmiNotConnected, AmiTimeout
from acd.center import Output as CoreOutput
from agents.busy_reasons import DEFAULT_CONFIG, BusyConfig, parse_config
from agents.compliance import (
    LEFT_POST,
    ComplianceTracker,
    IncidentClosed,
    IncidentKind,
    IncidentOpened,
    TakeOutOfService,
)
from agents.compliance import Output as RuleOutput
from agents.login_guard import LoginGuard
from agents.presence import Cause, PresenceError, Transition
from app.services.compliance import ComplianceStore
from app.services.distribution import DistributionService

log = logging.getLogger(__name__)

FEATURE_EVENT = "AcdFeatureCode"
RESULT_VARIABLE = "ACD_FC_RESULT"
DEVICE_PREFIX = "PJSIP/"
# ContactStatus values (Asterisk's ast_sip_contact_status_type names as AMI reports them).
_CONTACT_PRESENT = {"Created", "Reachable", "NonQualified", "Updated"}
_CONTACT_GONE = {"Removed", "Unreachable"}

Incident = IncidentOpened | IncidentClosed


class ComplianceSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="HOTLINE_", extra="ignore")

    busy_reasons_file: str | None = None


def load_busy_config(path: str | None) -> BusyConfig:
    """The busy reasons from a TOML file (see busy_reasons.example.toml); defaults without one."""
    if not path:
        return DEFAULT_CONFIG
    return parse_config(tomllib.loads(Path(path).read_text()))


class PresenceWatch:
    def __init__(
        self,
        distribution: DistributionService,
        store: ComplianceStore,
        config: BusyConfig,
        *,
        login_check: Callable[[str, str], str] | None = None,
    ) -> None:
        """``login_check(agent_id, pin)``: "ok" or why not (see ``PinCheck``); blocking, run in a
        thread. Without one, no agent can log in from a phone."""
        self.distribution = distribution
        self.store = store
        self.config = config
        # Random ids: unique across restarts and across instances sharing the database.
        self.tracker = ComplianceTracker(config, new_id=lambda: uuid.uuid4().hex)
        self.login_check = login_check
        self.login_guard = LoginGuard(self.tracker.new_incident_id)
        #: Called on the event loop with every incident opened or closed (metrics hook it here).
        #: Must not raise or block.
        self.incident_listeners: list[Callable[[Incident], None]] = []
        #: Called on the event loop for every feature-code login refused for its PIN.
        self.pin_failure_listeners: list[Callable[[], None]] = []
        self._timer: asyncio.TimerHandle | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        distribution.writer.register("transition", store.record_transition)
        distribution.writer.register("incident_opened", store.record_opened)
        distribution.writer.register("incident_closed", store.record_closed)
        distribution.listeners.append(self._on_output)
        distribution.event_observers.append(self._on_event)

    @property
    def clock(self) -> Callable[[], float]:
        return self.distribution.clock

    async def start(self) -> None:
        """Before presence is restored: settle the incidents the previous run left open.

        An unapproved busy is carried over (the restore puts the agent back into it, so it goes on);
        every other open incident ended with the previous run and is closed now.
        """
        dangling = await asyncio.to_thread(self.store.dangling)
        for incident in dangling:
            if incident.kind is IncidentKind.BUSY_UNAPPROVED:
                self.tracker.carry_over(incident)
        ended = [i for i in dangling if i.kind is not IncidentKind.BUSY_UNAPPROVED]
        await self._close_left_open(ended)

    async def restored(self) -> None:
        """After presence is restored: close the carried-over incidents the restore did not continue."""
        await self._close_left_open(self.tracker.not_carried())

    async def _close_left_open(self, incidents: list[IncidentOpened]) -> None:
        if incidents:
            await asyncio.to_thread(self.store.close_dangling, incidents, self.clock())
            log.warning("closed %d incidents left open by the previous run", len(incidents))

    async def stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    # -- requests from the API ---------------------------------------------------------------------

    def approve(self, agent_id: str, reason: str, actor: str) -> None:
        """A supervisor approved a busy request: the agent goes busy (after its call, if on one)."""
        self._take(self.tracker.approve(agent_id, reason, self.clock()))
        # Logged out meanwhile: the approval waits for the agent's next busy with this reason.
        with contextlib.suppress(PresenceError):
            self.distribution.make_busy(agent_id, reason, Cause.SUPERVISOR, actor)

    # -- from the distribution service ----------------------------------------------------------------

    def _on_output(self, output: CoreOutput) -> None:
        if not isinstance(output, Transition):
            return
        endpoint = self.distribution.agent(output.agent_id).endpoint
        self.distribution.writer.submit("transition", output, endpoint, uuid.uuid4().hex)
        self._take(self.tracker.transition(output, endpoint))

    def _on_event(self, msg: Mapping[str, str]) -> None:
        name = msg.get("Event")
        now = self.clock()
        if name == "ContactStatus":
            endpoint = msg.get("EndpointName") or msg.get("AOR") or ""
            status = msg.get("ContactStatus", "")
            if endpoint and status in _CONTACT_PRESENT | _CONTACT_GONE:
                self._take(self.tracker.contact_status(endpoint, status in _CONTACT_PRESENT, now))
        elif name == "DeviceStateChange":
            device = msg.get("Device", "")
            if device.startswith(DEVICE_PREFIX):
                self._take(self.tracker.device_state(device[len(DEVICE_PREFIX) :], msg.get("State", ""), now))
        elif name == "UserEvent" and msg.get("UserEvent") == FEATURE_EVENT:
            self._spawn(self._feature_code(msg))
        elif name == "FullyBooted":
            self._spawn(self._rebuild_phones())

    # -- phones ---------------------------------------------------------------------------------

    async def _rebuild_phones(self) -> None:
        """After a (re)connect: the device state of every phone, since events were missed meanwhile."""
        try:
            items = await self.distribution.link.send_list({"Action": "DeviceStateList"})
        except (AmiError, AmiNotConnected, AmiTimeout) as exc:
            log.warning("DeviceStateList failed: %s", exc)
            return
        now = self.clock()
        for item in items:
            device = item.get("Device", "")
            if device.startswith(DEVICE_PREFIX):
                endpoint = device[len(DEVICE_PREFIX) :]
                self._take(self.tracker.device_state(endpoint, item.get("State", ""), now))
        log.info("phones rebuilt from DeviceStateList", extra={"devices": len(items)})

    # -- feature codes --------------------------------------------------------------------------

    async def _feature_code(self, msg: Mapping[str, str]) -> None:
        channel = msg.get("Channel", "")
        action = (msg.get("Action") or "").strip()
        arg = (msg.get("Arg") or "").strip()
        endpoint = (msg.get("Endpoint") or "").strip()
        result = await self._feature_result(action, arg, endpoint)
        shown = arg.partition("*")[0] if action == "login" else arg  # never log a PIN
        log.info("feature code %s %s from %s: %s", action, shown, endpoint, result)
        if not channel:
            return
        try:
            await self.distribution.link.send(
                {"Action": "Setvar", "Channel": channel, "Variable": RESULT_VARIABLE, "Value": result}
            )
        except (AmiError, AmiNotConnected, AmiTimeout) as exc:
            log.info("feature code result not delivered (caller hung up?): %s", exc)

    async def _feature_result(self, action: str, arg: str, endpoint: str) -> str:
        """Carry out a feature code; "ok" or why not (the dialplan plays a prompt for either)."""
        if not endpoint:
            return "no_endpoint"
        actor = f"phone:{endpoint}"
        service = self.distribution
        try:
            if action == "login":
                return await self._login(arg, endpoint, actor)
            agent_id = service.agent_at(endpoint)
            if agent_id is None:
                return "not_logged_in"
            if action == "ready":
                service.make_ready(agent_id, Cause.AGENT, actor)
            elif action == "busy":
                reason = ""
                if arg:
                    found = self.config.by_code(arg)
                    if found is None:
                        return "unknown_reason"
                    reason = found.key
                if self.config.check(reason) is not None:
                    return "reason_required"
                service.make_busy(agent_id, reason, Cause.AGENT, actor)
            elif action == "logout":
                service.log_out(agent_id, Cause.AGENT, actor)
            else:
                return "unknown_code"
        except PresenceError:
            return "refused"
        return "ok"

    async def _login(self, arg: str, endpoint: str, actor: str) -> str:
        """``<agent id>*<PIN>``: log the agent in at this phone if the PIN is its own."""
        agent_id, _, pin = arg.partition("*")
        if not agent_id:
            return "unknown_agent"
        if self.login_check is None:
            return "no_pin"
        checked = await asyncio.to_thread(self.login_check, agent_id, pin)
        now = self.clock()
        if checked == "wrong_pin":
            for listener in self.pin_failure_listeners:
                try:
                    listener()
                except Exception:
                    log.exception("PIN failure listener failed")
            self._take(self.login_guard.failure(agent_id, endpoint, now))
            return "wrong_pin"
        if checked != "ok":
            return checked
        holder = self.distribution.agent_at(endpoint)
        if holder is not None and holder != agent_id:
            return "phone_in_use"
        self._take(self.login_guard.success(agent_id, now))
        self.distribution.log_in(agent_id, endpoint, Cause.AGENT, actor)
        return "ok"

    # -- rules' output --------------------------------------------------------------------------

    def _take(self, outputs: list[RuleOutput]) -> None:
        for output in outputs:
            match output:
                case IncidentOpened():
                    log.warning(
                        "incident %s opened: agent %s %s",
                        output.incident_id,
                        output.agent_id,
                        output.kind,
                        extra={"reason": output.reason, "started_at": output.started_at},
                    )
                    self.distribution.writer.submit("incident_opened", output)
                    self._notify(output)
                case IncidentClosed():
                    log.info(
                        "incident %s closed after %.1f s",
                        output.incident_id,
                        output.duration,
                        extra={"agent": output.agent_id, "kind": output.kind},
                    )
                    self.distribution.writer.submit("incident_closed", output)
                    self._notify(output)
                case TakeOutOfService(agent_id=agent_id):
                    # Not now: this may run inside the distribution's own output loop.
                    asyncio.get_running_loop().call_soon(self._take_out_of_service, agent_id)
        self._schedule()

    def _take_out_of_service(self, agent_id: str) -> None:
        self.distribution.not_ready(agent_id, LEFT_POST, Cause.SYSTEM, "system")

    def _notify(self, incident: Incident) -> None:
        for listener in self.incident_listeners:
            try:
                listener(incident)
            except Exception:
                log.exception("incident listener failed")

    def _schedule(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        deadlines = [d for d in (self.tracker.next_deadline(), self.login_guard.next_deadline()) if d]
        deadline = min(deadlines, default=None)
        if deadline is not None:
            delay = max(0.0, deadline - self.clock())
            self._timer = asyncio.get_running_loop().call_later(delay, self._tick)

    def _tick(self) -> None:
        self._timer = None
        now = self.clock()
        self._take(self.tracker.tick(now) + self.login_guard.tick(now))

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
