"""How much does work done between the client's calls slow the client itself down?

``fake_overhead.py``'s timed overhead is larger than the one ``instructions.py`` counts: the
client runs slower in the simulated run than in its floor, although it makes the same calls on
the same bytes. This benchmark measures that interference on its own. It replays a recorded
``fake_overhead`` run to the same client calls (the client-only floor) and, right after each
create (POST) the client makes, runs one kind of work, timed apart from the client:

* **none**: nothing; the floor as it is.
* **spin**: a pure-Python loop that allocates nothing (``--spin`` iterations).
* **parse**: ``orjson.loads`` of the request body, ``--parses`` times, the results dropped:
  allocating C code, as the fake's decoding is.
* **fake POST**: the fake API server's own handling of that very request
  (``ApiServer.handle`` on a second cluster; it must answer 201). Its object is kept, as the
  fake keeps it, and a watch on the namespace that nobody reads gets its ADDED event, as the
  watcher's stream does while the creator runs in ``fake_overhead``'s simulated run.

For each kind: the client's own create time (the create phase less the injected work), the
work's own time, and the *interference*: how many microseconds slower the client's creates
get per microsecond of that work. The rest of the run (watch, delete) is timed too.

    PYTHONPATH=. python benchmarks/interference.py --pods 1000 --repeat 4 [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass

import kubernetes.client
import orjson
from rich.console import Console
from rich.table import Table

import fake_overhead
from replay import Exchange, ReplayMismatch, ReplayPoolManager, as_bytes, replay_client

from fakecluster.api.server import Request, WatchReply

KINDS = ("none", "spin", "parse", "fake POST")


class InjectingReplay(ReplayPoolManager):
    """The floor's pool manager, running ``work`` after each POST answer is built."""

    def __init__(self, log: list[Exchange], work):
        super().__init__(log)
        self.work, self.injected = work, 0.0

    def urlopen(self, method, url, redirect=True, **kw):
        response = super().urlopen(method, url, redirect=redirect, **kw)
        if method == "POST" and self.work is not None:
            started = time.process_time()
            self.work(url, kw.get("headers") or {}, as_bytes(kw.get("body")))
            self.injected += time.process_time() - started
        return response


def spin(iterations: int):
    def work(url, headers, body):
        total = 0
        for i in range(iterations):
            total += i * 3
    return work


def parse(times: int):
    def work(url, headers, body):
        for _ in range(times):
            orjson.loads(body)
    return work


def fake_post(pods: int, seed: int):
    server = fake_overhead.new_cluster(pods, seed, 0.0).server
    # the server keeps the watcher and its stream: nobody reads it, as while the creates run
    watch = server.handle(Request.from_url(
        "GET", f"/api/v1/namespaces/{fake_overhead.NAMESPACE}/pods?watch=true&resourceVersion=0"))
    if not isinstance(watch, WatchReply):
        raise RuntimeError(f"the fake refused the watch: {watch.status} {watch.body[:200]!r}")

    def work(url, headers, body):
        reply = server.handle(Request.from_url("POST", url, headers, body))
        if reply.status != 201:
            raise RuntimeError(f"the fake answered the recorded create with {reply.status}: {reply.body[:200]!r}")
    return work


@dataclass
class Timing:
    client_create: float   # CPU seconds in the create phase, less the injected work
    injected: float
    rest: float            # the watch-and-delete phase


def replay_with(log: list[Exchange], pods: int, work) -> Timing:
    client, pool = replay_client(log, InjectingReplay(log, work))
    api = kubernetes.client.CoreV1Api(client)
    resource_version = fake_overhead.start_revision(api)
    started = time.process_time()
    fake_overhead.create_pods(api, pods)
    created = time.process_time()
    fake_overhead.watch_and_delete(api, resource_version, pods, raw=False)
    finished = time.process_time()
    if pool.unanswered():
        raise ReplayMismatch(f"the replay left {pool.unanswered()} recorded answers unused")
    return Timing(created - started - pool.injected, pool.injected, finished - created)


def measure(args) -> dict:
    log = fake_overhead.run_simulated(args.pods, args.seed, False, 0.0, 0.0).log
    warm_up = fake_overhead.run_simulated(20, args.seed, False, 0.0, 0.0)
    replay_with(warm_up.log, 20, fake_post(20, args.seed))   # lazy imports, first-call costs
    works = {"none": lambda: None, "spin": lambda: spin(args.spin), "parse": lambda: parse(args.parses),
             "fake POST": lambda: fake_post(args.pods, args.seed)}
    best: dict[str, Timing] = {}
    for _ in range(args.repeat):   # the kinds alternate within a round: a slow spell hits all
        for kind in KINDS:
            timing = replay_with(log, args.pods, works[kind]())
            if kind not in best or timing.client_create < best[kind].client_create:
                best[kind] = timing
    per_pod = lambda seconds: 1e6 * seconds / args.pods
    base = best["none"]
    rows = {}
    for kind, timing in best.items():
        slowdown = per_pod(timing.client_create - base.client_create)
        injected = per_pod(timing.injected)
        rows[kind] = {"client_create_us": per_pod(timing.client_create), "injected_us": injected,
                      "client_slowdown_us": slowdown, "rest_us": per_pod(timing.rest),
                      "interference": slowdown / injected if injected else None}
    return {"pods": args.pods, "seed": args.seed, "repeat": args.repeat, "spin": args.spin,
            "parses": args.parses, "kinds": rows}


def print_report(result: dict, console: Console) -> None:
    table = Table(title=f"interference: work run after each of the client's {result['pods']} creates "
                        f"(floor replay, best of {result['repeat']}, CPU µs per pod)")
    for column in ("work in between", "its own µs", "client's create µs", "client slower by µs",
                   "per µs of work", "watch and delete µs"):
        table.add_column(column, justify="left" if column == "work in between" else "right")
    for kind, row in result["kinds"].items():
        ratio = "" if row["interference"] is None else f"{row['interference']:.2f}"
        table.add_row(kind, f"{row['injected_us']:.1f}", f"{row['client_create_us']:.1f}",
                      f"{row['client_slowdown_us']:+.1f}", ratio, f"{row['rest_us']:.1f}")
    console.print(table)
    console.print("'per µs of work': how many µs the client's creates lose for each µs of that work "
                  "run between them, so that a µs of it costs about (1 + that figure) µs in all.")


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pods", type=int, default=1000, help="pods the recorded run creates")
    parser.add_argument("--seed", type=int, default=0, help="the simulated world's seed")
    parser.add_argument("--repeat", type=int, default=4, help="rounds; the best of each kind is kept")
    parser.add_argument("--spin", type=int, default=1500, help="loop iterations of the 'spin' work")
    parser.add_argument("--parses", type=int, default=6, help="orjson.loads calls of the 'parse' work")
    parser.add_argument("--json", metavar="OUT", help="also write the figures as JSON to OUT")
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    result = measure(args)
    print_report(result, Console())
    if args.json:
        with open(args.json, "w") as out:
            json.dump(result, out, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
