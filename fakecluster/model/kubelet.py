"""The kubelets: each bound pod's life, from image pull to a terminal phase, and its deletion.

One process (a ``Course``) per bound pod walks the pod through its ``Outcome``: image pull (or a
pull error that keeps it Pending with ErrImagePull / ImagePullBackOff back-off), container creation
(or a creation error), Running, and the container's exit (Completed, Error, OOMKilled). With
``restartPolicy: Always`` (or ``OnFailure`` and a failure) the container is restarted with the
kubelet's crash-loop back-off instead, and the pod stays Running. A graceful deletion
interrupts it: the container gets SIGTERM, stops after ``stop_seconds`` or is killed at the end
of the grace period, the pod turns terminal, then it is removed.

Every write names the pod by key *and* uid, so a late write never lands on a new pod that took
the same name. When a node is lost its pods freeze (nothing they do can reach the API server);
when it comes back they carry on from where the virtual clock now is.

The PodStatus each step writes is shaped in ``podstatus``.
"""

from __future__ import annotations

import functools
import hashlib
import math
import re
from dataclasses import dataclass
from typing import Callable

import simpy

from ..api.store import ResourceStore, key_of
from ..kernel.engine import Immediate, ModelTimer
from .behaviour import Outcome
from .nodes import NodeState
from .podstatus import (EXIT_SIGKILL, EXIT_SIGTERM, crash_looping, evicted, exit_of, finished, killed, ready,
                        running, terminated_state, waiting)

BACKOFF_START, BACKOFF_CAP = 10.0, 300.0   # image pull and crash-loop back-off
BACKOFF_RESET = 600.0                      # a container that ran this long clean resets it
ERR_IMAGE_PULL_SECONDS = 1.0               # ErrImagePull shows until the back-off is recorded

# distribution/reference's grammar, as containerd parses an image name
_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*"
_DOMAIN = r"(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)(?:\.(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?))*(?::[0-9]+)?"
_IMAGE = re.compile(rf"^(?:{_DOMAIN}/)?{_COMPONENT}(?:/{_COMPONENT})*"
                    r"(?::[\w][\w.-]{0,127})?(?:@[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,})?$")


@functools.lru_cache(maxsize=1024)  # a load runs the same few images
def valid_image(image: str) -> bool:
    """Whether the container runtime could parse this image reference."""
    return bool(image) and len(image) <= 255 + 128 and bool(_IMAGE.match(image))


class Course:
    """A kubelet's work on one pod (its life, or its final removal): a generator of simpy events,
    run as a simpy.Process runs one.

    It starts at a step of the current instant ahead of ordinary events (as simpy's Initialize),
    resumes when the event it waits on fires, and an interrupt throws simpy.Interrupt into it
    at a later step of the same instant. Lighter than a simpy.Process, which costs a pod three
    more calls and an event: nothing waits for a course to end, so it is no event itself and its
    end schedules nothing.
    """

    def __init__(self, kubelets: "Kubelets", generator):
        self._kubelets, self._generator = kubelets, generator
        self._target: simpy.Event | None = Immediate(kubelets.env, self._resume)
        self.is_alive = True

    def interrupt(self, cause) -> None:
        Immediate(self._kubelets.env, lambda _: self._interrupted(cause))

    def _interrupted(self, cause) -> None:
        if self.is_alive:  # (a life that ended meanwhile ignores it)
            self._target.callbacks.remove(self._resume)
            self._resume(None, simpy.Interrupt(cause))

    def _resume(self, _event, interrupt: simpy.Interrupt | None = None) -> None:
        kubelets = self._kubelets
        kubelets.current = self
        try:
            target = self._generator.send(None) if interrupt is None else self._generator.throw(interrupt)
        except StopIteration:
            self.is_alive, target = False, None
        finally:
            kubelets.current = None
        if target is not None:
            target.callbacks.append(self._resume)
        self._target = target


@dataclass(slots=True)
class Life:
    """What one node's kubelet knows about one of its pods."""

    key: tuple
    uid: str
    node: NodeState
    outcome: Outcome
    restart_policy: str = "Always"
    process: Course | None = None
    frozen: bool = False               # the node is lost: nothing reaches the API server
    started: str | None = None         # RFC 3339 start of the current container run
    started_at: float | None = None    # the same, in virtual seconds
    restarts: int = 0
    backoff: float = 0.0
    last_state: dict | None = None     # the previous run's terminated state
    sigterm_at: float | None = None    # when deletion began
    kill_at: float = math.inf          # end of the grace period
    ip: str = ""


class Kubelets:
    """Every node's kubelet, as one object: pods are independent of each other here."""

    def __init__(self, env: simpy.Environment, pods: ResourceStore, timestamp: Callable[..., str],
                 on_finished: Callable[[tuple], None],
                 record_event: Callable[..., None] | None = None,
                 delete: Callable[[dict], None] | None = None, lifecycle_events: bool = True,
                 record_events_of: Callable[..., None] | None = None):
        # (the kubelet reads simpy's env._now: the env.now property costs a call, and it is read often)
        self.env, self.pods, self.timestamp = env, pods, timestamp
        self.on_finished = on_finished     # frees the pod's room on its node
        # the kubelet's final DELETE with grace 0, through the API server's deletion rules
        self.delete = delete or (lambda pod: self.pods.remove(*key_of(pod)))
        self.record_event = record_event or (lambda *args, **kwargs: None)
        # Normal events of each container's life (Pulling, Pulled, Created, Started, Killing)
        self.lifecycle_events = lifecycle_events and record_events_of is not None
        self.record_events_of = record_events_of
        self.lives: dict[tuple, Life] = {}
        self.current: Course | None = None  # the course running right now, if any
        self._ips = 0

    # -- what the rest of the cluster tells the kubelets ---------------------------------------

    def start(self, pod: dict, node: NodeState, outcome: Outcome) -> None:
        """The pod was bound to ``node``: its kubelet picks it up (unless the node is lost)."""
        meta = pod["metadata"]
        key = (meta["namespace"], meta["name"])
        old = self.lives.pop(key, None)
        if old is not None:
            self._stop_process(old, ("forget", None))
        policy = (pod["spec"].get("restartPolicy") or "Always") if outcome.honour_restart_policy else "Never"
        life = Life(key, meta["uid"], node, outcome, policy)
        self.lives[key] = life
        if node.ready:
            self._launch(life)
        else:
            life.frozen = True  # bound to a node whose kubelet is gone: it never hears of the pod

    def terminate(self, key: tuple, grace: float) -> None:
        """The API server marked the pod for graceful deletion (deletionTimestamp set)."""
        life = self.lives.get(key)
        if life is None:  # not running here (finished, or never bound): just remove it
            pod = self.pods.get(*key)
            if pod is not None:
                Course(self, self._remove_after(key, pod["metadata"]["uid"], 0))
            return
        if life.frozen:
            return  # nobody there to stop it: it stays Terminating until the node returns
        self._interrupt(life, ("delete", grace))

    def evict(self, key: tuple, message: str) -> bool:
        """Node-pressure eviction by the pod's kubelet; False if no live kubelet runs the pod."""
        life = self.lives.get(key)
        if life is None or life.frozen or life.process is None or not life.process.is_alive:
            return False
        if life.sigterm_at is not None:
            return False  # already being deleted
        self._interrupt(life, ("evict", message))
        return True

    def freeze(self, key: tuple) -> None:
        """The node is gone: nothing more happens to this pod until the node returns."""
        life = self.lives.get(key)
        if life is not None and not life.frozen:
            life.frozen = True
            self._stop_process(life, ("freeze", None))

    def resume(self, key: tuple) -> None:
        """The node is back: its kubelet reports the pod again and carries on with it."""
        life = self.lives.get(key)
        if life is None or not life.frozen:
            return
        pod = self.pods.get(*key)
        if pod is None or pod["metadata"]["uid"] != life.uid:
            self.forget(key)
            return
        life.frozen = False
        if pod["metadata"].get("deletionTimestamp"):
            grace = pod["metadata"].get("deletionGracePeriodSeconds") or 0
            self._launch(life, ("delete", grace))
        else:
            if life.started_at is not None and pod.get("status", {}).get("phase") == "Running":
                self._write(life, ready, True, self.timestamp())
            self._launch(life)

    def forget(self, key: tuple) -> None:
        """The pod is gone from the API server: drop it and give its room back."""
        life = self.lives.pop(key, None)
        if life is not None:
            self._stop_process(life, ("forget", None))
        self.on_finished(key)

    def _launch(self, life: Life, cause=None) -> None:
        life.process = Course(self, self._life(life, cause))

    def _stop_process(self, life: Life, cause) -> None:
        self._interrupt(life, cause)
        life.process = None

    def _interrupt(self, life: Life, cause) -> None:
        process = life.process
        if process is None or not process.is_alive or self.current is process:
            return
        # even a process that has not run yet takes it: its start is queued ahead of the interrupt
        process.interrupt(cause)

    # -- the life of one pod -------------------------------------------------------------------

    def _life(self, life: Life, cause=None):
        """Run the pod from where it is; ``cause`` starts it at an interruption (a deletion)."""
        if self.current is not life.process:
            return  # stopped, or replaced by a newer launch, before it ever ran
        outcome = life.outcome
        while cause is None:
            if life.started_at is None:
                cause = yield from self._pull_and_create(life)
                if cause is not None:
                    break
                life.started_at, life.started = self.env._now, self.timestamp()
                self._write(life, running, life.node, life.ip, life.started, life.restarts, life.last_state)
                if self.lifecycle_events:  # with the Pulled of its image: one record for the three
                    self._container_events(life, self._pulled(life), "Created", "Started")
            ends = life.started_at + outcome.run_seconds
            cause = yield from self._wait(ends - self.env._now)
            if cause is not None:
                break
            ended = self.timestamp(ends - self.env._now)
            code, reason = exit_of(outcome)
            if not restarts_after(life.restart_policy, code):
                self._write(life, finished, outcome, life.started, ended, life.restarts, life.last_state)
                self._done(life)
                return
            cause = yield from self._crash_loop(life, code, reason, ended)
        yield from self._interrupted(life, cause)

    def _crash_loop(self, life: Life, code: int, reason: str, ended: str):
        """The container exited under a restarting policy: back off, then run it again."""
        ran = self.env._now - life.started_at
        if ran >= BACKOFF_RESET:
            life.backoff = 0.0
        life.last_state = terminated_state(life.uid, code, reason, life.started, ended)
        life.restarts += 1
        life.started_at = life.started = None
        delay, life.backoff = life.backoff, min(BACKOFF_CAP, max(BACKOFF_START, life.backoff * 2))
        if delay:
            name = life.key[1]
            container = self._container_name(life)
            message = (f"back-off {_go_duration(delay)} restarting failed container={container} "
                       f"pod={name}_{life.key[0]}({life.uid})")
            self._write(life, crash_looping, message, life.restarts, life.last_state, self.timestamp())
            self._event(life, "BackOff", f"Back-off restarting failed container {container} in pod "
                                         f"{name}_{life.key[0]}({life.uid})")
            return (yield from self._wait(delay))
        return None

    def _pull_and_create(self, life: Life):
        """Image pull and container creation; returns an interruption's cause, or None when done."""
        outcome = life.outcome
        first = life.restarts == 0
        if not life.ip:
            life.ip = self._next_ip()
        container, image = self._image(life)
        error = outcome.image_error
        if image is not None and not valid_image(image):
            error = "InvalidImageName"
        pulls = first and outcome.pull_seconds and error != "InvalidImageName"
        if pulls:
            self._write(life, waiting, life.node, life.ip, self.timestamp(), "ContainerCreating", "")
            if self.lifecycle_events:
                self._container_events(life, "Pulling")
            cause = yield from self._wait(outcome.pull_seconds)
            if cause is not None:
                return cause
        if first and error:
            where = container if error == "InvalidImageName" else None   # a pull error: every container
            return (yield from self._image_backoff(life, error, image or "", where))
        if first and outcome.container_error:
            message = outcome.container_error_message or container_error_message(outcome.container_error)
            self._write(life, waiting, life.node, life.ip, self.timestamp(), outcome.container_error, message)
            if self.lifecycle_events:
                self._container_events(life, self._pulled(life))
            self._event(life, "Failed", f"Error: {message}")
            return (yield from self._wait(None))  # never starts; only deletion ends this
        return None

    def _image_backoff(self, life: Life, error: str, image: str, container: str | None = None):
        write = lambda reason, message: self._write(life, waiting, life.node, life.ip, self.timestamp(),
                                                    reason, message, container)
        if error in ("InvalidImageName", "ErrImageNeverPull"):  # no retry can fix these
            message = image_error_message(error, image)
            write(error, message)
            self._event(life, "InspectFailed" if error == "InvalidImageName" else "ErrImageNeverPull", message)
            self._event(life, "Failed", f"Error: {error}")
            return (yield from self._wait(None))
        backoff = BACKOFF_START
        while True:
            message = image_error_message("ErrImagePull", image)
            write("ErrImagePull", message)
            self._event(life, "Failed", f'Failed to pull image "{image}": {message}')
            self._event(life, "Failed", "Error: ErrImagePull")
            cause = yield from self._wait(ERR_IMAGE_PULL_SECONDS)
            if cause is not None:
                return cause
            write("ImagePullBackOff", f'Back-off pulling image "{image}"')
            self._event(life, "BackOff", f'Back-off pulling image "{image}"', "Normal")
            self._event(life, "Failed", "Error: ImagePullBackOff")
            cause = yield from self._wait(backoff)
            if cause is not None:
                return cause
            backoff = min(backoff * 2, BACKOFF_CAP)

    def _interrupted(self, life: Life, cause):
        """Deal with what stopped the pod's course: deletion, eviction, node loss, removal."""
        while cause is not None:
            what, detail = cause
            if what in ("forget", "freeze"):
                return
            if what == "evict":
                self._write(life, evicted, detail, life.started, self.timestamp())
                self._event(life, "Evicted", detail)
                self._done(life)
                return
            # a deletion: SIGTERM now, SIGKILL when the grace period ends
            if life.sigterm_at is None:
                life.sigterm_at = self.env._now
                if self.lifecycle_events and life.started_at is not None:
                    self._container_events(life, "Killing")
            life.kill_at = min(life.kill_at, self.env._now + max(0.0, detail))
            exited_by_itself = (life.started_at is not None
                                and life.started_at + life.outcome.run_seconds <= self.env._now)
            if life.started_at is None or exited_by_itself:
                stop_at = self.env._now
            else:
                stop_at = min(life.sigterm_at + life.outcome.stop_seconds, life.kill_at)
            cause = yield from self._wait(stop_at - self.env._now)
            if cause is not None:
                continue
            if exited_by_itself:  # it finished while nobody could tell (the node was away)
                ends = life.started_at + life.outcome.run_seconds
                ended = self.timestamp(ends - self.env._now)
                self._write(life, finished, life.outcome, life.started, ended, life.restarts, life.last_state)
            else:
                code = EXIT_SIGTERM if life.sigterm_at + life.outcome.stop_seconds <= life.kill_at else EXIT_SIGKILL
                self._write(life, killed, code, life.started, self.timestamp(), life.restarts, life.last_state)
            self._done(life)
            yield from self._remove_after(life.key, life.uid, 0)
            return

    def _wait(self, delay: float | None):
        """Wait ``delay`` seconds (None or inf: for ever); the interruption's cause, or None."""
        try:
            if delay is None or delay == math.inf:
                yield self.env.event()
            elif delay > 0:
                yield ModelTimer(self.env, delay)
        except simpy.Interrupt as interrupt:
            return interrupt.cause
        return None

    def _remove_after(self, key, uid: str, delay: float):
        """The kubelet's final delete (grace 0): gone, unless finalizers still hold it."""
        if delay:
            yield ModelTimer(self.env, delay)
        pod = self.pods.get(*key)
        if pod is not None and pod["metadata"]["uid"] == uid:
            self.delete(pod)

    def _done(self, life: Life) -> None:
        """The pod's containers are gone: its room on the node is free again."""
        if self.lives.get(life.key) is life:
            del self.lives[life.key]
            self.on_finished(life.key)

    def _write(self, life: Life, build: Callable[..., dict], *args) -> None:
        """Store ``build(pod, *args)`` as the pod's new state, unless the pod is another by now."""
        self.pods.update(*life.key, lambda pod: build(pod, *args) if pod["metadata"]["uid"] == life.uid else pod)

    def _event(self, life: Life, reason: str, message: str, kind: str = "Warning") -> None:
        pod = self.pods.get(*life.key)
        if pod is not None and pod["metadata"]["uid"] == life.uid:
            self.record_event(pod, reason, message, kind, component="kubelet", host=life.node.name,
                              field_path=f"spec.containers{{{self._container_name(life)}}}")

    @staticmethod
    def _pulled(life: Life):
        """The Pulled event's reason: pulled just now (the first start, with a pull time) or present."""
        pull = life.outcome.pull_seconds
        return ("Pulled", pull) if life.restarts == 0 and pull else "Pulled"

    def _container_events(self, life: Life, *reasons) -> None:
        """Normal events about each container of the pod, recorded in one go; a reason is a
        name, or ("Pulled", seconds) for an image that was pulled."""
        pod = self.pods.get(*life.key)
        if pod is None or pod["metadata"]["uid"] != life.uid:
            return
        events = tuple((reason if reason.__class__ is str else reason[0],
                        lifecycle_message(reason, container.get("name", ""), container.get("image", "")),
                        field_path(container.get("name", "")))
                       for container in pod["spec"].get("containers") or () for reason in reasons)
        self.record_events_of(pod, events, "Normal", component="kubelet", host=life.node.name)

    def _image(self, life: Life) -> tuple[str | None, str | None]:
        """(container, image): the first container whose image name is invalid (a sidecar's as well
        as the task's), else the first container's; (None, None) for a pod that is gone."""
        pod = self.pods.get(*life.key)
        if pod is None:
            return None, None
        containers = pod["spec"].get("containers") or [{}]
        bad = next((c for c in containers if not valid_image(c.get("image", ""))), containers[0])
        return bad.get("name"), bad.get("image", "")

    def _container_name(self, life: Life) -> str:
        pod = self.pods.get(*life.key)
        containers = (pod or {}).get("spec", {}).get("containers") or [{"name": "base"}]
        return containers[0].get("name", "base")

    def _next_ip(self) -> str:
        self._ips += 1
        return f"10.{(self._ips >> 16) & 255}.{(self._ips >> 8) & 255}.{self._ips & 255}"


def restarts_after(policy: str, code: int) -> bool:
    """Does the kubelet restart a container that exited with ``code`` under this policy?"""
    return policy == "Always" or (policy == "OnFailure" and code != 0)


@functools.lru_cache(maxsize=4096)  # a load runs the same few containers: the messages are shared
def lifecycle_message(reason, container: str, image: str) -> str:
    """The kubelet's message for a Normal event of a container's life (v1.31 wording)."""
    if reason.__class__ is tuple:  # ("Pulled", seconds): pulled just now
        took = _go_seconds(reason[1])
        return (f'Successfully pulled image "{image}" in {took} ({took} including waiting). '
                f'Image size: {image_size(image)} bytes.')
    return {"Pulling": f'Pulling image "{image}"', "Pulled": f'Container image "{image}" already present on machine',
            "Created": f"Created container {container}", "Started": f"Started container {container}",
            "Killing": f"Stopping container {container}"}[reason]


@functools.lru_cache(maxsize=4096)
def field_path(container: str) -> str:
    return f"spec.containers{{{container}}}"


def _go_seconds(seconds: float) -> str:
    """Go's time.Duration text for a pull time: 850ms, 2.5s, 1m30s."""
    if seconds < 1:
        return f"{seconds * 1000:g}ms"
    if seconds < 60:
        return f"{seconds:g}s"
    return f"{int(seconds // 60)}m{seconds % 60:g}s"


@functools.lru_cache(maxsize=1024)
def image_size(image: str) -> int:
    """A stable made-up size for an image (the Pulled event says it): 2 to 500 MB."""
    return 2_000_000 + int(hashlib.sha256(image.encode()).hexdigest()[:8], 16) % 498_000_000


def _go_duration(seconds: float) -> str:
    """Go's time.Duration formatting for whole seconds: 10s, 1m20s, 5m0s."""
    seconds = int(seconds)
    return f"{seconds // 60}m{seconds % 60}s" if seconds >= 60 else f"{seconds}s"


def image_error_message(reason: str, image: str) -> str:
    if reason == "InvalidImageName":
        return f'Failed to apply default image tag "{image}": couldn\'t parse image name "{image}": invalid reference format'
    if reason == "ErrImageNeverPull":
        return f'Container image "{image}" is not present with pull policy of Never'
    return (f'failed to pull and unpack image "{image}": failed to resolve reference "{image}": '
            f'{image}: not found')


def container_error_message(reason: str) -> str:
    return {"CreateContainerConfigError": 'secret "task-secrets" not found',
            "CreateContainerError": "context deadline exceeded",
            "RunContainerError": "failed to create containerd task: failed to start shim"}[reason]
