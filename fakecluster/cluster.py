"""FakeCluster: one simulated world (clock, RNG, API server, nodes, scheduler, kubelets, faults)."""

from __future__ import annotations

import random
from collections import deque
from datetime import datetime, timedelta
from typing import Any, Callable

import kubernetes.client
import simpy
from faker import Faker

from .api.server import ApiServer, Request, ServerOptions
from .api.status import too_old_resource_version
from .api.store import ADDED, DELETED, MODIFIED, Change
from .doors.gateway import Gateway
from .doors.transport import FakePoolManager
from .faults import Faults
from .kernel.engine import Kernel, ModelTimer, Process
from .kernel.runtime import EPOCH, SimRuntime
from .model.behaviour import Behaviour, BehaviourError, Outcome
from .model.events import EventRecorder
from .model.kubelet import Kubelets, ready
from .model.logs import container_log
from .model.namespaces import NamespaceController
from .model.nodecontroller import NodeController, node_size, with_taints
from .model.nodes import NodeState, node_object, parse_quantity, pod_requests, ready_condition
from .model.scheduler import Scheduler, with_condition
from .tenants import Churn, run_churn

HOST = "https://kubesim.local"
NODE_MONITOR_GRACE = 50.0       # node-monitor-grace-period since v1.32
POD_GC_QUARANTINE = 40.0        # PodGC waits this long before deleting pods of a missing node
UNREACHABLE = "node.kubernetes.io/unreachable"
TERMINAL = ("Succeeded", "Failed")


class FakeCluster:
    """A simulated Kubernetes cluster in virtual time, reached through the real client.

    >>> cluster = FakeCluster(seed=1, nodes=3)
    >>> api = kubernetes.client.CoreV1Api(cluster.api_client())
    >>> cluster.run(api.list_namespaced_pod, "default").items
    []
    """

    def __init__(self, seed: int = 0, nodes: int = 3, node_cpu: str = "8", node_memory: str = "32Gi",
                 node_pods: int = 110, watch_cache_size: int = 100 * 1024,
                 watch_cache_seconds: float | None = None,
                 namespaces: tuple[str, ...] = ("default", "kube-system"),
                 behaviour: Behaviour | None = None, faults: Faults | None = None,
                 options: ServerOptions | None = None, scheduling_delay: float = 0.0,
                 horizon: float = 30 * 24 * 3600.0, trace: bool | int = True, record_events: bool = True,
                 epoch: datetime | None = None, normal_events: bool = True, time_scale: float = 1.0):
        self.seed = seed
        self.epoch = epoch or EPOCH  # virtual t=0 as a UTC instant (kubesim serve: the wall clock's now)
        # Virtual seconds per second of the timestamps clients see. kubesim serve passes its speed,
        # so timestamps follow the wall clock instead of running ahead of it (kubectl: <invalid>).
        if not time_scale > 0:
            raise ValueError(f"FakeCluster(time_scale=...) must be more than 0, not {time_scale!r}")
        self.time_scale = time_scale
        self.record_events = record_events  # core/v1 Events (FailedScheduling, BackOff, Evicted...)
        # the Normal events of every pod's life (Scheduled, Pulling, Pulled, Created, Started, Killing)
        self.normal_events = record_events and normal_events
        self._stamp: tuple[int, str] = (-1, "")
        self.rng = random.Random(seed)
        self._faker: Faker | None = None
        self._faker_seed = self.rng.getrandbits(32)  # drawn here, so every later draw is as it was
        self.env = simpy.Environment()
        self.kernel = Kernel(self.env, horizon)
        self.runtime = SimRuntime(self.kernel)
        options = options or ServerOptions()
        options.watch_cache_size = watch_cache_size
        options.watch_cache_seconds = watch_cache_seconds
        self.server = ApiServer(self.kernel, self.rng, self.timestamp, options)
        self.event_recorder = EventRecorder(
            self.env, self.server.stores["events"], self.server.stores["namespaces"], self.timestamp, self.epoch,
            terminating=lambda namespace: self.namespace_controller.is_terminating(namespace))
        self.server.before_events = self.event_recorder.flush   # a client reading Events sees them all
        self.faults = faults or Faults()
        self.gateway = Gateway(self.server, self.kernel, self.rng, self.faults)
        self.behaviour = behaviour or Behaviour()
        # trace: True keeps every change, False none, a number N only the last N (a run's tail)
        keep_all = trace is True or trace is False
        self.trace: list[tuple] | deque[tuple] = [] if keep_all else deque(maxlen=_tail_length(trace))
        self._outcomes: dict[str, Outcome] = {}  # by pod uid, while the pod exists
        self.nodes: dict[str, NodeState] = {}
        self._node_serial = 0
        self._node_size = (node_cpu, node_memory, node_pods)   # for Nodes created through the API
        self.scheduler = Scheduler(self.env, self.server.pods, self.nodes, self.outcome,
                                   self._bound, self.timestamp, scheduling_delay,
                                   on_error=lambda message: self.trace.append((self.env.now, "scheduler-error", message)),
                                   record_event=self.record_event, lifecycle_events=self.normal_events)
        # a pod that finished gives its room on the node back to the scheduler
        self.kubelets = Kubelets(self.env, self.server.pods, self.timestamp, self.scheduler.release,
                                 record_event=self.record_event, delete=self._force_delete,
                                 lifecycle_events=self.normal_events, record_events_of=self.record_events_of)
        self.server.pods.listeners.append(self._on_pod_change)
        self.server.log_source = lambda pod, container, previous: container_log(
            pod, container, previous, self._outcomes.get(pod["metadata"]["uid"]))
        self.node_controller = NodeController(
            self.env, self.nodes, self.server.stores["nodes"], self.server.pods, self.timestamp,
            new_node=self._node_from_api, nodes_changed=self.scheduler.nodes_changed,
            node_deleted=self._node_deleted, evict=self._taint_evict)
        self.namespace_controller = NamespaceController(
            self.env, self.server.stores["namespaces"], self.server.pods, self.server.stores["events"],
            self.timestamp, delete_pod=lambda pod: self.server.delete_object(self.server.pods, pod, None),
            flush_events=lambda: self.event_recorder.flush())
        if trace:
            for store in self.server.stores.values():
                store.listeners.append(self._recorder(store.kind))
        for namespace in namespaces:
            self.create_namespace(namespace)
        for i in range(nodes):
            self.add_node(f"node-{i + 1}", node_cpu, node_memory, node_pods)

    # -- time and processes --------------------------------------------------------------------

    @property
    def faker(self) -> Faker:
        """The world's Faker, seeded from its RNG; made on first use (it costs about 5 ms, as
        much as the rest of a small world, and most worlds never ask for a fake name)."""
        if self._faker is None:
            self._faker = Faker()
            self._faker.seed_instance(self._faker_seed)
        return self._faker

    @property
    def now(self) -> float:
        """Virtual seconds since the simulation started."""
        return self.env.now

    def utcnow(self):
        return self.epoch + timedelta(seconds=self.env.now / self.time_scale)

    def timestamp(self, offset: float = 0.0) -> str:
        """RFC 3339 time, as Kubernetes writes it in object metadata and status (whole seconds)."""
        second = int(((self.env._now + offset) / self.time_scale) // 1)  # (env.now is a property: a call)
        stamp = self._stamp
        if second != stamp[0]:
            stamp = self._stamp = (second, (self.epoch + timedelta(seconds=second)).strftime("%Y-%m-%dT%H:%M:%SZ"))
        return stamp[1]

    def run(self, fn: Callable, *args, until: float | None = None) -> Any:
        """Run ``fn(*args)`` as a simulated process until it returns; return its value or raise."""
        return self.kernel.run(fn, *args, until=until)

    def spawn(self, fn: Callable, *args, name: str | None = None) -> Process:
        """Start ``fn(*args)`` as a background simulated process."""
        return self.kernel.spawn(fn, *args, name=name)

    def sleep(self, seconds: float) -> None:
        """Sleep in virtual time, from inside a simulated process."""
        self.kernel.sleep(seconds)

    def advance(self, seconds: float) -> None:
        """Let the world run for ``seconds`` of virtual time (from outside any process)."""
        self.kernel.advance(self.env.now + seconds)

    def at(self, when: float, action: Callable[[], Any]) -> None:
        """Call ``action()`` at virtual time ``when`` (a fault timeline builds on this)."""
        self.env.timeout(max(0.0, when - self.env.now)).callbacks.append(lambda _: action())

    def _after(self, delay: float, action: Callable[[], Any]) -> None:
        """The model's own timers (controllers): ahead of client processes waking at the same time."""
        ModelTimer(self.env, delay, lambda _: action())

    # -- the client ----------------------------------------------------------------------------

    def api_client(self, configuration: kubernetes.client.Configuration | None = None):
        """A real ``kubernetes.client.ApiClient`` whose network is this cluster."""
        configuration = configuration or kubernetes.client.Configuration()
        configuration.host = HOST
        client = kubernetes.client.ApiClient(configuration)
        pool_kw = {}
        if configuration.retries is not None:
            pool_kw["retries"] = configuration.retries
        client.rest_client.pool_manager = FakePoolManager(self.gateway, **pool_kw)
        return client

    def request(self, method: str, path: str, body: bytes | None = None, headers: dict | None = None):
        """Send one raw request to the API server (no faults, no latency): a Reply."""
        return self.server.handle(Request.from_url(method, path, headers, body))

    # -- objects -------------------------------------------------------------------------------

    def pods(self, namespace: str | None = None) -> list[dict]:
        """The stored pods (plain dicts), sorted by namespace and name."""
        store = self.server.pods
        found = store.objects.values() if namespace is None else store.by_namespace.get(namespace, {}).values()
        return sorted(found, key=lambda p: (p["metadata"]["namespace"], p["metadata"]["name"]))

    def pod(self, namespace: str, name: str) -> dict | None:
        return self.server.pods.get(namespace, name)

    def create_namespace(self, name: str) -> dict:
        store = self.server.stores["namespaces"]
        return store.get("", name) or store.create(self.server.strategies["namespaces"].prepare_create(
            {"kind": "Namespace", "apiVersion": "v1",
             "metadata": {"name": name, "uid": self.server._uid(), "creationTimestamp": self.timestamp(),
                          "labels": {"kubernetes.io/metadata.name": name}}}))

    def add_node(self, name: str, cpu: str = "8", memory: str = "32Gi", pods: int = 110,
                 labels: dict | None = None) -> NodeState:
        """Add a Ready node; waiting pods get another scheduling attempt."""
        if name in self.nodes:
            raise ValueError(f"node {name!r} already exists")
        state = self._node_state(name, parse_quantity(cpu), parse_quantity(memory), int(pods), labels or {})
        self.nodes[name] = state
        self.server.stores["nodes"].create(node_object(state, self.timestamp()))
        self.scheduler.nodes_changed()
        return state

    def _node_state(self, name: str, cpu: float, memory: float, pods: int, labels: dict) -> NodeState:
        serial = self._node_serial
        self._node_serial += 1
        return NodeState(name, cpu, memory, pods,
                         labels={"kubernetes.io/hostname": name, "kubernetes.io/os": "linux",
                                 "kubernetes.io/arch": "amd64", **labels},
                         ip=f"192.168.{serial // 250}.{serial % 250 + 1}")

    def _node_from_api(self, obj: dict) -> NodeState:
        """The state of a Node created through the API (its simulated kubelet registers it)."""
        cpu, memory, pods = node_size(obj, *self._node_size)
        spec = obj.get("spec") or {}
        state = self._node_state(obj["metadata"]["name"], cpu, memory, pods, obj["metadata"].get("labels") or {})
        state.unschedulable, state.taints = bool(spec.get("unschedulable")), list(spec.get("taints") or [])
        return state

    def outcome(self, pod: dict) -> Outcome:
        """The behaviour drawn for a pod (once per pod uid, so it stays the same).

        A ``kubesim.io/*`` annotation with a bad value does not crash the world: the pod gets
        CreateContainerConfigError with the reason as the container's waiting message, a
        Warning Event says it too, and so does the trace.
        """
        uid = pod["metadata"]["uid"]
        outcome = self._outcomes.get(uid)
        if outcome is None:
            try:
                outcome = self.behaviour.outcome(pod, self.rng)
            except BehaviourError as exc:
                meta = pod["metadata"]
                outcome = Outcome(container_error="CreateContainerConfigError",
                                  container_error_message=f"kubesim: {exc}")
                self.trace.append((self.env.now, "behaviour-error",
                                   f"pod {meta.get('namespace')}/{meta.get('name')}: {exc}"))
            for note in outcome.notes:
                self.trace.append((self.env.now, "behaviour-warning", note))
            self._outcomes[uid] = outcome
        return outcome

    def record_event(self, obj: dict, reason: str, message: str, type: str = "Warning",
                     component: str = "kubelet", host: str | None = None,
                     field_path: str | None = None) -> None:
        """Record a core/v1 Event about ``obj`` (written to the store when Events are read: see
        ``model.events``), aggregated like the client-go recorder does."""
        if not self.record_events or obj is None:
            return
        namespace = obj["metadata"].get("namespace") or "default"
        if self.namespace_controller.terminating and self.namespace_controller.is_terminating(namespace):
            return  # admission refuses new content there, the recorder's Events too
        self.event_recorder.record(obj, ((reason, message, field_path),), type, component, host)

    def record_events_of(self, obj: dict, events: tuple, type: str = "Normal", component: str = "kubelet",
                         host: str | None = None) -> None:
        """Several Events about ``obj`` at once: (reason, message, fieldPath) triples."""
        if not self.record_events or obj is None:
            return
        namespace = obj["metadata"].get("namespace") or "default"
        if self.namespace_controller.terminating and self.namespace_controller.is_terminating(namespace):
            return
        self.event_recorder.record(obj, events, type, component, host)

    def events(self, namespace: str | None = None, involved: str | None = None) -> list[dict]:
        """Stored Events (plain dicts), optionally only those about the object named ``involved``."""
        self.event_recorder.flush()
        found = self.server.stores["events"].objects.values()
        return [e for e in found if (namespace is None or e["metadata"]["namespace"] == namespace)
                and (involved is None or e["involvedObject"]["name"] == involved)]

    # -- faults on the cluster -----------------------------------------------------------------

    def expire_watches(self, compact: bool = True) -> int:
        """End every open watch with a 410 ERROR event; with ``compact``, resuming gets 410 too."""
        ended = 0
        for store in self.server.stores.values():
            if compact:
                store.compact()
            for watcher in list(store.watchers.all()):
                watcher.send_error(too_old_resource_version(store.floor - 1 if store.floor else 0, store.floor))
                ended += 1
        return ended

    def compact(self, keep: int = 0) -> None:
        """Shrink every watch-cache window to its newest ``keep`` events (and expire list RVs)."""
        for store in self.server.stores.values():
            store.compact(keep)
        self.server.compacted_rv = self.server.revision.value if keep == 0 else self.server.compacted_rv

    def stall_watches(self, seconds: float | None = None) -> int:
        """Open watches stop delivering bytes (the connection stays up): read timeouts follow."""
        return self._each_watch(lambda w: w.stream.stall(seconds))

    def drop_watches(self) -> int:
        """Reset the connection under every open watch."""
        return self._each_watch(lambda w: (w.stream.drop(), w.close()))

    def churn(self, churn: Churn) -> None:
        """Other tenants' pods come and go beside the executor's (see ``fakecluster.tenants``)."""
        run_churn(self, churn)

    def _each_watch(self, action) -> int:
        watchers = [w for store in self.server.stores.values() for w in store.watchers.all()]
        for watcher in watchers:
            action(watcher)
        return len(watchers)

    def evict(self, namespace: str, name: str, resource: str = "memory") -> bool:
        """Node-pressure eviction of one pod by its kubelet: Failed, reason Evicted.

        False when no live kubelet runs the pod (it already ended, or its node is lost);
        KeyError when there is no such pod.
        """
        pod = self.pod(namespace, name)
        if pod is None:
            raise KeyError(f"no pod {namespace}/{name} to evict")
        return self.kubelets.evict((namespace, name), eviction_message(pod, resource))

    def _node(self, name: str) -> NodeState:
        try:
            return self.nodes[name]
        except KeyError:
            raise KeyError(f"no node {name!r}; nodes: {', '.join(sorted(self.nodes)) or 'none'}") from None

    def lose_node(self, name: str) -> None:
        """The node stops reporting (its kubelet is gone, its pods freeze as they are).

        After node-monitor-grace-period (50 s) the node controller marks it Ready=Unknown,
        taints it ``node.kubernetes.io/unreachable`` (NoSchedule and NoExecute) and its pods
        Ready=False, phase unchanged. When a pod's toleration of the taint runs out (300 s by
        default) the taint manager deletes it; with no kubelet to finish the job it stays
        Terminating until ``restore_node`` or ``delete_node``.
        """
        node = self._node(name)
        if not node.ready:
            return
        node.ready = False
        node.generation += 1
        generation = node.generation
        for key in sorted(node.pods):
            self.kubelets.freeze(key)
        self._after(NODE_MONITOR_GRACE, lambda: self._node_unreachable(name, generation))

    def _node_unreachable(self, name: str, generation: int) -> None:
        node = self.nodes.get(name)
        if node is None or node.ready or node.generation != generation:
            return
        when = self.timestamp()
        for key in sorted(node.pods):
            pod = self.server.pods.get(*key)
            if pod is not None and any(c["type"] == "Ready" and c["status"] == "True"
                                       for c in pod["status"].get("conditions", [])):
                pod = self.server.pods.update(*key, lambda p: ready(p, False, when))
                self.record_event(pod, "NodeNotReady", "Node is not ready", "Warning", "node-controller")
        taints = [{"key": UNREACHABLE, "effect": "NoSchedule", "timeAdded": when},
                  {"key": UNREACHABLE, "effect": "NoExecute", "timeAdded": when}]
        # the taint manager (NodeController) deletes the pods whose toleration runs out
        self.server.stores["nodes"].update("", name, lambda n: {
            **n, "spec": {**n["spec"], "taints": [*without_unreachable(n["spec"].get("taints")), *taints]},
            "status": {**n["status"], "conditions": [ready_condition(None, when)]}})

    def _taint_evict(self, pod: dict) -> None:
        """The taint manager deletes a pod whose toleration of a NoExecute taint ran out."""
        key = (pod["metadata"]["namespace"], pod["metadata"]["name"])
        when = self.timestamp()
        pod = self.server.pods.update(*key, lambda p: with_condition(p, {
            "type": "DisruptionTarget", "status": "True", "lastProbeTime": None, "lastTransitionTime": when,
            "reason": "DeletionByTaintManager", "message": "Taint manager: deleting due to NoExecute taint"}))
        self.record_event(pod, "TaintManagerEviction", f"Marking for deletion Pod {key[0]}/{key[1]}",
                          "Normal", "taint-eviction-controller")
        self.server.delete_object(self.server.pods, pod, None)

    def restore_node(self, name: str) -> None:
        """A lost node comes back: its kubelet stops what was deleted meanwhile, the rest carries on."""
        node = self._node(name)
        if node.ready:
            return
        node.ready = True
        node.generation += 1
        when = self.timestamp()
        self.server.stores["nodes"].update("", name, lambda n: {
            **with_taints(n, without_unreachable(n["spec"].get("taints"))),
            "status": {**n["status"], "conditions": [ready_condition(True, when)]}})
        for key in sorted(node.pods):
            self.kubelets.resume(key)
        self.scheduler.retry()

    def delete_node(self, name: str) -> None:
        """Remove the Node object; pod garbage collection fails and force-deletes its pods.

        As PodGC does for orphaned pods: a pod not yet terminal becomes Failed with a
        DisruptionTarget condition (DeletionByPodGC), then every pod bound to the node is
        deleted with grace 0.
        """
        self._node(name)
        self.server.stores["nodes"].remove("", name)   # NodeController calls _node_deleted

    def _node_deleted(self, node: NodeState) -> None:
        """The Node object is gone (here or through the API): PodGC takes its pods."""
        node.ready = False
        node.generation += 1
        for key in sorted(node.pods):
            self.kubelets.forget(key)
        bound = sorted((p for p in self.server.pods.objects.values() if p["spec"].get("nodeName") == node.name),
                       key=lambda p: (p["metadata"]["namespace"], p["metadata"]["name"]))
        for pod in bound:
            self._garbage_collect(pod)
        self.scheduler.nodes_changed()

    def _garbage_collect(self, pod: dict) -> None:
        key = (pod["metadata"]["namespace"], pod["metadata"]["name"])
        if pod["status"].get("phase") not in TERMINAL:
            when = self.timestamp()
            pod = self.server.pods.update(*key, lambda p: with_condition(
                {**p, "status": {**p["status"], "phase": "Failed"}},
                {"type": "DisruptionTarget", "status": "True", "lastProbeTime": None,
                 "lastTransitionTime": when, "reason": "DeletionByPodGC",
                 "message": "PodGC: node no longer exists"}))
        self.server.delete_object(self.server.pods, pod, 0)

    def _force_delete(self, pod: dict) -> None:
        """The kubelet's final DELETE (grace 0) once the pod's containers are gone."""
        self.server.delete_object(self.server.pods, pod, 0)

    # -- wiring --------------------------------------------------------------------------------

    def _on_pod_change(self, change: Change) -> None:
        pod = change.obj
        meta = pod["metadata"]
        if change.type == MODIFIED:  # most changes; only the start of a graceful deletion matters
            if meta.get("deletionTimestamp") and not change.prev["metadata"].get("deletionTimestamp"):
                self.kubelets.terminate((meta["namespace"], meta["name"]),
                                        meta.get("deletionGracePeriodSeconds") or 0)
        elif change.type == ADDED:
            if not pod["spec"].get("nodeName"):
                self.scheduler.submit(pod)
            else:  # created bound (spec.nodeName): no scheduler, the node's kubelet admits it
                key, uid = (meta["namespace"], meta["name"]), meta["uid"]
                self._after(0, lambda: self._admit(key, uid))
        elif change.type == DELETED:
            key = (meta["namespace"], meta["name"])
            self.scheduler.forget(key)
            self.kubelets.forget(key)
            self.node_controller.forget(key)
            self.event_recorder.forget(meta["uid"])
            self._outcomes.pop(meta["uid"], None)  # a uid never comes back

    def _admit(self, key: tuple, uid: str) -> None:
        """A pod created with spec.nodeName set: the kubelet's admission, or PodGC for no node."""
        pod = self.server.pods.get(*key)
        if pod is None or pod["metadata"]["uid"] != uid or pod["metadata"].get("deletionTimestamp"):
            return
        node = self.nodes.get(pod["spec"]["nodeName"])
        if node is None:
            def collect():
                current = self.server.pods.get(*key)
                if current is not None and current["metadata"]["uid"] == uid \
                        and current["spec"]["nodeName"] not in self.nodes:
                    self._garbage_collect(current)
            self._after(POD_GC_QUARANTINE, collect)
            return
        try:
            cpu, memory = pod_requests(pod)
        except ValueError:
            cpu = memory = 0.0
        short = [why for why in node.misfit(cpu, memory) if why.startswith(("Insufficient", "Too many"))]
        if short and node.ready:
            resource = {"Too many pods": "pods", "Insufficient cpu": "cpu"}.get(short[0], "memory")
            used = {"pods": len(node.pods), "cpu": int(round(node.used_cpu * 1000)),
                    "memory": int(node.used_memory)}[resource]
            capacity = {"pods": node.max_pods, "cpu": int(round(node.cpu * 1000)), "memory": int(node.memory)}[resource]
            requested = {"pods": 1, "cpu": int(round(cpu * 1000)), "memory": int(memory)}[resource]
            message = (f"Pod was rejected: Node didn't have enough resource: {resource}, requested: "
                       f"{requested}, used: {used}, capacity: {capacity}")
            self.server.pods.update(*key, lambda p: {**p, "status": {
                **p["status"], "phase": "Failed", "reason": f"OutOf{resource}", "message": message}})
            return
        self.scheduler.place(pod, node)
        self._bound(pod, node)

    def _bound(self, pod: dict, node: NodeState) -> None:
        self.kubelets.start(pod, node, self.outcome(pod))
        if node.taints:  # a NoExecute taint it tolerates only for a while
            self.node_controller.pod_placed(pod, node)

    def _recorder(self, kind: str) -> Callable[[Change], None]:
        """The trace's listener on the store of one kind (every object stored there is of that kind)."""
        def record(change: Change) -> None:
            obj = change.obj
            meta = obj["metadata"]
            self.trace.append((change.at, change.rv, change.type, kind, meta.get("namespace", ""),
                               meta["name"], obj.get("status", {}).get("phase", "")))
        return record


def without_unreachable(taints: list | None) -> list:
    """A node's taints but those the node controller sets while the node is unreachable."""
    return [t for t in taints or () if t.get("key") != UNREACHABLE]


def _tail_length(trace) -> int:
    if not isinstance(trace, int) or trace < 1:
        raise ValueError(f"trace must be True (every change), False (none) or how many of the last "
                         f"changes to keep (at least 1), got {trace!r}")
    return trace


def eviction_message(pod: dict, resource: str) -> str:
    """The kubelet's node-pressure eviction message (pkg/kubelet/eviction/helpers.go)."""
    message = (f"The node was low on resource: {resource}. "
               f"Threshold quantity: 100Mi, available: 92160Ki. ")
    for container in pod["spec"].get("containers") or []:
        request = ((container.get("resources") or {}).get("requests") or {}).get(resource, "0")
        try:
            asked = parse_quantity(request)
        except ValueError:
            asked = 0.0
        using = f"{int(max(asked * 2, 2**30) // 1024)}Ki"
        message += (f"Container {container.get('name')} was using {using}, request is {request}, "
                    f"has larger consumption of {resource}. ")
    return message
