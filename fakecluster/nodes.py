"""Nodes: resource quantities, capacity bookkeeping, and the Node objects the API serves."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

_QUANTITY = re.compile(r"^([0-9]+(?:\.[0-9]+)?)(m|k|M|G|T|Ki|Mi|Gi|Ti)?$")
_FACTORS = {None: 1, "k": 10**3, "M": 10**6, "G": 10**9, "T": 10**12,
            "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40}


def parse_quantity(value, unit: str = "") -> float:
    """A Kubernetes quantity ("500m", "2", "1.5Gi") as a number (cores or bytes)."""
    text = str(value).strip()
    match = _QUANTITY.match(text)
    if not match:
        raise ValueError(f"quantities must match the regular expression "
                         f"'^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$' (got {text!r}{unit})")
    number, suffix = float(match.group(1)), match.group(2)
    return number / 1000 if suffix == "m" else number * _FACTORS[suffix]


def pod_requests(pod: dict) -> tuple[float, float]:
    """(cpu cores, memory bytes) requested by a pod's containers."""
    cpu = memory = 0.0
    for container in pod["spec"].get("containers") or []:
        requests = (container.get("resources") or {}).get("requests") or {}
        cpu += parse_quantity(requests.get("cpu", 0))
        memory += parse_quantity(requests.get("memory", 0))
    return cpu, memory


@dataclass
class NodeState:
    """What the scheduler and kubelet know of one node."""

    name: str
    cpu: float
    memory: float
    max_pods: int
    labels: dict = field(default_factory=dict)
    used_cpu: float = 0.0
    used_memory: float = 0.0
    pods: set = field(default_factory=set)
    ready: bool = True          # False once the node is lost (kubelet gone)
    unschedulable: bool = False  # cordoned
    ip: str = "10.0.0.1"

    def misfit(self, cpu: float, memory: float, selector: dict) -> str | None:
        """Why a pod with these requests cannot land here (kube-scheduler's wording), or None."""
        if not self.ready:
            return "node(s) had untolerated taint {node.kubernetes.io/unreachable: }"
        if self.unschedulable:
            return "node(s) were unschedulable"
        if any(self.labels.get(k) != v for k, v in selector.items()):
            return "node(s) didn't match Pod's node affinity/selector"
        if len(self.pods) >= self.max_pods:
            return "Too many pods"
        if self.used_cpu + cpu > self.cpu + 1e-9:
            return "Insufficient cpu"
        if self.used_memory + memory > self.memory + 0.5:
            return "Insufficient memory"
        return None

    def take(self, key, cpu: float, memory: float) -> None:
        self.pods.add(key)
        self.used_cpu += cpu
        self.used_memory += memory

    def release(self, key, cpu: float, memory: float) -> None:
        if key in self.pods:
            self.pods.discard(key)
            self.used_cpu -= cpu
            self.used_memory -= memory


def node_object(state: NodeState, created: str) -> dict:
    capacity = {"cpu": f"{state.cpu:g}", "memory": f"{int(state.memory // 2**10)}Ki",
                "pods": str(state.max_pods)}
    return {
        "kind": "Node", "apiVersion": "v1",
        "metadata": {"name": state.name, "labels": state.labels, "creationTimestamp": created},
        "spec": {},
        "status": {
            "capacity": capacity, "allocatable": capacity,
            "conditions": [ready_condition(True, created)],
            "addresses": [{"type": "InternalIP", "address": state.ip},
                          {"type": "Hostname", "address": state.name}],
            "nodeInfo": {"kubeletVersion": "v1.31.0-kubesim", "operatingSystem": "linux",
                         "architecture": "amd64"},
        },
    }


def ready_condition(ready: bool | None, when: str) -> dict:
    status = {True: "True", False: "False", None: "Unknown"}[ready]
    reason = {True: "KubeletReady", False: "KubeletNotReady", None: "NodeStatusUnknown"}[ready]
    message = ("kubelet is posting ready status" if ready else "Kubelet stopped posting node status.")
    return {"type": "Ready", "status": status, "reason": reason, "message": message,
            "lastHeartbeatTime": when, "lastTransitionTime": when}
