"""The ``kubesim`` command line."""

from __future__ import annotations

import argparse
import sys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="kubesim", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    demo = commands.add_parser("demo", help="run a short simulated demo and print what happened")
    demo.add_argument("--seed", type=int, default=7, help="RNG seed (same seed, same run)")
    demo.add_argument("--pods", type=int, default=24, help="how many pods to launch")
    args = parser.parse_args(argv)
    if args.command == "demo":
        from .demo import run_demo
        if args.pods < 2:
            parser.error("--pods must be at least 2")
        run_demo(seed=args.seed, pods=args.pods)
    return 0


if __name__ == "__main__":
    sys.exit(main())
