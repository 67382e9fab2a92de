"""The load test's SIP parties, all sipp (Debian's ``sip-tester``), every process bounded in time.

* :class:`Phone`: one agent phone = two sipp processes on the phone's own loopback address. A UAS in
  server mode (``phone_uas.xml``) takes every incoming dialog and reads its behaviour (answer, 486,
  never answer; ring and talk times) from the next line of an injection file drawn from the phone's
  own seed; sipp cannot give injected values to out-of-call instances, hence the separate
  registering client (``phone_register.xml``) whose Contact names the UAS's address.
* :class:`Citizens`: one sipp client placing every citizen call of a phase, all started at once;
  each call first pauses until its Poisson arrival time, then dials 12345 from the trunk address.

sipp's own random generator is seeded from the clock's second (phones started in the same second
would behave alike), so every random draw is made here, from seeds the plan gives.
"""

from __future__ import annotations

import contextlib
import re
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

SCENARIOS = Path(__file__).parent / "scenarios"
SIPP = shutil.which("sipp") or "/usr/bin/sipp"
#: ring and talk times are counted down in steps of this many ms (the phone's time resolution)
TICK_MS = 100
#: beyond sipp's own -timeout, a process is killed after this many seconds
KILL_SLACK = 5.0


class SippError(RuntimeError):
    """sipp is missing, could not start, or a phone did not register."""


class PhoneAction:
    """What a phone does with one incoming call (field0 of its injection file)."""

    ANSWER = 0
    BUSY = 1
    NO_ANSWER = 2


@dataclass(frozen=True)
class PhoneCall:
    """One line of a phone's injection file."""

    action: int
    ring_ms: int
    talk_ms: int


def free_udp_port(ip: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((ip, 0))
        return int(sock.getsockname()[1])


def render(scenario: str, workdir: Path, **values: object) -> Path:
    """Copy a scenario into workdir with its @NAME@ placeholders filled in."""
    text = (SCENARIOS / scenario).read_text()
    for name, value in values.items():
        text = text.replace(f"@{name}@", str(value))
    leftover = re.findall(r"@[A-Z_]+@", text)
    if leftover:
        raise ValueError(f"{scenario}: no value for {sorted(set(leftover))}")
    path = workdir / scenario
    path.write_text(text)
    return path


def write_injection(path: Path, rows: list[tuple[object, ...]]) -> Path:
    path.write_text("SEQUENTIAL\n" + "".join(";".join(str(v) for v in row) + "\n" for row in rows))
    return path


def stop_process(proc: subprocess.Popen[bytes] | None, grace: float = 3.0) -> None:
    if proc is not None and proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(grace)


def _spawn(cmd: list[str], workdir: Path) -> subprocess.Popen[bytes]:
    if not Path(SIPP).exists():
        raise SippError("sipp not found: install Debian's sip-tester")
    return subprocess.Popen(
        cmd, cwd=workdir, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )


def _lines(path: Path) -> list[str]:
    try:
        return [line.strip() for line in path.read_text(errors="replace").splitlines() if line.strip()]
    except FileNotFoundError:
        return []


class Phone:
    """A registered agent phone that plays the given calls in order (then answers after 1 s)."""

    def __init__(
        self,
        endpoint: str,
        password: str,
        ip: str,
        calls: list[PhoneCall],
        workdir: Path,
        *,
        target: str,
        max_seconds: float,
        expires: int = 120,
        trace: bool = False,
    ) -> None:
        self.trace = trace
        self.endpoint, self.password, self.ip = endpoint, password, ip
        self.target, self.max_seconds, self.expires = target, max_seconds, expires
        self.workdir = workdir / endpoint
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.calls = calls
        self.port = free_udp_port(ip)
        self._uas: subprocess.Popen[bytes] | None = None
        self._register: subprocess.Popen[bytes] | None = None

    @property
    def log_file(self) -> Path:
        return self.workdir / "calls.log"

    def start(self) -> None:
        inf = write_injection(
            self.workdir / "calls.csv",
            [(c.action, c.ring_ms, c.talk_ms) for c in self.calls] or [(PhoneAction.ANSWER, 1000, 1000)],
        )
        uas = render("phone_uas.xml", self.workdir, TICK_MS=TICK_MS, RTP_PORT=free_udp_port(self.ip))
        timeout = f"{int(self.max_seconds)}s"
        trace = ["-trace_msg", "-message_file", str(self.workdir / "messages.log")] if self.trace else []
        self._uas = _spawn(
            [
                SIPP, "-sf", str(uas), "-inf", str(inf), "-t", "u1", "-i", self.ip, "-p", str(self.port),
                "-timeout", timeout, "-trace_logs", "-log_file", str(self.log_file), "-nostdin", *trace,
            ],
            self.workdir,
        )  # fmt: skip
        register = render(
            "phone_register.xml",
            self.workdir,
            EXPIRES=self.expires,
            REREG_MS=self.expires * 1000 // 2,
            CONTACT=f"{self.ip}:{self.port}",
        )
        self._register = _spawn(
            [
                SIPP, self.target, "-sf", str(register), "-m", "1", "-t", "u1",
                "-i", self.ip, "-p", str(free_udp_port(self.ip)),
                "-s", self.endpoint, "-au", self.endpoint, "-ap", self.password,
                "-timeout", timeout, "-trace_logs", "-log_file", str(self.workdir / "register.log"),
                "-nostdin",
            ],
            self.workdir,
        )  # fmt: skip

    def registered(self) -> bool:
        return any(line.endswith("REGISTERED") for line in _lines(self.workdir / "register.log"))

    def alive(self) -> bool:
        return all(p is not None and p.poll() is None for p in (self._uas, self._register))

    def log_lines(self) -> list[str]:
        return _lines(self.log_file)

    def stop(self) -> None:
        stop_process(self._register)
        stop_process(self._uas)
        self._register = self._uas = None
        unregister = render("phone_unregister.xml", self.workdir, CONTACT=f"{self.ip}:{self.port}")
        cmd = [
            SIPP, self.target, "-sf", str(unregister), "-m", "1", "-t", "u1",
            "-i", self.ip, "-p", str(free_udp_port(self.ip)),
            "-s", self.endpoint, "-au", self.endpoint, "-ap", self.password,
            "-timeout", "10s", "-timeout_error", "-nostdin",
        ]  # fmt: skip
        with contextlib.suppress(subprocess.TimeoutExpired, OSError):
            subprocess.run(cmd, cwd=self.workdir, stdin=subprocess.DEVNULL, capture_output=True, timeout=15)


def start_phones(phones: list[Phone], timeout: float = 20.0) -> None:
    """Start every phone and wait (bounded) until all are registered."""
    for phone in phones:
        phone.start()
    deadline = time.monotonic() + timeout
    while not all(p.registered() for p in phones):
        dead = [p.endpoint for p in phones if not p.alive()]
        if dead or time.monotonic() > deadline:
            missing = [p.endpoint for p in phones if not p.registered()]
            raise SippError(f"phones not registered within {timeout} s: {missing} (exited: {dead})")
        time.sleep(0.1)


@dataclass(frozen=True)
class PlannedCall:
    """One citizen call: when it dials (seconds after the phase starts) and from which number."""

    at: float
    number: str
    patience: float  # seconds the caller waits in the queue before hanging up


class Citizens:
    """One sipp client placing a phase's citizen calls at their planned times."""

    def __init__(
        self,
        calls: list[PlannedCall],
        workdir: Path,
        *,
        target: str,
        source_ip: str,
        number: str,
        max_call_seconds: float,
    ) -> None:
        self.calls, self.target, self.source_ip, self.number = calls, target, source_ip, number
        self.max_call_seconds = max_call_seconds
        self.workdir = workdir
        self.workdir.mkdir(parents=True, exist_ok=True)
        self._proc: subprocess.Popen[bytes] | None = None
        self.started_at = 0.0

    @property
    def bound(self) -> float:
        """Seconds after which sipp stops on its own: last arrival plus the longest call."""
        last = max((c.at for c in self.calls), default=0.0)
        return last + self.max_call_seconds + 10

    def start(self) -> None:
        if not self.calls:
            return
        # sipp starts calls at 1000/s; each pauses for its arrival time minus its own start offset.
        rows = [(max(0, round(c.at * 1000) - i), c.number) for i, c in enumerate(self.calls)]
        inf = write_injection(self.workdir / "calls.csv", rows)
        scenario = render(
            "citizens_uac.xml",
            self.workdir,
            MAX_CALL_MS=int(self.max_call_seconds * 1000),
            RTP_PORT=free_udp_port(self.source_ip),
        )
        count = str(len(self.calls))
        self.started_at = time.time()
        self._proc = _spawn(
            [
                SIPP, self.target, "-sf", str(scenario), "-inf", str(inf), "-s", self.number,
                "-m", count, "-l", count, "-r", "1000", "-rp", "1000", "-t", "u1",
                "-i", self.source_ip, "-p", str(free_udp_port(self.source_ip)),
                "-timeout", f"{int(self.bound)}s",
                "-trace_logs", "-log_file", str(self.workdir / "calls.log"), "-nostdin",
            ],
            self.workdir,
        )  # fmt: skip

    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def wait(self, timeout: float) -> None:
        if self._proc is None:
            return
        try:
            self._proc.wait(max(timeout, 0.1))
        except subprocess.TimeoutExpired:
            stop_process(self._proc)

    def stop(self) -> None:
        stop_process(self._proc)

    def counts(self) -> dict[str, int]:
        """How many calls dialed, were answered by Asterisk, and how they ended (sipp's own log)."""
        lines = _lines(self.workdir / "calls.log")
        return {
            kind.lower(): sum(1 for line in lines if line.startswith(kind))
            for kind in ("DIALED", "ANSWERED", "LOCAL_BYE", "REMOTE_BYE")
        }
