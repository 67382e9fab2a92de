"""Calls placed *from* an agent's phone (sipp, tests/e2e/sipp/agent_uac.xml): feature codes, personal calls.

The caller authenticates as the agent's endpoint (digest, like the registering phone) from the
agent's own loopback address, so Asterisk runs the call in ``[agent-phones]`` as that endpoint.
"""

from __future__ import annotations

from tests.e2e.sipp import CitizenCall, start_uac


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
    return start_uac(
        "agent_uac.xml",
        {"ENDPOINT": endpoint},
        prefix=f"sipp-{endpoint}-dial-",
        source_ip=ip,
        number=number,
        hangup_after=hangup_after,
        max_seconds=max_seconds,
        asterisk=f"{asterisk_host}:{asterisk_port}",
        extra_args=("-au", endpoint, "-ap", password),
    )
