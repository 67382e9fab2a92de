"""Failed-login throttling: per username and per client address, in a sliding window.

After ``per_user`` failures for one username (or ``per_address`` from one address) within
``window`` seconds, logins for it are refused (429 with ``Retry-After``) until the oldest of those
failures leaves the window, even with the right password. A success clears the username's count.
Time is passed in. State is per process: behind several workers each counts on its own.
"""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass, field

#: Keys kept at most; past it, the stalest are forgotten first (bounds memory under a spray of names).
MAX_KEYS = 10_000


@dataclass
class LoginThrottle:
    per_user: int
    per_address: int
    window: float
    _failures: dict[tuple[str, str], deque[float]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def retry_after(self, username: str, address: str, now: float) -> float | None:
        """Seconds until a login for ``username`` from ``address`` may be tried, or ``None`` if now."""
        waits = []
        with self._lock:
            for key, limit in ((("user", username), self.per_user), (("address", address), self.per_address)):
                recent = self._recent(key, now)
                if len(recent) >= limit:
                    waits.append(recent[-limit] + self.window - now)
        return max(waits) if waits else None

    def failed(self, username: str, address: str, now: float) -> None:
        with self._lock:
            for key in (("user", username), ("address", address)):
                self._recent(key, now).append(now)
            if len(self._failures) > MAX_KEYS:
                for key in sorted(self._failures, key=lambda k: self._failures[k][-1])[: MAX_KEYS // 10]:
                    del self._failures[key]

    def succeeded(self, username: str) -> None:
        with self._lock:
            self._failures.pop(("user", username), None)

    def _recent(self, key: tuple[str, str], now: float) -> deque[float]:
        times = self._failures.setdefault(key, deque())
        while times and times[0] <= now - self.window:
            times.popleft()
        return times
