"""Property: list-then-watch through the real client reproduces the server's state exactly.

A hypothesis state machine interleaves creates, label patches, status patches and deletes (all
through the real ``CoreV1Api``) with watch faults (expiry, compaction, dropped and stalled
streams) in one FakeCluster whose watch-cache window is drawn small. In the background an
informer lists, then watches from the list's resourceVersion, applying ADDED / MODIFIED /
DELETED to a dict keyed by name; on 410 it relists, on a broken stream it resumes from the
last RV it saw. Whenever the world goes quiet, the dict must equal the server's pods (names,
resourceVersions, labels), and every event must have been consistent with the dict it was
applied to.
"""

from __future__ import annotations

import kubernetes
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule
from kubernetes import watch
from kubernetes.client.rest import ApiException
from urllib3.exceptions import ProtocolError, ReadTimeoutError

from fakecluster import FakeCluster, Faults, constant

NS = "default"
NAMES = [f"p{i}" for i in range(5)]
READ_TIMEOUT = 10
QUIET = 120.0  # longer than any run, grace period, stall or reconnect below


class Informer:
    """What a reflector does: list, watch from the list RV, relist on 410, resume otherwise."""

    def __init__(self, cluster: FakeCluster, api, watch_timeout: int):
        self.cluster, self.api, self.watch_timeout = cluster, api, watch_timeout
        self.local: dict[str, tuple[str, dict]] = {}
        self.relists = self.expired = self.broken = 0

    def relist(self) -> str:
        listing = self.api.list_namespaced_pod(NS)
        self.local = {p.metadata.name: (p.metadata.resource_version, p.metadata.labels or {})
                      for p in listing.items}
        self.relists += 1
        return listing.metadata.resource_version

    def run(self) -> None:
        rv = self.relist()
        while True:
            try:
                for event in watch.Watch().stream(
                        self.api.list_namespaced_pod, NS, resource_version=rv,
                        timeout_seconds=self.watch_timeout, _request_timeout=(1, READ_TIMEOUT)):
                    rv = self.apply(event["type"], event["raw_object"], rv)
            except ApiException as error:
                assert error.status == 410, f"unexpected watch error {error.status}: {error.reason}"
                self.expired += 1
                rv = self.relist()
            except (ReadTimeoutError, ProtocolError):
                self.broken += 1  # resume from the last RV seen, like client-go's reflector

    def apply(self, kind: str, obj: dict, rv: str) -> str:
        meta = obj["metadata"]
        name, new_rv = meta["name"], meta["resourceVersion"]
        assert int(new_rv) > int(rv), f"{kind} {name} at RV {new_rv} after RV {rv}"
        if kind == "ADDED":
            assert name not in self.local, f"ADDED for {name}, which the informer already has"
            self.local[name] = (new_rv, meta.get("labels") or {})
        elif kind == "MODIFIED":
            assert name in self.local, f"MODIFIED for unknown {name}"
            self.local[name] = (new_rv, meta.get("labels") or {})
        elif kind == "DELETED":
            assert name in self.local, f"DELETED for unknown {name}"
            del self.local[name]
        else:
            raise AssertionError(f"unexpected event type {kind}")
        return new_rv


def tolerate(*codes):
    """Run a client call, ignoring the given HTTP error codes (404 after a delete, 409...)."""
    def call(fn, *args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except ApiException as error:
            if error.status not in codes:
                raise
    return call


class ListWatchMachine(RuleBasedStateMachine):
    cluster: FakeCluster | None = None

    @initialize(cache=st.integers(1, 6), latency=st.sampled_from([0.0, 0.5, 2.0]),
                watch_timeout=st.sampled_from([3, 30]), seed=st.integers(0, 2**16))
    def start(self, cache, latency, watch_timeout, seed):
        faults = Faults(latency={"watch": constant(latency)} if latency else {})
        self.cluster = FakeCluster(seed=seed, watch_cache_size=cache, faults=faults)
        self.api = kubernetes.client.CoreV1Api(self.cluster.api_client())
        self.informer = Informer(self.cluster, self.api, watch_timeout)
        self.process = self.cluster.spawn(self.informer.run, name="informer")

    def do(self, fn, *args, **kwargs):
        return self.cluster.run(lambda: fn(*args, **kwargs))

    # -- writes through the real client -------------------------------------------------------

    @rule(name=st.sampled_from(NAMES), team=st.sampled_from(["a", "b"]),
          run=st.sampled_from(["2", "30", "3600"]))
    def create(self, name, team, run):
        body = {"metadata": {"name": name, "labels": {"team": team},
                             "annotations": {"kubesim.io/run-seconds": run}},
                "spec": {"restartPolicy": "Never",
                         "containers": [{"name": "base", "image": "busybox:1.36"}]}}
        self.do(tolerate(409), self.api.create_namespaced_pod, NS, body)

    @rule(name=st.sampled_from(NAMES), team=st.sampled_from(["a", "b", None]))
    def relabel(self, name, team):
        self.do(tolerate(404), self.api.patch_namespaced_pod, name, NS,
                {"metadata": {"labels": {"team": team, "touched": "yes"}}})

    @rule(name=st.sampled_from(NAMES), message=st.sampled_from(["one", "two"]))
    def patch_status(self, name, message):
        self.do(tolerate(404), self.api.patch_namespaced_pod_status, name, NS,
                {"status": {"message": message}})

    @rule(name=st.sampled_from(NAMES), grace=st.sampled_from([None, 0]))
    def delete(self, name, grace):
        kwargs = {} if grace is None else {"grace_period_seconds": grace}
        self.do(tolerate(404), self.api.delete_namespaced_pod, name, NS, **kwargs)

    @rule(seconds=st.sampled_from([0.0, 0.5, 1.0, 3.0, 12.0]))
    def wait(self, seconds):
        self.do(self.cluster.sleep, seconds)

    # -- watch faults ---------------------------------------------------------------------------

    @rule()
    def expire(self):
        self.cluster.expire_watches()

    @rule(keep=st.integers(0, 3))
    def compact(self, keep):
        self.cluster.compact(keep)

    @rule()
    def drop(self):
        self.cluster.drop_watches()

    @rule(seconds=st.sampled_from([2.0, READ_TIMEOUT + 5.0]))
    def stall(self, seconds):
        self.cluster.stall_watches(seconds)

    # -- the property ---------------------------------------------------------------------------

    @invariant()
    def informer_alive(self):
        if self.cluster is not None and self.process.exception is not None:
            raise self.process.exception

    @rule()
    def quiet_and_compare(self):
        self.check()

    def check(self):
        self.do(self.cluster.sleep, QUIET)
        if self.process.exception is not None:
            raise self.process.exception
        server = self.do(self.api.list_namespaced_pod, NS)
        want = {p.metadata.name: (p.metadata.resource_version, p.metadata.labels or {}) for p in server.items}
        assert self.informer.local == want

    def teardown(self):
        if self.cluster is None:
            return
        try:
            self.check()
        finally:
            self.process.kill()


ListWatchMachine.TestCase.settings = settings(
    max_examples=40, stateful_step_count=25, deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
TestListWatchProperty = ListWatchMachine.TestCase


def test_machine_exercises_relists_and_resumes():
    """The faults above really happen: one fixed run sees a 410 relist and a resumed stream."""
    cluster = FakeCluster(seed=3, watch_cache_size=2, faults=Faults(latency={"watch": constant(2.0)}))
    api = kubernetes.client.CoreV1Api(cluster.api_client())
    informer = Informer(cluster, api, watch_timeout=READ_TIMEOUT - 1)
    process = cluster.spawn(informer.run, name="informer")

    def main():
        cluster.sleep(3)
        cluster.drop_watches()                     # resume from the last RV (2 s to reconnect)
        for name in NAMES:                         # more changes than the window meanwhile
            api.create_namespaced_pod(NS, {
                "metadata": {"name": name, "labels": {"team": "a"},
                             "annotations": {"kubesim.io/run-seconds": "3600"}},
                "spec": {"restartPolicy": "Never", "containers": [{"name": "c", "image": "i:1"}]}})
        cluster.sleep(QUIET)
        return {p.metadata.name: (p.metadata.resource_version, p.metadata.labels or {})
                for p in api.list_namespaced_pod(NS).items}

    want = cluster.run(main)
    process.kill()
    assert process.exception is None
    assert informer.broken >= 1 and informer.expired >= 1
    assert informer.relists == informer.expired + 1
    assert informer.local == want and set(want) == set(NAMES)


def test_listeners_see_changes_in_rv_order_even_when_a_listener_writes():
    """A listener that writes (as a scheduler binding a pod it was just told about) must not
    make the other listeners, the trace among them, see the consequence before the cause."""
    from fakecluster.api.store import ResourceStore, Revision

    revision = Revision()
    pods = ResourceStore("pods", "Pod", True, revision)
    events = ResourceStore("events", "Event", True, revision)
    seen: list[tuple[int, str, str]] = []

    def binder(change):
        if change.type == "ADDED":
            meta = change.obj["metadata"]
            pods.update(meta["namespace"], meta["name"], lambda p: {**p, "spec": {"nodeName": "node-1"}})
            events.create({"metadata": {"namespace": "default", "name": "bound"}})

    pods.listeners.append(binder)
    for store in (pods, events):
        store.listeners.append(lambda change: seen.append((change.rv, change.type, change.obj["metadata"]["name"])))
    pods.create({"metadata": {"namespace": "default", "name": "a"}, "spec": {}})
    assert seen == [(1, "ADDED", "a"), (2, "MODIFIED", "a"), (3, "ADDED", "bound")]
