"""Fixtures for the end-to-end tests against the real local Asterisk (see devtools/local_asterisk.py)."""

from __future__ import annotations

import fcntl
import time
from collections.abc import Iterator

import pytest

from devtools.local_asterisk import LocalAsterisk, cli, ensure_running, state_dir

LOCK_WAIT_SECONDS = 1800


@pytest.fixture(scope="session")
def local_asterisk() -> Iterator[LocalAsterisk]:
    """The running local Asterisk with agent1..agent10, provisioned on first use.

    One test session at a time uses it: a second session (another checkout, a parallel run) waits
    for the lock, because every service on the same Asterisk would see the other's calls.

    Never skips: if Asterisk cannot be provisioned or started, ensure_running raises and every
    test using this fixture errors with the reason. It is left running after the session (the
    next session starts in well under a second); ``hotline asterisk down`` stops it.
    """
    directory = state_dir()
    directory.mkdir(parents=True, exist_ok=True)
    with open(directory / "e2e.lock", "w") as lock:
        deadline = time.monotonic() + LOCK_WAIT_SECONDS
        while True:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    pytest.fail("another end-to-end session held the local Asterisk too long")
                time.sleep(1)
        try:
            asterisk = ensure_running(agents=10)
            # A clean slate: calls left over by an earlier, interrupted run would be served first.
            cli("channel request hangup all")
            yield asterisk
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
