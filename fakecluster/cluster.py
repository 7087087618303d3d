"""FakeCluster: one simulated world (clock, RNG, API server, nodes, scheduler, kubelets, faults)."""

from __future__ import annotations

import random
from datetime import timedelta
from typing import Any, Callable

import kubernetes.client
import simpy
from faker import Faker

from .apiserver import ApiServer, Request, ServerOptions
from .behaviour import Behaviour, BehaviourError, Outcome
from .faults import Faults
from .gateway import Gateway
from .kernel import Kernel, Process
from .kubelet import Kubelets
from .nodes import NodeState, node_object, parse_quantity, ready_condition
from .runtime import EPOCH, SimRuntime
from .scheduler import Scheduler, with_condition
from .status import ApiError
from .store import ADDED, DELETED, MODIFIED, Change

HOST = "https://kubesim.local"
NODE_MONITOR_GRACE = 50.0       # node-monitor-grace-period since v1.32
TOLERATION_SECONDS = 300.0      # DefaultTolerationSeconds for unreachable nodes


class FakeCluster:
    """A simulated Kubernetes cluster in virtual time, reached through the real client.

    >>> cluster = FakeCluster(seed=1, nodes=3)
    >>> api = kubernetes.client.CoreV1Api(cluster.api_client())
    >>> cluster.run(api.list_namespaced_pod, "default").items
    []
    """

    def __init__(self, seed: int = 0, nodes: int = 3, node_cpu: str = "8", node_memory: str = "32Gi",
                 node_pods: int = 110, watch_cache_size: int = 100 * 1024,
                 namespaces: tuple[str, ...] = ("default", "kube-system"),
                 behaviour: Behaviour | None = None, faults: Faults | None = None,
                 options: ServerOptions | None = None, scheduling_delay: float = 0.0,
                 horizon: float = 30 * 24 * 3600.0, trace: bool = True):
        self.seed = seed
        self.rng = random.Random(seed)
        self.faker = Faker()
        self.faker.seed_instance(self.rng.getrandbits(32))
        self.env = simpy.Environment()
        self.kernel = Kernel(self.env, horizon)
        self.runtime = SimRuntime(self.kernel)
        options = options or ServerOptions()
        options.watch_cache_size = watch_cache_size
        self.server = ApiServer(self.kernel, self.rng, self.timestamp, options)
        self.faults = faults or Faults()
        self.gateway = Gateway(self.server, self.kernel, self.rng, self.faults)
        self.behaviour = behaviour or Behaviour()
        self.trace: list[tuple] = []
        self._outcomes: dict[tuple, Outcome] = {}
        self.nodes: dict[str, NodeState] = {}
        self.kubelets = Kubelets(self.env, self.server.pods, self.timestamp, self._pod_finished)
        self.scheduler = Scheduler(self.env, self.server.pods, self.nodes, self.outcome,
                                   self._bound, self.timestamp, scheduling_delay)
        self.server.pods.listeners.append(self._on_pod_change)
        if trace:
            for store in self.server.stores.values():
                store.listeners.append(self._record)
        for namespace in namespaces:
            self.create_namespace(namespace)
        for i in range(nodes):
            self.add_node(f"node-{i + 1}", node_cpu, node_memory, node_pods)

    # -- time and processes --------------------------------------------------------------------

    @property
    def now(self) -> float:
        """Virtual seconds since the simulation started."""
        return self.env.now

    def utcnow(self):
        return EPOCH + timedelta(seconds=self.env.now)

    def timestamp(self, offset: float = 0.0) -> str:
        """RFC 3339 time, as Kubernetes writes it in object metadata and status."""
        return (self.utcnow() + timedelta(seconds=offset)).strftime("%Y-%m-%dT%H:%M:%SZ")

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

    # -- the client ----------------------------------------------------------------------------

    def api_client(self, configuration: kubernetes.client.Configuration | None = None):
        """A real ``kubernetes.client.ApiClient`` whose network is this cluster."""
        from .transport import FakePoolManager
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
        state = NodeState(name, parse_quantity(cpu), parse_quantity(memory), int(pods),
                          labels={"kubernetes.io/hostname": name, "kubernetes.io/os": "linux",
                                  **(labels or {})}, ip=f"192.168.{len(self.nodes) // 250}.{len(self.nodes) % 250 + 1}")
        self.nodes[name] = state
        self.server.stores["nodes"].create(node_object(state, self.timestamp()))
        self.scheduler.nodes_changed()
        return state

    def outcome(self, pod: dict) -> Outcome:
        """The behaviour drawn for a pod (once per pod uid, so it stays the same)."""
        uid = pod["metadata"]["uid"]
        outcome = self._outcomes.get(uid)
        if outcome is None:
            try:
                outcome = self.behaviour.outcome(pod, self.rng)
            except BehaviourError as exc:
                outcome = Outcome(container_error="CreateContainerConfigError")
                self.trace.append((self.env.now, "behaviour-error", str(exc)))
            self._outcomes[uid] = outcome
        return outcome

    # -- faults on the cluster -----------------------------------------------------------------

    def expire_watches(self, compact: bool = True) -> int:
        """End every open watch with a 410 ERROR event; with ``compact``, resuming gets 410 too."""
        ended = 0
        for store in self.server.stores.values():
            if compact:
                store.compact()
            for watcher in list(store.watchers.all()):
                watcher.send_error(expired_error(store.floor - 1 if store.floor else 0, store.floor))
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

    def _each_watch(self, action) -> int:
        watchers = [w for store in self.server.stores.values() for w in store.watchers.all()]
        for watcher in watchers:
            action(watcher)
        return len(watchers)

    def evict(self, namespace: str, name: str, resource: str = "memory") -> None:
        """Node-pressure eviction of one running pod by its kubelet."""
        message = f"The node was low on resource: {resource}. "
        self.kubelets.evict((namespace, name), message)

    def lose_node(self, name: str) -> None:
        """The node stops reporting: after 50 s NotReady, after 300 s more its pods are deleted."""
        node = self.nodes[name]
        node.ready = False
        for key in list(node.pods):
            self.kubelets.freeze(key)
        self.at(self.env.now + NODE_MONITOR_GRACE, lambda: self._node_unreachable(name))

    def _node_unreachable(self, name: str) -> None:
        node = self.nodes.get(name)
        if node is None or node.ready:
            return
        when = self.timestamp()
        self.server.stores["nodes"].update("", name, lambda n: {
            **n, "spec": {**n["spec"], "taints": [{"key": "node.kubernetes.io/unreachable",
                                                    "effect": "NoExecute", "timeAdded": when}]},
            "status": {**n["status"], "conditions": [ready_condition(None, when)]}})
        for key in sorted(node.pods):
            self.server.pods.update(*key, lambda p: with_condition(p, {
                "type": "Ready", "status": "False", "lastProbeTime": None, "lastTransitionTime": when}))
        self.at(self.env.now + TOLERATION_SECONDS, lambda: self._taint_evict(name))

    def _taint_evict(self, name: str) -> None:
        node = self.nodes.get(name)
        if node is None or node.ready:
            return
        for key in sorted(node.pods):
            pod = self.server.pods.get(*key)
            if pod is not None and not pod["metadata"].get("deletionTimestamp"):
                self.server.delete_object(self.server.pods, pod, None)

    def restore_node(self, name: str) -> None:
        """A lost node comes back: its kubelet removes what was deleted meanwhile."""
        node = self.nodes[name]
        node.ready = True
        when = self.timestamp()
        self.server.stores["nodes"].update("", name, lambda n: {
            **n, "spec": {k: v for k, v in n["spec"].items() if k != "taints"},
            "status": {**n["status"], "conditions": [ready_condition(True, when)]}})
        for key in sorted(node.pods):
            pod = self.server.pods.get(*key)
            if pod is not None and pod["metadata"].get("deletionTimestamp"):
                self.kubelets.terminate(key, 0)
        self.scheduler.retry()

    def delete_node(self, name: str) -> None:
        """Remove the Node object; pod garbage collection force-deletes the pods bound to it."""
        node = self.nodes.pop(name)
        self.server.stores["nodes"].remove("", name)
        for key in sorted(node.pods):
            self.kubelets.forget(key)
            if self.server.pods.get(*key) is not None:
                self.server.pods.remove(*key)
        self.scheduler.nodes_changed()

    # -- wiring --------------------------------------------------------------------------------

    def _on_pod_change(self, change: Change) -> None:
        pod, key = change.obj, (change.obj["metadata"]["namespace"], change.obj["metadata"]["name"])
        if change.type == ADDED and not pod["spec"].get("nodeName"):
            self.scheduler.submit(pod)
        elif change.type == MODIFIED:
            meta, before = pod["metadata"], change.prev["metadata"]
            if meta.get("deletionTimestamp") and not before.get("deletionTimestamp"):
                if self.nodes.get(pod["spec"].get("nodeName", ""), None) is not None and \
                        self.nodes[pod["spec"]["nodeName"]].ready:
                    self.kubelets.terminate(key, meta.get("deletionGracePeriodSeconds") or 0)
        elif change.type == DELETED:
            self.scheduler.waiting.pop(key, None)
            self.kubelets.forget(key)

    def _bound(self, pod: dict, node: NodeState) -> None:
        self.kubelets.start(pod, node, self.outcome(pod))

    def _pod_finished(self, key: tuple) -> None:
        self.scheduler.release(key)

    def _record(self, change: Change) -> None:
        meta = change.obj["metadata"]
        phase = change.obj.get("status", {}).get("phase", "")
        self.trace.append((self.env.now, change.rv, change.type, change.obj.get("kind", ""),
                           meta.get("namespace", ""), meta["name"], phase))


def expired_error(requested: int, floor: int) -> ApiError:
    from . import status
    return status.expired(f"too old resource version: {requested} ({floor})")
