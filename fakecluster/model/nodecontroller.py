"""Node objects written through the API reach the cluster model, as on a real cluster.

The node lifecycle controller's part: ``spec.unschedulable`` (kubectl cordon) gets the
``node.kubernetes.io/unschedulable:NoSchedule`` taint, and the scheduler sees the change;
taints and labels changed through the API steer scheduling; a Node created through the API is
taken up by a simulated kubelet that registers it (as kwok does: capacity from its status, or
the cluster's default node size); a Node deleted through the API has its pods garbage-collected.

The taint manager's part: a pod on a node with a NoExecute taint it does not tolerate is
deleted at once, one that tolerates it for ``tolerationSeconds`` when that time is up, one that
tolerates it for ever stays. A taint removed in time cancels the eviction.
"""

from __future__ import annotations

from typing import Callable

import simpy

from ..api.store import ADDED, DELETED, MODIFIED, Change, ResourceStore
from ..kernel.engine import ModelTimer
from .nodes import NodeState, node_info, parse_quantity, ready_condition
from .placement import UNSCHEDULABLE_TAINT, toleration_time

TERMINAL = ("Succeeded", "Failed")


class NodeController:
    def __init__(self, env: simpy.Environment, nodes: dict[str, NodeState], store: ResourceStore,
                 pods: ResourceStore, timestamp: Callable[..., str], new_node: Callable[[dict], NodeState],
                 nodes_changed: Callable[[], None], node_deleted: Callable[[NodeState], None],
                 evict: Callable[[dict], None]):
        self.env, self.nodes, self.store, self.pods, self.timestamp = env, nodes, store, pods, timestamp
        self.new_node = new_node            # the NodeState of a Node created through the API
        self.nodes_changed = nodes_changed  # the scheduler takes another look
        self.node_deleted = node_deleted    # pod garbage collection
        self.evict = evict                  # the taint manager's deletion of one pod
        self._evictions: dict[tuple, tuple[str, float]] = {}   # pod key -> (node, due time)
        store.listeners.append(self._on_node)

    # -- Node objects ----------------------------------------------------------------------------

    def _on_node(self, change: Change) -> None:
        obj = change.obj
        name = obj["metadata"]["name"]
        if change.type == DELETED:
            node = self.nodes.pop(name, None)
            if node is not None:
                self.node_deleted(node)
            return
        node = self.nodes.get(name)
        if node is None:
            if change.type != ADDED:
                return
            node = self.nodes[name] = self.new_node(obj)
            self.store.update("", name, lambda n: registered(n, node, self.timestamp()))
            self.nodes_changed()
            return
        if change.type == MODIFIED:
            self._sync(node, obj)

    def _sync(self, node: NodeState, obj: dict) -> None:
        spec = obj.get("spec") or {}
        unschedulable = bool(spec.get("unschedulable"))
        taints = list(spec.get("taints") or [])
        labels = obj["metadata"].get("labels") or {}
        changed = (unschedulable, taints, labels) != (node.unschedulable, node.taints, node.labels)
        node.unschedulable, node.labels = unschedulable, dict(labels)
        taints_changed = taints != node.taints
        node.taints = taints
        self._mark_unschedulable(node)
        if taints_changed:
            self._taints_changed(node)
        if changed:
            self.nodes_changed()

    def _mark_unschedulable(self, node: NodeState) -> None:
        """TaintNodesByCondition: a cordoned node carries the unschedulable taint, only then."""
        has = any(t.get("key") == UNSCHEDULABLE_TAINT and t.get("effect") == "NoSchedule" for t in node.taints)
        if has == node.unschedulable:
            return
        if node.unschedulable:
            taints = node.taints + [{"key": UNSCHEDULABLE_TAINT, "effect": "NoSchedule", "timeAdded": self.timestamp()}]
        else:
            taints = [t for t in node.taints if not (t.get("key") == UNSCHEDULABLE_TAINT
                                                      and t.get("effect") == "NoSchedule")]
        self.store.update("", node.name, lambda n: with_taints(n, taints))

    # -- the taint manager -----------------------------------------------------------------------

    def _taints_changed(self, node: NodeState) -> None:
        for key in sorted(node.pods):
            pod = self.pods.get(*key)
            if pod is not None:
                self.pod_placed(pod, node)

    def pod_placed(self, pod: dict, node: NodeState) -> None:
        """Judge one pod on ``node`` against the node's NoExecute taints (now, or when they change)."""
        key = (pod["metadata"]["namespace"], pod["metadata"]["name"])
        seconds = toleration_time(pod["spec"].get("tolerations") or (), node.taints) if node.taints else None
        pending = self._evictions.get(key)
        if seconds is None:
            self._evictions.pop(key, None)
            return
        due = self.env.now + seconds
        if pending is not None and pending[0] == node.name and pending[1] <= due:
            return  # an earlier eviction is already on its way
        self._evictions[key] = (node.name, due)
        uid = pod["metadata"]["uid"]
        ModelTimer(self.env, seconds, lambda _: self._due(key, uid, node.name, due))

    def _due(self, key: tuple, uid: str, node_name: str, due: float) -> None:
        if self._evictions.get(key) != (node_name, due):
            return  # cancelled, or superseded by an earlier one
        del self._evictions[key]
        pod = self.pods.get(*key)
        if pod is None or pod["metadata"]["uid"] != uid or pod["spec"].get("nodeName") != node_name \
                or pod["metadata"].get("deletionTimestamp") or pod["status"].get("phase") in TERMINAL:
            return
        self.evict(pod)

    def forget(self, key: tuple) -> None:
        self._evictions.pop(key, None)


def registered(obj: dict, node: NodeState, when: str) -> dict:
    """A Node created through the API as its (simulated) kubelet completes it on registration."""
    capacity = {"cpu": f"{node.cpu:g}", "memory": f"{int(node.memory // 2**10)}Ki", "pods": str(node.max_pods)}
    status = obj.get("status") or {}
    return {**obj, "metadata": {**obj["metadata"], "labels": node.labels},
            "status": {**status, "capacity": status.get("capacity") or capacity,
                       "allocatable": status.get("allocatable") or status.get("capacity") or capacity,
                       "conditions": [ready_condition(True, when)],
                       "addresses": [{"type": "InternalIP", "address": node.ip},
                                     {"type": "Hostname", "address": node.name}],
                       "nodeInfo": node_info(node.name)}}


def node_size(obj: dict, default_cpu: str, default_memory: str, default_pods: int) -> tuple[float, float, int]:
    """(cpu, memory, pods) of a Node object: its allocatable, else its capacity, else the default."""
    status = obj.get("status") or {}
    size = status.get("allocatable") or status.get("capacity") or {}
    try:
        return (parse_quantity(size.get("cpu", default_cpu)), parse_quantity(size.get("memory", default_memory)),
                int(parse_quantity(size.get("pods", default_pods))))
    except ValueError:
        return parse_quantity(default_cpu), parse_quantity(default_memory), int(default_pods)


def with_taints(node: dict, taints: list) -> dict:
    spec = {k: v for k, v in (node.get("spec") or {}).items() if k != "taints"}
    if taints:
        spec["taints"] = taints
    return {**node, "spec": spec}
