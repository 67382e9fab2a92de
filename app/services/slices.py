"""Long loops on the event loop in bounded slices, so that nothing else waits behind them.

The rebuild after a (re)connect walks lists of thousands of items (DeviceStateList, CoreShowChannels);
done in one go it would hold up call distribution, timers and the API for seconds.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterable
from typing import TypeVar

T = TypeVar("T")

#: Work done before giving the loop a turn: keeps every stall well under the 50 ms target.
SLICE_SECONDS = 0.01


async def in_slices(items: Iterable[T], budget: float | None = None) -> AsyncIterator[T]:
    """``items`` one by one; once ``budget`` seconds (CPU-busy or not) passed since the last turn, the
    loop gets a turn before the next. The time counted includes what the caller does with each item."""
    budget = SLICE_SECONDS if budget is None else budget
    clock = time.perf_counter
    until = clock() + budget
    for item in items:
        yield item
        if clock() >= until:
            await asyncio.sleep(0)
            until = clock() + budget
