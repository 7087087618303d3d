"""What a pod event means for its task try: the watcher's event-to-state mapping.

Works on the pod as a plain JSON dict (the watch's raw object), so the model-object and the
raw-event paths share one mapping. Differences from upstream's ``process_status``:

* Pending + DELETED (with deletionTimestamp) fails the try at once (upstream now leaves it
  QUEUED until ``task_queued_timeout``): the pod is gone, nothing will ever run it.
* The fatal container check looks at every container status, init containers first.
"""

from __future__ import annotations

from typing import NamedTuple

from .keys import State

DONE_LABEL = "airflow_executor_done"
REVOKED_LABEL = "airflow_pod_revoked"
PULL_QPS_EXCEEDED = "pull QPS exceeded"   # a throttled pull retries by itself; not fatal


class Verdict(NamedTuple):
    state: str | None   # None: the pod succeeded; the task's own report in the store decides
    reason: str


def verdict(event_type: str, pod: dict, fatal_reasons: frozenset[str]) -> Verdict | None:
    """The state to report for this event, or None when there is nothing to report."""
    meta, status = pod["metadata"], pod.get("status") or {}
    if REVOKED_LABEL in (meta.get("labels") or {}):
        return None
    deleted = event_type == "DELETED"
    if deleted and not meta.get("deletionTimestamp"):
        # Left our label selector without being deleted: another scheduler adopted it
        # (or we labelled it done ourselves).
        return Verdict(State.ADOPTED, "pod left this scheduler's selector")
    phase = status.get("phase")
    if status.get("reason") == "ProviderFailed":
        return Verdict(State.FAILED, failure_reason(pod))
    if phase == "Pending":
        if deleted:
            return Verdict(State.FAILED, "pod deleted while Pending: " + failure_reason(pod))
        fatal = fatal_container_reason(status, fatal_reasons)
        return Verdict(State.FAILED, fatal) if fatal else None
    if phase == "Failed":
        return Verdict(State.FAILED, failure_reason(pod))
    if phase == "Succeeded":
        return Verdict(None, "pod succeeded")
    if phase == "Running":
        if deleted:
            return Verdict(State.FAILED, "pod deleted before it could complete")
        return Verdict(State.RUNNING, "pod running")
    return None


def fatal_container_reason(status: dict, fatal_reasons: frozenset[str]) -> str | None:
    for container in (status.get("initContainerStatuses") or []) + (status.get("containerStatuses") or []):
        waiting = (container.get("state") or {}).get("waiting") or {}
        reason = waiting.get("reason")
        if reason in fatal_reasons and not (reason == "ErrImagePull" and waiting.get("message") == PULL_QPS_EXCEEDED):
            return f"container {container.get('name')} cannot start: {reason}: {waiting.get('message', '')}".rstrip(": ")
    return None


def failure_reason(pod: dict) -> str:
    """Phase, reason and message, with the container that explains the failure."""
    status = pod.get("status") or {}
    parts = [f"phase={status.get('phase')}"]
    if status.get("reason"):
        parts.append(f"reason={status['reason']}")
    if status.get("message"):
        parts.append(f"message={status['message'].strip()}")
    containers = (status.get("initContainerStatuses") or []) + (status.get("containerStatuses") or [])
    for container in containers:
        ended = (container.get("state") or {}).get("terminated") or {}
        if ended and ended.get("exitCode", 0) != 0 and ended.get("reason") != "Completed":
            parts.append(f"container {container.get('name')} exited {ended.get('exitCode')} ({ended.get('reason')})")
            break
    else:
        waiting = [c for c in containers if (c.get("state") or {}).get("waiting")]
        if waiting:
            parts.append(f"container {waiting[-1].get('name')} waiting: {waiting[-1]['state']['waiting'].get('reason')}")
    return ", ".join(parts)


def container_reason(status: dict) -> str:
    """Why the pod's task container is not running: the reason of the first container that
    ended badly (e.g. Error, OOMKilled), else of one still waiting (e.g. ErrImagePull), else the
    pod's own reason (e.g. Evicted)."""
    containers = (status.get("initContainerStatuses") or []) + (status.get("containerStatuses") or [])
    for container in containers:
        ended = (container.get("state") or {}).get("terminated") or {}
        if ended and ended.get("exitCode", 0) != 0:
            return ended.get("reason") or "Error"
    for container in containers:
        waiting = (container.get("state") or {}).get("waiting") or {}
        if waiting.get("reason"):
            return waiting["reason"]
    return status.get("reason") or ""
