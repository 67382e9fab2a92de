"""Fixtures for the end-to-end tests against the real local Asterisk (see app/local_asterisk.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from app.local_asterisk import LocalAsterisk, ensure_running


@pytest.fixture(scope="session")
def local_asterisk() -> Iterator[LocalAsterisk]:
    """The running local Asterisk with agent1..agent10, provisioned on first use.

    Never skips: if Asterisk cannot be provisioned or started, ensure_running raises and every
    test using this fixture errors with the reason. It is left running after the session (the
    next session starts in well under a second); ``hotline asterisk down`` stops it.
    """
    yield ensure_running(agents=10)
