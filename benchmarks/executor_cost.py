"""The executor's own cost per task, apart from the client's and the fake's.

Runs N tasks end to end (the KubernetesExecutor and its scheduler host on a FakeCluster,
through the real client) under the sampling profiler and splits the time by layer:

* executor: ``executor/`` except the host (watcher, launcher, event mapping, pod generator);
* host: ``executor/host.py``, ``executor/scheduler_job.py`` and ``scenarios/world.py`` (Airflow's part: scheduler loop, store);
* client: kubernetes, urllib3, http.client, pydantic;
* fake: ``fakecluster/``, simpy and greenlet.

    PYTHONPATH=. python benchmarks/executor_cost.py --tasks 2000          # V1Pod model objects
    PYTHONPATH=. python benchmarks/executor_cost.py --tasks 2000 --raw    # raw watch events
"""

from __future__ import annotations

import argparse
import json
import os
import random
import time

from rich.console import Console
from rich.table import Table

from executor import ExecutorConfig
from fakecluster import Behaviour, FakeCluster
from sampling import Sampler, executor_layer, fake_layer, is_client, layer_shares
from scenarios.world import World

LAYERS = ("executor", "host", "client", "fake", "garbage collection", "other")


def layer_of(code) -> str | None:
    path = code.co_filename
    if layer := executor_layer(path):
        return layer
    if fake_layer(path):
        return "fake"
    return "client" if is_client(path) else None


def run_world(tasks: int, raw: bool, seed: int) -> tuple[World, float]:
    cluster = FakeCluster(seed=seed, nodes=max(3, tasks // 100), node_pods=250, trace=False,
                          behaviour=Behaviour(run_seconds=lambda rng: rng.uniform(30, 120)))
    cluster.gateway.record_log = False
    config = ExecutorConfig(worker_pods_creation_batch_size=500, parallelism=0, raw_watch_events=raw)
    world = World(cluster, config)
    world.add_tasks("bench", [f"task_{i}" for i in range(tasks)])
    started = time.perf_counter()
    world.run_until_done(timeout=86_400)
    return world, time.perf_counter() - started


def measure(tasks: int, raw: bool, seed: int) -> dict:
    run_world(min(tasks, 200), raw, seed)          # warm-up: imports, caches
    world, wall = run_world(tasks, raw, seed)
    sampler = Sampler()
    sampler.start()
    try:
        _, profiled_wall = run_world(tasks, raw, seed)
    finally:
        sampler.stop()
    shares = layer_shares(sampler, layer_of)
    states = world.states()
    return {"tasks": tasks, "raw_watch_events": raw, "wall_s": round(wall, 3),
            "tasks_per_s": round(tasks / wall, 1), "virtual_s": round(world.cluster.now, 1),
            "succeeded": states.get("success", 0),
            "us_per_task": {layer: round(shares.get(layer, 0.0) * wall / tasks * 1e6, 1) for layer in LAYERS}}


def print_report(result: dict, console: Console) -> None:
    path = "raw watch events" if result["raw_watch_events"] else "V1Pod model objects"
    table = Table(title=f"executor cost: {result['tasks']} tasks, {path}")
    table.add_column("layer")
    table.add_column("µs per task", justify="right")
    for layer, cost in result["us_per_task"].items():
        table.add_row(layer, f"{cost:,.1f}")
    table.add_row("[bold]all[/]", f"{sum(result['us_per_task'].values()):,.1f}")
    console.print(table)
    console.print(f"{result['succeeded']}/{result['tasks']} tasks succeeded; {result['tasks_per_s']:,} tasks "
                  f"per wall second; {result['virtual_s']:,} virtual seconds in {result['wall_s']} s")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", type=int, default=2000)
    parser.add_argument("--raw", action="store_true", help="process watch events as dicts")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", dest="json_out", help="also write the figures here")
    args = parser.parse_args(argv)
    if args.tasks < 1:
        parser.error("--tasks must be at least 1")
    random.seed(args.seed)
    result = measure(args.tasks, args.raw, args.seed)
    print_report(result, Console())
    if args.json_out:
        with open(args.json_out, "w") as out:
            json.dump(result, out, indent=2)
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    raise SystemExit(main())
