"""The kube-scheduler: binds Pending pods to nodes with room, or says why it cannot.

Nodes are tried round-robin from a moving cursor (kube-scheduler also scores only a sample of
nodes on big clusters), so a bind costs about one fit check, not one per node. A pod that fits
nowhere gets ``PodScheduled=False`` with kube-scheduler's "0/N nodes are available" message and
waits until capacity frees up.

Scheduling is asynchronous, as in Kubernetes: a new pod, freed capacity or a new node queues a
scheduling attempt at the current virtual time (plus ``delay`` for new pods) instead of writing
to the store from inside another write's notification.

Waiting pods are kept in FIFO queues by *shape* (cpu, memory, placement: node selector, required
node affinity, tolerations; see ``placement``): pods of one shape
fit the same nodes, so when room frees on a node only the oldest pod of each shape needs a look,
and a new pod that joins a non-empty queue cannot fit anywhere either. A release costs
O(shapes), not O(waiting pods), which keeps 100,000-pod backlogs cheap. The earliest-waiting pod
that fits gets the room (kube-scheduler orders its queue by priority, then arrival; every pod
here has the same priority).
"""

from __future__ import annotations

import itertools
from collections import Counter, deque
from dataclasses import dataclass
from typing import Callable

import simpy

from ..api.store import ResourceStore
from ..kernel.engine import ModelTimer
from .behaviour import Outcome
from .nodes import NodeState, pod_requests
from .placement import SELECTOR_MISMATCH, placement_of

# DefaultPreemption's per-node verdicts (pkg/scheduler/framework/preemption, default_preemption.go)
PREEMPTION_NOT_HELPFUL = "Preemption is not helpful for scheduling"
NO_VICTIMS = "No preemption victims found for incoming pod"

# Filter failures preemption could in principle resolve (Unschedulable); every other reason is
# UnschedulableAndUnresolvable, where kube-scheduler says preemption is not helpful.
RESOLVABLE = ("Too many pods", "Insufficient cpu", "Insufficient memory")


@dataclass(eq=False)
class Waiting:
    """A pod that fits nowhere yet."""

    key: tuple
    uid: str
    seq: int
    shape: tuple   # (cpu, memory, Placement)


class Scheduler:
    def __init__(self, env: simpy.Environment, pods: ResourceStore, nodes: dict[str, NodeState],
                 outcome_of: Callable[[dict], Outcome], on_bound: Callable[[dict, NodeState], None],
                 timestamp: Callable[..., str], delay: float = 0.0,
                 on_error: Callable[[str], None] | None = None,
                 record_event: Callable[..., object] | None = None, lifecycle_events: bool = True):
        self.env, self.pods, self.nodes = env, pods, nodes
        self.outcome_of, self.on_bound, self.timestamp = outcome_of, on_bound, timestamp
        self.on_error = on_error or (lambda message: None)
        self.record_event = record_event or (lambda *args, **kwargs: None)
        self.lifecycle_events = lifecycle_events and record_event is not None   # Normal "Scheduled"
        self.delay = delay
        self.waiting: dict[tuple, Waiting] = {}        # key -> entry, in arrival order
        self.stuck: dict[tuple, tuple[str, str]] = {}  # key -> (uid, why): pods no node will take
        self._queues: dict[tuple, deque[Waiting]] = {}  # shape -> its waiting pods, oldest first
        self._messages: dict[tuple, str] = {}           # shape -> the last "0/N nodes" message
        self._seq = itertools.count()
        self._order: list[str] = sorted(nodes)
        self._cursor = 0
        self._freed: set[str] | None = set()            # nodes with new room (None: all of them)
        self._retry_pending = False
        self.placed: dict = {}  # key -> (node, cpu, memory) of bound pods

    # -- what the cluster tells the scheduler --------------------------------------------------

    def nodes_changed(self) -> None:
        """A node came or went (or came back): every waiting pod gets another look."""
        self._order = sorted(self.nodes)
        self._cursor = 0
        self._freed = None
        self._schedule_retry()

    def submit(self, pod: dict) -> None:
        """A new pod without a node: try to bind it after the scheduling delay."""
        key = (pod["metadata"]["namespace"], pod["metadata"]["name"])
        uid = pod["metadata"]["uid"]
        ModelTimer(self.env, self.delay, lambda _: self._attempt(key, uid))

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
        if self._freed is not None:
            self._freed.add(node.name)
        self._schedule_retry()

    def retry(self) -> None:
        """Give every waiting pod another look (a node was restored or uncordoned)."""
        self._freed = None
        self._schedule_retry()

    def forget(self, key) -> None:
        """The pod is gone from the API server."""
        self.waiting.pop(key, None)  # its queue entry is dropped when it reaches the head
        self.stuck.pop(key, None)

    # -- attempts ------------------------------------------------------------------------------

    def _schedule_retry(self) -> None:
        if (self.waiting or self.stuck) and not self._retry_pending:
            self._retry_pending = True
            ModelTimer(self.env, 0, self._retry_now)

    def _attempt(self, key, uid: str) -> None:
        """A new pod's first scheduling attempt."""
        pod = self._live(key, uid)
        if pod is None or key in self.waiting:
            return
        try:
            cpu, memory = pod_requests(pod)
        except ValueError as exc:  # the API server should have refused it; never crash the world
            self.on_error(f"pod {key[0]}/{key[1]}: {exc}")
            self.stuck[key] = (uid, f"invalid resource requests: {exc}")
            self._unschedulable(key, pod, self._stuck_message(self.stuck[key][1]))
            return
        if self.outcome_of(pod).unschedulable:
            self.stuck[key] = (uid, "")
            self._unschedulable(key, pod, self._stuck_message(""))
            return
        placement = placement_of(pod["spec"])
        shape = (cpu, memory, placement)
        queue = self._queues.get(shape)
        if queue and self._head(queue) is not None:
            # older pods of this shape fit nowhere, so neither does this one
            self._enqueue(key, uid, shape)
            self._unschedulable(key, pod, self._messages[shape])
            return
        node = self._find_node(cpu, memory, placement)
        if node is None:
            misfits = self._misfits(cpu, memory, placement)
            self._messages[shape] = unschedulable_message(len(self.nodes), misfits)
            self._enqueue(key, uid, shape)
            self._unschedulable(key, pod, self._messages[shape])
            return
        self._bind(key, pod, node, cpu, memory)

    def _retry_now(self, _=None) -> None:
        """Fill the freed room with the earliest-waiting pods that fit it."""
        self._retry_pending = False
        every_node = self._freed is None
        candidates = [self.nodes[n] for n in (self._order if every_node else sorted(self._freed))
                      if n in self.nodes]
        self._freed = set()
        while candidates:
            best = None
            for shape, queue in list(self._queues.items()):
                head = self._head(queue)
                if head is None:
                    del self._queues[shape]
                    continue
                if best is not None and head.seq > best[0].seq:
                    continue
                cpu, memory, placement = shape
                node = next((n for n in candidates if not n.misfit(cpu, memory, placement)), None)
                if node is not None:
                    best = (head, node)
            if best is None:
                break
            head, node = best
            self._queues[head.shape].popleft()
            del self.waiting[head.key]
            cpu, memory, _ = head.shape
            self._bind(head.key, self.pods.get(*head.key), node, cpu, memory)
        if every_node:
            self._refresh_messages()

    def _refresh_messages(self) -> None:
        """The set of nodes changed: say so in the PodScheduled message of each waiting pod."""
        for shape, queue in self._queues.items():
            cpu, memory, placement = shape
            misfits = self._misfits(cpu, memory, placement)
            self._messages[shape] = unschedulable_message(len(self.nodes), misfits)
        for key, entry in list(self.waiting.items()):
            pod = self._live(key, entry.uid)
            if pod is not None:
                self._unschedulable(key, pod, self._messages[entry.shape])
        for key, (uid, why) in list(self.stuck.items()):
            pod = self._live(key, uid)
            if pod is None:
                del self.stuck[key]
            else:
                self._unschedulable(key, pod, self._stuck_message(why))

    def _stuck_message(self, why: str) -> str:
        """For pods no node can take: steered ``kubesim.io/unschedulable``, or broken requests."""
        if why:
            return f"0/{len(self.nodes)} nodes are available: {why}."
        return unschedulable_message(len(self.nodes), Counter({(SELECTOR_MISMATCH,): len(self.nodes)}))

    def _enqueue(self, key, uid: str, shape: tuple) -> None:
        entry = Waiting(key, uid, next(self._seq), shape)
        self.waiting[key] = entry
        self._queues.setdefault(shape, deque()).append(entry)

    def _head(self, queue: deque) -> Waiting | None:
        """The oldest entry still waiting (entries of deleted or bound pods are dropped)."""
        while queue:
            entry = queue[0]
            if self.waiting.get(entry.key) is entry and self._live(entry.key, entry.uid) is not None:
                return entry
            queue.popleft()
            if self.waiting.get(entry.key) is entry:
                del self.waiting[entry.key]
        return None

    def _live(self, key, uid: str) -> dict | None:
        """The pod, if it still exists as that uid and still wants a node."""
        pod = self.pods.get(*key)
        if pod is None or pod["metadata"]["uid"] != uid or pod["spec"].get("nodeName") \
                or pod["metadata"].get("deletionTimestamp"):
            return None
        return pod

    def _bind(self, key, pod: dict, node: NodeState, cpu: float, memory: float) -> None:
        node.take(key, cpu, memory)
        self.placed[key] = (node, cpu, memory)
        bound = self.pods.update(*key, lambda p: bind(p, node.name, self.timestamp()))
        if self.lifecycle_events:
            self.record_event(bound, "Scheduled", f"Successfully assigned {key[0]}/{key[1]} to {node.name}",
                              "Normal", component="default-scheduler")
        self.on_bound(bound, node)

    def _find_node(self, cpu: float, memory: float, placement) -> NodeState | None:
        """The first node from the cursor on that has room, moving the cursor past it."""
        count = len(self._order)
        for step in range(count):
            node = self.nodes[self._order[(self._cursor + step) % count]]
            if not node.misfit(cpu, memory, placement):
                self._cursor = (self._cursor + step + 1) % count
                return node
        return None

    def _misfits(self, cpu: float, memory: float, placement) -> Counter:
        """Why the nodes that refuse such a pod do: tuple of reasons -> number of nodes."""
        return Counter(why for name in self._order if (why := self.nodes[name].misfit(cpu, memory, placement)))

    def _unschedulable(self, key, pod: dict, message: str) -> None:
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
