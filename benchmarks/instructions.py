"""The fake's overhead in instructions executed: the same comparison as ``fake_overhead.py``,
counted by valgrind instead of timed, so it is the same on every run and on a busy machine.

``fake_overhead.py`` times the simulated run against the client-only floor; on a shared machine
that ratio moves by ±10 % between runs of the same code. Here each side runs once, alone, in a
fresh interpreter under ``valgrind --tool=callgrind``, which counts the instructions it executes:

* **sim**: the simulated run of ``fake_overhead.py`` (creator, watcher, API server, cluster);
* **floor**: its replay, the client's own work on the recorded bytes;
* **none**: the interpreter start, imports and warm-up alone, subtracted from both.

Instructions per pod = (side - none) / N, and ``overhead = sim / floor - 1``. An instruction
count leaves out what the fake costs the client through the caches and branch predictors they
share, so the timed overhead is the larger one; the pair tells how much of it is the fake's own
work and how much is interference.

    PYTHONPATH=. python benchmarks/instructions.py --pods 1000 [--raw] [--json out.json]

Needs valgrind (Debian: ``apt-get install valgrind``). 1,000 pods take seven to ten minutes.
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import re
import shutil
import subprocess
import sys
import tempfile

from rich.console import Console
from rich.table import Table

import fake_overhead

SIDES = ("none", "sim", "floor")
WARM_UP_PODS = 20
_COLLECTED = re.compile(r"Collected\s*:\s*(\d+)")


def child(side: str, pods: int, raw: bool, log_path: str) -> None:
    """One side, after the same warm-up every side has (lazy imports, pydantic schemas)."""
    warm_up = fake_overhead.run_simulated(WARM_UP_PODS, 0, raw, 0.0, 0.0)
    fake_overhead.run_floor(warm_up.log, WARM_UP_PODS, raw)
    if side == "record":
        with open(log_path, "wb") as out:
            pickle.dump(fake_overhead.run_simulated(pods, 0, raw, 0.0, 0.0).log, out)
    elif side == "sim":
        fake_overhead.run_simulated(pods, 0, raw, 0.0, 0.0)
    elif side == "floor":
        with open(log_path, "rb") as recorded:
            log = pickle.load(recorded)
        fake_overhead.run_floor(log, pods, raw)


def child_command(side: str, args, log_path: str) -> list[str]:
    command = [sys.executable, os.path.abspath(__file__), "--child", side, "--pods", str(args.pods),
               "--log", log_path]
    return command + (["--raw"] if args.raw else [])


def counted(side: str, args, log_path: str) -> int:
    """Instructions the side's whole interpreter executed, as callgrind counts them."""
    command = ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null",
               *child_command(side, args, log_path)]
    finished = subprocess.run(command, env=child_env(), capture_output=True, text=True)
    found = _COLLECTED.search(finished.stderr)
    if finished.returncode != 0 or found is None:
        raise RuntimeError(f"the {side} run under valgrind failed (exit {finished.returncode}):\n"
                           + finished.stderr[-2000:])
    return int(found.group(1))


def child_env() -> dict:
    # a fixed hash seed: every child builds the same world and the recording matches the replay
    return {**os.environ, "PYTHONHASHSEED": "0"}


def measure(args, console: Console) -> dict:
    if shutil.which("valgrind") is None:
        raise SystemExit("valgrind is not installed; on Debian or Ubuntu: apt-get install valgrind")
    with tempfile.TemporaryDirectory() as scratch:
        log_path = os.path.join(scratch, "recorded.pickle")
        with console.status("recording the simulated run's bytes"):
            subprocess.run(child_command("record", args, log_path), env=child_env(), check=True)
        counts = {}
        for side in SIDES:
            with console.status(f"counting instructions: {side} ({args.pods:,} pods, under valgrind)"):
                counts[side] = counted(side, args, log_path)
            console.print(f"{side}: {counts[side]:,} instructions")
    per_pod = {side: (counts[side] - counts["none"]) / args.pods for side in ("sim", "floor")}
    return {"pods": args.pods, "raw": args.raw, "instructions": counts,
            "sim_per_pod": per_pod["sim"], "floor_per_pod": per_pod["floor"],
            "fake_per_pod": per_pod["sim"] - per_pod["floor"],
            "overhead_pct": 100 * (per_pod["sim"] / per_pod["floor"] - 1),
            "target_pct": 100 * fake_overhead.TARGET_OVERHEAD}


def print_report(result: dict, console: Console) -> None:
    mode = "raw dicts (deserialize=False)" if result["raw"] else "model objects"
    table = Table(title=f"instructions per pod: {result['pods']:,} pods, watch with {mode}")
    for column in ("simulated", "client-only floor", "the fake's own", "fake overhead"):
        table.add_column(column, justify="right")
    table.add_row(f"{result['sim_per_pod']:,.0f}", f"{result['floor_per_pod']:,.0f}",
                  f"{result['fake_per_pod']:,.0f}", f"{result['overhead_pct']:.1f} %")
    console.print(table)
    met = result["overhead_pct"] <= result["target_pct"]
    console.print(f"in instructions, the fake adds {result['overhead_pct']:.1f} % "
                  f"(target {result['target_pct']:.0f} %: {'met' if met else 'NOT met'}); the timed "
                  "overhead (fake_overhead.py) also counts what it costs the client in caches")


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pods", type=int, default=1000, help="pods to create, watch and delete")
    parser.add_argument("--raw", action="store_true", help="watch with deserialize=False (raw dicts)")
    parser.add_argument("--json", metavar="OUT", help="also write the figures as JSON to OUT")
    parser.add_argument("--child", choices=("record", *SIDES), help=argparse.SUPPRESS)
    parser.add_argument("--log", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.pods < 1:
        parser.error(f"--pods must be at least 1, not {args.pods}")
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.child:
        child(args.child, args.pods, args.raw, args.log)
        return 0
    console = Console()
    result = measure(args, console)
    print_report(result, console)
    if args.json:
        with open(args.json, "w") as out:
            json.dump(result, out, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
