"""meta.k8s.io/v1 Table output, as kube-apiserver serves it to ``kubectl get``.

kubectl asks with ``Accept: application/json;as=Table;v=v1;g=meta.k8s.io,...``; the server
prints the columns and kubectl only lays them out. Pods get kube-apiserver's printer columns
and status text (ContainerCreating, ErrImagePull, CrashLoopBackOff, Completed, OOMKilled,
Terminating, ...); nodes, namespaces and events get their usual columns; anything else gets
the default Name and Created At. Columns with priority 1 show with ``-o wide``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Callable

import orjson

META_V1 = "meta.k8s.io/v1"
INCLUDE_CHOICES = ("None", "Metadata", "Object")


def wants_table(accept: str) -> str | None:
    """The Table apiVersion the Accept header asks for (v1 first), or None."""
    for part in accept.split(","):
        params = dict(p.strip().partition("=")[::2] for p in part.split(";")[1:])
        if params.get("as") == "Table" and params.get("g") == "meta.k8s.io" and params.get("v") in ("v1", "v1beta1"):
            return f"meta.k8s.io/{params['v']}"
    return None


def column(name: str, description: str, priority: int = 0, type_: str = "string", format_: str = "") -> dict:
    return {"name": name, "type": type_, "format": format_, "description": description, "priority": priority}


NAME = column("Name", "Name of the object, unique within its namespace.", format_="name")
AGE = column("Age", "Time since the object was created.")


def table(obj: dict, now: datetime, include: str = "Metadata", api_version: str = META_V1) -> dict:
    """A list or a single object as a Table (one row per object)."""
    items = obj["items"] if "items" in obj else [obj]
    kind = obj.get("kind", "")
    kind = kind[:-4] if kind.endswith("List") and "items" in obj else kind
    columns, cells_of = PRINTERS.get(kind, (DEFAULT_COLUMNS, default_cells))
    meta = {k: v for k, v in (obj.get("metadata") or {}).items()
            if k in ("resourceVersion", "continue", "remainingItemCount")}
    rows = [row(item, cells_of(item, now), include) for item in items]
    return {"kind": "Table", "apiVersion": api_version, "metadata": meta,
            "columnDefinitions": columns, "rows": rows}


def row(obj: dict, cells: list, include: str) -> dict:
    entry: dict = {"cells": cells}
    phase = (obj.get("status") or {}).get("phase") if obj.get("kind") == "Pod" else None
    if phase in ("Succeeded", "Failed"):
        entry["conditions"] = [{"type": "Completed", "status": "True", "reason": phase,
                                "message": "The pod has completed successfully." if phase == "Succeeded"
                                else "The pod failed."}]
    if include == "Object":
        entry["object"] = obj
    elif include != "None":
        entry["object"] = {"kind": "PartialObjectMetadata", "apiVersion": META_V1,
                           "metadata": obj.get("metadata") or {}}
    return entry


def watch_line(line: bytes, now: datetime, include: str = "Metadata", api_version: str = META_V1) -> bytes:
    """One watch event with its object as a one-row Table (ERROR events pass unchanged)."""
    event = orjson.loads(line)
    obj = event.get("object") or {}
    if event.get("type") == "ERROR" or obj.get("kind") == "Status":
        return line
    if event.get("type") == "BOOKMARK":
        converted = {"kind": "Table", "apiVersion": api_version,
                     "metadata": {"resourceVersion": (obj.get("metadata") or {}).get("resourceVersion", "")},
                     "columnDefinitions": [], "rows": []}
    else:
        converted = table(obj, now, include, api_version)
    return b'{"type":"%s","object":%s}\n' % (event["type"].encode(), orjson.dumps(converted))


# -- ages ----------------------------------------------------------------------------------------

def parse_time(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None


def age(text: str | None, now: datetime) -> str:
    """translateTimestampSince: how long ago, in kubectl's short human form."""
    then = parse_time(text)
    return "<unknown>" if then is None else human_duration((now - then).total_seconds())


def human_duration(seconds: float) -> str:
    """duration.HumanDuration (k8s.io/apimachinery): 45s, 3m20s, 15m, 5h3m, 12h, 3d4h, 20d, 2y30d."""
    s = int(seconds)
    if s < -1:
        return "<invalid>"
    if s < 0:
        return "0s"
    if s < 120:
        return f"{s}s"
    minutes = s // 60
    if minutes < 10:
        return f"{minutes}m" if s % 60 == 0 else f"{minutes}m{s % 60}s"
    if minutes < 180:
        return f"{minutes}m"
    hours = s // 3600
    if hours < 8:
        return f"{hours}h" if minutes % 60 == 0 else f"{hours}h{minutes % 60}m"
    if hours < 48:
        return f"{hours}h"
    days = hours // 24
    if hours < 24 * 8:
        return f"{days}d" if hours % 24 == 0 else f"{days}d{hours % 24}h"
    if hours < 24 * 365 * 2:
        return f"{days}d"
    years, rest = days // 365, days % 365
    if hours < 24 * 365 * 8:
        return f"{years}y" if rest == 0 else f"{years}y{rest}d"
    return f"{years}y"


# -- pods ----------------------------------------------------------------------------------------

POD_COLUMNS = [
    NAME,
    column("Ready", "Ready containers out of all containers."),
    column("Status", "The pod's state as kubectl words it (phase, or the reason a container gives)."),
    column("Restarts", "Container restarts, with how long ago the last one was.", type_="string"),
    AGE,
    column("IP", "The pod's IP address.", priority=1),
    column("Node", "The node the pod is bound to.", priority=1),
    column("Nominated Node", "The node the scheduler nominated for preemption.", priority=1),
    column("Readiness Gates", "Readiness gates that are true, out of all.", priority=1),
]


def pod_cells(pod: dict, now: datetime) -> list:
    meta, spec, status = pod.get("metadata") or {}, pod.get("spec") or {}, pod.get("status") or {}
    reason, ready, restarts, last_restart = pod_status(pod)
    restarts_text = str(restarts)
    if restarts and last_restart:
        restarts_text = f"{restarts} ({age(last_restart, now)} ago)"
    ips = status.get("podIPs") or []
    ip = (ips[0].get("ip") if ips else status.get("podIP")) or "<none>"
    gates = spec.get("readinessGates") or []
    gates_text = "<none>"
    if gates:
        true = {c.get("type") for c in status.get("conditions") or [] if c.get("status") == "True"}
        gates_text = f"{sum(1 for g in gates if g.get('conditionType') in true)}/{len(gates)}"
    return [meta.get("name", ""), f"{ready}/{len(spec.get('containers') or [])}", reason, restarts_text,
            age(meta.get("creationTimestamp"), now), ip, spec.get("nodeName") or "<none>",
            status.get("nominatedNodeName") or "<none>", gates_text]


def pod_status(pod: dict) -> tuple[str, int, int, str | None]:
    """(status text, ready containers, restarts, last restart time) as kubectl's printer derives them."""
    meta, spec, status = pod.get("metadata") or {}, pod.get("spec") or {}, pod.get("status") or {}
    phase = status.get("phase") or ""
    reason = status.get("reason") or phase
    conditions = status.get("conditions") or []
    if any(c.get("type") == "PodScheduled" and c.get("reason") == "SchedulingGated" for c in conditions):
        reason = "SchedulingGated"
    reason, initializing = init_status(spec, status, reason)
    ready = restarts = 0
    last_restart = None
    initialized = any(c.get("type") == "Initialized" and c.get("status") == "True" for c in conditions)
    if not initializing or initialized:
        has_running = False
        for container in reversed(status.get("containerStatuses") or []):
            restarts += int(container.get("restartCount") or 0)
            finished = ((container.get("lastState") or {}).get("terminated") or {}).get("finishedAt")
            if finished and (last_restart is None or finished > last_restart):
                last_restart = finished
            state = container.get("state") or {}
            waiting, terminated = state.get("waiting"), state.get("terminated")
            if waiting and waiting.get("reason"):
                reason = waiting["reason"]
            elif terminated and terminated.get("reason"):
                reason = terminated["reason"]
            elif terminated:
                signal = terminated.get("signal")
                reason = f"Signal:{signal}" if signal else f"ExitCode:{terminated.get('exitCode', 0)}"
            elif container.get("ready") and state.get("running") is not None:
                has_running = True
                ready += 1
        if reason == "Completed" and has_running:
            pod_ready = any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)
            reason = "Running" if pod_ready else "NotReady"
    if meta.get("deletionTimestamp"):
        if status.get("reason") == "NodeLost":
            reason = "Unknown"
        elif phase not in ("Succeeded", "Failed"):
            reason = "Terminating"
    return reason, ready, restarts, last_restart


def init_status(spec: dict, status: dict, reason: str) -> tuple[str, bool]:
    """The status text while init containers run: Init:0/2, Init:ErrImagePull, Init:ExitCode:1."""
    init_specs = spec.get("initContainers") or []
    for i, container in enumerate(status.get("initContainerStatuses") or []):
        state = container.get("state") or {}
        terminated, waiting = state.get("terminated"), state.get("waiting")
        if terminated and terminated.get("exitCode") == 0:
            continue
        if terminated:
            if terminated.get("reason"):
                return f"Init:{terminated['reason']}", True
            signal = terminated.get("signal")
            return (f"Init:Signal:{signal}" if signal else f"Init:ExitCode:{terminated.get('exitCode')}"), True
        if waiting and waiting.get("reason") and waiting["reason"] != "PodInitializing":
            return f"Init:{waiting['reason']}", True
        return f"Init:{i}/{len(init_specs)}", True
    return reason, False


# -- other kinds ---------------------------------------------------------------------------------

NODE_COLUMNS = [
    NAME,
    column("Status", "Ready, NotReady or Unknown, and SchedulingDisabled when cordoned."),
    column("Roles", "The node's roles, from its node-role.kubernetes.io labels."),
    AGE,
    column("Version", "The kubelet's version."),
    column("Internal-IP", "The node's internal address.", priority=1),
    column("External-IP", "The node's external address.", priority=1),
    column("OS-Image", "The node's OS image.", priority=1),
    column("Kernel-Version", "The node's kernel version.", priority=1),
    column("Container-Runtime", "The node's container runtime.", priority=1),
]


def node_cells(node: dict, now: datetime) -> list:
    meta, spec, status = node.get("metadata") or {}, node.get("spec") or {}, node.get("status") or {}
    ready = next((c.get("status") for c in status.get("conditions") or [] if c.get("type") == "Ready"), None)
    text = {"True": "Ready", "False": "NotReady"}.get(ready, "Unknown")
    if spec.get("unschedulable"):
        text += ",SchedulingDisabled"
    prefix = "node-role.kubernetes.io/"
    roles = sorted(k[len(prefix):] for k in meta.get("labels") or {} if k.startswith(prefix)) or ["<none>"]
    addresses = {a.get("type"): a.get("address") for a in status.get("addresses") or []}
    info = status.get("nodeInfo") or {}
    return [meta.get("name", ""), text, ",".join(roles), age(meta.get("creationTimestamp"), now),
            info.get("kubeletVersion", ""), addresses.get("InternalIP", "<none>"),
            addresses.get("ExternalIP", "<none>"), info.get("osImage") or "<unknown>",
            info.get("kernelVersion") or "<unknown>", info.get("containerRuntimeVersion") or "<unknown>"]


NAMESPACE_COLUMNS = [NAME, column("Status", "Active or Terminating."), AGE]


def namespace_cells(namespace: dict, now: datetime) -> list:
    meta = namespace.get("metadata") or {}
    return [meta.get("name", ""), (namespace.get("status") or {}).get("phase", ""),
            age(meta.get("creationTimestamp"), now)]


EVENT_COLUMNS = [
    column("Last Seen", "Time since the event was last seen."),
    column("Type", "Normal or Warning."),
    column("Reason", "Why the event happened, in one word."),
    column("Object", "The object the event is about."),
    column("Message", "What happened."),
]


def event_cells(event: dict, now: datetime) -> list:
    involved = event.get("involvedObject") or {}
    last = event.get("lastTimestamp") or event.get("eventTime") or (event.get("metadata") or {}).get("creationTimestamp")
    count = event.get("count") or 1
    seen = age(last, now)
    if count > 1:
        seen = f"{seen} (x{count} over {age(event.get('firstTimestamp'), now)})"
    return [seen, event.get("type", ""), event.get("reason", ""),
            f"{(involved.get('kind') or '').lower()}/{involved.get('name', '')}", event.get("message", "")]


DEFAULT_COLUMNS = [NAME, column("Created At", "When the object was created.", type_="date")]


def default_cells(obj: dict, now: datetime) -> list:
    meta = obj.get("metadata") or {}
    return [meta.get("name", ""), meta.get("creationTimestamp", "")]


PRINTERS: dict[str, tuple[list, Callable[[dict, datetime], list]]] = {
    "Pod": (POD_COLUMNS, pod_cells),
    "Node": (NODE_COLUMNS, node_cells),
    "Namespace": (NAMESPACE_COLUMNS, namespace_cells),
    "Event": (EVENT_COLUMNS, event_cells),
}
