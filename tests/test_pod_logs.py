"""pods/log through the real client, in virtual time: the log the behaviour model writes (start, run
time, exit code, OOM, SIGTERM), PodLogOptions (tailLines, timestamps, limitBytes, sinceSeconds,
previous, container), following a running container, the kubelet's refusals; exec, attach and
portforward answer a Status saying kubesim does not serve them."""

from __future__ import annotations

import pytest

from helpers import new_world, pod_manifest, raw, rejected, status_of

NS = "default"


def run_pod(cluster, api, name: str, annotations: dict, restart: str = "Never", **spec):
    cluster.run(api.create_namespaced_pod, NS, pod_manifest(name, annotations=annotations, restartPolicy=restart,
                                                            **spec))


def log(cluster, api, name: str, **options) -> str:
    """The log as sent (the 36.x client turns a str response into "b'...'": read the bytes instead)."""
    return cluster.run(lambda: api.read_namespaced_pod_log(name, NS, _preload_content=False, **options)).data.decode()


def test_a_finished_pod_s_log_says_when_it_started_how_long_it_ran_and_how_it_ended():
    cluster, api = new_world()
    run_pod(cluster, api, "done", {"kubesim.io/run-seconds": "42"})
    run_pod(cluster, api, "failed", {"kubesim.io/run-seconds": "5", "kubesim.io/exit-code": "3"})
    run_pod(cluster, api, "oom", {"kubesim.io/run-seconds": "5", "kubesim.io/oom": "true"})
    cluster.run(cluster.sleep, 60)
    assert log(cluster, api, "done") == ("kubesim: container base started (busybox:1.36); the behaviour model runs it "
                                         "for 42s\nkubesim: finished (exit code 0)\n")
    assert log(cluster, api, "failed").splitlines()[-1] == "kubesim: failed (exit code 3)"
    assert log(cluster, api, "oom").splitlines()[-1] == \
        "kubesim: out of memory: the kernel killed the process (exit code 137, OOMKilled)"


def test_log_options_tail_timestamps_limit_and_since():
    cluster, api = new_world()
    run_pod(cluster, api, "done", {"kubesim.io/run-seconds": "42"})
    cluster.run(cluster.sleep, 100)
    pod = cluster.pod(NS, "done")
    terminated = pod["status"]["containerStatuses"][0]["state"]["terminated"]
    stamped = log(cluster, api, "done", timestamps=True).splitlines()
    assert [line.split(" ", 1)[0] for line in stamped] == [terminated["startedAt"], terminated["finishedAt"]]
    assert log(cluster, api, "done", tail_lines=1) == "kubesim: finished (exit code 0)\n"
    assert log(cluster, api, "done", tail_lines=0) == ""
    assert log(cluster, api, "done", limit_bytes=7) == "kubesim"
    assert log(cluster, api, "done", since_seconds=80) == "kubesim: finished (exit code 0)\n"   # ended 56 s ago
    error = cluster.run(lambda: rejected(api.read_namespaced_pod_log, "done", NS, tail_lines=-1))
    assert error.status == 422 and "tailLines: Invalid value: -1: must be greater than or equal to 0" in \
        status_of(error)["message"]


def test_following_a_running_container_gets_each_line_as_it_is_written_and_ends_with_it():
    cluster, api = new_world()
    run_pod(cluster, api, "busy", {"kubesim.io/run-seconds": "30"})

    def main():
        cluster.sleep(5)
        response = api.read_namespaced_pod_log("busy", NS, follow=True, _preload_content=False)
        got = []
        for chunk in response.stream(1024):
            got.append((cluster.now, chunk.decode()))
        return got

    got = cluster.run(main)
    assert [text.split(";")[0] for _, text in got] == ["kubesim: container base started (busybox:1.36)",
                                                       "kubesim: finished (exit code 0)\n"]
    assert got[0][0] == 5 and got[1][0] == pytest.approx(30, abs=1)   # the second line came when the run ended


def test_following_through_a_deletion_ends_with_sigterm():
    cluster, api = new_world()
    run_pod(cluster, api, "doomed", {"kubesim.io/run-seconds": "3600", "kubesim.io/stop-seconds": "4"})

    def main():
        cluster.sleep(5)
        cluster.spawn(lambda: (cluster.sleep(10), api.delete_namespaced_pod("doomed", NS)))
        response = api.read_namespaced_pod_log("doomed", NS, follow=True, _preload_content=False)
        return b"".join(response.stream(1024)).decode()

    assert cluster.run(main).splitlines()[-1] == "kubesim: stopped by SIGTERM (exit code 143)"


def test_previous_is_the_last_finished_run_of_a_restarting_container():
    cluster, api = new_world()
    run_pod(cluster, api, "looping", {"kubesim.io/run-seconds": "5", "kubesim.io/exit-code": "2"}, restart="Always")
    fresh = pod_manifest("fresh", annotations={"kubesim.io/run-seconds": "3600"})
    cluster.run(api.create_namespaced_pod, NS, fresh)
    cluster.run(cluster.sleep, 30)
    assert log(cluster, api, "looping", previous=True).splitlines()[-1] == "kubesim: failed (exit code 2)"
    error = cluster.run(lambda: rejected(api.read_namespaced_pod_log, "fresh", NS, previous=True))
    assert error.status == 400 and status_of(error)["message"] == \
        'previous terminated container "base" in pod "fresh" not found'


def test_no_log_before_the_container_starts_in_the_kubelet_s_words():
    cluster, api = new_world()
    run_pod(cluster, api, "pulling", {"kubesim.io/pull-seconds": "3600"})
    run_pod(cluster, api, "bad-image", {"kubesim.io/image-error": "ErrImagePull"})
    run_pod(cluster, api, "unplaced", {"kubesim.io/unschedulable": "true"})
    cluster.run(cluster.sleep, 5)
    for name, why in (("pulling", "ContainerCreating"), ("bad-image", "trying and failing to pull image")):
        error = cluster.run(rejected, api.read_namespaced_pod_log, name, NS)
        assert error.status == 400 and status_of(error)["message"] == \
            f'container "base" in pod "{name}" is waiting to start: {why}'
    assert log(cluster, api, "unplaced") == ""   # not on a node yet: nothing to read


def test_containers_are_chosen_as_kube_apiserver_chooses_them():
    cluster, api = new_world()
    two = pod_manifest("two", annotations={"kubesim.io/run-seconds": "3600"})
    two["spec"]["containers"].append({"name": "sidecar", "image": "envoy:1.30"})
    cluster.run(api.create_namespaced_pod, NS, two)
    cluster.run(cluster.sleep, 5)
    error = cluster.run(rejected, api.read_namespaced_pod_log, "two", NS)
    assert status_of(error)["message"] == "a container name must be specified for pod two, choose one of: [base sidecar]"
    assert log(cluster, api, "two", container="sidecar").startswith("kubesim: container sidecar started (envoy:1.30)")
    error = cluster.run(lambda: rejected(api.read_namespaced_pod_log, "two", NS, container="nope"))
    assert status_of(error)["message"] == "container nope is not valid for pod two"
    error = cluster.run(rejected, api.read_namespaced_pod_log, "ghost", NS)
    assert error.status == 404 and status_of(error)["message"] == 'pods "ghost" not found'


@pytest.mark.parametrize("subresource, verb", [("exec", "run commands in"), ("attach", "attach to"),
                                               ("portforward", "forward ports to")])
def test_exec_attach_and_portforward_say_kubesim_does_not_serve_them(subresource, verb):
    cluster, api = new_world()
    run_pod(cluster, api, "web", {"kubesim.io/run-seconds": "3600"})
    answer = cluster.run(lambda: raw(api, "POST", f"/api/v1/namespaces/{NS}/pods/web/{subresource}?command=ls", None))
    assert answer.status == 405 and answer.json() == {
        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": f'kubesim does not serve pods/{subresource}: pod "web" is simulated, there is no process to '
                   f'{verb} (pods/log serves what its containers wrote)',
        "reason": "MethodNotAllowed", "details": {"name": "web", "kind": "pods"}, "code": 405}
    missing = cluster.run(lambda: raw(api, "POST", f"/api/v1/namespaces/{NS}/pods/ghost/{subresource}", None))
    assert missing.status == 404 and missing.json()["message"] == 'pods "ghost" not found'
