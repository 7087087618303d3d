"""A sampling profiler that sees through greenlet switches, shared by the benchmarks.

cProfile cannot follow greenlet switches (its stack gets garbled); a SIGALRM timer that records
the running stack can, because the handler sees the frame of whichever greenlet is running.
"""

from __future__ import annotations

import gc
import signal
import time
from collections import Counter
from typing import Callable


class Sampler:
    """Samples the running stack every ``interval`` wall seconds (SIGALRM; ITIMER_PROF ticks
    only every few milliseconds).

    The handler sees the frame of whichever greenlet is running, so time lands on the right
    code even across switches; time in C (json, greenlet.switch, pydantic-core) lands on the
    Python function that called it. A garbage collection can last far longer than the interval,
    and the timer ticks it spans collapse into one signal delivered right after it, in whatever
    code allocated; so ``gc.callbacks`` counts the ticks each collection swallowed as samples
    of their own and the collapsed signal is dropped.
    """

    def __init__(self, interval: float = 0.0005):
        self.interval = interval
        self.stacks: Counter = Counter()
        self.gc_samples = 0
        self._skip_next = False

    def _tick(self, moment: float) -> int:
        return int((moment - self._started) / self.interval)

    def _on_gc(self, phase: str, info: dict) -> None:
        now = time.perf_counter()
        if phase == "start":
            self._gc_started = now
            return
        swallowed = self._tick(now) - self._tick(self._gc_started)
        if swallowed:
            self.gc_samples += swallowed
            self._skip_next = True

    def _sample(self, signum, frame) -> None:
        if self._skip_next:   # the ticks of a collection, already counted
            self._skip_next = False
            return
        stack = []
        while frame is not None:
            stack.append(frame.f_code)
            frame = frame.f_back
        self.stacks[tuple(stack)] += 1

    def start(self) -> None:
        gc.callbacks.append(self._on_gc)
        self._previous = signal.signal(signal.SIGALRM, self._sample)
        self._started = time.perf_counter()
        signal.setitimer(signal.ITIMER_REAL, self.interval, self.interval)

    def stop(self) -> None:
        signal.setitimer(signal.ITIMER_REAL, 0, 0)
        signal.signal(signal.SIGALRM, self._previous)
        gc.callbacks.remove(self._on_gc)


def layer_shares(sampler: Sampler, layer_of: Callable) -> dict[str, float]:
    """Share of samples per layer; a frame with no layer (the stdlib) is charged to its nearest
    caller that has one, so json.dumps counts for whoever asked for it."""
    total = sum(sampler.stacks.values()) + sampler.gc_samples or 1
    layers = Counter({"garbage collection": sampler.gc_samples})
    for stack, hits in sampler.stacks.items():
        layers[next((layer for code in stack if (layer := layer_of(code))), "other")] += hits
    return {layer: hits / total for layer, hits in layers.most_common()}
