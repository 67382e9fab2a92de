"""AmiLink: one supervised AMI connection (login, liveness pings, reconnect) for the ACD runtime.

panoramisk's ``Manager`` is not used: its connect/reconnect machinery is what breaks the requirements
here. In 1.4 it retries every ``reconnect_timeout`` seconds with no backoff, keeps no handle on the
timers it schedules (a stop cannot cancel a pending reconnect), truncates every interval with ``int()``
(``ping_interval=0.5`` becomes 0), never checks that a Ping is answered, gives Login no timeout, and
re-sends pending actions on ``FullyBooted``. What panoramisk does well, matching responses to actions
by ActionID and completing lists and async Originates, is kept through :class:`AmiProtocol`.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable, Mapping

from panoramisk import actions

from acd.ami.model import (
    ORIGINATE_ANSWERED,
    AmiError,
    AmiLinkError,
    AmiMessage,
    AmiNotConnected,
    AmiTimeout,
    OriginateResult,
)
from acd.ami.protocol import AmiProtocol

log = logging.getLogger(__name__)

ActionFields = Mapping[str, str | list[str]]
_LOGOFF_TIMEOUT = 1.0


def backoff_delay(
    failures: int,
    min_delay: float,
    max_delay: float,
    uniform: Callable[[float, float], float] = random.uniform,
) -> float:
    """Seconds to wait after ``failures`` (>= 1) consecutive failed connection attempts.

    The ceiling doubles from ``min_delay`` up to ``max_delay``; the delay is drawn from the upper half
    of it, so that several service instances do not all hit a restarted Asterisk at the same instant.
    """
    ceiling = min(max_delay, min_delay * 2 ** min(failures - 1, 32))
    return uniform(max(min_delay, ceiling / 2), ceiling)


def _build_action(fields: ActionFields) -> actions.Action:
    if "action" not in {key.lower() for key in fields}:
        raise ValueError("an AMI action needs an 'Action' header")
    for key, value in fields.items():
        for text in (key, *(value if isinstance(value, list) else [value])):
            if "\r" in text or "\n" in text:
                # A line break would let a value (a caller name, say) inject headers or actions.
                raise ValueError(f"AMI header {key!r} contains a line break")
    action = actions.Action(dict(fields))
    if action["Action"].lower() == "originate" and "async" not in action:
        action["Async"] = "false"  # panoramisk 1.4's Action.multi raises KeyError('async') without it
    return action


class AmiLink:
    """A robust AMI connection: connects, logs in, pings, and reconnects with backoff until stopped.

    Events are handed to ``on_event`` synchronously, in arrival order, except the responses and events
    that carry the ActionID of a pending action (those complete the action: e.g. ``OriginateResponse``
    of :meth:`originate`, the items of :meth:`send_list`). ``on_connected`` runs as a task after every
    login; it is cancelled if the connection drops before it finishes. ``on_disconnected`` is called once
    when a logged-in session ends (also on :meth:`stop`, with reason ``"stopped"``), not for failed
    connection or login attempts.
    """

    def __init__(
        self,
        *,
        host: str,
        port: int,
        username: str,
        secret: str,
        on_event: Callable[[AmiMessage], None],
        on_connected: Callable[[], Awaitable[None]] | None = None,
        on_disconnected: Callable[[str], None] | None = None,
        ping_interval: float = 5.0,
        ping_timeout: float = 3.0,
        reconnect_min_delay: float = 0.5,
        reconnect_max_delay: float = 30.0,
        action_timeout: float = 10.0,
    ) -> None:
        if not 0 < reconnect_min_delay <= reconnect_max_delay:
            raise ValueError("need 0 < reconnect_min_delay <= reconnect_max_delay")
        if min(ping_interval, ping_timeout, action_timeout) <= 0:
            raise ValueError("ping_interval, ping_timeout and action_timeout must be positive")
        self._host = host
        self._port = port
        self._username = username
        self._secret = secret
        self._on_event = on_event
        self._on_connected = on_connected
        self._on_disconnected = on_disconnected
        self._ping_interval = ping_interval
        self._ping_timeout = ping_timeout
        self._min_delay = reconnect_min_delay
        self._max_delay = reconnect_max_delay
        self._action_timeout = action_timeout
        self._log_extra = {"ami_host": host, "ami_port": port}

        self.reconnects = 0
        self._status = "not started"
        self._ever_logged_in = False
        self._logged_in = False
        self._ping_ok = False
        self._stopping = False
        self._protocol: AmiProtocol | None = None
        self._task: asyncio.Task[None] | None = None
        self._on_connected_task: asyncio.Task[None] | None = None

    @property
    def up(self) -> bool:
        """Logged in and the last ping was answered."""
        return self._logged_in and self._ping_ok

    @property
    def status(self) -> str:
        """Human-readable state: "up", "connecting", "authentication failed: ...", "ping timeout"..."""
        return self._status

    async def start(self) -> None:
        """Start the connect/login/reconnect loop in a background task; return at once."""
        if self._task is not None:
            return
        self._stopping = False
        self._status = "connecting"
        self._task = asyncio.create_task(self._run(), name=f"ami-link {self._host}:{self._port}")

    async def stop(self) -> None:
        """Log off if logged in, then cancel the loop and close the connection. Idempotent."""
        task, self._task = self._task, None
        if task is None:
            return
        self._stopping = True
        proto = self._protocol
        try:
            if proto is not None and self._logged_in:
                await self._request(proto, {"Action": "Logoff"}, min(self._action_timeout, _LOGOFF_TIMEOUT))
        except AmiLinkError as exc:
            log.info("AMI logoff not acknowledged: %s", exc, extra=self._log_extra)
        finally:
            task.cancel()
            await asyncio.wait({task})
            self._status = "stopped"

    async def send(self, action: ActionFields, timeout: float | None = None) -> AmiMessage:
        """Send one action and return its response.

        Raises AmiNotConnected (not logged in, or the link dropped meanwhile), AmiTimeout (no answer
        within ``timeout``, default ``action_timeout``), AmiError (an error response). For list actions
        use :meth:`send_list`.
        """
        result = await self._request(self._logged_in_protocol(), action, self._timeout(timeout))
        response = result[0] if isinstance(result, list) else result
        if not response.success:
            raise AmiError(response)
        return response

    async def send_list(self, action: ActionFields, timeout: float | None = None) -> list[AmiMessage]:
        """Send a list action (CoreShowChannels, PJSIPShowContacts...) and return its item events.

        The leading Response and the trailing ``*Complete`` event are left out. ``timeout`` covers the
        whole list. An error response raises AmiError, as does a success that does not start a list.
        """
        result = await self._request(self._logged_in_protocol(), action, self._timeout(timeout))
        if not isinstance(result, list):
            raise AmiError(result, None if not result.success else "the response does not start a list")
        return [message for message in result[1:] if not message.get("Event", "").endswith("Complete")]

    async def originate(
        self,
        *,
        channel: str,
        context: str,
        exten: str,
        priority: int = 1,
        caller_id: str | None,
        variables: Mapping[str, str],
        timeout: float,
        channel_id: str | None = None,
        other_channel_id: str | None = None,
    ) -> OriginateResult:
        """Async Originate; resolve when Asterisk reports the outcome (``OriginateResponse``).

        ``timeout`` is the ring time in seconds (sent as the ``Timeout`` header, in ms). Raises AmiError
        if Asterisk refuses the action outright, AmiTimeout if no outcome arrives within ``timeout`` plus
        ``action_timeout``, AmiNotConnected if the link drops before the outcome.
        """
        fields: dict[str, str | list[str]] = {
            "Action": "Originate",
            "Channel": channel,
            "Context": context,
            "Exten": exten,
            "Priority": str(priority),
            "Timeout": str(round(timeout * 1000)),
            "Async": "true",
        }
        if caller_id is not None:
            fields["CallerID"] = caller_id
        if variables:
            fields["Variable"] = [f"{name}={value}" for name, value in variables.items()]
        if channel_id is not None:
            fields["ChannelId"] = channel_id
        if other_channel_id is not None:
            fields["OtherChannelId"] = other_channel_id
        result = await self._request(self._logged_in_protocol(), fields, timeout + self._action_timeout)
        if not isinstance(result, list):
            raise AmiError(result)
        outcome = result[-1]
        reason = outcome.get("Reason", "")
        reason_code = int(reason) if reason.isdigit() else None
        success = outcome.get("Response") == "Success" and reason_code in (None, ORIGINATE_ANSWERED)
        uniqueid = outcome.get("Uniqueid")
        return OriginateResult(
            success=success,
            reason_code=reason_code,
            channel=outcome.get("Channel") or None,
            uniqueid=None if uniqueid in (None, "", "<null>") else uniqueid,
            raw=outcome,
        )

    def _timeout(self, timeout: float | None) -> float:
        return self._action_timeout if timeout is None else timeout

    def _logged_in_protocol(self) -> AmiProtocol:
        proto = self._protocol
        if proto is None or not self._logged_in:
            raise AmiNotConnected(f"AMI link is not up ({self._status})")
        return proto

    @staticmethod
    async def _request(
        proto: AmiProtocol, fields: ActionFields, timeout: float
    ) -> AmiMessage | list[AmiMessage]:
        action = _build_action(fields)
        future = proto.send(action)
        try:
            return await asyncio.wait_for(future, timeout)
        except TimeoutError:
            raise AmiTimeout(f"no answer to {action['Action']} within {timeout:g}s") from None
        finally:
            proto.forget(action)

    async def _run(self) -> None:
        failures = 0
        while not self._stopping:
            try:
                if await self._session():
                    # Only a session that proved the peer alive resets the backoff: a peer that
                    # accepts the login but never answers would otherwise get a login (and a full
                    # resync) every ping interval, forever.
                    failures = 0
            except Exception:
                # A bug here must not end the loop: the service would stay disconnected forever.
                log.exception("AMI link session failed unexpectedly", extra=self._log_extra)
                self._status = "internal error"
            if self._stopping:
                return
            failures += 1
            delay = backoff_delay(failures, self._min_delay, self._max_delay)
            log.info(
                "AMI %s:%s %s; next attempt in %.2fs",
                self._host,
                self._port,
                self._status,
                delay,
                extra=self._log_extra,
            )
            await asyncio.sleep(delay)

    async def _session(self) -> bool:
        """One connection: connect, log in, supervise until it is lost. True if, logged in, the peer
        was proven alive (see :meth:`_supervise`).

        While it retries, ``status`` keeps the last failure ("connection refused"...) rather than going
        back to "connecting": that is what an operator looking at the status needs to see.
        """
        loop = asyncio.get_running_loop()
        try:
            _, proto = await asyncio.wait_for(
                loop.create_connection(lambda: AmiProtocol(self._on_event), self._host, self._port),
                self._action_timeout,
            )
        except ConnectionRefusedError:
            self._status = "connection refused"
            return False
        except TimeoutError:
            self._status = "connect timeout"
            return False
        except OSError as exc:
            self._status = f"connect failed: {exc.strerror or exc}"
            return False

        self._protocol = proto
        reason = "stopped"
        try:
            failure = await self._login(proto)
            if failure is not None:
                reason = failure
                return False
            self._logged_in = self._ping_ok = True
            self._status = "up"
            if self._ever_logged_in:
                self.reconnects += 1
            self._ever_logged_in = True
            log.info(
                "AMI logged in to %s:%s as %s (Asterisk Call Manager %s)",
                self._host,
                self._port,
                self._username,
                proto.version,
                extra=self._log_extra,
            )
            if self._on_connected is not None:
                self._on_connected_task = asyncio.create_task(self._run_on_connected(self._on_connected))
            proto.release_events()  # FullyBooted came with the Login response: its handlers find us up
            reason, proven = await self._supervise(proto)
            return proven
        finally:
            if self._stopping:
                reason = "stopped"
            proto.abort(reason)
            self._protocol = None
            self._status = reason
            if self._logged_in:
                self._session_ended(reason)

    async def _login(self, proto: AmiProtocol) -> str | None:
        """Log in; return None on success, else the reason text. Never logs the secret."""
        login = {"Action": "Login", "Username": self._username, "Secret": self._secret, "Events": "on"}
        try:
            response = await self._request(proto, login, self._action_timeout)
        except AmiTimeout:
            return "login timeout"
        except AmiNotConnected as exc:
            return str(exc)
        if isinstance(response, list):  # not seen from Asterisk; judge by the Response line
            response = response[0]
        if response.success:
            return None
        message = response.get("Message", "")
        log.error(
            "AMI login to %s:%s as %s refused: %s",
            self._host,
            self._port,
            self._username,
            message,
            extra=self._log_extra,
        )
        return f"authentication failed: {message}"

    async def _supervise(self, proto: AmiProtocol) -> tuple[str, bool]:
        """Watch the connection; return (why it ended, whether the peer was ever proven alive).

        Any bytes received prove the peer alive. Only after ``ping_interval`` seconds of silence is
        a Ping sent; if nothing at all (the Pong or anything else) arrives within ``ping_timeout``,
        the connection is half-open. A burst of events queued ahead of the Pong is traffic too, so
        it never drops a healthy link.
        """
        loop = asyncio.get_running_loop()
        logged_in_at = loop.time()
        proven = False
        while True:
            if proto.lost.done():
                return proto.lost.result(), proven
            silent_for = loop.time() - proto.last_received
            if silent_for < self._ping_interval:
                await asyncio.wait({proto.lost}, timeout=self._ping_interval - silent_for)
                if proto.lost.done():
                    return proto.lost.result(), proven
                proven = proven or proto.last_received > logged_in_at + self._ping_interval / 2
                continue
            asked_at = loop.time()
            try:
                await self._request(proto, {"Action": "Ping"}, self._ping_timeout)
                proven = True
            except AmiTimeout:
                if proto.last_received > asked_at:
                    proven = True
                    continue  # the Pong is behind other traffic: alive
                self._ping_ok = False
                return "ping timeout", proven
            except AmiNotConnected:
                # The connection went while the Ping was on its way: proto.lost says why. Without
                # this check a lost connection that stays silent would be pinged in a busy loop.
                if proto.lost.done():
                    return proto.lost.result(), proven
                await asyncio.wait({proto.lost}, timeout=self._ping_timeout)

    def _session_ended(self, reason: str) -> None:
        self._logged_in = self._ping_ok = False
        if self._on_connected_task is not None:
            self._on_connected_task.cancel()
            self._on_connected_task = None
        log.warning("AMI link to %s:%s down: %s", self._host, self._port, reason, extra=self._log_extra)
        if self._on_disconnected is not None:
            try:
                self._on_disconnected(reason)
            except Exception:
                log.exception("AMI on_disconnected callback raised", extra=self._log_extra)

    async def _run_on_connected(self, callback: Callable[[], Awaitable[None]]) -> None:
        try:
            await callback()
        except Exception:
            log.exception("AMI on_connected callback raised; the link stays up", extra=self._log_extra)
