"""The kube-scheduler: binds Pending pods to nodes with room, or says why it cannot.

Nodes are tried round-robin from a moving cursor (kube-scheduler also scores only a sample of
nodes on big clusters), so a bind costs about one fit check, not one per node. A pod that fits
nowhere gets ``PodScheduled=False`` with kube-scheduler's "0/N nodes are available" message and
waits until capacity frees up.

Scheduling is asynchronous, as in Kubernetes: a new pod, freed capacity or a new node queues a
scheduling attempt at the current virtual time (plus ``delay`` for new pods) instead of writing
to the store from inside another write's notification.
"""

from __future__ import annotations

from collections import Counter
from typing import Callable

import simpy

from .behaviour import Outcome
from .kernel import model_timer
from .nodes import NodeState, pod_requests
from .store import ResourceStore

# DefaultPreemption's per-node verdicts (pkg/scheduler/framework/preemption, default_preemption.go)
PREEMPTION_NOT_HELPFUL = "Preemption is not helpful for scheduling"
NO_VICTIMS = "No preemption victims found for incoming pod"

# Filter failures preemption could in principle resolve (Unschedulable); every other reason is
# UnschedulableAndUnresolvable, where kube-scheduler says preemption is not helpful.
RESOLVABLE = ("Too many pods", "Insufficient cpu", "Insufficient memory")

SELECTOR_MISMATCH = "node(s) didn't match Pod's node affinity/selector"


class Scheduler:
    def __init__(self, env: simpy.Environment, pods: ResourceStore, nodes: dict[str, NodeState],
                 outcome_of: Callable[[dict], Outcome], on_bound: Callable[[dict, NodeState], None],
                 timestamp: Callable[..., str], delay: float = 0.0,
                 on_error: Callable[[str], None] | None = None,
                 record_event: Callable[..., object] | None = None):
        self.env, self.pods, self.nodes = env, pods, nodes
        self.outcome_of, self.on_bound, self.timestamp = outcome_of, on_bound, timestamp
        self.on_error = on_error or (lambda message: None)
        self.record_event = record_event or (lambda *args, **kwargs: None)
        self.delay = delay
        self.waiting: dict = {}   # key -> True, insertion-ordered: pods that fit nowhere yet
        self._order: list[str] = sorted(nodes)
        self._cursor = 0
        self._retry_pending = False
        self.placed: dict = {}  # key -> (node, cpu, memory) of bound pods

    def nodes_changed(self) -> None:
        self._order = sorted(self.nodes)
        self._cursor = 0
        self.retry()

    def submit(self, pod: dict) -> None:
        """A new pod without a node: try to bind it after the scheduling delay."""
        key = (pod["metadata"]["namespace"], pod["metadata"]["name"])
        uid = pod["metadata"]["uid"]
        model_timer(self.env, self.delay).callbacks.append(lambda _: self._attempt(key, uid))

    def place(self, pod: dict, node: NodeState) -> None:
        """Account for a pod bound without the scheduler (``spec.nodeName`` set at creation)."""
        key = (pod["metadata"]["namespace"], pod["metadata"]["name"])
        cpu, memory = pod_requests(pod)
        node.take(key, cpu, memory)
        self.placed[key] = (node, cpu, memory)

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
        """Queue one pass over the waiting pods (coalesced: many frees cost one pass)."""
        if self.waiting and not self._retry_pending:
            self._retry_pending = True
            model_timer(self.env, 0).callbacks.append(self._retry_now)

    def _retry_now(self, _=None) -> None:
        self._retry_pending = False
        for key in list(self.waiting):
            if not self.waiting:
                break
            self._attempt(key)

    def _attempt(self, key, uid: str | None = None) -> None:
        pod = self.pods.get(*key)
        if pod is not None and uid is not None and pod["metadata"]["uid"] != uid:
            return  # deleted and created again under the same name: the new pod has its own turn
        if pod is None or pod["spec"].get("nodeName") or pod["metadata"].get("deletionTimestamp"):
            self.waiting.pop(key, None)
            return
        try:
            cpu, memory = pod_requests(pod)
        except ValueError as exc:  # the API server should have refused it; never crash the world
            self.on_error(f"pod {key[0]}/{key[1]}: {exc}")
            self._unschedulable(key, pod, Counter(), message=f"0/{len(self.nodes)} nodes are "
                                f"available: invalid resource requests: {exc}.")
            return
        if self.outcome_of(pod).unschedulable:
            self._unschedulable(key, pod, Counter({(SELECTOR_MISMATCH,): len(self.nodes)}))
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
        misfits: Counter = Counter()   # tuple of reasons -> number of nodes
        count = len(self._order)
        for step in range(count):
            name = self._order[(self._cursor + step) % count]
            node = self.nodes[name]
            why = node.misfit(cpu, memory, selector)
            if not why:
                self._cursor = (self._cursor + step + 1) % count
                return node, misfits
            misfits[why] += 1
        return None, misfits

    def _unschedulable(self, key, pod: dict, misfits: Counter, message: str | None = None) -> None:
        self.waiting[key] = True
        message = message or unschedulable_message(len(self.nodes), misfits)
        current = [c for c in pod.get("status", {}).get("conditions", []) if c.get("type") == "PodScheduled"]
        if current and current[0].get("status") == "False" and current[0].get("message") == message:
            return  # nothing new to say: kube-scheduler skips the write too
        when = current[0]["lastTransitionTime"] if current and current[0].get("status") == "False" \
            else self.timestamp()
        condition = {"type": "PodScheduled", "status": "False", "lastProbeTime": None,
                     "lastTransitionTime": when, "reason": "Unschedulable", "message": message}
        pod = self.pods.update(*key, lambda p: with_condition(p, condition))
        self.record_event(pod, "FailedScheduling", message, "Warning", component="default-scheduler")


def unschedulable_message(total: int, misfits: Counter) -> str:
    """kube-scheduler's FitError text, with DefaultPreemption's verdict appended.

    ``misfits`` maps each node's tuple of filter reasons to how many nodes gave it. As in
    ``framework.FitError.Error``, each reason is counted per node, the "<count> <reason>"
    strings are sorted as strings and joined by ", ". Preemption then finds no victims on
    nodes short of resources (every pod here has the same priority) and is not helpful on
    the others.
    """
    if total == 0:
        return "no nodes available to schedule pods"
    reasons: Counter = Counter()
    preemption: Counter = Counter()
    for why, nodes in misfits.items():
        for reason in why:
            reasons[reason] += nodes
        resolvable = all(reason in RESOLVABLE for reason in why)
        preemption[NO_VICTIMS if resolvable else PREEMPTION_NOT_HELPFUL] += nodes
    return (f"0/{total} nodes are available: {_histogram(reasons)}. "
            f"preemption: 0/{total} nodes are available: {_histogram(preemption)}.")


def _histogram(counts: Counter) -> str:
    return ", ".join(sorted(f"{n} {reason}" for reason, n in counts.items()))


def bind(pod: dict, node: str, when: str) -> dict:
    condition = {"type": "PodScheduled", "status": "True", "lastProbeTime": None,
                 "lastTransitionTime": when}
    return with_condition({**pod, "spec": {**pod["spec"], "nodeName": node}}, condition)


def with_condition(pod: dict, condition: dict) -> dict:
    """Set one condition, in place of the one of the same type (keeping the order of the rest)."""
    status = pod.get("status", {})
    conditions = list(status.get("conditions", []))
    for i, existing in enumerate(conditions):
        if existing["type"] == condition["type"]:
            conditions[i] = condition
            break
    else:
        conditions.append(condition)
    return {**pod, "status": {**status, "conditions": conditions}}
