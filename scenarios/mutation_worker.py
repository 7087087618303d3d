"""One mutant's run (``kubesim mutate`` starts it in a scratch tree): the scenario files given,
in order, each a JSON line on stdout; with ``--first-kill`` it stops at the first failure."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m scenarios.mutation_worker")
    parser.add_argument("--first-kill", action="store_true")
    parser.add_argument("--seeds", default="", help="comma-separated seeds to run the killing scenario on too")
    parser.add_argument("files", nargs="+", type=Path)
    args = parser.parse_args(argv)
    import executor
    mutated = Path(os.environ.get("PYTHONPATH", "")).resolve()
    if Path(executor.__file__).resolve().parent.parent != mutated:   # never judge the unmutated code
        print(f"executor was imported from {executor.__file__}, not from the mutated copy in {mutated}",
              file=sys.stderr)
        return 2
    logging.disable(logging.CRITICAL)
    from .loader import load
    from .runner import run
    seeds = [int(seed) for seed in args.seeds.split(",") if seed.strip()]
    for path in args.files:
        for loaded in load(path):
            passed = report(loaded, run(loaded), None)
            if not passed:
                for seed in seeds:   # does it kill on other seeds too?
                    report(loaded, run(loaded, seed), seed)
                if args.first_kill:
                    return 0
    return 0


def report(loaded, result, seed) -> bool:
    # a failure whose check names the behaviour it guards says most; else the first
    first = next((f for f in result.failures if f.why), result.failures[0] if result.failures else None)
    failure = f"{first.check}: {first.message.splitlines()[0]}" if first else ""
    print(json.dumps({"scenario": loaded.id, "seed": seed, "passed": result.passed, "failure": failure}), flush=True)
    return result.passed


if __name__ == "__main__":
    sys.exit(main())
