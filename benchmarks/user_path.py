"""The user's path beside the bare world, and small worlds' runs per second (``scale.py`` modes).

    PYTHONPATH=. python benchmarks/scale.py --scenario scenarios/catalogue/scale_100k.yaml
    PYTHONPATH=. python benchmarks/scale.py --scenario scenarios/catalogue/scale_100k.yaml --sweep 10000,100000
    PYTHONPATH=. python benchmarks/scale.py --small-worlds --runs 40

**--scenario FILE** runs the file twice, each in a fresh process, one after the other:

1. **bare world**: the file's world (``build_world``: its cluster, executor, host, faults and
   workload) run to its end, and nothing else: no trace, no call log, no watchdog, no progress,
   no metrics, no checks, no report.
2. **kubesim run**: the command a user types, ``kubesim run FILE --json OUT`` (the runner: trace,
   watchdog, progress, metrics, invariants, the printed report and the JSON).

Each side is timed by this process from its start to its exit (imports included on both sides),
with its peak RSS from ``wait4``. Both must be the same world: the same virtual end time and the
same API calls by verb and status, or the benchmark fails. With ``--sweep`` the file's workload is
scaled (``dags`` changed, ``tasks_per_dag`` kept) in a copy written next to the JSON temporaries.

**--small-worlds** runs the default scenario (or ``--scenario``) through ``scenarios.runner.run``
again and again in one process, as ``kubesim sweep`` workers and explore do: the first (cold) run
apart, then runs per second and where a warm run's time goes (building the world, up to its first
pod, the simulation, measuring and checking).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml
from rich.console import Console
from rich.table import Table

TARGET_RATIO = 1.15        # kubesim run / bare world, same file
TARGET_RSS_MIB = 1024.0    # kubesim run's peak RSS at 100,000 tasks
TARGET_FLAT = 1.15         # µs per task at the largest N / at the smallest
DEFAULT_SMALL = "scenarios/catalogue/default.yaml"


# -- one side of the comparison, in a fresh process ----------------------------------------------------

def bare_world(path: str) -> dict:
    """The child's work: the file's world, run bare. Prints its outcome as JSON on stdout."""
    from scenarios.build import build_world
    from scenarios.loader import load
    loaded = load(path)[0]
    scenario = loaded.scenario
    world = build_world(scenario, scenario.seed, trace=False)
    world.cluster.gateway.record_log = False
    try:
        world.run_until_done(timeout=scenario.until.max_virtual_seconds)
    except TimeoutError:
        pass   # the same outcome as the runner's: compared below, not judged here
    return {"virtual_s": world.cluster.now, "states": world.states(),
            "calls": sorted([verb, str(status), n] for (verb, status), n in world.cluster.gateway.calls.items())}


def timed_process(command: list[str], stdout) -> dict:
    """Run ``command`` to its end: wall seconds from start to exit, and its peak RSS."""
    env = {**os.environ, "PYTHONHASHSEED": "0"}
    started = time.perf_counter()
    child = subprocess.Popen(command, stdout=stdout, env=env)
    _, status, usage = os.wait4(child.pid, 0)
    wall = time.perf_counter() - started
    child.returncode = os.waitstatus_to_exitcode(status)
    return {"wall_s": wall, "cpu_s": usage.ru_utime + usage.ru_stime, "rss_mib": usage.ru_maxrss / 1024,
            "exit": child.returncode}


def kubesim_command() -> list[str]:
    """``kubesim`` as installed beside this interpreter, else the module it runs."""
    script = Path(sys.executable).with_name("kubesim")
    return [str(script)] if script.exists() else [sys.executable, "-m", "scenarios.cli"]


def run_bare(path: Path, scratch: Path) -> dict:
    out = scratch / "bare.json"
    with out.open("w") as stdout:
        side = timed_process([sys.executable, os.path.abspath(__file__), "--bare", str(path)], stdout)
    if side["exit"] != 0:
        raise RuntimeError(f"the bare world of {path} failed (exit {side['exit']})")
    return {**side, **json.loads(out.read_text())}


def run_user(path: Path, scratch: Path) -> dict:
    report, printed = scratch / "run.json", scratch / "run.out"
    with printed.open("w") as stdout:
        side = timed_process([*kubesim_command(), "run", str(path), "--json", str(report)], stdout)
    if side["exit"] not in (0, 1):   # 1: the scenario failed a check; still a measured run
        raise RuntimeError(f"kubesim run {path} failed (exit {side['exit']}): {printed.read_text()[-2000:]}")
    result = json.loads(report.read_text())[0]
    calls = sorted([c["verb"], c["status"], c["count"]] for c in result["api_calls"])
    return {**side, "virtual_s": result["virtual_seconds"], "calls": calls, "passed": result["passed"],
            "failures": result["failures"]}


def same_world(bare: dict, user: dict, path: Path) -> None:
    for key in ("virtual_s", "calls"):
        if bare[key] != user[key]:
            raise RuntimeError(f"{path}: kubesim run and the bare world differ in {key}: "
                               f"{user[key]} != {bare[key]}")


# -- the comparison ------------------------------------------------------------------------------------

def scenario_tasks(path: Path) -> tuple[int, dict]:
    raw = yaml.safe_load(path.read_text())
    work = raw.get("workload") or {}
    return work.get("dags", 1) * work.get("tasks_per_dag", 10), raw


def scaled_copy(path: Path, tasks: int | None, scratch: Path) -> tuple[Path, int]:
    """The file itself, or a copy whose workload has ``tasks`` tasks (``dags`` scaled)."""
    total, raw = scenario_tasks(path)
    if tasks is None or tasks == total:
        return path, total
    per_dag = raw["workload"].get("tasks_per_dag", 10)
    if tasks % per_dag:
        raise SystemExit(f"--sweep {tasks}: {path} has {per_dag} tasks per DAG; use a multiple of it")
    raw["workload"]["dags"] = tasks // per_dag
    copy = scratch / f"{path.stem}-{tasks}.yaml"
    copy.write_text(yaml.safe_dump(raw, sort_keys=False))
    return copy, tasks


def compare(path: Path, tasks: int | None = None, repeat: int = 1) -> dict:
    """kubesim run against the bare world for one file (scaled to ``tasks``): ``repeat`` rounds of
    the bare world then kubesim run, and each side's best round (least wall time), so a busy
    moment on a shared machine weighs on neither side alone."""
    with tempfile.TemporaryDirectory(prefix="kubesim-user-path-") as folder:
        scratch = Path(folder)
        file, total = scaled_copy(path, tasks, scratch)
        console = Console(stderr=True)
        bares, users = [], []
        for round_number in range(1, repeat + 1):
            console.print(f"[bold]user path[/]: {path} with {total:,} tasks, round {round_number} of {repeat}: "
                          f"the bare world, then kubesim run")
            bares.append(run_bare(file, scratch))
            users.append(run_user(file, scratch))
            same_world(bares[-1], users[-1], file)
    bare, user = (min(sides, key=lambda side: side["wall_s"]) for sides in (bares, users))
    result = {"mode": "user-path", "scenario": str(path), "workload": {"tasks": total, "raw": None},
              "rounds": [{"bare_wall_s": b["wall_s"], "user_wall_s": u["wall_s"], "bare_cpu_s": b["cpu_s"],
                          "user_cpu_s": u["cpu_s"]} for b, u in zip(bares, users)],
              "bare": bare, "user": user, "ratio": user["wall_s"] / bare["wall_s"],
              "ratio_cpu": user["cpu_s"] / bare["cpu_s"],
              "us_per_task": 1e6 * user["wall_s"] / total, "bare_us_per_task": 1e6 * bare["wall_s"] / total,
              "rss_mib": user["rss_mib"], "virtual_s": user["virtual_s"]}
    result["verdicts"] = verdicts(result)
    return result


def verdicts(result: dict) -> list[dict]:
    found = [{"target": f"kubesim run within {TARGET_RATIO}x of the bare world", "met": result["ratio"] <= TARGET_RATIO,
              "figure": f"{result['ratio']:.2f}x"}]
    if result["workload"]["tasks"] >= 100_000:
        found.append({"target": "kubesim run under 1 GiB at 100,000 tasks", "met": result["rss_mib"] < TARGET_RSS_MIB,
                      "figure": f"{result['rss_mib']:,.0f} MiB"})
    return found


def flat_verdict(results: list[dict]) -> dict:
    small, large = results[0], results[-1]
    growth = large["us_per_task"] / small["us_per_task"]
    return {"target": f"kubesim run's µs per task flat from {small['workload']['tasks']:,} to "
                      f"{large['workload']['tasks']:,} tasks (within {TARGET_FLAT}x)",
            "met": growth <= TARGET_FLAT, "figure": f"{growth:.2f}x"}


def print_comparison(result: dict, console: Console) -> None:
    bare, user = result["bare"], result["user"]
    tasks = result["workload"]["tasks"]
    rounds = result.get("rounds", [])
    best = f", best of {len(rounds)} rounds" if len(rounds) > 1 else ""
    table = Table(title=f"{result['scenario']}, {tasks:,} tasks ({result['virtual_s']:,.0f} virtual s, "
                        f"{'passed' if user['passed'] else 'FAILED'}{best})")
    for column in ("", "bare world", "kubesim run", "ratio"):
        table.add_column(column, justify="right" if column else "left")
    table.add_row("wall s (process)", f"{bare['wall_s']:.1f}", f"{user['wall_s']:.1f}", f"{result['ratio']:.2f}x")
    table.add_row("CPU s", f"{bare['cpu_s']:.1f}", f"{user['cpu_s']:.1f}", f"{result['ratio_cpu']:.2f}x")
    table.add_row("µs per task", f"{result['bare_us_per_task']:,.0f}", f"{result['us_per_task']:,.0f}", "")
    table.add_row("peak RSS MiB", f"{bare['rss_mib']:,.0f}", f"{user['rss_mib']:,.0f}",
                  f"{user['rss_mib'] / bare['rss_mib']:.2f}x")
    console.print(table)
    if len(rounds) > 1:
        console.print("rounds (bare / kubesim run, wall s): " + ", ".join(
            f"{r['bare_wall_s']:.1f} / {r['user_wall_s']:.1f}" for r in rounds))
    print_verdicts(result["verdicts"], console)


def print_growth(results: list[dict], console: Console) -> None:
    table = Table(title=f"user path growth: {results[0]['scenario']}")
    table.add_column("")
    for result in results:
        table.add_column(f"N={result['workload']['tasks']:,}", justify="right")
    rows = [("bare world µs/task", lambda r: f"{r['bare_us_per_task']:,.0f}"),
            ("kubesim run µs/task", lambda r: f"{r['us_per_task']:,.0f}"),
            ("ratio", lambda r: f"{r['ratio']:.2f}x"),
            ("bare world peak RSS MiB", lambda r: f"{r['bare']['rss_mib']:,.0f}"),
            ("kubesim run peak RSS MiB", lambda r: f"{r['rss_mib']:,.0f}")]
    for name, cell in rows:
        table.add_row(name, *(cell(result) for result in results))
    console.print(table)
    print_verdicts([flat_verdict(results)], console)


def print_verdicts(found: list[dict], console: Console) -> None:
    for entry in found:
        mark = "[green]met[/]" if entry["met"] else "[red]NOT met[/]"
        console.print(f"target {entry['target']}: {entry['figure']} {mark}")


# -- small worlds: runs per second in one process ------------------------------------------------------

class RunSplit:
    """Wall-clock marks inside ``runner.run``, from wrappers around what it calls (the runner
    itself is not changed; the wrappers are removed on leaving): world built, first pod stored,
    world done, run returned."""

    def __enter__(self) -> "RunSplit":
        from scenarios import runner
        from scenarios.world import World
        self.marks: dict[str, float] = {}
        self._saved = build, run_until_done = runner.build_world, World.run_until_done
        split = self

        def timed_build(*args, **kwargs):
            world = build(*args, **kwargs)
            split.marks["built"] = time.perf_counter()
            world.cluster.server.pods.listeners.append(split._first_pod)
            return world

        def timed_run(world, *args, **kwargs):
            try:
                return run_until_done(world, *args, **kwargs)
            finally:
                split.marks["simulated"] = time.perf_counter()

        runner.build_world, World.run_until_done = timed_build, timed_run
        return self

    def __exit__(self, *exc) -> None:
        from scenarios import runner
        from scenarios.world import World
        runner.build_world, World.run_until_done = self._saved

    def _first_pod(self, change) -> None:
        self.marks.setdefault("first pod", time.perf_counter())

    def run(self, loaded) -> dict[str, float]:
        from scenarios.runner import run
        self.marks = {}
        started = time.perf_counter()
        result = run(loaded)
        ended = time.perf_counter()
        if not result.passed:
            raise RuntimeError(f"{loaded.path} failed: {[f.message for f in result.failures]}")
        marks = self.marks
        first = marks.get("first pod", marks["simulated"])
        return {"total": ended - started, "build the world": marks["built"] - started,
                "to its first pod": first - marks["built"], "simulate the rest": marks["simulated"] - first,
                "measure and check": ended - marks["simulated"]}


def small_worlds(path: str, runs: int) -> dict:
    from scenarios.loader import load
    loaded = load(path)[0]
    with RunSplit() as split:
        cold = split.run(loaded)
        warm = [split.run(loaded) for _ in range(runs)]
    mean = {part: sum(run[part] for run in warm) / runs for part in warm[0]}
    return {"mode": "small-worlds", "scenario": path, "workload": {"tasks": None, "raw": None}, "runs": runs,
            "cold_s": cold, "warm_ms": {k: 1e3 * v for k, v in mean.items()}, "runs_per_s": 1 / mean["total"]}


def print_small_worlds(result: dict, console: Console) -> None:
    warm = result["warm_ms"]
    console.print(f"[bold]small worlds[/]: {result['scenario']} run {result['runs']} times in one process: "
                  f"[bold]{result['runs_per_s']:.2f} runs/s[/] ({warm['total']:.1f} ms a run); the first run "
                  f"{1e3 * result['cold_s']['total']:,.0f} ms, of which {1e3 * result['cold_s']['to its first pod']:,.0f} ms "
                  f"before its first pod (lazy imports, the client's first calls)")
    table = Table(title="a warm run, ms")
    for column in warm:
        table.add_column(column, justify="right")
    table.add_row(*(f"{ms:.1f}" for ms in warm.values()))
    console.print(table)


def print_result(result: dict, console: Console) -> None:
    (print_small_worlds if result["mode"] == "small-worlds" else print_comparison)(result, console)


if __name__ == "__main__" and sys.argv[1:2] == ["--bare"]:
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    print(json.dumps(bare_world(sys.argv[2])))
