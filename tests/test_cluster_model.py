"""The cluster model seen through the real client: scheduler, kubelet lifecycle, node faults.

Pod shapes follow the reference (kubernetes-api-semantics.md, section 6). Every test drives the
real ``CoreV1Api`` (36.x classic or 37.x pydantic) in virtual time; the assertions on times are
exact because the clock is virtual.
"""

from __future__ import annotations

import json
import random
from collections import Counter

import kubernetes
import pytest
from kubernetes import watch

from fakecluster import Behaviour, FakeCluster, uniform
from fakecluster.model.behaviour import BehaviourError, steer

NS = "default"


# -- small helpers (nothing below mocks the client) ----------------------------------------------

def manifest(name: str, cpu: str | None = None, annotations: dict | None = None,
             restart: str | None = "Never", image: str = "busybox:1.36", **spec) -> dict:
    container = {"name": "base", "image": image}
    if cpu is not None:
        container["resources"] = {"requests": {"cpu": cpu}}
    body = {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "annotations": dict(annotations or {})},
            "spec": {"containers": [container], **spec}}
    if restart is not None:
        body["spec"]["restartPolicy"] = restart
    return body


def world(seed: int = 11, **kw):
    cluster = FakeCluster(seed=seed, **kw)
    return cluster, kubernetes.client.CoreV1Api(cluster.api_client())


def raw(api, name: str) -> dict:
    """The pod's JSON exactly as served, read through the real client."""
    return json.loads(api.read_namespaced_pod(name, NS, _preload_content=False).data)


def condition(pod: dict, kind: str) -> dict | None:
    return next((c for c in pod["status"].get("conditions", []) if c["type"] == kind), None)


def waiting_reason(pod: dict) -> str | None:
    statuses = pod["status"].get("containerStatuses") or []
    return statuses[0]["state"].get("waiting", {}).get("reason") if statuses else None


def follow(cluster, api, name: str, seconds: float) -> list[tuple]:
    """(virtual time, event type, phase, waiting reason) of each watch event about one pod."""
    seen = []
    for event in watch.Watch().stream(api.list_namespaced_pod, NS, field_selector=f"metadata.name={name}",
                                      timeout_seconds=int(seconds)):
        obj = event["raw_object"]
        seen.append((cluster.now, event["type"], obj["status"].get("phase"), waiting_reason(obj)))
    return seen


def changes(seen: list[tuple]) -> list[tuple]:
    """Collapse runs of identical (phase, waiting reason) states."""
    out = []
    for when, _, phase, reason in seen:
        if not out or out[-1][1:] != (phase, reason):
            out.append((when, phase, reason))
    return out


# -- the scheduler -------------------------------------------------------------------------------

def test_scheduler_binds_a_pod_to_a_node():
    cluster, api = world(nodes=3)

    def main():
        created = api.create_namespaced_pod(NS, manifest("job", cpu="1"))
        cluster.sleep(0)
        return created, raw(api, "job")

    created, pod = cluster.run(main)
    assert created.spec.node_name is None  # the create's answer comes before the scheduler
    assert pod["spec"]["nodeName"] in {"node-1", "node-2", "node-3"}
    scheduled = condition(pod, "PodScheduled")
    assert scheduled["status"] == "True" and "reason" not in scheduled


def test_insufficient_cpu_leaves_the_pod_pending_with_the_kube_scheduler_message():
    cluster, api = world(nodes=3, node_cpu="2")

    def main():
        api.create_namespaced_pod(NS, manifest("big", cpu="4"))
        cluster.sleep(1)
        return raw(api, "big")

    pod = cluster.run(main)
    assert pod["status"]["phase"] == "Pending" and not pod["spec"].get("nodeName")
    scheduled = condition(pod, "PodScheduled")
    assert (scheduled["status"], scheduled["reason"]) == ("False", "Unschedulable")
    # kube-scheduler's FitError, then DefaultPreemption's verdict: nodes short of cpu are
    # preemption candidates with no lower-priority victims (reference section 6.2)
    assert scheduled["message"] == ("0/3 nodes are available: 3 Insufficient cpu. preemption: 0/3 nodes "
                                    "are available: 3 No preemption victims found for incoming pod.")
    assert scheduled["lastProbeTime"] is None


def test_unschedulable_pod_gets_a_failed_scheduling_event():
    cluster, api = world(nodes=2, node_cpu="1")

    def main():
        api.create_namespaced_pod(NS, manifest("big", cpu="2"))
        cluster.sleep(1)
        return [e for e in api.list_namespaced_event(NS).items if e.involved_object.name == "big"]

    events = cluster.run(main)
    assert [(e.type, e.reason, e.source.component, e.count) for e in events] == \
        [("Warning", "FailedScheduling", "default-scheduler", 1)]
    assert events[0].message.startswith("0/2 nodes are available: 2 Insufficient cpu.")
    assert events[0].involved_object.kind == "Pod"


def test_a_pending_pod_is_scheduled_once_capacity_frees():
    cluster, api = world(nodes=1, node_cpu="2")

    def main():
        api.create_namespaced_pod(NS, manifest("first", cpu="2", annotations={"kubesim.io/run-seconds": "30"}))
        cluster.sleep(1)
        api.create_namespaced_pod(NS, manifest("second", cpu="2"))
        cluster.sleep(1)
        waiting = raw(api, "second")
        cluster.sleep(28)  # the first finishes at exactly 30 s
        return waiting, raw(api, "second")

    waiting, bound = cluster.run(main)
    assert condition(waiting, "PodScheduled")["status"] == "False"
    assert bound["spec"]["nodeName"] == "node-1"
    scheduled = condition(bound, "PodScheduled")
    assert scheduled["status"] == "True" and scheduled["lastTransitionTime"] == "2024-01-01T00:00:30Z"


def test_node_selector_mismatch_is_not_helped_by_preemption():
    cluster, api = world(nodes=2)

    def main():
        api.create_namespaced_pod(NS, manifest("picky", nodeSelector={"disktype": "ssd"}))
        cluster.sleep(1)
        return raw(api, "picky")

    pod = cluster.run(main)
    assert condition(pod, "PodScheduled")["message"] == (
        "0/2 nodes are available: 2 node(s) didn't match Pod's node affinity/selector. preemption: 0/2 "
        "nodes are available: 2 Preemption is not helpful for scheduling.")


def test_node_selector_matching_a_labelled_node_binds_there():
    cluster, api = world(nodes=2)
    cluster.add_node("fast-1", labels={"disktype": "ssd"})

    def main():
        api.create_namespaced_pod(NS, manifest("picky", nodeSelector={"disktype": "ssd"}))
        cluster.sleep(1)
        return raw(api, "picky")

    assert cluster.run(main)["spec"]["nodeName"] == "fast-1"


def test_mixed_reasons_are_counted_per_node_and_sorted_as_kube_scheduler_does():
    cluster, api = world(nodes=0)
    cluster.add_node("small", cpu="1")
    cluster.add_node("ssd", cpu="1", labels={"disktype": "ssd"})

    def main():
        api.create_namespaced_pod(NS, manifest("x", cpu="2", nodeSelector={"disktype": "ssd"}))
        cluster.sleep(1)
        return raw(api, "x")

    assert condition(cluster.run(main), "PodScheduled")["message"] == (
        "0/2 nodes are available: 1 Insufficient cpu, 1 node(s) didn't match Pod's node affinity/selector. "
        "preemption: 0/2 nodes are available: 1 No preemption victims found for incoming pod, "
        "1 Preemption is not helpful for scheduling.")


def test_pod_capacity_of_a_node_is_enforced():
    cluster, api = world(nodes=1, node_pods=2)

    def main():
        for i in range(3):
            api.create_namespaced_pod(NS, manifest(f"p{i}", annotations={"kubesim.io/run-seconds": "60"}))
        cluster.sleep(1)
        return [raw(api, f"p{i}") for i in range(3)]

    pods = cluster.run(main)
    assert [p["spec"].get("nodeName") for p in pods] == ["node-1", "node-1", None]
    assert condition(pods[2], "PodScheduled")["message"] == (
        "0/1 nodes are available: 1 Too many pods. preemption: 0/1 nodes are available: "
        "1 No preemption victims found for incoming pod.")


def test_freed_room_goes_to_the_earliest_waiting_pod_that_fits_it():
    cluster, api = world(nodes=1, node_cpu="4")
    order = []
    cluster.server.pods.listeners.append(lambda change: change.obj["spec"].get("nodeName") and not (
        change.prev or {}).get("spec", {}).get("nodeName") and order.append((cluster.now, change.obj["metadata"]["name"])))

    def main():
        api.create_namespaced_pod(NS, manifest("a", cpu="3", annotations={"kubesim.io/run-seconds": "10"}))
        api.create_namespaced_pod(NS, manifest("b", cpu="1", annotations={"kubesim.io/run-seconds": "20"}))
        cluster.sleep(1)
        api.create_namespaced_pod(NS, manifest("big", cpu="4", annotations={"kubesim.io/run-seconds": "5"}))
        cluster.sleep(1)
        api.create_namespaced_pod(NS, manifest("small", cpu="2", annotations={"kubesim.io/run-seconds": "5"}))
        cluster.sleep(100)

    cluster.run(main)
    # at 10 s "a" frees 3 cpu: "big" (older) still does not fit, "small" does; "big" gets the
    # whole node once "b" and "small" are done at 20 s
    assert order == [(0, "a"), (0, "b"), (10, "small"), (20, "big")]


def test_a_large_backlog_drains_in_arrival_order():
    cluster, api = world(nodes=4, node_cpu="8", record_events=False)
    started = []
    cluster.server.pods.listeners.append(lambda change: change.obj["status"].get("phase") == "Running" and (
        change.prev or {}).get("status", {}).get("phase") != "Running" and started.append(change.obj["metadata"]["name"]))

    def main():
        for i in range(2000):
            api.create_namespaced_pod(NS, manifest(f"t{i:04d}", cpu="1", annotations={"kubesim.io/run-seconds": "60"}))
        cluster.sleep(63 * 60)  # 32 slots: 63 waves of 60 s
        return Counter(p["status"]["phase"] for p in cluster.pods()), raw(api, "t1999")

    phases, last = cluster.run(main)
    assert phases == Counter({"Succeeded": 2000})
    assert started == sorted(started)  # one shape, one queue: first come, first served
    assert last["status"]["containerStatuses"][0]["state"]["terminated"]["finishedAt"] == "2024-01-01T01:03:00Z"
    assert cluster.events() == []


def test_waiting_pods_are_told_when_the_number_of_nodes_changes():
    cluster, api = world(nodes=1, node_cpu="1")

    def main():
        api.create_namespaced_pod(NS, manifest("big", cpu="2"))
        cluster.sleep(1)
        before = condition(raw(api, "big"), "PodScheduled")
        cluster.add_node("node-2", cpu="1")
        cluster.sleep(1)
        return before, condition(raw(api, "big"), "PodScheduled")

    before, after = cluster.run(main)
    assert before["message"].startswith("0/1 nodes are available: 1 Insufficient cpu.")
    assert after["message"].startswith("0/2 nodes are available: 2 Insufficient cpu.")
    assert after["lastTransitionTime"] == before["lastTransitionTime"]  # still False: no transition


def test_no_nodes_at_all():
    cluster, api = world(nodes=0)

    def main():
        api.create_namespaced_pod(NS, manifest("lonely"))
        cluster.sleep(1)
        return raw(api, "lonely")

    assert condition(cluster.run(main), "PodScheduled")["message"] == "no nodes available to schedule pods"


def test_a_node_added_later_takes_the_waiting_pods():
    cluster, api = world(nodes=0)

    def main():
        api.create_namespaced_pod(NS, manifest("p"))
        cluster.sleep(5)
        cluster.add_node("late")
        cluster.sleep(0)
        return raw(api, "p")

    assert cluster.run(main)["spec"]["nodeName"] == "late"


def test_unschedulable_annotation_keeps_the_pod_pending_for_ever():
    cluster, api = world(nodes=2)

    def main():
        api.create_namespaced_pod(NS, manifest("stuck", annotations={"kubesim.io/unschedulable": "true"}))
        cluster.sleep(600)
        return raw(api, "stuck")

    pod = cluster.run(main)
    assert pod["status"]["phase"] == "Pending"
    assert condition(pod, "PodScheduled")["reason"] == "Unschedulable"


# -- the kubelet: a pod's life -------------------------------------------------------------------

def test_lifecycle_pending_running_succeeded_at_exactly_run_seconds():
    cluster, api = world()

    def main():
        watcher = cluster.spawn(follow, cluster, api, "job", 60)
        cluster.sleep(1)
        api.create_namespaced_pod(NS, manifest("job", annotations={"kubesim.io/run-seconds": "42"}))
        cluster.sleep(0.5)
        running = raw(api, "job")
        watcher.join()
        return running, raw(api, "job"), watcher.value

    running, done, seen = cluster.run(main)
    assert changes(seen) == [(1, "Pending", None), (1, "Running", None), (43, "Succeeded", None)]
    status = running["status"]
    assert status["podIP"] and status["podIPs"] == [{"ip": status["podIP"]}]
    assert status["hostIP"].startswith("192.168.")
    assert status["startTime"] == "2024-01-01T00:00:01Z"
    container = status["containerStatuses"][0]
    assert container["state"] == {"running": {"startedAt": "2024-01-01T00:00:01Z"}}
    assert container["ready"] is True and container["restartCount"] == 0
    assert condition(running, "Ready")["status"] == "True"
    assert condition(running, "ContainersReady")["status"] == "True"
    terminated = done["status"]["containerStatuses"][0]["state"]["terminated"]
    assert (terminated["reason"], terminated["exitCode"]) == ("Completed", 0)
    assert terminated["startedAt"] == "2024-01-01T00:00:01Z"
    assert terminated["finishedAt"] == "2024-01-01T00:00:43Z"
    assert condition(done, "Ready") == {"type": "Ready", "status": "False", "lastProbeTime": None,
                                        "lastTransitionTime": "2024-01-01T00:00:43Z", "reason": "PodCompleted"}


def test_image_pull_time_shows_container_creating():
    cluster, api = world()

    def main():
        api.create_namespaced_pod(NS, manifest("slow", annotations={"kubesim.io/pull-seconds": "8",
                                                                      "kubesim.io/run-seconds": "5"}))
        cluster.sleep(1)
        pulling = raw(api, "slow")
        cluster.sleep(8)
        return pulling, raw(api, "slow")

    pulling, running = cluster.run(main)
    assert (pulling["status"]["phase"], waiting_reason(pulling)) == ("Pending", "ContainerCreating")
    assert pulling["status"]["startTime"] == "2024-01-01T00:00:00Z"  # set when the kubelet admits it
    assert condition(pulling, "Ready")["reason"] == "ContainersNotReady"
    assert running["status"]["phase"] == "Running"
    assert running["status"]["containerStatuses"][0]["state"]["running"]["startedAt"] == "2024-01-01T00:00:08Z"


def test_non_zero_exit_code_fails_the_pod_with_error():
    cluster, api = world()

    def main():
        api.create_namespaced_pod(NS, manifest("bad", annotations={"kubesim.io/run-seconds": "3",
                                                                     "kubesim.io/exit-code": "2"}))
        cluster.sleep(3)
        return raw(api, "bad")

    pod = cluster.run(main)
    assert pod["status"]["phase"] == "Failed"
    terminated = pod["status"]["containerStatuses"][0]["state"]["terminated"]
    assert (terminated["reason"], terminated["exitCode"]) == ("Error", 2)


def test_oom_killed_is_exit_137():
    cluster, api = world()

    def main():
        api.create_namespaced_pod(NS, manifest("hog", annotations={"kubesim.io/run-seconds": "7",
                                                                     "kubesim.io/oom": "true"}))
        cluster.sleep(7)
        return raw(api, "hog")

    pod = cluster.run(main)
    assert pod["status"]["phase"] == "Failed"
    terminated = pod["status"]["containerStatuses"][0]["state"]["terminated"]
    assert (terminated["reason"], terminated["exitCode"]) == ("OOMKilled", 137)


def test_err_image_pull_alternates_with_image_pull_back_off_and_stays_pending():
    cluster, api = world()

    def main():
        watcher = cluster.spawn(follow, cluster, api, "nopull", 100)
        cluster.sleep(1)
        api.create_namespaced_pod(NS, manifest("nopull", annotations={"kubesim.io/image-error": "ErrImagePull"}))
        watcher.join()
        return watcher.value, raw(api, "nopull")

    seen, pod = cluster.run(main)
    # pull fails, back-off 10 s, fails again, back-off 20 s, then 40 s...
    assert changes(seen) == [
        (1, "Pending", None), (1, "Pending", "ErrImagePull"), (2, "Pending", "ImagePullBackOff"),
        (12, "Pending", "ErrImagePull"), (13, "Pending", "ImagePullBackOff"),
        (33, "Pending", "ErrImagePull"), (34, "Pending", "ImagePullBackOff"),
        (74, "Pending", "ErrImagePull"), (75, "Pending", "ImagePullBackOff")]
    waiting = pod["status"]["containerStatuses"][0]["state"]["waiting"]
    assert waiting["message"] == 'Back-off pulling image "busybox:1.36"'
    reasons = {(e["reason"], e["message"]) for e in cluster.events(NS, "nopull")}
    assert ("BackOff", 'Back-off pulling image "busybox:1.36"') in reasons
    assert ("Failed", "Error: ErrImagePull") in reasons


@pytest.mark.parametrize("how", ["annotation", "image"])
def test_invalid_image_name_stays_for_ever(how):
    cluster, api = world()
    if how == "annotation":
        body = manifest("badimg", annotations={"kubesim.io/image-error": "InvalidImageName"})
    else:
        body = manifest("badimg", image="Busybox:1.36:extra")

    def main():
        api.create_namespaced_pod(NS, body)
        cluster.sleep(1000)
        return raw(api, "badimg")

    pod = cluster.run(main)
    assert (pod["status"]["phase"], waiting_reason(pod)) == ("Pending", "InvalidImageName")
    message = pod["status"]["containerStatuses"][0]["state"]["waiting"]["message"]
    assert message.startswith("Failed to apply default image tag") and "invalid reference format" in message


def test_create_container_config_error_keeps_the_pod_pending():
    cluster, api = world()

    def main():
        api.create_namespaced_pod(NS, manifest("nosecret", annotations={
            "kubesim.io/container-error": "CreateContainerConfigError"}))
        cluster.sleep(500)
        return raw(api, "nosecret")

    pod = cluster.run(main)
    assert (pod["status"]["phase"], waiting_reason(pod)) == ("Pending", "CreateContainerConfigError")
    assert pod["status"]["containerStatuses"][0]["state"]["waiting"]["message"] == 'secret "task-secrets" not found'
    assert condition(pod, "PodScheduled")["status"] == "True"


def test_restart_policy_always_crash_loops_and_the_pod_stays_running():
    cluster, api = world()

    def main():
        api.create_namespaced_pod(NS, manifest("loop", restart=None, annotations={
            "kubesim.io/run-seconds": "5", "kubesim.io/exit-code": "1"}))
        cluster.sleep(11)  # exits at 5, restarted at once, exits at 10: back-off 10 s
        return raw(api, "loop")

    pod = cluster.run(main)
    assert pod["spec"]["restartPolicy"] == "Always"  # the API server's default
    assert pod["status"]["phase"] == "Running"
    status = pod["status"]["containerStatuses"][0]
    assert status["restartCount"] == 2 and status["ready"] is False
    assert status["state"]["waiting"]["reason"] == "CrashLoopBackOff"
    assert status["state"]["waiting"]["message"].startswith("back-off 10s restarting failed container=base pod=loop_default(")
    last = status["lastState"]["terminated"]
    assert (last["exitCode"], last["reason"], last["finishedAt"]) == (1, "Error", "2024-01-01T00:00:10Z")


def test_restart_policy_on_failure_ends_a_clean_exit():
    cluster, api = world()

    def main():
        api.create_namespaced_pod(NS, manifest("once", restart="OnFailure",
                                                annotations={"kubesim.io/run-seconds": "5"}))
        cluster.sleep(5)
        return raw(api, "once")

    assert cluster.run(main)["status"]["phase"] == "Succeeded"


def test_restart_policy_can_be_ignored_by_the_behaviour_model():
    cluster, api = world(behaviour=Behaviour(honour_restart_policy=False))

    def main():
        api.create_namespaced_pod(NS, manifest("always", restart=None, annotations={"kubesim.io/run-seconds": "5"}))
        cluster.sleep(5)
        return raw(api, "always")

    assert cluster.run(main)["status"]["phase"] == "Succeeded"


# -- deletion -----------------------------------------------------------------------------------

def test_graceful_delete_sigterm_then_removed_after_stop_seconds():
    cluster, api = world()

    def main():
        api.create_namespaced_pod(NS, manifest("victim", annotations={"kubesim.io/run-seconds": "3600",
                                                                        "kubesim.io/stop-seconds": "4"}))
        cluster.sleep(10)
        watcher = cluster.spawn(follow, cluster, api, "victim", 30)
        cluster.sleep(0)
        api.delete_namespaced_pod("victim", NS)
        watcher.join()
        return watcher.value

    seen = cluster.run(main)
    assert [(t, kind, phase) for t, kind, phase, _ in seen] == [
        (10, "ADDED", "Running"), (10, "MODIFIED", "Running"), (14, "MODIFIED", "Failed"), (14, "DELETED", "Failed")]
    assert cluster.pods() == []


def test_grace_period_shorter_than_stop_time_is_sigkill():
    cluster, api = world()
    states = []
    cluster.server.pods.listeners.append(
        lambda change: states.append((cluster.now, change.obj["status"].get("containerStatuses", [{}])[0]
                                      .get("state", {}).get("terminated", {}).get("exitCode"))))

    def main():
        api.create_namespaced_pod(NS, manifest("stubborn", annotations={"kubesim.io/run-seconds": "3600",
                                                                          "kubesim.io/stop-seconds": "60"}))
        cluster.sleep(1)
        api.delete_namespaced_pod("stubborn", NS, grace_period_seconds=5)
        cluster.sleep(10)

    cluster.run(main)
    assert (6, 137) in states and cluster.pods() == []


def test_force_delete_while_terminating_and_recreate_under_the_same_name():
    cluster, api = world()

    def main():
        api.create_namespaced_pod(NS, manifest("same", annotations={"kubesim.io/run-seconds": "3600",
                                                                      "kubesim.io/stop-seconds": "20"}))
        cluster.sleep(1)
        api.delete_namespaced_pod("same", NS)                          # SIGTERM, 20 s to stop
        cluster.sleep(2)
        api.delete_namespaced_pod("same", NS, grace_period_seconds=0)  # force: gone now
        api.create_namespaced_pod(NS, manifest("same", annotations={"kubesim.io/run-seconds": "3600"}))
        cluster.sleep(60)  # the old pod's kubelet must not touch the new one
        return raw(api, "same")

    pod = cluster.run(main)
    assert pod["status"]["phase"] == "Running" and not pod["metadata"].get("deletionTimestamp")
    assert cluster.kernel.crashed == []


def test_pod_created_with_node_name_skips_the_scheduler():
    cluster, api = world(nodes=2)

    def main():
        api.create_namespaced_pod(NS, manifest("pinned", nodeName="node-2",
                                                annotations={"kubesim.io/run-seconds": "3"}))
        cluster.sleep(1)
        running = raw(api, "pinned")
        cluster.sleep(2)
        return running, raw(api, "pinned")

    running, done = cluster.run(main)
    assert running["status"]["phase"] == "Running" and running["spec"]["nodeName"] == "node-2"
    assert condition(running, "PodScheduled") is None
    assert done["status"]["phase"] == "Succeeded"


def test_pod_created_with_node_name_on_a_full_node_is_rejected_by_the_kubelet():
    cluster, api = world(nodes=1, node_cpu="1")

    def main():
        api.create_namespaced_pod(NS, manifest("pinned", cpu="2", nodeName="node-1"))
        cluster.sleep(1)
        return raw(api, "pinned")

    pod = cluster.run(main)
    assert (pod["status"]["phase"], pod["status"]["reason"]) == ("Failed", "OutOfcpu")
    assert pod["status"]["message"] == ("Pod was rejected: Node didn't have enough resource: cpu, "
                                        "requested: 2000, used: 0, capacity: 1000")


# -- eviction and node loss ---------------------------------------------------------------------

def test_eviction_fails_the_pod_with_reason_evicted():
    cluster, api = world()

    def main():
        api.create_namespaced_pod(NS, manifest("evictee", annotations={"kubesim.io/run-seconds": "3600"}))
        cluster.sleep(5)
        assert cluster.evict(NS, "evictee") is True
        cluster.sleep(0)
        return raw(api, "evictee")

    pod = cluster.run(main)
    status = pod["status"]
    assert (status["phase"], status["reason"]) == ("Failed", "Evicted")
    assert status["message"].startswith("The node was low on resource: memory. ")
    assert "Container base was using" in status["message"]
    assert condition(pod, "DisruptionTarget")["reason"] == "TerminationByKubelet"
    assert cluster.evict(NS, "evictee") is False  # nothing left to evict
    with pytest.raises(KeyError, match="no pod default/ghost"):
        cluster.evict(NS, "ghost")
    assert [e["reason"] for e in cluster.events(NS, "evictee") if e["type"] == "Warning"] == ["Evicted"]


def test_an_eviction_in_the_same_instant_as_the_bind_is_not_lost():
    cluster, api = world()
    evicted = []

    start = cluster.kubelets.start

    def start_then_evict(pod, node, outcome):  # evict before the kubelet's process has run at all
        start(pod, node, outcome)
        evicted.append(cluster.evict(NS, pod["metadata"]["name"]))

    cluster.kubelets.start = start_then_evict

    def main():
        api.create_namespaced_pod(NS, manifest("early", annotations={"kubesim.io/run-seconds": "60"}))
        cluster.sleep(1)
        return raw(api, "early")

    pod = cluster.run(main)
    assert evicted == [True]
    assert (pod["status"]["phase"], pod["status"]["reason"]) == ("Failed", "Evicted")
    assert cluster.kernel.crashed == []


def test_node_loss_timeline_not_ready_then_terminating_for_ever():
    cluster, api = world(nodes=1)

    def main():
        api.create_namespaced_pod(NS, manifest("stranded", annotations={"kubesim.io/run-seconds": "30"}))
        cluster.sleep(10)
        cluster.lose_node("node-1")
        cluster.sleep(49)
        before = raw(api, "stranded"), api.read_node("node-1")
        cluster.sleep(1)  # 50 s after the loss
        tainted = raw(api, "stranded"), api.read_node("node-1")
        cluster.sleep(299)
        not_yet = raw(api, "stranded")
        cluster.sleep(1)  # 300 s after the taint
        deleted = raw(api, "stranded")
        cluster.sleep(3600)
        return before, tainted, not_yet, deleted, raw(api, "stranded")

    before, tainted, not_yet, deleted, much_later = cluster.run(main)
    pod, node = before
    assert condition(pod, "Ready")["status"] == "True" and not node.spec.taints
    pod, node = tainted
    ready = next(c for c in node.status.conditions if c.type == "Ready")
    assert (ready.status, ready.reason) == ("Unknown", "NodeStatusUnknown")
    assert sorted((t.key, t.effect) for t in node.spec.taints) == [
        ("node.kubernetes.io/unreachable", "NoExecute"), ("node.kubernetes.io/unreachable", "NoSchedule")]
    assert pod["status"]["phase"] == "Running"  # the run would have ended at 30 s: frozen
    assert condition(pod, "Ready")["status"] == "False"
    assert "deletionTimestamp" not in not_yet["metadata"]
    assert deleted["metadata"]["deletionTimestamp"] == "2024-01-01T00:06:30Z"  # at 360 s, + 30 s grace
    assert condition(deleted, "DisruptionTarget")["reason"] == "DeletionByTaintManager"
    assert much_later["status"]["phase"] == "Running" and much_later["metadata"]["deletionTimestamp"]


def test_restore_node_removes_the_pods_deleted_while_it_was_away():
    cluster, api = world(nodes=1)

    def main():
        api.create_namespaced_pod(NS, manifest("stranded", annotations={"kubesim.io/run-seconds": "3600"}))
        cluster.sleep(1)
        cluster.lose_node("node-1")
        cluster.sleep(400)
        terminating = raw(api, "stranded")
        cluster.restore_node("node-1")
        cluster.sleep(60)
        return terminating, api.list_namespaced_pod(NS).items, api.read_node("node-1")

    terminating, left, node = cluster.run(main)
    assert terminating["metadata"]["deletionTimestamp"]
    assert left == []
    assert not node.spec.taints
    assert next(c for c in node.status.conditions if c.type == "Ready").status == "True"


def test_restore_node_before_the_taint_eviction_lets_the_pods_carry_on():
    cluster, api = world(nodes=1)

    def main():
        api.create_namespaced_pod(NS, manifest("partitioned", annotations={"kubesim.io/run-seconds": "200"}))
        cluster.sleep(10)
        cluster.lose_node("node-1")
        cluster.sleep(100)
        cluster.restore_node("node-1")
        cluster.sleep(0)
        back = raw(api, "partitioned")
        cluster.sleep(90)  # the container ends at 200 s, as it would have anyway
        return back, raw(api, "partitioned")

    back, done = cluster.run(main)
    assert back["status"]["phase"] == "Running" and condition(back, "Ready")["status"] == "True"
    assert done["status"]["phase"] == "Succeeded"
    assert done["status"]["containerStatuses"][0]["state"]["terminated"]["finishedAt"] == "2024-01-01T00:03:20Z"


def test_a_pod_that_tolerates_the_taint_for_ever_is_never_deleted():
    cluster, api = world(nodes=1)
    tolerant = manifest("tolerant", annotations={"kubesim.io/run-seconds": "3600"},
                        tolerations=[{"key": "node.kubernetes.io/unreachable", "operator": "Exists",
                                      "effect": "NoExecute"}])

    def main():
        api.create_namespaced_pod(NS, tolerant)
        cluster.sleep(1)
        cluster.lose_node("node-1")
        cluster.sleep(3000)
        return raw(api, "tolerant")

    assert "deletionTimestamp" not in cluster.run(main)["metadata"]


def test_delete_node_garbage_collects_its_pods():
    cluster, api = world(nodes=1)

    def main():
        api.create_namespaced_pod(NS, manifest("orphan", annotations={"kubesim.io/run-seconds": "3600"}))
        api.create_namespaced_pod(NS, manifest("done", annotations={"kubesim.io/run-seconds": "1"}))
        cluster.sleep(5)
        start = api.list_namespaced_pod(NS).metadata.resource_version
        cluster.lose_node("node-1")
        cluster.sleep(400)
        cluster.delete_node("node-1")
        events = [(e["type"], e["raw_object"]["metadata"]["name"], e["raw_object"]["status"]["phase"])
                  for e in watch.Watch().stream(api.list_namespaced_pod, NS, resource_version=start,
                                                timeout_seconds=1)]
        return events, api.list_namespaced_pod(NS).items, api.list_node().items

    events, left, nodes = cluster.run(main)
    assert left == [] and nodes == []
    assert ("DELETED", "done", "Succeeded") in events
    assert ("MODIFIED", "orphan", "Failed") in events and events[-1][0] == "DELETED"


def test_pods_wait_for_a_new_node_after_theirs_is_lost():
    cluster, api = world(nodes=1)

    def main():
        cluster.lose_node("node-1")
        cluster.sleep(60)  # tainted now
        api.create_namespaced_pod(NS, manifest("newcomer"))
        cluster.sleep(1)
        pending = raw(api, "newcomer")
        cluster.add_node("node-2")
        cluster.sleep(1)
        return pending, raw(api, "newcomer")

    pending, bound = cluster.run(main)
    assert condition(pending, "PodScheduled")["message"] == (
        "0/1 nodes are available: 1 node(s) had untolerated taint {node.kubernetes.io/unreachable: }. "
        "preemption: 0/1 nodes are available: 1 Preemption is not helpful for scheduling.")
    assert bound["spec"]["nodeName"] == "node-2"


# -- the behaviour model ------------------------------------------------------------------------

def test_behaviour_draws_are_seeded_and_follow_the_distributions():
    behaviour = Behaviour(run_seconds=uniform(20, 40), failure_probability=0.25, oom_probability=0.1,
                          image_error_probability=0.05, unschedulable_probability=0.02)
    pod = {"metadata": {"name": "p"}}

    def draw(seed):
        rng = random.Random(seed)
        return [behaviour.outcome(pod, rng) for _ in range(4000)]

    outcomes = draw(5)
    assert outcomes == draw(5) and outcomes != draw(6)
    assert all(20 <= o.run_seconds <= 40 for o in outcomes)
    share = lambda test: sum(map(test, outcomes)) / len(outcomes)
    assert share(lambda o: o.exit_code == 1) == pytest.approx(0.25, abs=0.03)
    assert share(lambda o: o.oom) == pytest.approx(0.10, abs=0.02)
    assert share(lambda o: o.image_error == "ErrImagePull") == pytest.approx(0.05, abs=0.015)
    assert share(lambda o: o.unschedulable) == pytest.approx(0.02, abs=0.01)
    assert sum(o.run_seconds for o in outcomes) / len(outcomes) == pytest.approx(30, abs=0.5)


def test_the_same_seed_gives_the_same_run_through_the_cluster():
    def run(seed):
        cluster, api = world(seed=seed, nodes=2, node_cpu="2", behaviour=Behaviour(
            run_seconds=uniform(5, 50), failure_probability=0.3))

        def main():
            for i in range(12):
                api.create_namespaced_pod(NS, manifest(f"t{i}", cpu="1"))
            cluster.sleep(400)

        cluster.run(main)
        phases = Counter(p["status"]["phase"] for p in cluster.pods())
        return cluster.trace, phases

    trace, phases = run(3)
    assert run(3) == (trace, phases)
    assert run(4)[0] != trace
    assert set(phases) <= {"Succeeded", "Failed"} and sum(phases.values()) == 12


def test_recording_events_does_not_change_what_pods_draw():
    def run(record_events):
        cluster, api = world(seed=8, nodes=1, node_cpu="2", record_events=record_events, behaviour=Behaviour(
            run_seconds=uniform(5, 50), failure_probability=0.5))

        def main():
            for i in range(8):  # more than fit: FailedScheduling events on the way
                api.create_namespaced_pod(NS, manifest(f"t{i}", cpu="1"))
            cluster.sleep(400)

        cluster.run(main)
        return [(p["metadata"]["uid"], p["status"]["phase"],
                 p["status"]["containerStatuses"][0]["state"]["terminated"]["finishedAt"]) for p in cluster.pods()], \
            len(cluster.events())

    (with_events, count), (without, none) = run(True), run(False)
    assert with_events == without and count > 0 and none == 0


def test_behaviour_rejects_impossible_settings():
    with pytest.raises(ValueError, match="failure_probability"):
        Behaviour(failure_probability=1.5)
    with pytest.raises(ValueError, match="image_error"):
        Behaviour(image_error="NoSuchError")


def test_annotations_override_the_drawn_outcome():
    drawn = Behaviour(failure_probability=1.0).outcome({"metadata": {"name": "p", "annotations": {
        "kubesim.io/exit-code": "0", "kubesim.io/run-seconds": "2.5", "other.io/x": "ignored"}}}, random.Random(1))
    assert (drawn.exit_code, drawn.run_seconds) == (0, 2.5)


@pytest.mark.parametrize("key, value, expected", [
    ("run-seconds", "soon", "non-negative number of seconds"),
    ("run-seconds", "-4", "non-negative number of seconds"),
    ("exit-code", "300", "exit code, a whole number from 0 to 255"),
    ("oom", "yes", 'expected "true" or "false"'),
    ("image-error", "Nope", "expected one of ErrImagePull"),
])
def test_bad_annotation_values_raise_a_clear_error(key, value, expected):
    pod = {"metadata": {"name": "p", "annotations": {f"kubesim.io/{key}": value}}}
    with pytest.raises(BehaviourError, match=f"kubesim.io/{key}={value!r}") as info:
        steer(Behaviour().outcome(pod, random.Random(0)), pod)
    assert expected in str(info.value)


def test_a_bad_annotation_fails_the_pod_visibly_instead_of_crashing_the_simulation():
    cluster, api = world()

    def main():
        api.create_namespaced_pod(NS, manifest("typo", annotations={"kubesim.io/run-seconds": "ten"}))
        api.create_namespaced_pod(NS, manifest("fine", annotations={"kubesim.io/run-seconds": "10"}))
        cluster.sleep(10)
        return raw(api, "typo"), raw(api, "fine"), api.list_namespaced_event(NS).items

    typo, fine, events = cluster.run(main)
    assert (typo["status"]["phase"], waiting_reason(typo)) == ("Pending", "CreateContainerConfigError")
    message = typo["status"]["containerStatuses"][0]["state"]["waiting"]["message"]
    assert "kubesim.io/run-seconds='ten'" in message and "number of seconds" in message
    assert fine["status"]["phase"] == "Succeeded"
    warning = [e for e in events if e.involved_object.name == "typo" and e.type == "Warning"]
    assert [(e.type, e.reason) for e in warning] == [("Warning", "Failed")]
    assert "kubesim.io/run-seconds='ten'" in warning[0].message
    assert any(entry[1] == "behaviour-error" and "typo" in entry[2] for entry in cluster.trace)


def test_an_unknown_kubesim_annotation_is_noted_in_the_trace():
    cluster, api = world()

    def main():
        api.create_namespaced_pod(NS, manifest("t", annotations={"kubesim.io/run-secs": "5"}))
        cluster.sleep(10)
        return raw(api, "t")

    assert cluster.run(main)["status"]["phase"] == "Succeeded"
    notes = [entry[2] for entry in cluster.trace if entry[1] == "behaviour-warning"]
    assert len(notes) == 1 and "kubesim.io/run-secs" in notes[0] and "kubesim.io/run-seconds" in notes[0]
