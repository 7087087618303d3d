"""Same seed, same world: the event trace and the API call log replay exactly.

The workload mixes everything that draws from the world's RNG: generated pod names and uids, a
behaviour model with random run times and failures, long-tailed API latency, a probabilistic
500 on creates, and a storm of 410s against a list-then-watch informer.
"""

from __future__ import annotations

import kubernetes
from kubernetes import watch
from kubernetes.client.rest import ApiException

from fakecluster import Behaviour, ErrorRule, FakeCluster, Faults, lognormal

NS = "default"


def run_world(seed: int):
    faults = Faults(latency={"*": lognormal(0.05, 0.5)},
                    errors=[ErrorRule(500, verbs=("create",), probability=0.3)])
    behaviour = Behaviour(run_seconds=lambda rng: rng.uniform(1, 20), failure_probability=0.3)
    cluster = FakeCluster(seed=seed, faults=faults, behaviour=behaviour, watch_cache_size=8)
    api = kubernetes.client.CoreV1Api(cluster.api_client())
    seen: list[tuple] = []
    stats = {"expired": 0, "created": 0, "create_errors": 0}

    def informer():
        rv = api.list_namespaced_pod(NS).metadata.resource_version
        while True:
            try:
                for event in watch.Watch().stream(api.list_namespaced_pod, NS, resource_version=rv,
                                                  timeout_seconds=20, allow_watch_bookmarks=True):
                    obj = event["raw_object"]
                    rv = obj["metadata"]["resourceVersion"]
                    seen.append((cluster.now, event["type"], obj["metadata"].get("name"), rv))
            except ApiException as error:
                assert error.status == 410
                stats["expired"] += 1
                rv = api.list_namespaced_pod(NS).metadata.resource_version

    def submitter():
        for i in range(10):
            body = {"metadata": {"generateName": f"task-{i}-", "labels": {"batch": str(i % 3)}},
                    "spec": {"restartPolicy": "Never",
                             "containers": [{"name": "base", "image": "busybox:1.36"}]}}
            while True:
                try:
                    api.create_namespaced_pod(NS, body)
                    stats["created"] += 1
                    break
                except ApiException as error:
                    assert error.status == 500
                    stats["create_errors"] += 1
                    cluster.sleep(0.5)
            cluster.sleep(cluster.rng.uniform(0.1, 2.0))

    def main():
        cluster.spawn(informer, name="informer")
        cluster.spawn(submitter, name="submitter")
        for t in (4.0, 4.5, 5.0, 9.0, 9.2):  # a 410 storm, with compaction in the middle
            cluster.at(t, cluster.expire_watches)
        cluster.at(7.0, lambda: cluster.compact(keep=2))
        cluster.sleep(8)
        for pod in api.list_namespaced_pod(NS, label_selector="batch=1").items:
            api.delete_namespaced_pod(pod.metadata.name, NS)
        cluster.sleep(60)

    cluster.run(main)
    return cluster.trace, list(cluster.gateway.log), seen, stats


def test_same_seed_gives_identical_trace_and_gateway_log():
    trace_a, log_a, seen_a, stats_a = run_world(seed=11)
    trace_b, log_b, seen_b, stats_b = run_world(seed=11)
    # the workload really exercised the faults it claims to
    assert stats_a["created"] == 10 and stats_a["create_errors"] > 0 and stats_a["expired"] > 0
    assert {c.status for c in log_a} >= {200, 201, 500}
    assert len({round(c.time % 1, 6) for c in log_a}) > 10  # latency drawn, not constant
    assert any(kind == "DELETED" for _, _, kind, *_ in trace_a)
    assert trace_a == trace_b
    assert log_a == log_b
    assert seen_a == seen_b and stats_a == stats_b


def test_different_seed_gives_a_different_trace():
    trace_a, log_a, _, _ = run_world(seed=11)
    trace_c, log_c, _, _ = run_world(seed=12)
    assert trace_a != trace_c
    assert log_a != log_c


def test_trace_is_in_resource_version_order():
    """A write made by a listener (the scheduler binding a pod it was just told about) is
    recorded after the change that caused it, never before."""
    trace, _, _, _ = run_world(seed=5)
    rvs = [entry[1] for entry in trace]
    assert rvs == sorted(rvs) and len(set(rvs)) == len(rvs)
