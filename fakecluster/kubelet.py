"""The kubelets: each bound pod's life, from image pull to a terminal phase, and its deletion.

One simpy process per bound pod walks the pod through its ``Outcome``: image pull (or a pull
error that keeps it Pending with ErrImagePull / ImagePullBackOff back-off), container creation
(or a creation error), Running, and the container's exit (Completed, Error, OOMKilled). A
graceful deletion interrupts it: containers stop, the pod turns terminal, then it is removed.
"""

from __future__ import annotations

from typing import Callable

import simpy

from .behaviour import Outcome
from .nodes import NodeState
from .scheduler import with_condition
from .store import ResourceStore

BACKOFF_START, BACKOFF_CAP = 10.0, 300.0
EXIT_SIGTERM, EXIT_SIGKILL = 143, 137


class Kubelets:
    """Every node's kubelet, as one object: pods are independent of each other here."""

    def __init__(self, env: simpy.Environment, pods: ResourceStore, timestamp: Callable[..., str],
                 on_finished: Callable[[tuple], None]):
        self.env, self.pods, self.timestamp = env, pods, timestamp
        self.on_finished = on_finished     # frees the pod's room on its node
        self.lives: dict[tuple, simpy.Process] = {}
        self._ips = 0

    def start(self, pod: dict, node: NodeState, outcome: Outcome) -> None:
        key = (pod["metadata"]["namespace"], pod["metadata"]["name"])
        self.lives[key] = self.env.process(self._life(key, node, outcome))

    def terminate(self, key: tuple, grace: float) -> None:
        """The API server marked the pod for graceful deletion."""
        life = self.lives.get(key)
        if life is not None and life.is_alive:
            life.interrupt(("delete", grace))
        elif life is None:  # not running here (finished, or its node is gone): just remove it
            self.env.process(self._remove_after(key, 0))

    def evict(self, key: tuple, message: str) -> None:
        life = self.lives.get(key)
        if life is not None and life.is_alive:
            life.interrupt(("evict", message))

    def freeze(self, key: tuple) -> None:
        """The node is gone: nothing more happens to this pod until the node returns."""
        life = self.lives.pop(key, None)
        if life is not None and life.is_alive:
            life.interrupt(("freeze", None))

    def forget(self, key: tuple) -> None:
        life = self.lives.pop(key, None)
        if life is not None and life.is_alive:
            life.interrupt(("forget", None))
        self.on_finished(key)

    # -- the life of one pod -------------------------------------------------------------------

    def _life(self, key, node: NodeState, outcome: Outcome):
        started = None
        try:
            yield from self._pull_and_create(key, outcome)
            started = self.timestamp()
            self._write(key, lambda p: running(p, node, self._next_ip(), started))
            yield self.env.timeout(outcome.run_seconds)
            self._write(key, lambda p: finished(p, outcome, started, self.timestamp()))
            self.lives.pop(key, None)
            self.on_finished(key)
        except simpy.Interrupt as interrupt:
            what, detail = interrupt.cause
            if what == "delete":
                yield from self._stop(key, outcome, started, detail)
            elif what == "evict":
                self._write(key, lambda p: evicted(p, detail, started, self.timestamp()))
                self.lives.pop(key, None)
                self.on_finished(key)

    def _pull_and_create(self, key, outcome: Outcome):
        if outcome.pull_seconds:
            self._write(key, lambda p: waiting(p, "ContainerCreating", ""))
            yield self.env.timeout(outcome.pull_seconds)
        if outcome.image_error:
            yield from self._image_backoff(key, outcome.image_error)
        if outcome.container_error:
            self._write(key, lambda p: waiting(p, outcome.container_error, container_error_message(outcome.container_error)))
            yield self.env.event()  # never starts; only deletion ends this

    def _image_backoff(self, key, error: str):
        image = lambda p: p["spec"]["containers"][0].get("image", "")
        if error in ("InvalidImageName", "ErrImageNeverPull"):  # no retry can fix these
            self._write(key, lambda p: waiting(p, error, image_error_message(error, image(p))))
            yield self.env.event()
        backoff = BACKOFF_START
        while True:
            self._write(key, lambda p: waiting(p, "ErrImagePull", image_error_message("ErrImagePull", image(p))))
            yield self.env.timeout(1.0)
            self._write(key, lambda p: waiting(p, "ImagePullBackOff", f'Back-off pulling image "{image(p)}"'))
            yield self.env.timeout(backoff)
            backoff = min(backoff * 2, BACKOFF_CAP)

    def _stop(self, key, outcome: Outcome, started, grace: float):
        stop = min(outcome.stop_seconds, grace)
        if stop:
            yield self.env.timeout(stop)
        code = EXIT_SIGTERM if outcome.stop_seconds <= grace else EXIT_SIGKILL
        self._write(key, lambda p: killed(p, code, started, self.timestamp()))
        self.lives.pop(key, None)
        self.on_finished(key)
        yield from self._remove_after(key, 0)

    def _remove_after(self, key, delay: float):
        if delay:
            yield self.env.timeout(delay)
        if self.pods.get(*key) is not None:
            self.pods.remove(*key)
        self.on_finished(key)

    def _write(self, key, mutate) -> None:
        self.pods.update(*key, mutate)

    def _next_ip(self) -> str:
        self._ips += 1
        return f"10.{(self._ips >> 16) & 255}.{(self._ips >> 8) & 255}.{self._ips & 255}"


# -- status shapes (core/v1 PodStatus as the kubelet writes it) -----------------------------------

def _status(pod: dict, **changes) -> dict:
    return {**pod, "status": {**pod.get("status", {}), **changes}}


def _container_statuses(pod: dict, state: dict, ready: bool = False, restarts: int = 0) -> list[dict]:
    return [{"name": c["name"], "image": c.get("image", ""), "imageID": "", "ready": ready,
             "restartCount": restarts, "started": "running" in state, "state": state}
            for c in pod["spec"]["containers"]]


def waiting(pod: dict, reason: str, message: str) -> dict:
    state = {"waiting": {"reason": reason, **({"message": message} if message else {})}}
    return _status(pod, phase="Pending", containerStatuses=_container_statuses(pod, state))


def running(pod: dict, node: NodeState, ip: str, started: str) -> dict:
    state = {"running": {"startedAt": started}}
    pod = _status(pod, phase="Running", hostIP=node.ip, podIP=ip, podIPs=[{"ip": ip}],
                  startTime=started, containerStatuses=_container_statuses(pod, state, ready=True))
    for kind in ("Initialized", "ContainersReady", "Ready"):
        pod = with_condition(pod, {"type": kind, "status": "True", "lastProbeTime": None,
                                   "lastTransitionTime": started})
    return pod


def _terminated(pod: dict, phase: str, code: int, reason: str, started, ended: str, **extra) -> dict:
    state = {"terminated": {"exitCode": code, "reason": reason, "startedAt": started or ended,
                            "finishedAt": ended, "containerID": f"containerd://{pod['metadata']['uid']}"}}
    pod = _status(pod, phase=phase, containerStatuses=_container_statuses(pod, state), **extra)
    for kind in ("ContainersReady", "Ready"):
        pod = with_condition(pod, {"type": kind, "status": "False", "lastProbeTime": None,
                                   "lastTransitionTime": ended, "reason": "PodCompleted"})
    return pod


def finished(pod: dict, outcome: Outcome, started: str, ended: str) -> dict:
    if outcome.oom:
        return _terminated(pod, "Failed", EXIT_SIGKILL, "OOMKilled", started, ended)
    if outcome.exit_code == 0:
        return _terminated(pod, "Succeeded", 0, "Completed", started, ended)
    return _terminated(pod, "Failed", outcome.exit_code, "Error", started, ended)


def killed(pod: dict, code: int, started, ended: str) -> dict:
    phase = pod.get("status", {}).get("phase")
    if phase in ("Succeeded", "Failed"):
        return pod
    return _terminated(pod, "Failed", code, "Error", started, ended)


def evicted(pod: dict, message: str, started, ended: str) -> dict:
    pod = _terminated(pod, "Failed", EXIT_SIGKILL, "Error", started, ended, reason="Evicted", message=message)
    return with_condition(pod, {"type": "DisruptionTarget", "status": "True", "lastProbeTime": None,
                                "lastTransitionTime": ended, "reason": "TerminationByKubelet",
                                "message": message})


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
