"""What a simulated container writes to its log: when it started, how long the behaviour model
runs it, and how it ended (exit code, OOM kill, SIGTERM or SIGKILL).

Nothing is stored while pods run: the log of a container run is read off the pod's container
status (started, finished, exit code, reason) and the outcome drawn for the pod, when a client
asks for it. So logs cost nothing at scale, and a log always agrees with the status beside it.
"""

from __future__ import annotations

from dataclasses import dataclass

from .behaviour import Outcome

PULLING = ("ErrImagePull", "ImagePullBackOff")


@dataclass(frozen=True)
class ContainerLog:
    """The lines of one container run, as (RFC 3339 time, text); ``running``: more may come."""

    lines: tuple[tuple[str, str], ...]
    running: bool


class LogUnavailable(ValueError):
    """No log to give, in the kubelet's words (the API server answers 400 with it)."""


def container_log(pod: dict, container: str, previous: bool, outcome: Outcome | None) -> ContainerLog:
    """The log of ``container``'s current run (or, with ``previous``, its last finished one)."""
    name = pod["metadata"]["name"]
    status = next((s for s in pod.get("status", {}).get("containerStatuses") or [] if s.get("name") == container),
                  None)
    if status is None:  # not bound yet (or never reported): nothing to read, as on a real cluster
        return ContainerLog((), False)
    if previous:
        last = (status.get("lastState") or {}).get("terminated")
        if not last:
            raise LogUnavailable(f'previous terminated container "{container}" in pod "{name}" not found')
        return ContainerLog(_run_lines(pod, container, last, outcome, ended=True), False)
    state = status.get("state") or {}
    if "running" in state:
        return ContainerLog(_run_lines(pod, container, state["running"], outcome, ended=False), True)
    if "terminated" in state:
        terminated = state["terminated"]
        if terminated.get("reason") == "ContainerStatusUnknown":
            return ContainerLog((), False)   # it never ran: there is no log
        return ContainerLog(_run_lines(pod, container, terminated, outcome, ended=True), False)
    waiting = (state.get("waiting") or {}).get("reason", "ContainerCreating")
    if waiting == "CrashLoopBackOff" and (status.get("lastState") or {}).get("terminated"):
        return ContainerLog(_run_lines(pod, container, status["lastState"]["terminated"], outcome, ended=True), False)
    why = "trying and failing to pull image" if waiting in PULLING else waiting
    raise LogUnavailable(f'container "{container}" in pod "{name}" is waiting to start: {why}')


def _run_lines(pod: dict, container: str, state: dict, outcome: Outcome | None, ended: bool):
    image = next((c.get("image", "") for c in pod["spec"].get("containers") or [] if c.get("name") == container), "")
    started = state.get("startedAt") or state.get("finishedAt") or ""
    plan = f"; the behaviour model runs it for {_seconds(outcome.run_seconds)}" if outcome is not None else ""
    lines = [(started, f"kubesim: container {container} started ({image}){plan}")]
    if ended:
        lines.append((state.get("finishedAt") or started, _ending(state)))
    return tuple(lines)


def _ending(state: dict) -> str:
    code, reason = state.get("exitCode", 0), state.get("reason", "")
    if reason == "OOMKilled":
        return f"kubesim: out of memory: the kernel killed the process (exit code {code}, OOMKilled)"
    if code == 0:
        return "kubesim: finished (exit code 0)"
    if code == 143:
        return "kubesim: stopped by SIGTERM (exit code 143)"
    if code == 137:
        return "kubesim: killed by SIGKILL (exit code 137)"
    return f"kubesim: failed (exit code {code})"


def _seconds(value: float) -> str:
    return f"{value:g}s"
