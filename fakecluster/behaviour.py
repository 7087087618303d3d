"""How a pod behaves once it lands on a node: the pluggable model, steerable per pod.

A ``Behaviour`` turns a pod into an ``Outcome`` (how long its image pull takes and whether it
fails, whether its container can be created, how long it runs and how it ends). The default
model reads a few distributions; any single pod can be steered with annotations:

==================================  ==========================================================
``kubesim.io/run-seconds``          how long the container runs (float)
``kubesim.io/exit-code``            its exit code (0: Succeeded, else Failed)
``kubesim.io/oom``                  "true": OOMKilled (exit 137)
``kubesim.io/pull-seconds``         image pull time (float)
``kubesim.io/image-error``          ErrImagePull, ImagePullBackOff, InvalidImageName,
                                    ErrImageNeverPull: the pull never succeeds (stuck Pending)
``kubesim.io/container-error``      CreateContainerConfigError, CreateContainerError,
                                    RunContainerError: the container never starts
``kubesim.io/unschedulable``        "true": the scheduler never finds a node for it
``kubesim.io/stop-seconds``         how long the container takes to stop after SIGTERM
==================================  ==========================================================
"""

from __future__ import annotations

import random
from dataclasses import dataclass, replace
from typing import Callable

ANNOTATION_PREFIX = "kubesim.io/"
IMAGE_ERRORS = ("ErrImagePull", "ImagePullBackOff", "InvalidImageName", "ErrImageNeverPull")
CONTAINER_ERRORS = ("CreateContainerConfigError", "CreateContainerError", "RunContainerError")

Draw = Callable[[random.Random], float]


@dataclass(frozen=True)
class Outcome:
    run_seconds: float = 10.0
    exit_code: int = 0
    oom: bool = False
    pull_seconds: float = 0.0
    image_error: str | None = None
    container_error: str | None = None
    unschedulable: bool = False
    stop_seconds: float = 1.0


class BehaviourError(ValueError):
    """A pod annotation steering the model has a value that cannot be used."""


@dataclass
class Behaviour:
    """The default model: run time and failure drawn per pod; annotations override."""

    run_seconds: Draw = lambda rng: 10.0
    failure_probability: float = 0.0
    oom_probability: float = 0.0
    pull_seconds: Draw = lambda rng: 0.0
    image_error_probability: float = 0.0
    image_error: str = "ErrImagePull"
    unschedulable_probability: float = 0.0

    def outcome(self, pod: dict, rng: random.Random) -> Outcome:
        draw = rng.random
        failed = self.failure_probability and draw() < self.failure_probability
        oom = self.oom_probability and draw() < self.oom_probability
        image_error = self.image_error if self.image_error_probability and draw() < self.image_error_probability else None
        outcome = Outcome(
            run_seconds=max(0.0, self.run_seconds(rng)),
            exit_code=1 if failed else 0,
            oom=bool(oom),
            pull_seconds=max(0.0, self.pull_seconds(rng)),
            image_error=image_error,
            unschedulable=bool(self.unschedulable_probability and draw() < self.unschedulable_probability),
        )
        return steer(outcome, pod)


def steer(outcome: Outcome, pod: dict) -> Outcome:
    """Apply the ``kubesim.io/*`` annotations of one pod to its outcome."""
    annotations = pod["metadata"].get("annotations") or {}
    changes = {}
    for key, value in annotations.items():
        if not key.startswith(ANNOTATION_PREFIX):
            continue
        field_name, parse = _ANNOTATIONS.get(key[len(ANNOTATION_PREFIX):], (None, None))
        if field_name is None:
            continue
        try:
            changes[field_name] = parse(value)
        except ValueError as exc:
            raise BehaviourError(f"pod {pod['metadata'].get('name')}: annotation {key}={value!r}: {exc}") from None
    return replace(outcome, **changes) if changes else outcome


def _flag(value: str) -> bool:
    if value.lower() not in ("true", "false"):
        raise ValueError('expected "true" or "false"')
    return value.lower() == "true"


def _one_of(choices):
    def parse(value: str) -> str:
        if value not in choices:
            raise ValueError(f"expected one of {', '.join(choices)}")
        return value
    return parse


def _seconds(value: str) -> float:
    seconds = float(value)
    if seconds < 0:
        raise ValueError("expected a non-negative number of seconds")
    return seconds


_ANNOTATIONS = {
    "run-seconds": ("run_seconds", _seconds),
    "exit-code": ("exit_code", int),
    "oom": ("oom", _flag),
    "pull-seconds": ("pull_seconds", _seconds),
    "image-error": ("image_error", _one_of(IMAGE_ERRORS)),
    "container-error": ("container_error", _one_of(CONTAINER_ERRORS)),
    "unschedulable": ("unschedulable", _flag),
    "stop-seconds": ("stop_seconds", _seconds),
}
