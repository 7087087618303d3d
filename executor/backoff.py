"""Back-off for calls to an API server that keeps failing (refused connections, 5xx answers).

Each failure in a row doubles the pause before the next attempt, up to a cap; a success resets
it. Without it, an executor retries every queued create and every pending clean-up on every loop,
thousands of calls a minute against a server that is down.
"""

from __future__ import annotations

from .runtime import Runtime

FIRST_PAUSE = 1.0    # seconds after the first failure
MAX_PAUSE = 60.0


class Backoff:
    def __init__(self, runtime: Runtime, first: float = FIRST_PAUSE, cap: float = MAX_PAUSE):
        self.runtime, self.first, self.cap = runtime, first, cap
        self.failures = 0
        self.until = 0.0

    def ready(self) -> bool:
        """May a call be made now?"""
        return self.runtime.now() >= self.until

    def failed(self) -> float:
        """Record a failure; returns the pause before the next attempt."""
        pause = min(self.cap, self.first * 2 ** self.failures)
        self.failures += 1
        self.until = self.runtime.now() + pause
        return pause

    def pause_for(self, seconds: float) -> None:
        """The server said how long to wait (Retry-After): wait that long, not the doubling."""
        self.until = max(self.until, self.runtime.now() + seconds)

    def succeeded(self) -> None:
        self.failures = 0
