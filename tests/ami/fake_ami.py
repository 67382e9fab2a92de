"""Test support for the AMI link: a socket-level fake AMI server (127.0.0.1 only) and helpers.

It speaks enough AMI for the link: banner, Login (one accepted secret), Ping, Logoff, async Originate
(Success, then an ``OriginateResponse`` event with the same ActionID), CoreShowChannels as a list. Tests
can inject raw bytes in chosen chunks, make the current connections go silent (half-open), or drop them.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from collections.abc import Callable, Iterable, Sequence

from acd.ami import AmiLink, AmiMessage

BANNER = b"Asterisk Call Manager/11.0.0\r\n"
Headers = dict[str, str | list[str]]


def encode(pairs: Iterable[tuple[str, str]]) -> bytes:
    """One AMI message from header pairs."""
    return "".join(f"{key}: {value}\r\n" for key, value in pairs).encode() + b"\r\n"


def parse(raw: bytes) -> Headers:
    """Headers of one received action, keys lower-cased, repeated keys as lists."""
    headers: Headers = {}
    for line in raw.decode().split("\r\n"):
        key, _, value = line.partition(": ")
        if not key:
            continue
        key = key.lower()
        if key in headers:
            old = headers[key]
            headers[key] = [*old, value] if isinstance(old, list) else [old, value]
        else:
            headers[key] = value
    return headers


class _Connection:
    def __init__(self, writer: asyncio.StreamWriter) -> None:
        self.writer = writer
        self.silent = False
        self.logged_in = False
        # While a test injects bytes, the server's own answers wait here: Asterisk never writes one
        # message into the middle of another.
        self.held: bytearray | None = None

    def write(self, data: bytes) -> None:
        if self.held is not None:
            self.held += data
        elif not self.writer.is_closing():
            self.writer.write(data)


class FakeAmi:
    """The fake server. ``await start()``, then point a link at ``port``."""

    def __init__(
        self,
        *,
        username: str = "hotline",
        secret: str = "s3cret",
        auth_fail_delay: float = 0.01,
        fully_booted: bool = True,
    ) -> None:
        self.username = username
        self.secret = secret
        self.auth_fail_delay = auth_fail_delay
        self.fully_booted = fully_booted
        self.originate_reason: int | None = 4  # None: never send OriginateResponse
        self.originate_delay = 0.02
        self.pong_delay = 0.0
        # Like a real phone leg: Newchannel at once, and with the outcome a Hangup with this Q.850
        # cause (None: no leg events at all), before or after the OriginateResponse.
        self.originate_leg_cause: str | None = None
        self.leg_hangup_first = True
        self.channels: list[dict[str, str]] = []
        self.devices: list[tuple[str, str]] = []  # (device, state) for DeviceStateList
        self.variables: dict[tuple[str, str], str] = {}  # (channel, variable) -> value, for Getvar
        self.ignored_actions: set[str] = {"blackhole"}  # lower-case names never answered
        self.received: list[Headers] = []
        self.login_attempt_times: list[float] = []
        self.logins = 0
        self.connections_accepted = 0
        self.port = 0
        self._server: asyncio.Server | None = None
        self._connections: list[_Connection] = []
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self, port: int = 0) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def close(self) -> None:
        """Stop listening and drop every connection (the Asterisk process is gone)."""
        if self._server is not None:
            self._server.close()
            await self.drop()
            await self._server.wait_closed()
            self._server = None
        for task in list(self._tasks):
            task.cancel()

    async def drop(self) -> None:
        """Close the current connections; keep listening."""
        for conn in list(self._connections):
            conn.writer.close()
        await asyncio.sleep(0)

    def go_silent(self) -> None:
        """The current connections stay open but never answer again (a half-open link)."""
        for conn in self._connections:
            conn.silent = True

    async def inject(self, data: bytes, splits: Sequence[int] = (), pause: float = 0.003) -> None:
        """Write ``data`` to every live connection, cut at the byte offsets ``splits``, pausing between
        pieces so that they arrive as separate reads."""
        bounds = [0, *splits, len(data)]
        connections = list(self._connections)
        for conn in connections:
            conn.held = bytearray()
        try:
            for piece_start, piece_end in itertools.pairwise(bounds):
                for conn in connections:
                    if not conn.writer.is_closing():
                        conn.writer.write(data[piece_start:piece_end])
                await asyncio.sleep(pause)
        finally:
            for conn in connections:
                held, conn.held = conn.held, None
                if held:
                    conn.write(bytes(held))

    def actions_named(self, name: str) -> list[Headers]:
        return [action for action in self.received if str(action.get("action", "")).lower() == name.lower()]

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        conn = _Connection(writer)
        self._connections.append(conn)
        self.connections_accepted += 1
        writer.write(BANNER)
        try:
            while True:
                raw = await reader.readuntil(b"\r\n\r\n")
                if conn.silent:
                    continue
                action = parse(raw)
                self.received.append(action)
                await self._answer(conn, action)
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            self._connections.remove(conn)
            writer.close()

    async def _answer(self, conn: _Connection, action: Headers) -> None:
        name = str(action.get("action", "")).lower()
        action_id = str(action.get("actionid", ""))
        ok = [("Response", "Success"), ("ActionID", action_id)]
        if name == "login":
            self.login_attempt_times.append(time.monotonic())
            if action.get("username") == self.username and action.get("secret") == self.secret:
                conn.logged_in = True
                self.logins += 1
                reply = encode([*ok, ("Message", "Authentication accepted")])
                if self.fully_booted:
                    # Asterisk writes both at once: the link reads them in the same data_received.
                    reply += encode(
                        [
                            ("Event", "FullyBooted"),
                            ("Privilege", "system,all"),
                            ("Uptime", "10"),
                            ("LastReload", "10"),
                            ("Status", "Fully Booted"),
                        ]
                    )
                conn.write(reply)
            else:
                await asyncio.sleep(self.auth_fail_delay)  # Asterisk waits 1 s
                conn.write(
                    encode(
                        [("Response", "Error"), ("ActionID", action_id), ("Message", "Authentication failed")]
                    )
                )
                conn.writer.close()
        elif not conn.logged_in:
            conn.write(
                encode([("Response", "Error"), ("ActionID", action_id), ("Message", "Permission denied")])
            )
        elif name in self.ignored_actions:
            pass
        elif name == "ping":
            if self.pong_delay:
                await asyncio.sleep(self.pong_delay)  # e.g. behind a burst of events
            conn.write(encode([*ok, ("Ping", "Pong"), ("Timestamp", f"{time.time():.6f}")]))
        elif name == "logoff":
            conn.write(
                encode(
                    [
                        ("Response", "Goodbye"),
                        ("ActionID", action_id),
                        ("Message", "Thanks for all the fish."),
                    ]
                )
            )
            conn.writer.close()
        elif name == "originate":
            conn.write(encode([*ok, ("Message", "Originate successfully queued")]))
            task = asyncio.create_task(self._originate_outcome(conn, action))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        elif name == "getvar":
            value = self.variables.get((str(action.get("channel", "")), str(action.get("variable", ""))), "")
            conn.write(encode([*ok, ("Variable", str(action.get("variable", ""))), ("Value", value)]))
        elif name == "hangup":
            conn.write(encode([*ok, ("Message", "Channel Hungup")]))
        elif name == "coreshowchannels":
            conn.write(encode([*ok, ("EventList", "start"), ("Message", "Channels will follow")]))
            for channel in self.channels:
                conn.write(encode([("Event", "CoreShowChannel"), ("ActionID", action_id), *channel.items()]))
            conn.write(
                encode(
                    [
                        ("Event", "CoreShowChannelsComplete"),
                        ("ActionID", action_id),
                        ("EventList", "Complete"),
                        ("ListItems", str(len(self.channels))),
                    ]
                )
            )
        elif name == "devicestatelist":
            conn.write(encode([*ok, ("EventList", "start"), ("Message", "Device State Changes will follow")]))
            for device, state in self.devices:
                conn.write(
                    encode(
                        [
                            ("Event", "DeviceStateChange"),
                            ("ActionID", action_id),
                            ("Device", device),
                            ("State", state),
                        ]
                    )
                )
            conn.write(
                encode(
                    [
                        ("Event", "DeviceStateListComplete"),
                        ("ActionID", action_id),
                        ("EventList", "Complete"),
                        ("ListItems", str(len(self.devices))),
                    ]
                )
            )
        else:
            conn.write(
                encode(
                    [("Response", "Error"), ("ActionID", action_id), ("Message", "Invalid/unknown command")]
                )
            )

    async def _originate_outcome(self, conn: _Connection, action: Headers) -> None:
        leg = str(action.get("channelid", "")) or "1700000000.42"
        leg_channel = f"{action.get('channel', '')}-00000001"
        if self.originate_leg_cause is not None:
            conn.write(encode([("Event", "Newchannel"), ("Channel", leg_channel), ("Uniqueid", leg)]))
        await asyncio.sleep(self.originate_delay)
        reason = self.originate_reason
        if reason is None or conn.silent:
            return
        answered = reason == 4
        outcome = encode(
            [
                ("Event", "OriginateResponse"),
                ("Privilege", "call,all"),
                ("ActionID", str(action.get("actionid", ""))),
                ("Response", "Success" if answered else "Failure"),
                ("Channel", str(action.get("channel", ""))),
                ("Context", str(action.get("context", ""))),
                ("Exten", str(action.get("exten", ""))),
                ("Reason", str(reason)),
                ("Uniqueid", "1700000000.42" if answered else "<null>"),
                ("CallerIDNum", "<unknown>"),
                ("CallerIDName", "<unknown>"),
            ]
        )
        hangup = b""
        if self.originate_leg_cause is not None and not answered:
            hangup = encode(
                [
                    ("Event", "Hangup"),
                    ("Channel", leg_channel),
                    ("Uniqueid", leg),
                    ("Cause", self.originate_leg_cause),
                ]
            )
        with contextlib.suppress(ConnectionError):
            conn.write(hangup + outcome if self.leg_hangup_first else outcome + hangup)


class Recorder:
    """Collects what a link reports through its callbacks."""

    def __init__(self) -> None:
        self.events: list[AmiMessage] = []
        self.connected = 0
        self.disconnects: list[str] = []
        self.connected_error: Exception | None = None

    def on_event(self, message: AmiMessage) -> None:
        self.events.append(message)

    async def on_connected(self) -> None:
        self.connected += 1
        if self.connected_error is not None:
            raise self.connected_error

    def on_disconnected(self, reason: str) -> None:
        self.disconnects.append(reason)


async def eventually(predicate: Callable[[], bool], timeout: float = 2.0, what: str = "condition") -> None:
    """Poll ``predicate`` until true; fail the test after ``timeout`` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(0.005)


LinkFactory = Callable[..., tuple[AmiLink, Recorder]]
