"""Calls placed *from* an agent's phone (sipp, tests/e2e/sipp/agent_uac.xml): feature codes, personal calls.

The caller authenticates as the agent's endpoint (digest, like the registering phone) from the
agent's own loopback address, so Asterisk runs the call in ``[agent-phones]`` as that endpoint.
"""

from __future__ import annotations

import subprocess
import tempfile
from pathlib import Path

from tests.e2e.sipp import _KILL_SLACK, SIPP, CitizenCall, _render, free_udp_port


def dial_from_agent_phone(
    endpoint: str,
    password: str,
    ip: str,
    number: str,
    *,
    hangup_after: float | None = None,
    max_seconds: float = 20.0,
    asterisk_host: str = "127.0.0.1",
    asterisk_port: int = 5060,
) -> CitizenCall:
    """Start a call from ``endpoint``'s phone to ``number``; returns at once (``.wait()`` for the end).

    hangup_after: seconds after the answer before this side hangs up; None = until Asterisk hangs up
    (feature codes do, after their prompt) or ``max_seconds`` pass.
    """
    tmp = tempfile.TemporaryDirectory(prefix=f"sipp-{endpoint}-dial-")
    workdir = Path(tmp.name)
    hangup_ms = int(hangup_after * 1000) if hangup_after is not None else int((max_seconds + 60) * 1000)
    scenario = _render(
        "agent_uac.xml",
        workdir,
        ENDPOINT=endpoint,
        HANGUP_MS=max(hangup_ms, 10),
        RTP_PORT=free_udp_port(ip),
    )
    cmd = [
        SIPP, f"{asterisk_host}:{asterisk_port}",
        "-sf", str(scenario), "-m", "1", "-t", "u1",
        "-i", ip, "-p", str(free_udp_port(ip)),
        "-s", number, "-au", endpoint, "-ap", password,
        "-timeout", f"{int(max_seconds)}s", "-timeout_error",
        "-trace_logs", "-log_file", str(workdir / "events.log"),
        "-trace_err", "-error_file", str(workdir / "errors.log"),
        "-nostdin",
    ]  # fmt: skip
    proc = subprocess.Popen(
        cmd, cwd=workdir, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    return CitizenCall(proc, tmp, max_seconds + _KILL_SLACK)
