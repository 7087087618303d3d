"""A short simulated demo: pods launched and watched through the real client, with faults.

It shows the pieces working together until the scenario runner lands: a seeded cluster, a
client that creates pods and follows them with a list-then-watch loop that recovers from 410s
and dropped streams, and a summary of what the API server saw.
"""

from __future__ import annotations

import re
from collections import Counter

from kubernetes import client, watch
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from fakecluster import Behaviour, ErrorRule, FakeCluster, Faults, lognormal, uniform

NAMESPACE = "default"
DEADLINE = 3600.0  # virtual seconds (plus 10 per pod) after which a demo that cannot finish stops


def pod_manifest(name: str, annotations: dict) -> client.V1Pod:
    return client.V1Pod(
        metadata=client.V1ObjectMeta(name=name, labels={"app": "demo"}, annotations=annotations),
        spec=client.V1PodSpec(restart_policy="Never", containers=[
            client.V1Container(name="base", image="python:3.11-slim",
                               resources=client.V1ResourceRequirements(requests={"cpu": "500m", "memory": "256Mi"}))]))


def pod_names(cluster: FakeCluster, count: int) -> list[str]:
    """``demo-<word>-<i>``: Faker's words can be capitalised ("Mr") or carry accents, and a pod
    name must be a lowercase RFC 1123 name, so each word is folded to [a-z0-9] first."""
    names = []
    for i in range(count):
        word = re.sub(r"[^a-z0-9]+", "", cluster.faker.word().lower()) or "pod"
        names.append(f"demo-{word}-{i}")
    return names


def follow(cluster: FakeCluster, api: client.CoreV1Api, expected: int, log: list, launcher=None) -> dict:
    """List, then watch from the list's resourceVersion; on 410 or a broken stream, list again.

    ``launcher`` is the process creating the pods: if it crashed, no more pods will come, so its
    exception ends the demo instead of a wait for pods that never will exist."""
    final: dict[str, str] = {}
    while len(final) < expected:
        if launcher is not None and launcher.exception is not None:
            raise launcher.exception
        listing = api.list_namespaced_pod(NAMESPACE, label_selector="app=demo")
        for pod in listing.items:
            if pod.status.phase in ("Succeeded", "Failed"):
                final[pod.metadata.name] = pod.status.phase
        rv = listing.metadata.resource_version
        try:
            for event in watch.Watch().stream(api.list_namespaced_pod, NAMESPACE, label_selector="app=demo",
                                              resource_version=rv, timeout_seconds=120,
                                              _request_timeout=(5, 30)):
                pod = event["object"]
                log.append((cluster.now, event["type"], pod.metadata.name, pod.status.phase))
                if pod.status.phase in ("Succeeded", "Failed"):
                    final[pod.metadata.name] = pod.status.phase
                if len(final) >= expected:
                    break
        except client.ApiException as exc:
            log.append((cluster.now, f"watch error {exc.status}", "", str(exc.reason)[:60]))
        except Exception as exc:  # read timeout or dropped connection: resume with a fresh list
            log.append((cluster.now, "watch broken", "", type(exc).__name__))
    return final


def run_demo(seed: int = 7, pods: int = 24, console: Console | None = None) -> dict:
    console = console or Console()
    faults = Faults(latency={"*": lognormal(0.02, 0.2)},
                    errors=[ErrorRule(429, verbs=("create",), probability=0.15, retry_after=2)])
    cluster = FakeCluster(seed=seed, nodes=3, node_cpu="4",
                          behaviour=Behaviour(run_seconds=uniform(20, 90), failure_probability=0.1),
                          faults=faults)
    api = client.CoreV1Api(cluster.api_client())
    log: list = []
    cluster.at(40, lambda: log.append((cluster.now, "FAULT", "410 storm", f"{cluster.expire_watches()} watches expired")))
    cluster.at(70, lambda: log.append((cluster.now, "FAULT", "stall", f"{cluster.stall_watches()} watches stalled")))

    def launch():
        names = pod_names(cluster, pods)
        for name in names:
            annotations = {"kubesim.io/image-error": "ErrImagePull"} if name.endswith("-5") else {}
            while True:
                try:
                    api.create_namespaced_pod(NAMESPACE, pod_manifest(name, annotations))
                    break
                except client.ApiException as exc:
                    if exc.status != 429:
                        raise
                    log.append((cluster.now, "create throttled", name, "429"))
                    cluster.sleep(float(exc.headers.get("Retry-After", 1)))
        return names

    def main():
        launcher = cluster.spawn(launch, name="launcher")
        stuck = 1 if pods > 5 else 0  # only pod -5 is given an image error
        return follow(cluster, api, pods - stuck, log, launcher)

    final = cluster.run(main, until=DEADLINE + pods * 10)
    stuck = [p["metadata"]["name"] for p in cluster.pods(NAMESPACE) if p["status"]["phase"] == "Pending"]
    _print(console, cluster, log, final, stuck)
    return {"final": final, "stuck": stuck, "virtual_seconds": cluster.now}


def _print(console: Console, cluster: FakeCluster, log: list, final: dict, stuck: list) -> None:
    table = Table(title=f"kubesim demo (seed {cluster.seed}): what the watcher saw", show_lines=False)
    for column in ("t (s)", "event", "pod", "phase / detail"):
        table.add_column(column)
    for when, kind, name, detail in log[-40:]:
        table.add_row(f"{when:7.2f}", escape(kind), escape(name), escape(str(detail)))
    console.print(table)
    phases = Counter(final.values())
    calls = Table(title="API calls by verb and status")
    calls.add_column("verb")
    calls.add_column("status")
    calls.add_column("count", justify="right")
    for (verb, code), count in sorted(cluster.gateway.calls.items(), key=lambda kv: (kv[0][0], str(kv[0][1]))):
        calls.add_row(verb, str(code), str(count))
    console.print(calls)
    console.print(f"[bold]{len(final)} pods finished[/] ({dict(phases)}), stuck Pending: {stuck or 'none'}, "
                  f"virtual time {cluster.now:.1f}s")
