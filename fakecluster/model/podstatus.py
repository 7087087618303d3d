"""Pod status shapes: core/v1 PodStatus as the kubelet writes it, one builder for each turn of a
pod's life (waiting, running, crash-looping, ready or not, finished, killed, evicted)."""

from __future__ import annotations

import functools
import hashlib

from .behaviour import Outcome
from .nodes import NodeState
from .scheduler import with_condition

EXIT_SIGTERM, EXIT_SIGKILL = 143, 137


def exit_of(outcome: Outcome) -> tuple[int, str]:
    if outcome.oom:
        return EXIT_SIGKILL, "OOMKilled"
    if outcome.exit_code == 0:
        return 0, "Completed"
    return outcome.exit_code, "Error"


@functools.lru_cache(maxsize=1024)  # a load runs the same few images
def image_id(image: str) -> str:
    digest = hashlib.sha256(image.encode()).hexdigest()
    name = image.split("@")[0].rsplit(":", 1)[0] if ":" in image.rsplit("/", 1)[-1] else image
    if "/" not in name:
        name = f"docker.io/library/{name}"
    elif "." not in name.split("/")[0] and ":" not in name.split("/")[0]:
        name = f"docker.io/{name}"
    return f"{name}@sha256:{digest}"


def _status(pod: dict, changes: dict) -> dict:
    return {**pod, "status": {**pod.get("status", {}), **changes}}


@functools.lru_cache(maxsize=4096)  # asked again at every status write of the same pod
def _container_id(uid: str) -> str:
    return "containerd://" + hashlib.sha256(uid.encode()).hexdigest()


def _container_statuses(pod: dict, state: dict, ready: bool = False, restarts: int = 0,
                        last_state: dict | None = None, image_ids: dict | None = None,
                        states: dict | None = None) -> list[dict]:
    """Every container in ``state``, but those ``states`` names (by container) in their own."""
    last_state, image_ids, started = last_state or {}, image_ids or {}, "running" in state
    container_id = _container_id(pod["metadata"]["uid"]) if "waiting" not in state or restarts else None
    statuses = []
    for c in pod["spec"]["containers"]:
        own = (states or {}).get(c["name"], state)
        status = {"name": c["name"], "state": own, "lastState": last_state, "ready": ready,
                  "restartCount": restarts, "image": c.get("image", ""),
                  "imageID": image_ids.get(c["name"], ""), "started": started}
        if container_id is not None:
            status["containerID"] = container_id
        statuses.append(status)
    return statuses


def _old_image_ids(pod: dict) -> dict[str, str]:
    """The image ids the last status reported, by container name."""
    return {s["name"]: s.get("imageID", "") for s in pod.get("status", {}).get("containerStatuses") or []}


def _conditions(pod: dict, when: str, wanted: tuple) -> list[dict]:
    """The pod's conditions with ``wanted`` (type, status, reason) triples set by type;
    lastTransitionTime moves only on a change."""
    conditions = list(pod.get("status", {}).get("conditions", ()))
    where = {}
    for i, condition in enumerate(conditions):
        where[condition["type"]] = i
    for kind, value, reason in wanted:
        i = where.get(kind)
        if i is not None and conditions[i]["status"] == value and conditions[i].get("reason") == reason:
            continue   # unchanged: the same dict serves (a stored object is never changed in place)
        condition = {"type": kind, "status": value, "lastProbeTime": None, "lastTransitionTime": when}
        if reason:
            condition["reason"] = reason
            if reason == "ContainersNotReady":
                condition["message"] = _unready_message(tuple(c["name"] for c in pod["spec"]["containers"]))
        if i is None:
            conditions.append(condition)
            continue
        if conditions[i]["status"] == value:
            condition["lastTransitionTime"] = conditions[i]["lastTransitionTime"]
        conditions[i] = condition
    return conditions


@functools.lru_cache(maxsize=256)   # one string for every pod with these containers, not one each
def _unready_message(names: tuple[str, ...]) -> str:
    return f"containers with unready status: [{' '.join(names)}]"


# the (type, status, reason) of the conditions the kubelet sets as the container starts, waits, ends
_STARTED = (("PodReadyToStartContainers", "True", None), ("Initialized", "True", None), ("Ready", "True", None),
            ("ContainersReady", "True", None))
_NOT_READY = (("PodReadyToStartContainers", "True", None), ("Initialized", "True", None),
              ("Ready", "False", "ContainersNotReady"), ("ContainersReady", "False", "ContainersNotReady"))
_COMPLETED = (("PodReadyToStartContainers", "False", None), ("Ready", "False", "PodCompleted"),
              ("ContainersReady", "False", "PodCompleted"))


def _placed(pod: dict, node: NodeState, ip: str, when: str) -> dict:
    """What the kubelet reports as soon as it admits the pod: host, sandbox IP, start time."""
    placed = {"hostIP": node.ip, "hostIPs": [{"ip": node.ip}],
              "startTime": pod.get("status", {}).get("startTime") or when}
    if ip:
        placed["podIP"], placed["podIPs"] = ip, [{"ip": ip}]
    return placed


# Each builder below makes the new status in one go: every part of it is computed from the pod
# as it was (spec, uid, old conditions), none from another part.

def waiting(pod: dict, node: NodeState, ip: str, when: str, reason: str, message: str,
            container: str | None = None) -> dict:
    """Pending, every container waiting for ``reason``, or only ``container`` (a sidecar that
    cannot start) while the others wait in ContainerCreating."""
    state = {"waiting": {"reason": reason, **({"message": message} if message else {})}}
    others = state if container is None else {"waiting": {"reason": "ContainerCreating"}}
    return _status(pod, {**_placed(pod, node, ip, when), "phase": "Pending",
                         "containerStatuses": _container_statuses(pod, others, states={container: state}),
                         "conditions": _conditions(pod, when, _NOT_READY)})


def running(pod: dict, node: NodeState, ip: str, started: str, restarts: int = 0,
            last_state: dict | None = None) -> dict:
    """The container started: its image ids are those of the images in the spec."""
    state = {"running": {"startedAt": started}}
    image_ids = {c["name"]: image_id(c.get("image", "")) for c in pod["spec"].get("containers") or []}
    return _status(pod, {**_placed(pod, node, ip, started), "phase": "Running",
                         "containerStatuses": _container_statuses(pod, state, True, restarts, last_state, image_ids),
                         "conditions": _conditions(pod, started, _STARTED)})


def crash_looping(pod: dict, message: str, restarts: int, last_state: dict, when: str) -> dict:
    state = {"waiting": {"reason": "CrashLoopBackOff", "message": message}}
    return _status(pod, {"phase": "Running",
                         "containerStatuses": _container_statuses(pod, state, False, restarts, last_state,
                                                                  _old_image_ids(pod)),
                         "conditions": _conditions(pod, when, _NOT_READY)})


def ready(pod: dict, is_ready: bool, when: str) -> dict:
    """The node controller's (or a returning kubelet's) verdict on a running pod's readiness."""
    if is_ready:
        conditions = _conditions(pod, when, (("Ready", "True", None), ("ContainersReady", "True", None)))
    else:
        conditions = _conditions(pod, when, (("Ready", "False", None),))
    return _status(pod, {"conditions": conditions})


def terminated_state(uid: str, code: int, reason: str, started, ended: str, message: str | None = None) -> dict:
    state = {"exitCode": code, "reason": reason, "startedAt": started or ended, "finishedAt": ended,
             "containerID": _container_id(uid)}
    if message:
        state["message"] = message
    return {"terminated": state}


def _terminated(pod: dict, phase: str, code: int, why: str, started, ended: str, restarts: int = 0,
                last_state: dict | None = None, container_message: str | None = None, **extra) -> dict:
    state = terminated_state(pod["metadata"]["uid"], code, why, started, ended, container_message)
    return _status(pod, {"phase": phase,
                         "containerStatuses": _container_statuses(pod, state, False, restarts, last_state,
                                                                  _old_image_ids(pod)),
                         **extra, "conditions": _conditions(pod, ended, _COMPLETED)})


def finished(pod: dict, outcome: Outcome, started: str, ended: str, restarts: int = 0,
             last_state: dict | None = None) -> dict:
    code, reason = exit_of(outcome)
    phase = "Succeeded" if code == 0 else "Failed"
    return _terminated(pod, phase, code, reason, started, ended, restarts, last_state)


def killed(pod: dict, code: int, started, ended: str, restarts: int = 0, last_state: dict | None = None) -> dict:
    """Stopped for a deletion: the kubelet sets the terminal phase before the final delete."""
    phase = pod.get("status", {}).get("phase")
    if phase in ("Succeeded", "Failed"):
        return pod
    if started is None and last_state:  # between two runs of a crash-looping container
        last = last_state["terminated"]
        return _terminated(pod, "Failed", last["exitCode"], last["reason"], last["startedAt"],
                           last["finishedAt"], restarts, last_state)
    if started is None:  # the container never ran (still pulling, or failing to start)
        return _terminated(pod, "Failed", EXIT_SIGKILL, "ContainerStatusUnknown", None, ended, restarts,
                           last_state, "The container could not be located when the pod was terminated")
    return _terminated(pod, "Failed", code, "Error", started, ended, restarts, last_state)


def evicted(pod: dict, message: str, started, ended: str) -> dict:
    pod = _terminated(pod, "Failed", EXIT_SIGKILL, "Error", started, ended, reason="Evicted", message=message)
    return with_condition(pod, {"type": "DisruptionTarget", "status": "True", "lastProbeTime": None,
                                "lastTransitionTime": ended, "reason": "TerminationByKubelet",
                                "message": message})
