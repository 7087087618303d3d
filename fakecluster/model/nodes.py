"""Nodes: resource quantities, capacity bookkeeping, and the Node objects the API serves."""

from __future__ import annotations

import functools
import hashlib
import re
import uuid
from dataclasses import dataclass, field

_QUANTITY = re.compile(r"^([+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+))"
                       r"(?:(n|u|m|k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei)|[eE]([+-]?[0-9]+))?$")
_FACTORS = {None: 1, "n": 1e-9, "u": 1e-6, "m": 1e-3, "k": 10**3, "M": 10**6, "G": 10**9,
            "T": 10**12, "P": 10**15, "E": 10**18, "Ki": 2**10, "Mi": 2**20, "Gi": 2**30,
            "Ti": 2**40, "Pi": 2**50, "Ei": 2**60}


def parse_quantity(value, unit: str = "") -> float:
    """A Kubernetes quantity ("500m", "2", "1.5Gi", "1e3") as a number (cores or bytes)."""
    if value.__class__ is str:  # the usual case, first
        return _parse_text(value, unit)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    return _parse_text(str(value), unit)


@functools.lru_cache(maxsize=1024)  # a load asks for the same few sizes over and over
def _parse_text(value: str, unit: str) -> float:
    text = value.strip()
    match = _QUANTITY.match(text)
    if not match:
        raise ValueError(f"quantities must match the regular expression "
                         f"'^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$' (got {text!r}{unit})")
    number, suffix, exponent = float(match.group(1)), match.group(2), match.group(3)
    if exponent is not None:
        return number * 10 ** int(exponent)
    return number * _FACTORS[suffix]


def pod_requests(pod: dict) -> tuple[float, float]:
    """(cpu cores, memory bytes) requested by a pod's containers.

    As kube-scheduler computes it: the sum over containers, or the largest init container if
    that is more; a container with limits but no requests requests its limits.
    """
    spec = pod["spec"]
    cpu = memory = 0
    for container in spec.get("containers") or []:
        container_cpu, container_memory = _container_requests(container)
        cpu, memory = cpu + container_cpu, memory + container_memory
    for init in spec.get("initContainers") or []:
        init_cpu, init_memory = _container_requests(init)
        cpu, memory = max(cpu, init_cpu), max(memory, init_memory)
    return cpu, memory


def _container_requests(container: dict) -> tuple[float, float]:
    resources = container.get("resources") or {}
    requests = {**(resources.get("limits") or {}), **(resources.get("requests") or {})}
    return parse_quantity(requests.get("cpu", 0)), parse_quantity(requests.get("memory", 0))


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
    ready: bool = True           # False once the node is lost (its kubelet stops reporting)
    unschedulable: bool = False  # cordoned (spec.unschedulable)
    taints: list = field(default_factory=list)   # spec.taints of the Node object
    ip: str = "10.0.0.1"
    generation: int = 0          # bumped on every loss and return, so stale timers do nothing

    def misfit(self, cpu: float, memory: float, placement=None) -> tuple[str, ...]:
        """Why a pod with these requests cannot land here, in kube-scheduler's words ("" tuple: it fits).

        Filters run in kube-scheduler's default order (NodeUnschedulable, TaintToleration,
        NodeAffinity, NodeResourcesFit) and stop at the first that fails, except
        NodeResourcesFit, which reports every resource that is short.
        """
        if placement is not None and (self.unschedulable or self.taints or placement.selector
                                      or placement.has_terms):
            refusal = placement.refusal(self)
            if refusal is not None:
                return (refusal,)
        short = ()
        if len(self.pods) + 1 > self.max_pods:
            short += ("Too many pods",)
        if self.used_cpu + cpu > self.cpu + 1e-9:
            short += ("Insufficient cpu",)
        if self.used_memory + memory > self.memory + 0.5:
            short += ("Insufficient memory",)
        return short

    def take(self, key, cpu: float, memory: float) -> None:
        if key in self.pods:
            return
        self.pods.add(key)
        self.used_cpu += cpu
        self.used_memory += memory

    def release(self, key, cpu: float, memory: float) -> None:
        if key in self.pods:
            self.pods.discard(key)
            self.used_cpu -= cpu
            self.used_memory -= memory


def _stable_id(name: str, salt: str) -> str:
    return hashlib.sha256(f"{salt}:{name}".encode()).hexdigest()[:32]


def node_info(name: str) -> dict:
    """NodeSystemInfo: every field is required by the client's models (37.x validates them)."""
    machine = _stable_id(name, "machine")
    return {"architecture": "amd64", "bootID": str(uuid.UUID(_stable_id(name, "boot"))),
            "containerRuntimeVersion": "containerd://1.7.22", "kernelVersion": "6.1.0-kubesim",
            "kubeProxyVersion": "v1.31.0", "kubeletVersion": "v1.31.0-kubesim", "machineID": machine,
            "operatingSystem": "linux", "osImage": "kubesim virtual node",
            "systemUUID": str(uuid.UUID(machine))}


def node_object(state: NodeState, created: str) -> dict:
    capacity = {"cpu": f"{state.cpu:g}", "memory": f"{int(state.memory // 2**10)}Ki",
                "pods": str(state.max_pods)}
    return {
        "kind": "Node", "apiVersion": "v1",
        "metadata": {"name": state.name, "uid": str(uuid.UUID(_stable_id(state.name, "uid"))),
                     "labels": state.labels, "creationTimestamp": created},
        "spec": {},
        "status": {
            "capacity": capacity, "allocatable": capacity,
            "conditions": [ready_condition(True, created)],
            "addresses": [{"type": "InternalIP", "address": state.ip},
                          {"type": "Hostname", "address": state.name}],
            "nodeInfo": node_info(state.name),
        },
    }


def ready_condition(ready: bool | None, when: str) -> dict:
    status = {True: "True", False: "False", None: "Unknown"}[ready]
    reason = {True: "KubeletReady", False: "KubeletNotReady", None: "NodeStatusUnknown"}[ready]
    message = ("kubelet is posting ready status" if ready else "Kubelet stopped posting node status.")
    return {"type": "Ready", "status": status, "reason": reason, "message": message,
            "lastHeartbeatTime": when, "lastTransitionTime": when}
