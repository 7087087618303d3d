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

A ``kubesim.io/*`` annotation whose value cannot be used does not stop the simulation: the pod
fails to start with ``CreateContainerConfigError`` (it stays Pending), the container's waiting
message, a Warning Event on the pod and the cluster trace all name the annotation and say what
was expected. An unknown ``kubesim.io/*`` key (a typo) is noted in the trace and ignored.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field, replace
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
    container_error_message: str | None = None   # what the kubelet says about container_error
    honour_restart_policy: bool = True   # False: every container exit is final (as restartPolicy: Never)
    notes: tuple[str, ...] = field(default=(), compare=False)  # warnings for the trace


class BehaviourError(ValueError):
    """A pod annotation steering the model has a value that cannot be used."""


@dataclass
class Behaviour:
    """The default model: run time and failure drawn per pod; annotations override.

    Every draw comes from the world's seeded RNG, once per pod (by uid), when the scheduler
    first looks at the pod: the same seed gives every pod the same fate.
    """

    run_seconds: Draw = lambda rng: 10.0
    failure_probability: float = 0.0
    oom_probability: float = 0.0
    pull_seconds: Draw = lambda rng: 0.0
    image_error_probability: float = 0.0
    image_error: str = "ErrImagePull"
    unschedulable_probability: float = 0.0
    failure_exit_code: int = 1
    stop_seconds: float = 1.0
    # As the kubelet does: with restartPolicy Always (the API default) or OnFailure, an exited
    # container is restarted with crash-loop back-off and the pod never turns Succeeded.
    # False treats every pod as restartPolicy: Never.
    honour_restart_policy: bool = True
    # The last fate drawn and its Outcome: pods mostly draw the same fate, and then share its
    # Outcome (immutable), since building a frozen dataclass costs a call per field.
    _last: tuple = field(default=(None, None), init=False, repr=False, compare=False)

    def __post_init__(self):
        for name in ("failure_probability", "oom_probability", "image_error_probability",
                     "unschedulable_probability"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"Behaviour.{name} must be a probability between 0 and 1, not {value!r}")
        if self.image_error not in IMAGE_ERRORS:
            raise ValueError(f"Behaviour.image_error must be one of {', '.join(IMAGE_ERRORS)}, "
                             f"not {self.image_error!r}")
        if not 1 <= self.failure_exit_code <= 255:
            raise ValueError(f"Behaviour.failure_exit_code must be 1-255, not {self.failure_exit_code!r}")
        for name in ("run_seconds", "pull_seconds"):
            if not callable(getattr(self, name)):
                raise ValueError(f"Behaviour.{name} must be a distribution (a function of the RNG, "
                                 f"e.g. fakecluster.uniform(10, 60)), not {getattr(self, name)!r}")

    def outcome(self, pod: dict, rng: random.Random) -> Outcome:
        draw = rng.random
        failed = self.failure_probability and draw() < self.failure_probability
        oom = self.oom_probability and draw() < self.oom_probability
        image_error = self.image_error if self.image_error_probability and draw() < self.image_error_probability else None
        fate = (_duration(self.run_seconds(rng)), self.failure_exit_code if failed else 0, bool(oom),
                _duration(self.pull_seconds(rng)), image_error,
                bool(self.unschedulable_probability and draw() < self.unschedulable_probability),
                self.stop_seconds, self.honour_restart_policy)
        if fate != self._last[0]:
            self._last = (fate, Outcome(**dict(zip(_FATE, fate))))
        return steer(self._last[1], pod)


_FATE = ("run_seconds", "exit_code", "oom", "pull_seconds", "image_error", "unschedulable", "stop_seconds",
         "honour_restart_policy")  # the Outcome fields Behaviour.outcome draws, in the order it draws them


def _duration(value: float) -> float:
    return 0.0 if value != value else max(0.0, float(value))  # NaN and negatives: no time


def steer(outcome: Outcome, pod: dict) -> Outcome:
    """Apply the ``kubesim.io/*`` annotations of one pod to its outcome (BehaviourError if bad)."""
    annotations = pod["metadata"].get("annotations") or {}
    changes, notes = {}, []
    for key, value in sorted(annotations.items()):
        if not key.startswith(ANNOTATION_PREFIX):
            continue
        field_name, parse = _ANNOTATIONS.get(key[len(ANNOTATION_PREFIX):], (None, None))
        if field_name is None:
            notes.append(f"pod {pod['metadata'].get('namespace', '')}/{pod['metadata'].get('name')}: "
                         f"unknown annotation {key} ignored (known: "
                         f"{', '.join(ANNOTATION_PREFIX + k for k in _ANNOTATIONS)})")
            continue
        try:
            changes[field_name] = parse(str(value).strip())
        except ValueError as exc:
            raise BehaviourError(f"invalid annotation {key}={value!r}: {exc}") from None
    if notes:
        changes["notes"] = outcome.notes + tuple(notes)
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
    try:
        seconds = float(value)
    except ValueError:
        raise ValueError("expected a non-negative number of seconds, such as \"30\" or \"2.5\"") from None
    if seconds < 0 or math.isnan(seconds):
        raise ValueError("expected a non-negative number of seconds, such as \"30\" or \"2.5\"")
    return seconds


def _exit_code(value: str) -> int:
    try:
        code = int(value)
    except ValueError:
        code = -1
    if not 0 <= code <= 255:
        raise ValueError("expected an exit code, a whole number from 0 to 255")
    return code


_ANNOTATIONS = {
    "run-seconds": ("run_seconds", _seconds),
    "exit-code": ("exit_code", _exit_code),
    "oom": ("oom", _flag),
    "pull-seconds": ("pull_seconds", _seconds),
    "image-error": ("image_error", _one_of(IMAGE_ERRORS)),
    "container-error": ("container_error", _one_of(CONTAINER_ERRORS)),
    "unschedulable": ("unschedulable", _flag),
    "stop-seconds": ("stop_seconds", _seconds),
}
