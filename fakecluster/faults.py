"""API-level faults: latency distributions, injected errors, outage windows, dropped connections,
lost answers.

Every draw comes from the world's seeded RNG, so the same seed injects the same faults.
Cluster-level faults (node loss, eviction, stuck pods, watch expiry) are calls on FakeCluster.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from typing import Callable

from .api import status as errors
from .api.status import ApiError

VERBS = ("get", "list", "watch", "create", "update", "patch", "delete", "deletecollection")

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
    retry_after: int | None = 1      # Retry-After seconds on 429/503/504 (None: no header)
    status_body: bool = False        # 429 as a Status instead of the filter's plain text
    reason: str | None = None        # the Status reason, e.g. 409 "Conflict" instead of "AlreadyExists"
    message: str | None = None       # the Status message, instead of the canonical one
    injected: int = 0

    def __post_init__(self):
        if isinstance(self.verbs, str):
            self.verbs = (self.verbs,)
        self.verbs = tuple(self.verbs)
        unknown = [v for v in self.verbs if v not in VERBS]
        if unknown:
            raise ValueError(f"ErrorRule verbs {unknown} are not API verbs; use some of {', '.join(VERBS)}")
        if not 0.0 <= self.probability <= 1.0:
            raise ValueError(f"ErrorRule probability must be between 0 and 1, not {self.probability!r}")
        if self.count is not None and self.count < 0:
            raise ValueError(f"ErrorRule count must be >= 0 or None, not {self.count!r}")
        if self.end < self.start:
            raise ValueError(f"ErrorRule window ends ({self.end:g}s) before it starts ({self.start:g}s)")
        if self.reason is not None and (not isinstance(self.reason, str) or not self.reason.strip()):
            raise ValueError(f"ErrorRule reason must be a Status reason such as 'Conflict', not {self.reason!r}")
        self.error("pods", "probe")  # an HTTP code with no Kubernetes error fails here, not mid-run

    def applies(self, verb: str, resource: str, now: float, rng: random.Random) -> bool:
        if verb not in self.verbs or (self.resource and resource != self.resource):
            return False
        if not self.start <= now < self.end or (self.count is not None and self.injected >= self.count):
            return False
        return self.probability >= 1 or rng.random() < self.probability

    def error(self, resource: str, name: str | None) -> ApiError:
        error = self._canonical(resource, name)
        if self.reason is not None:
            error.reason = self.reason
        if self.message is not None:
            error.message = self.message
        return error

    def _canonical(self, resource: str, name: str | None) -> ApiError:
        if self.code == 409 and self.reason == "Conflict":  # e.g. ResourceQuota contention (#14)
            return errors.conflict(resource, name or "unknown", errors.STALE_OBJECT)
        if self.code == 429:
            if self.retry_after is None:
                error = errors.too_many_requests(0, as_status=self.status_body)
                error.headers.pop("Retry-After", None)
                return error
            return errors.too_many_requests(self.retry_after, as_status=self.status_body)
        error = errors.by_code(self.code, resource, name, self.retry_after if self.retry_after is not None else 1)
        if self.retry_after is None:
            error.headers.pop("Retry-After", None)
        return error


@dataclass
class LostAnswer:
    """The server performs matching requests, but the client never hears back: the connection
    drops after the work is done (unlike a reset, where the request never arrived)."""

    verbs: tuple[str, ...] = ("create", "delete", "patch")
    resource: str | None = "pods"
    probability: float = 1.0
    count: int | None = None
    start: float = 0.0
    end: float = math.inf
    lost: int = 0

    def __post_init__(self):
        self.verbs = (self.verbs,) if isinstance(self.verbs, str) else tuple(self.verbs)
        unknown = [v for v in self.verbs if v not in VERBS]
        if unknown:
            raise ValueError(f"LostAnswer verbs {unknown} are not API verbs; use some of {', '.join(VERBS)}")
        if not 0.0 <= self.probability <= 1.0:
            raise ValueError(f"LostAnswer probability must be between 0 and 1, not {self.probability!r}")
        if self.end < self.start:
            raise ValueError(f"LostAnswer window ends ({self.end:g}s) before it starts ({self.start:g}s)")

    def applies(self, verb: str, resource: str, now: float, rng: random.Random) -> bool:
        if verb not in self.verbs or (self.resource and resource != self.resource):
            return False
        if not self.start <= now < self.end or (self.count is not None and self.lost >= self.count):
            return False
        if self.probability >= 1 or rng.random() < self.probability:
            self.lost += 1
            return True
        return False


@dataclass
class Outage:
    """A window in which the API server cannot be reached or answers 503."""

    start: float
    end: float
    mode: str = "unavailable"  # "unavailable": 503 Status; "refused": connection refused
    retry_after: int | None = None   # a Retry-After header on the 503s (urllib3 then retries GETs)

    def __post_init__(self):
        if self.mode not in ("unavailable", "refused"):
            raise ValueError(f'outage mode must be "unavailable" or "refused", not {self.mode!r}')
        if self.end < self.start:
            raise ValueError(f"outage ends ({self.end:g}s) before it starts ({self.start:g}s)")

    def active(self, now: float) -> bool:
        return self.start <= now < self.end


class ConnectionFault(Exception):
    """The request never got an HTTP answer: ``kind`` is "refused", "reset" or "lost" (served,
    but the answer never came back)."""

    def __init__(self, kind: str):
        super().__init__(kind)
        self.kind = kind


@dataclass
class Faults:
    latency: dict[str, Latency] = field(default_factory=dict)  # by verb; "*" for any verb
    errors: list[ErrorRule] = field(default_factory=list)
    outages: list[Outage] = field(default_factory=list)
    reset_probability: float = 0.0   # connections dropped before an answer
    lost_answers: list[LostAnswer] = field(default_factory=list)

    def __post_init__(self):
        unknown = [verb for verb in self.latency if verb != "*" and verb not in VERBS]
        if unknown:
            raise ValueError(f"latency for {unknown}: not API verbs; use some of {', '.join(VERBS)} or '*'")
        if not 0.0 <= self.reset_probability <= 1.0:
            raise ValueError(f"reset_probability must be between 0 and 1, not {self.reset_probability!r}")

    def inactive(self) -> bool:
        """No latency and nothing to inject: every request is served at once, as it came."""
        return not (self.latency or self.errors or self.outages or self.reset_probability or self.lost_answers)

    def refused(self, now: float) -> bool:
        """Is the API server unreachable (connection refused) at this moment?"""
        for outage in self.outages:  # a loop: any() over a generator costs more when there is none
            if outage.mode == "refused" and outage.active(now):
                return True
        return False

    def delay(self, verb: str, rng: random.Random) -> float:
        draw = self.latency.get(verb) or self.latency.get("*")
        return max(0.0, draw(rng)) if draw else 0.0

    def check(self, verb: str, resource: str, name: str | None, now: float,
              rng: random.Random) -> ApiError | None:
        """The injected answer for this request, if any (raises ConnectionFault for no answer)."""
        for outage in self.outages:
            if outage.active(now):
                if outage.mode == "refused":
                    raise ConnectionFault("refused")
                return errors.service_unavailable(retry_after=outage.retry_after)
        if self.reset_probability and rng.random() < self.reset_probability:
            raise ConnectionFault("reset")
        for rule in self.errors:
            if rule.applies(verb, resource, now, rng):
                rule.injected += 1
                return rule.error(resource, name)
        return None

    def answer_lost(self, verb: str, resource: str, now: float, rng: random.Random) -> bool:
        """Is the answer to this (served) request lost on its way back?"""
        for rule in self.lost_answers:
            if rule.applies(verb, resource, now, rng):
                return True
        return False
