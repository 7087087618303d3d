"""Scale: N tasks through the real executor, its host, the real client and fakecluster, against
the client's own floor for the same work.

    PYTHONPATH=. python benchmarks/scale.py --tasks 10000            # V1Pod model objects
    PYTHONPATH=. python benchmarks/scale.py --tasks 10000 --raw      # raw_watch_events
    PYTHONPATH=. python benchmarks/scale.py --sweep 1000,10000,100000 --json out.json
    PYTHONPATH=. python benchmarks/scale.py --sim-only --tasks 100000  # no client, no executor
    PYTHONPATH=. python benchmarks/scale.py --scenario scenarios/catalogue/scale_100k.yaml  # the user path
    PYTHONPATH=. python benchmarks/scale.py --small-worlds --runs 40   # small worlds' runs per second

An end-to-end measurement is three fresh processes, one after the other (same seed, so the same
simulated world: same requests, same bytes):

1. **simulate**: the timed run. The KubernetesExecutor and its host (``scenarios.world.World``:
   TaskStore, SchedulerJob) run N tasks on a FakeCluster through the real client. Wall, CPU and
   collection seconds, virtual seconds and the process's peak RSS are its own.
2. **floor**: the same run again, recorded (``replay.py``): every exchange's bytes at the urllib3
   pool, and every ``CoreV1Api`` call the executor made (the executor's ``kube`` is wrapped
   before it starts). Then the simulation is dropped and exactly those calls are made again
   against a pool that serves the recorded bytes, each watch consumed as the executor consumed
   it (``Watch().stream`` models, or the client's line splitter and ``json.loads`` with
   ``--raw``). No simulation, executor, host or greenlets: that time is the client-only floor.
   The replay checks the requests (method, URL, body), that every answer is used, and that it
   decoded as many watch events as the executor handled.
3. **profile**: the simulated run under the sampling profiler, to split its time by layer.

``--scenario FILE`` times ``kubesim run FILE`` (the runner with its trace, watchdog, progress,
metrics, invariants and report) beside the same file's world run bare, and ``--small-worlds`` how
many small worlds one process runs per second: see ``user_path.py``.

``--sim-only`` runs N pods through the simulation alone: created straight into the API server
(through the gateway, so admission, validation, the store, the scheduler, the kubelets and the
watch fan-out all do their work), watched by one in-simulation watcher with the executor's label
selector that reads the chunked stream bytes and deletes each finished pod. No client, no executor.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import re
import resource
import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections import Counter
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import kubernetes.client
from rich.console import Console

import user_path
from scale_report import LAYERS, describe, group_results, print_result, print_sweep, verdicts
from replay import (ClientCall, RecordingApi, ReplayMismatch, received_bytes, record_bytes,
                    replay_calls, replay_client)
from sampling import (Sampler, Stopwatch, executor_layer, fake_layer, is_client,
                      layer_shares, summarise, top_functions)

from executor import ExecutorConfig, State
from fakecluster import Behaviour, FakeCluster, kernel
from fakecluster.api.server import Request, WatchReply
from scenarios.world import World

NAMESPACE = "default"
WARM_UP_TASKS = 200
PROGRESS_EVERY = 3.0          # wall seconds between progress lines
TERMINAL = (State.SUCCESS, State.FAILED)



# -- the workload ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class Workload:
    """Everything that decides the simulated world: same workload, same seed, same run."""

    tasks: int
    nodes: int
    node_pods: int
    parallelism: int
    batch: int
    run_seconds: tuple[float, float]
    raw: bool
    seed: int
    watch_cache_seconds: float | None
    trace: bool

    @classmethod
    def from_args(cls, args, tasks: int) -> "Workload":
        return cls(tasks=tasks, nodes=args.nodes or default_nodes(tasks), node_pods=args.node_pods,
                   parallelism=args.parallelism, batch=args.batch, run_seconds=tuple(args.run_seconds),
                   raw=args.raw, seed=args.seed, watch_cache_seconds=args.watch_cache_seconds or None,
                   trace=args.trace)

    def describe(self, sim_only: bool = False) -> str:
        return describe(asdict(self), sim_only)


def default_nodes(tasks: int) -> int:
    """1,000 nodes from 10,000 tasks on (the issue's 100k case); fewer for small runs, where
    building the nodes would otherwise dominate."""
    return 1000 if tasks >= 10_000 else max(3, tasks // 100)


def new_cluster(workload: Workload) -> FakeCluster:
    low, high = workload.run_seconds
    cluster = FakeCluster(seed=workload.seed, nodes=workload.nodes, node_cpu="64", node_memory="256Gi",
                          node_pods=workload.node_pods, watch_cache_seconds=workload.watch_cache_seconds,
                          trace=workload.trace,
                          behaviour=Behaviour(run_seconds=lambda rng: rng.uniform(low, high)))
    cluster.gateway.record_log = workload.trace
    return cluster


def new_world(workload: Workload) -> World:
    config = ExecutorConfig(namespace=NAMESPACE, parallelism=workload.parallelism,
                            worker_pods_creation_batch_size=workload.batch,
                            raw_watch_events=workload.raw)
    world = World(new_cluster(workload), config)
    world.add_tasks("scale", [f"task_{index:06d}" for index in range(workload.tasks)])
    return world


# -- progress on long runs --------------------------------------------------------------------------

class Progress:
    """A line on stderr at most every ``PROGRESS_EVERY`` wall seconds."""

    def __init__(self, label: str, total: int):
        self.label, self.total = label, total
        self.started = self._last = time.perf_counter()
        self._console = Console(stderr=True, highlight=False)

    def due(self) -> bool:
        return time.perf_counter() - self._last >= PROGRESS_EVERY

    def report(self, done: int, extra: str = "") -> None:
        now = time.perf_counter()
        self._last = now
        elapsed = now - self.started
        self._console.print(f"[dim]{self.label}: {done:,}/{self.total:,} "
                            f"({done / max(elapsed, 1e-9):,.0f}/s) after {elapsed:,.0f} s; "
                            f"RSS {peak_rss_mib():,.0f} MiB{extra}[/]")


def watch_progress(world: World, progress: Progress | None) -> None:
    """A simulated process that reports how many tasks are done. It only sleeps and reads, so
    the world's requests and bytes stay the same with or without it (it runs in every run)."""
    store = world.store

    def loop():
        while not store.all_done():
            world.cluster.sleep(5.0)
            if progress is not None and progress.due():
                progress.report(len(store.in_state(*TERMINAL)), f"; virtual {world.cluster.now:,.0f} s")

    world.cluster.spawn(loop, name="benchmark progress")


# -- one end-to-end run, in this process ------------------------------------------------------------

@dataclass
class Outcome:
    """What one simulated run did, for the report and to check that two runs were the same."""

    virtual_s: float
    states: dict
    calls: dict           # "verb status" -> count, from the gateway
    events_handled: int   # watch events the executor's watchers handled
    relists: int


def run_world(world: World, progress: Progress | None = None, sampler: Sampler | None = None
              ) -> tuple[Stopwatch, Outcome]:
    executors = []
    previous = world.on_executor

    def keep(executor):
        executors.append(executor)
        if previous is not None:
            previous(executor)

    world.on_executor = keep
    watch_progress(world, progress)
    with Stopwatch(sampler) as times:
        world.run_until_done(timeout=30 * 86_400)
    return times, outcome_of(world, executors)


def outcome_of(world: World, executors: list) -> Outcome:
    watchers = [watcher for executor in executors for watcher in executor.watchers_started]
    return Outcome(virtual_s=world.cluster.now, states=world.states(),
                   calls={f"{verb} {status}": n for (verb, status), n in sorted(world.cluster.gateway.calls.items())},
                   events_handled=sum(w.stats["events"] for w in watchers),
                   relists=sum(w.stats["relists"] for w in watchers))


def warm_up(workload: Workload) -> None:
    """Lazy imports, pydantic schemas and caches: paid once per process, not timed."""
    run_world(new_world(replace(workload, tasks=min(workload.tasks, WARM_UP_TASKS),
                                nodes=min(workload.nodes, 10))))
    gc.collect()


def child_simulate(workload: Workload, args) -> dict:
    warm_up(workload)
    rss_before = peak_rss_mib()
    world = new_world(workload)
    times, outcome = run_world(world, Progress(f"simulate {workload.tasks:,}", workload.tasks))
    check_all_succeeded(workload, outcome)
    return {"wall_s": times.wall, "cpu_s": times.cpu, "gc_s": times.gc, "outcome": asdict(outcome),
            "rss_mib": peak_rss_mib(), "rss_before_mib": rss_before}


def check_all_succeeded(workload: Workload, outcome: Outcome) -> None:
    if outcome.states.get(str(State.SUCCESS), 0) != workload.tasks:
        raise RuntimeError(f"expected {workload.tasks} successful tasks, got {outcome.states}")


# -- the client-only floor --------------------------------------------------------------------------

@dataclass
class Recording:
    calls: list[ClientCall]
    log: list
    outcome: Outcome


def record(workload: Workload, progress: Progress | None = None) -> Recording:
    """The simulated run again, keeping the executor's client calls and the bytes it received."""
    world = new_world(workload)
    calls: list[ClientCall] = []
    logs: list = []

    def tap(executor):
        logs.append(record_bytes(executor.kube.api_client, world.cluster.gateway))
        executor.kube = RecordingApi(executor.kube, calls)   # before start(): the launcher and
                                                             # watchers take it from here
    world.on_executor = tap
    _, outcome = run_world(world, progress)
    return Recording(calls, [exchange for log in logs for exchange in log], outcome)


def simulation_gc_threshold() -> int:
    """The young-generation threshold the simulation kernel drives with, so that the floor's
    client work is collected as often as the same work in the simulated run."""
    return max(gc.get_threshold()[0], getattr(kernel, "GC_YOUNG_THRESHOLD", 0))


def replay_floor(recording: Recording, raw: bool, sampler: Sampler | None = None,
                 progress: Progress | None = None):
    client, pool = replay_client(recording.log)
    api = kubernetes.client.CoreV1Api(client)
    thresholds = gc.get_threshold()
    gc.set_threshold(simulation_gc_threshold(), *thresholds[1:])
    report = (lambda index, total: progress.report(index) if progress.due() else None) if progress else None
    try:
        with Stopwatch(sampler) as times:
            tally = replay_calls(api, recording.calls, raw, report)
    finally:
        gc.set_threshold(*thresholds)
    if pool.unanswered():
        raise ReplayMismatch(f"the floor left {pool.unanswered()} recorded answers unused")
    if tally.events != recording.outcome.events_handled:
        raise ReplayMismatch(f"the floor decoded {tally.events} watch events, the executor handled "
                             f"{recording.outcome.events_handled}")
    return times, tally


def child_floor(workload: Workload, args) -> dict:
    small = replace(workload, tasks=min(workload.tasks, WARM_UP_TASKS), nodes=min(workload.nodes, 10))
    replay_floor(record(small), workload.raw)                   # warm-up: not timed
    recording = record(workload, Progress(f"record {workload.tasks:,}", workload.tasks))
    gc.collect()
    gc.freeze()   # the recording is the floor's input, not its work: collections skip it
    times, tally = replay_floor(recording, workload.raw,
                                progress=Progress(f"floor {workload.tasks:,} calls", len(recording.calls)))
    result = {"wall_s": times.wall, "cpu_s": times.cpu, "gc_s": times.gc, "outcome": asdict(recording.outcome),
              "client_calls": dict(Counter(call.method + (" (watch)" if call.is_watch else "")
                                           for call in recording.calls)),
              "watch_events": tally.events, "api_errors": tally.errors,
              "mib_received": received_bytes(recording.log) / 2**20}
    if args.profile:
        sampler = Sampler(args.profile_interval)
        replay_floor(recording, workload.raw, sampler)
        result["layers"] = layer_shares(sampler, floor_layer_of)
    return result


# -- the per-layer profile --------------------------------------------------------------------------

def layer_of(code) -> str | None:
    """client / executor / host / the fake's layers / benchmark; None for the stdlib, which is
    charged to its nearest caller with a layer (json.loads of a raw event is the executor's)."""
    path = code.co_filename
    if layer := fake_layer(path) or executor_layer(path):
        return layer
    if is_client(path):
        return "client"
    return "benchmark" if "/benchmarks/" in path else None


def floor_layer_of(code) -> str | None:
    """As ``layer_of``; the replay driver's own work is decoding the executor does itself in the
    simulated run (``json.loads`` of raw events and of lists), so it counts as the executor's."""
    return "executor" if code.co_filename.endswith("benchmarks/replay.py") else layer_of(code)


def child_profile(workload: Workload, args) -> dict:
    warm_up(workload)
    sampler = Sampler(args.profile_interval)
    run_world(new_world(workload), Progress(f"profile {workload.tasks:,}", workload.tasks), sampler)
    return profile_result(sampler, args.top)


def profile_result(sampler: Sampler, top: int) -> dict:
    profile = summarise(sampler, layer_of)
    return {"layers": profile.layers, "samples": sum(sampler.stacks.values()) + sampler.gc_samples,
            "fake_functions": top_functions(profile, top, lambda layer: layer.startswith("fake")),
            "executor_functions": top_functions(profile, top, lambda layer: layer in ("executor", "host"))}


# -- memory: where the retained heap comes from -----------------------------------------------------

def child_memory(workload: Workload, args) -> dict:
    """The run under tracemalloc. Two snapshots: the fullest seen (checked every 10 virtual
    seconds: what the peak RSS is made of) and the one at the end, before the world is dropped
    (what the run keeps: what grows with N). Each grouped by layer and by line."""
    warm_up(workload)
    tracemalloc.start()
    world = new_world(workload)
    fullest = keep_fullest_snapshot(world)
    run_world(world, Progress(f"tracemalloc {workload.tasks:,}", workload.tasks))
    at_end = tracemalloc.take_snapshot()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return {"traced_peak_mib": peak / 2**20, "rss_mib": peak_rss_mib(),
            "fullest": snapshot_summary(fullest["snapshot"], args.top, at=fullest["at"]),
            "at_end": snapshot_summary(at_end, args.top, at=world.cluster.now)}


def keep_fullest_snapshot(world: World) -> dict:
    """A simulated process keeping the snapshot taken when most memory was traced."""
    fullest = {"size": -1, "snapshot": None, "at": 0.0}

    def loop():
        while not world.store.all_done():
            world.cluster.sleep(10.0)
            size, _ = tracemalloc.get_traced_memory()
            if size > fullest["size"]:
                fullest.update(size=size, snapshot=tracemalloc.take_snapshot(), at=world.cluster.now)

    world.cluster.spawn(loop, name="benchmark memory")
    return fullest


def snapshot_summary(snapshot, top: int, at: float) -> dict:
    by_layer: Counter = Counter()
    for stat in snapshot.statistics("filename"):
        by_layer[memory_layer(stat.traceback[0].filename)] += stat.size
    lines = [{"where": f"{short_path(s.traceback[0].filename)}:{s.traceback[0].lineno}",
              "mib": s.size / 2**20, "blocks": s.count} for s in snapshot.statistics("lineno")[:top]]
    return {"virtual_s": at, "total_mib": sum(by_layer.values()) / 2**20,
            "by_layer_mib": {k: v / 2**20 for k, v in by_layer.most_common()}, "top_lines": lines}


def memory_layer(path: str) -> str:
    return (fake_layer(path) or executor_layer(path) or ("client" if is_client(path) else None)
            or ("benchmark" if "/benchmarks/" in path else "stdlib/other"))


def short_path(path: str) -> str:
    for root in ("/fakecluster/", "/executor/", "/scenarios/", "/benchmarks/", "/site-packages/", "/lib/python3"):
        if root in path:
            return root.strip("/") + "/" + path.split(root, 1)[1]
    return path


# -- the simulation alone -----------------------------------------------------------------------------

POD_BODY = (b'{"apiVersion":"v1","kind":"Pod","metadata":{"name":"%(name)s","namespace":"' + NAMESPACE.encode()
            + b'","labels":{"dag_id":"scale","task_id":"%(task)s","run_id":"manual__1","try_number":"1",'
            b'"airflow-worker":"1","kubernetes_executor":"True"},"annotations":{"dag_id":"scale",'
            b'"task_id":"%(task)s","try_number":"1","run_id":"manual__1"}},"spec":{"containers":[{'
            b'"name":"base","image":"apache/airflow:2.10.0","args":["airflow","tasks","run","scale",'
            b'"%(task)s","manual__1","--local"],"env":[{"name":"AIRFLOW_IS_K8S_EXECUTOR_POD",'
            b'"value":"True"}]}],"restartPolicy":"Never"}}')
SELECTOR = "airflow-worker%3D1%2Cairflow_executor_done%21%3DTrue"   # the executor's, URL-encoded
PODS_PATH = f"/api/v1/namespaces/{NAMESPACE}/pods"
NAME = re.compile(rb'"name":"([^"]+)"')                 # the first is metadata.name
RESOURCE_VERSION = re.compile(rb'"resourceVersion":"(\d+)"')


class SimOnlyDriver:
    """The executor's traffic without the executor or the client: creates in batches within the
    parallelism every loop, one watch with the executor's selector read as raw chunked bytes
    (with regular expressions, not a JSON decoder: decoding is the client's job), a delete for
    every finished pod, done when its DELETED event arrives."""

    def __init__(self, cluster: FakeCluster, workload: Workload, progress: Progress | None):
        self.cluster, self.workload, self.progress = cluster, workload, progress
        self.gateway = cluster.gateway
        self.created = self.done = self.running = 0
        self.deleting: set[bytes] = set()
        self.events = 0

    def main(self) -> None:
        listing = self.gateway.exchange(Request.from_url("GET", f"{PODS_PATH}?labelSelector={SELECTOR}"))
        resource_version = json.loads(listing.body)["metadata"]["resourceVersion"]
        self.cluster.spawn(self.watch, resource_version, name="sim-only watcher")
        while self.done < self.workload.tasks:
            room = min(self.workload.batch, self.workload.parallelism - self.running,
                       self.workload.tasks - self.created)
            for _ in range(max(room, 0)):
                self.create()
            self.cluster.sleep(1.0)
            if self.progress is not None and self.progress.due():
                self.progress.report(self.done, f"; virtual {self.cluster.now:,.0f} s")

    def create(self) -> None:
        task = b"task_%06d" % self.created
        name = b"scale-task-%06d-sim" % self.created
        body = POD_BODY % {b"name": name, b"task": task}
        reply = self.gateway.exchange(Request("POST", PODS_PATH, {}, {"content-type": "application/json"}, body))
        if reply.status != 201:
            raise RuntimeError(f"create answered {reply.status}: {reply.body[:200]!r}")
        self.created += 1
        self.running += 1

    def watch(self, resource_version: str) -> None:
        while self.done < self.workload.tasks:
            query = f"watch=true&labelSelector={SELECTOR}&resourceVersion={resource_version}&timeoutSeconds=3600"
            reply = self.gateway.exchange(Request.from_url("GET", f"{PODS_PATH}?{query}"))
            assert isinstance(reply, WatchReply), reply
            resource_version = self.follow(reply.stream) or resource_version

    def follow(self, stream) -> str | None:
        """Read the stream to its end; returns the last resourceVersion seen.

        Each chunk is one event: ``<hex size> CRLF <JSON line> LF CRLF``. A JSON line has no
        newline of its own, so a chunk ends at the first LF CRLF. The bytes are scanned where
        they lie (a watch at 100,000 tasks carries gigabytes): one copy per read, none per event."""
        pending, buffer = bytearray(), bytearray(65536)
        view = memoryview(buffer)
        last, head_done = b"", False
        while n := stream.read_into(view, None):
            pending += view[:n]
            if not head_done:
                head_end = pending.find(b"\r\n\r\n")
                if head_end < 0:
                    continue
                del pending[:head_end + 4]
                head_done = True
            at, event = 0, None
            while (end := pending.find(b"\n\r\n", at)) >= 0:
                begin = pending.find(b"\r\n", at, end) + 2   # after the hex size; 1: the last chunk
                if begin > 1:
                    self.on_event(pending, begin, end)
                    event = begin, end
                at = end + 3
            if event is not None:
                last = bytes(pending[event[0]:event[1]])
            del pending[:at]
        found = RESOURCE_VERSION.search(last)
        return found.group(1).decode() if found else None

    def on_event(self, data: bytearray, begin: int, end: int) -> None:
        """What the executor does with the event in ``data[begin:end]``, at the least cost:
        substring tests in place, a regular expression only for the name of a pod to delete."""
        self.events += 1
        if data.startswith(b'{"type":"DELETED"', begin):
            self.done += 1
            self.running -= 1
            self.deleting.discard(bytes(NAME.search(data, begin, end).group(1)))
            return
        phase = data.find(b'"phase":"', begin, end) + 9
        if data.startswith(b"Succeeded", phase) or data.startswith(b"Failed", phase):
            name = bytes(NAME.search(data, begin, end).group(1))
            if name not in self.deleting:
                self.deleting.add(name)
                self.gateway.exchange(Request("DELETE", f"{PODS_PATH}/{name.decode()}", {}, {}, None))


def run_sim_only(workload: Workload, progress: Progress | None = None, sampler: Sampler | None = None):
    cluster = new_cluster(workload)
    driver = SimOnlyDriver(cluster, workload, progress)
    with Stopwatch(sampler) as times:
        cluster.run(driver.main)
    return times, driver, cluster


def child_sim_only(workload: Workload, args) -> dict:
    run_sim_only(replace(workload, tasks=min(workload.tasks, WARM_UP_TASKS), nodes=min(workload.nodes, 10)))
    rss_before = peak_rss_mib()
    times, driver, cluster = run_sim_only(workload, Progress(f"sim-only {workload.tasks:,}", workload.tasks))
    result = {"wall_s": times.wall, "cpu_s": times.cpu, "gc_s": times.gc, "rss_mib": peak_rss_mib(),
              "rss_before_mib": rss_before, "virtual_s": cluster.now, "watch_events": driver.events,
              "calls": {f"{verb} {status}": n for (verb, status), n in sorted(cluster.gateway.calls.items())}}
    if driver.done != workload.tasks:
        raise RuntimeError(f"sim-only: {driver.done} of {workload.tasks} pods went through")
    if args.profile:
        del cluster, driver
        sampler = Sampler(args.profile_interval)
        run_sim_only(workload, Progress(f"sim-only profile {workload.tasks:,}", workload.tasks), sampler)
        result["profile"] = profile_result(sampler, args.top)
    return result


# -- orchestration: each run in a fresh process ---------------------------------------------------------

CHILDREN = {"simulate": child_simulate, "floor": child_floor, "profile": child_profile,
            "memory": child_memory, "sim-only": child_sim_only}


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024   # KiB on Linux


def in_child(role: str, tasks: int, argv: list[str]) -> dict:
    """Run ``role`` for ``tasks`` in a fresh interpreter (its peak RSS is its own); its result
    comes back as JSON. PYTHONHASHSEED is fixed so every child builds the same world."""
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as out:
        path = out.name
    env = {**os.environ, "PYTHONHASHSEED": "0"}
    command = [sys.executable, os.path.abspath(__file__), *argv, "--tasks", str(tasks),
               "--child", role, "--child-out", path]
    try:
        subprocess.run(command, check=True, env=env)
        with open(path) as result:
            return json.load(result)
    finally:
        os.unlink(path)


def end_to_end(tasks: int, args, argv: list[str]) -> dict:
    workload = Workload.from_args(args, tasks)
    Console(stderr=True).print(f"[bold]end to end[/]: {workload.describe()}")
    simulated = in_child("simulate", tasks, argv)
    floor = in_child("floor", tasks, argv)
    same_world(simulated["outcome"], floor["outcome"])
    profile = in_child("profile", tasks, argv) if args.profile else None
    memory = in_child("memory", tasks, argv) if args.memory else None
    return summarise_end_to_end(workload, simulated, floor, profile, memory)


def same_world(timed: dict, recorded: dict) -> None:
    """The recording run must have been the timed run again (same requests, same events)."""
    for key in ("calls", "events_handled", "virtual_s"):
        if timed[key] != recorded[key]:
            raise ReplayMismatch(f"the recorded run differs from the timed one in {key}: "
                                 f"{recorded[key]} != {timed[key]}")


def summarise_end_to_end(workload: Workload, simulated: dict, floor: dict, profile: dict | None,
                         memory: dict | None) -> dict:
    tasks, wall = workload.tasks, simulated["wall_s"]
    result = {
        "mode": "end-to-end", "workload": asdict(workload),
        "wall_s": wall, "cpu_s": simulated["cpu_s"], "gc_s": simulated["gc_s"],
        "tasks_per_s": tasks / wall, "us_per_task": 1e6 * wall / tasks,
        "floor_wall_s": floor["wall_s"], "floor_cpu_s": floor["cpu_s"], "floor_gc_s": floor["gc_s"],
        "floor_us_per_task": 1e6 * floor["wall_s"] / tasks,
        "ratio": wall / floor["wall_s"], "ratio_cpu": simulated["cpu_s"] / floor["cpu_s"],
        "rss_mib": simulated["rss_mib"], "rss_before_mib": simulated["rss_before_mib"],
        "virtual_s": simulated["outcome"]["virtual_s"],
        "virtual_per_wall": simulated["outcome"]["virtual_s"] / wall,
        "requests": simulated["outcome"]["calls"], "client_calls": floor["client_calls"],
        "watch_events": floor["watch_events"], "mib_received": floor["mib_received"],
    }
    if profile is not None:
        result["layers_us"] = {layer: 1e6 * profile["layers"].get(layer, 0.0) * wall / tasks for layer in LAYERS}
        result["floor_layers_us"] = {layer: 1e6 * share * floor["wall_s"] / tasks
                                     for layer, share in floor.get("layers", {}).items()}
        result["fake_functions"] = profile["fake_functions"]
        result["executor_functions"] = profile["executor_functions"]
    if memory is not None:
        result["memory"] = memory
    result["verdicts"] = verdicts(result)
    return result


def sim_only(tasks: int, args, argv: list[str]) -> dict:
    workload = Workload.from_args(args, tasks)
    Console(stderr=True).print(f"[bold]simulation alone[/]: {workload.describe(sim_only=True)}")
    child = in_child("sim-only", tasks, argv)
    result = {"mode": "sim-only", "workload": asdict(workload), **child,
              "tasks_per_s": tasks / child["wall_s"], "us_per_task": 1e6 * child["wall_s"] / tasks,
              "virtual_per_wall": child["virtual_s"] / child["wall_s"]}
    if "profile" in child:
        result["layers_us"] = {layer: 1e6 * child["profile"]["layers"].get(layer, 0.0) * child["wall_s"] / tasks
                               for layer in LAYERS}
        result["fake_functions"] = child["profile"]["fake_functions"]
    result["verdicts"] = verdicts(result)
    return result


# -- command line ---------------------------------------------------------------------------------------

def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     epilog="See benchmarks/README.md for how the floor is computed.")
    parser.add_argument("--tasks", type=int, default=10_000, help="tasks (pods) to run")
    parser.add_argument("--sweep", help="comma-separated task counts, each run in fresh processes")
    parser.add_argument("--sim-only", action="store_true", help="the simulation alone: no client, no executor")
    parser.add_argument("--scenario", metavar="FILE",
                        help="time `kubesim run FILE` beside the file's bare world (--sweep scales its tasks)")
    parser.add_argument("--small-worlds", action="store_true",
                        help=f"runs per second of a small scenario in one process (--scenario, default "
                             f"{user_path.DEFAULT_SMALL})")
    parser.add_argument("--runs", type=int, default=40, help="warm runs for --small-worlds")
    parser.add_argument("--repeat", type=int, default=1,
                        help="--scenario: rounds of both sides, each side's best reported")
    parser.add_argument("--raw", action="store_true", help="the executor's raw_watch_events path")
    parser.add_argument("--nodes", type=int, help="nodes (default: 1,000 from 10,000 tasks, else max(3, N/100))")
    parser.add_argument("--node-pods", type=int, default=250, help="pod capacity per node")
    parser.add_argument("--parallelism", type=int, default=2000, help="the executor's parallelism (0: unlimited)")
    parser.add_argument("--batch", type=int, default=500, help="worker_pods_creation_batch_size")
    parser.add_argument("--run-seconds", type=float, nargs=2, default=(30.0, 120.0), metavar=("LOW", "HIGH"),
                        help="each task's container runs uniform(LOW, HIGH) virtual seconds")
    parser.add_argument("--watch-cache-seconds", type=float, default=75.0,
                        help="the watch cache keeps changes this long, as kube-apiserver (0: by size only)")
    parser.add_argument("--trace", action="store_true", help="keep the cluster's trace and call log (memory)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-profile", dest="profile", action="store_false",
                        help="skip the per-layer profile (one run fewer)")
    parser.add_argument("--profile-interval", type=float, default=0.0005, help="sampling interval, seconds")
    parser.add_argument("--memory", action="store_true",
                        help="also run once under tracemalloc: retained memory by layer and line")
    parser.add_argument("--top", type=int, default=15, help="functions (and memory lines) listed")
    parser.add_argument("--json", metavar="OUT", help="also write the figures as JSON")
    parser.add_argument("--from-json", nargs="+", metavar="IN",
                        help="print saved --json results again (a growth table for several) instead of running")
    parser.add_argument("--child", choices=sorted(CHILDREN), help=argparse.SUPPRESS)
    parser.add_argument("--child-out", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.tasks < 1:
        parser.error("--tasks must be at least 1")
    if args.runs < 1 or args.repeat < 1:
        parser.error("--runs and --repeat must be at least 1")
    if args.scenario and not os.path.isfile(args.scenario):
        parser.error(f"--scenario {args.scenario}: no such file")
    return args


def child_argv(argv: list[str]) -> list[str]:
    """The options a child needs: the command line without --sweep, --tasks and --json."""
    kept, skip = [], False
    for index, item in enumerate(argv):
        if skip:
            skip = False
            continue
        name = item.split("=", 1)[0]
        if name in ("--sweep", "--tasks", "--json", "--child", "--child-out"):
            skip = "=" not in item
            continue
        kept.append(item)
    return kept


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parse_args(argv)
    if args.child:
        result = CHILDREN[args.child](Workload.from_args(args, args.tasks), args)
        with open(args.child_out, "w") as out:
            json.dump(result, out)
        return 0
    console = Console(width=int(os.environ.get("COLUMNS", 140)))
    results = load_results(args.from_json) if args.from_json else run_all(args, argv, console)
    for group in group_results(results):
        if len(group) > 1:
            (user_path.print_growth if group[0]["mode"] == "user-path" else print_sweep)(group, console)
    if args.json:
        with open(args.json, "w") as out:
            json.dump(results if len(results) > 1 else results[0], out, indent=2)
    return 0


def run_all(args, argv: list[str], console: Console) -> list[dict]:
    if args.small_worlds:
        result = user_path.small_worlds(args.scenario or user_path.DEFAULT_SMALL, args.runs)
        user_path.print_result(result, console)
        return [result]
    counts = [int(n.replace("_", "")) for n in args.sweep.split(",")] if args.sweep else [args.tasks]
    if args.scenario:
        results = []
        for tasks in counts if args.sweep else [None]:
            results.append(user_path.compare(Path(args.scenario), tasks, args.repeat))
            user_path.print_result(results[-1], console)
        return results
    run = sim_only if args.sim_only else end_to_end
    results = []
    for tasks in counts:
        results.append(run(tasks, args, child_argv(argv)))
        print_result(results[-1], console)
    return results


def load_results(paths: list[str]) -> list[dict]:
    """Saved results (``--json`` files), printed again with today's verdicts, in task order."""
    results = []
    for path in paths:
        with open(path) as saved:
            loaded = json.load(saved)
        results.extend(loaded if isinstance(loaded, list) else [loaded])
    results.sort(key=lambda result: result["workload"]["tasks"] or 0)
    for result in results:
        console = Console(width=int(os.environ.get("COLUMNS", 140)))
        if result["mode"] in ("user-path", "small-worlds"):
            if result["mode"] == "user-path":
                result["verdicts"] = user_path.verdicts(result)
            user_path.print_result(result, console)
            continue
        result["verdicts"] = verdicts(result)
        print_result(result, console)
    return results


if __name__ == "__main__":
    sys.exit(main())
