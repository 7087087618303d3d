"""API-level faults: latency distributions, injected errors, outage windows, dropped connections.

Every draw comes from the world's seeded RNG, so the same seed injects the same faults.
Cluster-level faults (node loss, eviction, stuck pods, watch expiry) are calls on FakeCluster.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from typing import Callable

from . import status as errors
from .status import ApiError

VERBS = ("get", "list", "watch", "create", "update", "patch", "delete")

Latency = Callable[[random.Random], float]


def constant(seconds: float) -> Latency:
    return lambda rng: seconds


def uniform(low: float, high: float) -> Latency:
    return lambda rng: rng.uniform(low, high)


def exponential(mean: float) -> Latency:
    return lambda rng: rng.expovariate(1 / mean) if mean > 0 else 0.0


def lognormal(median: float, p99: float) -> Latency:
    """A long-tailed latency given its median and 99th percentile, as API latency usually is."""
    if p99 < median or median <= 0:
        raise ValueError(f"lognormal latency needs 0 < median <= p99, got median={median} p99={p99}")
    sigma = math.log(p99 / median) / 2.326
    return lambda rng: rng.lognormvariate(math.log(median), sigma)


@dataclass
class ErrorRule:
    """Answer matching requests with ``code`` instead of serving them."""

    code: int
    verbs: tuple[str, ...] = VERBS
    resource: str | None = "pods"
    probability: float = 1.0
    count: int | None = None        # stop after this many injections (None: no limit)
    start: float = 0.0
    end: float = math.inf
    retry_after: int = 1
    status_body: bool = False        # 429 as a Status instead of the filter's plain text
    injected: int = 0

    def applies(self, verb: str, resource: str, now: float, rng: random.Random) -> bool:
        if verb not in self.verbs or (self.resource and resource != self.resource):
            return False
        if not self.start <= now < self.end or (self.count is not None and self.injected >= self.count):
            return False
        return self.probability >= 1 or rng.random() < self.probability

    def error(self, resource: str, name: str | None) -> ApiError:
        if self.code == 429:
            return errors.too_many_requests(self.retry_after, as_status=self.status_body)
        return errors.by_code(self.code, resource, name, self.retry_after)


@dataclass
class Outage:
    """A window in which the API server cannot be reached or answers 503."""

    start: float
    end: float
    mode: str = "unavailable"  # "unavailable": 503 Status; "refused": connection refused

    def __post_init__(self):
        if self.mode not in ("unavailable", "refused"):
            raise ValueError(f'outage mode must be "unavailable" or "refused", not {self.mode!r}')


class ConnectionFault(Exception):
    """The request never got an HTTP answer: ``kind`` is "refused" or "reset"."""

    def __init__(self, kind: str):
        super().__init__(kind)
        self.kind = kind


@dataclass
class Faults:
    latency: dict[str, Latency] = field(default_factory=dict)  # by verb; "*" for any verb
    errors: list[ErrorRule] = field(default_factory=list)
    outages: list[Outage] = field(default_factory=list)
    reset_probability: float = 0.0   # connections dropped before an answer

    def delay(self, verb: str, rng: random.Random) -> float:
        draw = self.latency.get(verb) or self.latency.get("*")
        return max(0.0, draw(rng)) if draw else 0.0

    def check(self, verb: str, resource: str, name: str | None, now: float,
              rng: random.Random) -> ApiError | None:
        """The injected answer for this request, if any (raises ConnectionFault for no answer)."""
        for outage in self.outages:
            if outage.start <= now < outage.end:
                if outage.mode == "refused":
                    raise ConnectionFault("refused")
                return errors.service_unavailable(retry_after=1)
        if self.reset_probability and rng.random() < self.reset_probability:
            raise ConnectionFault("reset")
        for rule in self.errors:
            if rule.applies(verb, resource, now, rng):
                rule.injected += 1
                return rule.error(resource, name)
        return None
