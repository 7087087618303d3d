"""The Normal events of a pod's life through the real client, as the scheduler and kubelet write
them (v1.31 wording): Scheduled, Pulling, Pulled, Created, Started, Killing. They are written to
the store when Events are read (or at once while someone watches them), with the times they
happened; ``normal_events=False`` leaves only the warnings."""

from __future__ import annotations

from kubernetes import watch

from helpers import new_world, pod_manifest

NS = "default"


def reasons(cluster, name: str) -> list[tuple[str, str]]:
    events = sorted(cluster.events(NS, name), key=lambda e: (e["firstTimestamp"], e["metadata"]["resourceVersion"]
                                                             .rjust(12, "0")))
    return [(e["reason"], e["message"]) for e in events]


def test_a_pod_s_life_reads_like_a_real_cluster_s_events():
    cluster, api = new_world()

    def main():
        api.create_namespaced_pod(NS, pod_manifest("web", annotations={"kubesim.io/run-seconds": "3600",
                                                                       "kubesim.io/pull-seconds": "2.5"}))
        cluster.sleep(10)
        api.delete_namespaced_pod("web", NS)
        cluster.sleep(1)
        return api.list_namespaced_event(NS, field_selector="involvedObject.name=web").items

    listed = cluster.run(main)
    node = listed[0].message.rsplit(" ", 1)[-1]
    assert [(e.type, e.reason, e.message) for e in listed] == [
        ("Normal", "Scheduled", f"Successfully assigned default/web to {node}"),
        ("Normal", "Pulling", 'Pulling image "busybox:1.36"'),
        ("Normal", "Pulled", 'Successfully pulled image "busybox:1.36" in 2.5s (2.5s including waiting). Image size: '
                             f"{listed[2].message.split('Image size: ')[1]}"),
        ("Normal", "Created", "Created container base"),
        ("Normal", "Started", "Started container base"),
        ("Normal", "Killing", "Stopping container base")]
    scheduled, pulling, killing = listed[0], listed[1], listed[-1]
    assert (scheduled.source.component, scheduled.source.host, scheduled.involved_object.field_path) == \
        ("default-scheduler", None, None)
    assert (pulling.source.component, pulling.source.host, pulling.involved_object.field_path) == \
        ("kubelet", node, "spec.containers{base}")
    # each carries the time it happened, not the time it was read
    assert [e.first_timestamp.second for e in listed] == [0, 0, 2, 2, 2, 10]
    assert killing.involved_object.uid == scheduled.involved_object.uid


def test_an_image_already_present_and_restarts_aggregate():
    cluster, api = new_world()
    cluster.run(api.create_namespaced_pod, NS, pod_manifest("looping", restartPolicy="Always", annotations={
        "kubesim.io/run-seconds": "5", "kubesim.io/exit-code": "1"}))
    cluster.run(cluster.sleep, 60)
    counts = {e["reason"]: e["count"] for e in cluster.events(NS, "looping")}
    assert reasons(cluster, "looping")[1] == ("Pulled", 'Container image "busybox:1.36" already present on machine')
    assert counts["Scheduled"] == 1 and counts["Started"] >= 3 and counts["Pulled"] == counts["Created"] == counts["Started"]
    assert counts["BackOff"] >= 1   # the warning beside them


def test_an_events_watch_gets_them_as_they_happen():
    cluster, api = new_world()

    def main():
        cluster.spawn(lambda: (cluster.sleep(1), api.create_namespaced_pod(NS, pod_manifest("web"))))
        seen = []
        for event in watch.Watch().stream(api.list_namespaced_event, NS, timeout_seconds=30):
            seen.append((cluster.now, event["object"].reason))
            if event["object"].reason == "Started":
                return seen

    assert cluster.run(main) == [(1, "Scheduled"), (1, "Pulled"), (1, "Created"), (1, "Started")]


def test_normal_events_can_be_switched_off_leaving_the_warnings():
    cluster, api = new_world(normal_events=False)
    cluster.run(api.create_namespaced_pod, NS, pod_manifest("web", annotations={"kubesim.io/image-error": "ErrImagePull"}))
    cluster.run(cluster.sleep, 5)
    written = {(e["type"], e["reason"]) for e in cluster.events()}
    assert ("Warning", "Failed") in written and not {"Scheduled", "Pulled", "Created", "Started"} & \
        {reason for _, reason in written}


def test_events_older_than_the_ttl_are_never_written():
    cluster, api = new_world()
    cluster.run(api.create_namespaced_pod, NS, pod_manifest("old", annotations={"kubesim.io/run-seconds": "1"},
                                                            restartPolicy="Never"))
    cluster.run(cluster.sleep, 3700)   # nobody read them within the hour (kube-apiserver's --event-ttl)
    cluster.run(api.create_namespaced_pod, NS, pod_manifest("new"))
    cluster.run(cluster.sleep, 1)
    assert reasons(cluster, "old") == [] and [r for r, _ in reasons(cluster, "new")][0] == "Scheduled"
