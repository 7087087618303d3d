"""The kube-scheduler: binds Pending pods to nodes with room, or says why it cannot.

Nodes are tried round-robin from a moving cursor (kube-scheduler also scores only a sample of
nodes on big clusters), so a bind costs about one fit check, not one per node. A pod that fits
nowhere gets ``PodScheduled=False`` with kube-scheduler's "0/N nodes are available" message and
waits until capacity frees up.
"""

from __future__ import annotations

from collections import Counter
from typing import Callable

import simpy

from .behaviour import Outcome
from .nodes import NodeState, pod_requests
from .store import ResourceStore

PREEMPTION_NOT_HELPFUL = "Preemption is not helpful for scheduling."


class Scheduler:
    def __init__(self, env: simpy.Environment, pods: ResourceStore, nodes: dict[str, NodeState],
                 outcome_of: Callable[[dict], Outcome], on_bound: Callable[[dict, NodeState], None],
                 timestamp: Callable[..., str], delay: float = 0.0):
        self.env, self.pods, self.nodes = env, pods, nodes
        self.outcome_of, self.on_bound, self.timestamp = outcome_of, on_bound, timestamp
        self.delay = delay
        self.waiting: dict = {}   # key -> True, insertion-ordered: pods that fit nowhere yet
        self._order: list[str] = sorted(nodes)
        self._cursor = 0
        self.placed: dict = {}  # key -> (node, cpu, memory) of bound pods

    def nodes_changed(self) -> None:
        self._order = sorted(self.nodes)
        self.retry()

    def submit(self, pod: dict) -> None:
        """A new pod without a node: try to bind it after the scheduling delay."""
        key = (pod["metadata"]["namespace"], pod["metadata"]["name"])
        if self.delay:
            self.env.timeout(self.delay).callbacks.append(lambda _: self._attempt(key))
        else:
            self._attempt(key)

    def release(self, key) -> None:
        """A bound pod finished or was deleted: give its room back and retry the waiting."""
        placed = self.placed.pop(key, None)
        if placed is None:
            return
        node, cpu, memory = placed
        node.release(key, cpu, memory)
        if self.waiting:
            self.retry()

    def retry(self) -> None:
        for key in list(self.waiting):
            if not self.waiting:
                break
            self._attempt(key)

    def _attempt(self, key) -> None:
        pod = self.pods.get(*key)
        if pod is None or pod["spec"].get("nodeName") or pod["metadata"].get("deletionTimestamp"):
            self.waiting.pop(key, None)
            return
        cpu, memory = pod_requests(pod)
        if self.outcome_of(pod).unschedulable:
            self._unschedulable(key, pod, Counter({"node(s) didn't match Pod's node affinity/selector": len(self.nodes)}))
            return
        node, misfits = self._find_node(cpu, memory, pod["spec"].get("nodeSelector") or {})
        if node is None:
            self._unschedulable(key, pod, misfits)
            return
        self.waiting.pop(key, None)
        node.take(key, cpu, memory)
        self.placed[key] = (node, cpu, memory)
        bound = self.pods.update(*key, lambda p: bind(p, node.name, self.timestamp()))
        self.on_bound(bound, node)

    def _find_node(self, cpu: float, memory: float, selector: dict):
        misfits: Counter = Counter()
        count = len(self._order)
        for step in range(count):
            name = self._order[(self._cursor + step) % count]
            node = self.nodes[name]
            why = node.misfit(cpu, memory, selector)
            if why is None:
                self._cursor = (self._cursor + step + 1) % count
                return node, misfits
            misfits[why] += 1
        return None, misfits

    def _unschedulable(self, key, pod: dict, misfits: Counter) -> None:
        first_time = key not in self.waiting
        self.waiting[key] = True
        message = unschedulable_message(len(self.nodes), misfits)
        condition = {"type": "PodScheduled", "status": "False", "lastProbeTime": None,
                     "lastTransitionTime": self.timestamp(), "reason": "Unschedulable",
                     "message": message}
        current = [c for c in pod.get("status", {}).get("conditions", []) if c.get("type") == "PodScheduled"]
        if first_time or not current or current[0].get("message") != message:
            self.pods.update(*key, lambda p: with_condition(p, condition))


def unschedulable_message(total: int, misfits: Counter) -> str:
    histogram = ", ".join(f"{n} {why}" for why, n in sorted(misfits.items()))
    return (f"0/{total} nodes are available: {histogram}. preemption: 0/{total} nodes are "
            f"available: {total} {PREEMPTION_NOT_HELPFUL}")


def bind(pod: dict, node: str, when: str) -> dict:
    condition = {"type": "PodScheduled", "status": "True", "lastProbeTime": None,
                 "lastTransitionTime": when}
    return with_condition({**pod, "spec": {**pod["spec"], "nodeName": node}}, condition)


def with_condition(pod: dict, condition: dict) -> dict:
    status = pod.get("status", {})
    others = [c for c in status.get("conditions", []) if c["type"] != condition["type"]]
    return {**pod, "status": {**status, "conditions": others + [condition]}}
