"""sipp-driven SIP parties for the end-to-end tests: agent phones and citizens.

Every sipp process runs with a hard time bound (sipp's own ``-timeout`` plus a kill from here),
binds its own loopback address and a free UDP port, and writes a small log of what happened
(``<log>`` actions in the scenarios) that the tests read:

* :class:`AgentPhone`: registers ``agentN`` with digest auth from its own address (127.0.0.3, ...),
  answers incoming INVITEs after ``ring_seconds`` or never (``answer=False``: rings until CANCEL,
  then 487) or refuses it (``refuse=486``: Busy Here, ``603``: Decline...), takes several calls in
  sequence, re-registers, unregisters on stop. It records
  each INVITE's From / P-Asserted-Identity (:meth:`AgentPhone.invites_seen`).
* :func:`place_call`: a citizen calling 12345 from the trunk address with a caller number; it
  hangs up after ``hangup_after`` seconds or waits for the far end's BYE. The handle's
  :meth:`CitizenCall.wait` returns a :class:`CallResult`.

Calls are signalling-only: the SDP names a loopback port nobody listens on (Asterisk's RTP
towards it is simply dropped).
"""

from __future__ import annotations

import contextlib
import re
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

SCENARIOS = Path(__file__).parent / "sipp"
SIPP = shutil.which("sipp") or "/usr/bin/sipp"
_REFUSAL_PHRASES = {486: "Busy Here", 480: "Temporarily Unavailable", 603: "Decline", 403: "Forbidden"}
#: sipp's -timeout fires an "exit" that can take a moment; beyond this slack the process is killed.
_KILL_SLACK = 5.0


class SippError(RuntimeError):
    """sipp could not start, did not register, or broke its time bound."""


def free_udp_port(ip: str) -> int:
    """A UDP port currently free on ip (the kernel's choice, so parallel tests do not collide)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((ip, 0))
        return int(sock.getsockname()[1])


def _render(scenario: str, workdir: Path, **values: object) -> Path:
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


def _read(path: Path) -> str:
    try:
        return path.read_text(errors="replace")
    except FileNotFoundError:
        return ""


def _stop_process(proc: subprocess.Popen[bytes], grace: float = 3.0) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(grace)


@dataclass(frozen=True)
class Invite:
    """An INVITE an agent phone received."""

    call_id: str
    from_header: str
    pai_header: str

    @property
    def caller_number(self) -> str:
        """The user part of P-Asserted-Identity if present, else of From: what the phone shows."""
        for header in (self.pai_header, self.from_header):
            match = re.search(r"sips?:([^@;>]+)@", header)
            if match:
                return match.group(1)
        return ""


class AgentPhone:
    """A registering sipp UAS standing in for one agent's phone (use as a context manager)."""

    def __init__(
        self,
        endpoint: str,
        password: str,
        ip: str,
        *,
        ring_seconds: float = 0.5,
        answer: bool = True,
        asterisk_host: str = "127.0.0.1",
        asterisk_port: int = 5060,
        port: int | None = None,
        expires: int = 120,
        max_seconds: float = 300.0,
        refuse: int | None = None,
    ) -> None:
        self.endpoint = endpoint
        self.password = password
        self.ip = ip
        # Never answering = a ring delay longer than the phone lives; CANCEL ends the ringing.
        self.ring_ms = max(int(ring_seconds * 1000), 10) if answer else int((max_seconds + 60) * 1000)
        self.asterisk = f"{asterisk_host}:{asterisk_port}"
        self.port = port or free_udp_port(ip)
        self.expires = expires
        #: a SIP final response code the phone gives every INVITE after ringing (486, 603...)
        self.refuse = refuse
        self.max_seconds = max_seconds
        self._tmp = tempfile.TemporaryDirectory(prefix=f"sipp-{endpoint}-")
        self.workdir = Path(self._tmp.name)
        self.log_file = self.workdir / "events.log"
        self.error_file = self.workdir / "errors.log"
        self._proc: subprocess.Popen[bytes] | None = None
        self._deadline = 0.0

    # -- lifecycle

    def start(self, timeout: float = 10.0) -> AgentPhone:
        """Start sipp and wait until Asterisk accepted the REGISTER."""
        register = _render(
            "agent_register.xml", self.workdir, EXPIRES=self.expires, REREG_MS=self.expires * 1000 // 2
        )
        if self.refuse is None:
            rtp_port = free_udp_port(self.ip)
            uas = _render("agent_uas.xml", self.workdir, RING_MS=self.ring_ms, RTP_PORT=rtp_port)
        else:
            phrase = _REFUSAL_PHRASES.get(self.refuse, "Refused")
            uas = _render(
                "agent_uas_refuse.xml", self.workdir, RING_MS=self.ring_ms, CODE=self.refuse, PHRASE=phrase
            )
        cmd = [
            SIPP, self.asterisk,
            "-sf", str(register), "-oocsf", str(uas),
            "-m", "1", "-t", "u1",
            "-i", self.ip, "-p", str(self.port),
            "-s", self.endpoint, "-au", self.endpoint, "-ap", self.password,
            "-timeout", f"{int(self.max_seconds)}s", "-timeout_error",
            "-trace_logs", "-log_file", str(self.log_file),
            "-trace_err", "-error_file", str(self.error_file),
            "-nostdin",
        ]  # fmt: skip
        self._proc = subprocess.Popen(
            cmd, cwd=self.workdir, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        self._deadline = time.monotonic() + self.max_seconds + _KILL_SLACK
        try:
            self.wait_for("REGISTERED", timeout)
        except SippError:
            self.stop(unregister=False)
            raise
        return self

    def stop(self, *, unregister: bool = True) -> None:
        """Stop sipp and (by default) remove the registration with Expires: 0."""
        if self._proc is not None:
            _stop_process(self._proc)
            self._proc = None
        if unregister:
            self._unregister()

    def _unregister(self) -> None:
        scenario = _render("agent_unregister.xml", self.workdir, CONTACT=f"{self.ip}:{self.port}")
        cmd = [
            SIPP, self.asterisk, "-sf", str(scenario), "-m", "1", "-t", "u1",
            "-i", self.ip, "-p", str(free_udp_port(self.ip)),
            "-s", self.endpoint, "-au", self.endpoint, "-ap", self.password,
            "-timeout", "10s", "-timeout_error", "-nostdin",
        ]  # fmt: skip
        with contextlib.suppress(subprocess.TimeoutExpired):
            subprocess.run(
                cmd, cwd=self.workdir, stdin=subprocess.DEVNULL, capture_output=True, timeout=15, check=False
            )

    def __enter__(self) -> AgentPhone:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
        self._tmp.cleanup()

    # -- what happened

    def log_lines(self) -> list[str]:
        """The scenario's log lines (REGISTERED, INVITE ..., ANSWERED ..., CANCELLED ..., BYE ...)."""
        return [line.strip() for line in _read(self.log_file).splitlines() if line.strip()]

    def invites_seen(self) -> list[Invite]:
        """Every INVITE received so far (initial INVITEs only), oldest first."""
        invites = []
        for line in self.log_lines():
            if line.startswith("INVITE "):
                head, from_header, pai = ([*line.split("|", 2), "", ""])[:3]
                invites.append(Invite(head.split()[1], from_header.strip(), pai.strip()))
        return invites

    def count(self, prefix: str) -> int:
        return sum(1 for line in self.log_lines() if line.startswith(prefix))

    def wait_for(self, prefix: str, timeout: float, *, count: int = 1) -> None:
        """Wait until `count` log lines start with prefix; raise SippError (with sipp's errors) if not."""
        deadline = time.monotonic() + timeout
        while self.count(prefix) < count:
            if self._proc is None or self._proc.poll() is not None:
                raise SippError(f"{self.endpoint}: sipp exited before {prefix!r}: {self._diagnostics()}")
            if time.monotonic() > deadline:
                raise SippError(f"{self.endpoint}: no {prefix!r} within {timeout} s: {self._diagnostics()}")
            if time.monotonic() > self._deadline:
                self.stop(unregister=False)
                raise SippError(f"{self.endpoint}: sipp outlived its {self.max_seconds} s bound")
            time.sleep(0.05)

    def _diagnostics(self) -> str:
        stderr = b""
        if self._proc is not None and self._proc.poll() is not None and self._proc.stderr:
            stderr = self._proc.stderr.read() or b""
        return (
            f"log={self.log_lines()[-5:]} errors={_read(self.error_file)[-800:]!r} "
            f"stderr={stderr.decode(errors='replace')[-400:]!r}"
        )


@dataclass(frozen=True)
class CallResult:
    """How a citizen's call went."""

    returncode: int
    answered: bool
    #: answered and ended by a completed BYE transaction (either side), sipp exit code 0
    completed: bool
    #: "caller" (we sent BYE), "remote" (Asterisk sent BYE) or None
    hung_up_by: str | None
    log: str
    errors: str


class CitizenCall:
    """A running citizen call (see :func:`place_call`)."""

    def __init__(
        self, proc: subprocess.Popen[bytes], workdir: tempfile.TemporaryDirectory[str], bound: float
    ) -> None:
        self._proc = proc
        self._tmp = workdir
        self.workdir = Path(workdir.name)
        self._bound = bound
        self._started = time.monotonic()
        self._result: CallResult | None = None

    def log_lines(self) -> list[str]:
        return [line.strip() for line in _read(self.workdir / "events.log").splitlines() if line.strip()]

    @property
    def answered(self) -> bool:
        return any(line.startswith("ANSWERED") for line in self.log_lines())

    def running(self) -> bool:
        return self._proc.poll() is None

    def wait(self, timeout: float | None = None) -> CallResult:
        """Wait for the call to end (at most `timeout` s, and never beyond its hard bound)."""
        if self._result is not None:
            return self._result
        remaining = self._bound - (time.monotonic() - self._started)
        limit = remaining if timeout is None else min(timeout, remaining)
        try:
            self._proc.wait(max(limit, 0.1))
        except subprocess.TimeoutExpired:
            if timeout is not None and timeout < remaining:
                raise SippError(f"call still running after {timeout} s: {self.log_lines()}") from None
            _stop_process(self._proc)
        lines = self.log_lines()
        hung_up_by = None
        if any(line.startswith("LOCAL_BYE") for line in lines):
            hung_up_by = "caller"
        elif any(line.startswith("REMOTE_BYE") for line in lines):
            hung_up_by = "remote"
        rc = self._proc.returncode
        self._result = CallResult(
            returncode=rc,
            answered=any(line.startswith("ANSWERED") for line in lines),
            completed=rc == 0 and hung_up_by is not None,
            hung_up_by=hung_up_by,
            log="\n".join(lines),
            errors=_read(self.workdir / "errors.log")[-2000:],
        )
        self._tmp.cleanup()
        return self._result

    def kill(self) -> None:
        """Abort the call without signalling (for cleanup)."""
        _stop_process(self._proc)


def place_call(
    caller_number: str,
    *,
    hangup_after: float | None = None,
    max_seconds: float = 60.0,
    number: str = "12345",
    source_ip: str = "127.0.0.2",
    asterisk_host: str = "127.0.0.1",
    asterisk_port: int = 5060,
) -> CitizenCall:
    """Start a citizen's call to the hotline; returns at once (see :meth:`CitizenCall.wait`).

    hangup_after: seconds after the answer before the citizen hangs up; None = stay until the far
    end hangs up (or max_seconds, the hard bound, passes: then the call counts as not completed).
    """
    return start_uac(
        "citizen_uac.xml",
        {"CALLER": caller_number},
        prefix=f"sipp-citizen-{caller_number}-",
        source_ip=source_ip,
        number=number,
        hangup_after=hangup_after,
        max_seconds=max_seconds,
        asterisk=f"{asterisk_host}:{asterisk_port}",
    )


def start_uac(
    scenario_name: str,
    values: dict[str, object],
    *,
    prefix: str,
    source_ip: str,
    number: str,
    hangup_after: float | None,
    max_seconds: float,
    asterisk: str,
    extra_args: tuple[str, ...] = (),
) -> CitizenCall:
    """Start one sipp UAC call (a scenario with HANGUP_MS and RTP_PORT placeholders), time-bounded."""
    tmp = tempfile.TemporaryDirectory(prefix=prefix)
    workdir = Path(tmp.name)
    hangup_ms = int(hangup_after * 1000) if hangup_after is not None else int((max_seconds + 60) * 1000)
    scenario = _render(
        scenario_name, workdir, **values, HANGUP_MS=max(hangup_ms, 10), RTP_PORT=free_udp_port(source_ip)
    )
    cmd = [
        SIPP, asterisk,
        "-sf", str(scenario), "-m", "1", "-t", "u1",
        "-i", source_ip, "-p", str(free_udp_port(source_ip)),
        "-s", number, *extra_args,
        "-timeout", f"{int(max_seconds)}s", "-timeout_error",
        "-trace_logs", "-log_file", str(workdir / "events.log"),
        "-trace_err", "-error_file", str(workdir / "errors.log"),
        "-nostdin",
    ]  # fmt: skip
    proc = subprocess.Popen(
        cmd, cwd=workdir, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    return CitizenCall(proc, tmp, max_seconds + _KILL_SLACK)
