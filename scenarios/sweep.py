"""What-if sweeps: a grid of scenario keys, each point run in parallel, results as rows.

Points run in worker processes on this machine (``workers``), or on a Dask cluster when given
its scheduler address (the ``dask`` extra). The file is read once, here: each point carries the
file's text (a remote worker cannot read a path on this machine), its parameters, and returns a
small row. A file with a ``matrix`` runs every variant at every point, with the variant's
expectations; a ``--set`` key the variant also sets wins, and the row says so.
"""

from __future__ import annotations

import itertools
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import Any, Callable, Iterator

import yaml

from .loader import LoadedScenario, load_variant, parse_yaml, read, variant_id


def parse_sets(sets: list[str]) -> dict[str, list[Any]]:
    """``--set executor.worker_pods_creation_batch_size=1,8,32`` into {key: [1, 8, 32]}."""
    grid: dict[str, list[Any]] = {}
    for item in sets:
        key, sep, values = item.partition("=")
        if not sep or not key or not values:
            raise ValueError(f"--set {item!r}: expected KEY=V1,V2,... (e.g. "
                             f"executor.worker_pods_creation_batch_size=1,8,32)")
        try:
            grid[key.strip()] = [yaml.safe_load(v) for v in values.split(",")]
        except yaml.YAMLError as exc:
            raise ValueError(f"--set {item!r}: a value is not valid YAML ({getattr(exc, 'problem', exc)})") from None
    return grid


def points(grid: dict[str, list[Any]]) -> list[dict[str, Any]]:
    keys = list(grid)
    return [dict(zip(keys, combo)) for combo in itertools.product(*(grid[k] for k in keys))]


def load_point(path: Path, text: str, params: dict[str, Any]) -> list[LoadedScenario]:
    """The scenario(s) of one grid point: the file with ``params`` applied, once per matrix
    variant of the file (the variant first, then the sweep's values over it)."""
    raw, lines = parse_yaml(path, text)
    label = "--set " + " ".join(f"{k}={v}" for k, v in params.items())
    swept = ",".join(f"{k.rsplit('.', 1)[-1]}={v}" for k, v in params.items())
    entries = raw.get("matrix") or [None]
    if not isinstance(entries, list):
        entries = [None]  # validation below names the bad matrix
    loaded = []
    for i, entry in enumerate(entries):
        if entry is None:
            scenario = load_variant(path, raw, lines, params, None, label)
        else:
            merged = {**entry, **params} if isinstance(entry, dict) else entry
            scenario = load_variant(path, raw, lines, merged, ("matrix", i), f"matrix[{i}] with {label}")
        variant = variant_id(entry) if isinstance(entry, dict) else ""
        scenario.variant = ",".join(part for part in (variant, swept) if part)
        loaded.append(scenario)
    return loaded


def overridden(entry: Any, params: dict[str, Any]) -> list[str]:
    """The swept keys a matrix entry also sets (the sweep's value is the one used)."""
    return [key for key in params if isinstance(entry, dict) and key in entry]


def run_point(path: str, text: str, params: dict[str, Any], seed: int | None) -> list[dict]:
    """One grid point, in a worker: a plain dict row (picklable, JSON-ready) per variant."""
    from .runner import run
    raw, _ = parse_yaml(Path(path), text)
    entries = raw.get("matrix") or [None]
    rows = []
    for number, (entry, loaded) in enumerate(zip(entries, load_point(Path(path), text, params)), 1):
        result = run(loaded, seed=seed)
        rows.append({"params": params, "variant": variant_id(entry) if isinstance(entry, dict) else "",
                     "variant_number": number if isinstance(entry, dict) else 0,
                     "overridden": overridden(entry, params), "passed": result.passed,
                     "metrics": result.metrics, "failures": [f"{f.check}: {f.message}" for f in result.failures],
                     "seed": result.seed})
    return rows


def check_points(path: Path, text: str, grid_points: list[dict]) -> None:
    """Validate every point up front: a bad value fails the sweep before any work starts."""
    for params in grid_points:
        load_point(path, text, params)


def sweep(path: Path, grid: dict[str, list[Any]], workers: int = 2, seed: int | None = None,
          dask_address: str | None = None, on_row: Callable[[dict], None] | None = None,
          dask_timeout: float = 10.0) -> list[dict]:
    if workers < 1:
        raise ValueError(f"--workers must be at least 1, not {workers}")
    text = read(path)
    grid_points = points(grid)
    check_points(path, text, grid_points)
    if dask_address:
        rows = _run_dask(path, text, grid_points, seed, dask_address, dask_timeout, on_row)
    else:
        rows = _run_local(path, text, grid_points, seed, workers, on_row)
    order = {repr(p): i for i, p in enumerate(grid_points)}
    return sorted(rows, key=lambda r: order[repr(r["params"])])  # stable: variants keep their order


def _run_local(path, text, grid_points, seed, workers, on_row) -> list[dict]:
    rows = []
    if workers <= 1:
        for params in grid_points:
            rows += _arrived(run_point(str(path), text, params, seed), on_row)
        return rows
    with ProcessPoolExecutor(max_workers=workers) as pool:
        futures = {pool.submit(run_point, str(path), text, params, seed): i for i, params in enumerate(grid_points)}
        finished = {}
        for future in as_completed(futures):
            finished[futures[future]] = _arrived(future.result(), on_row)
    return [row for i in sorted(finished) for row in finished[i]]


def _arrived(rows: list[dict], on_row) -> list[dict]:
    if on_row:
        for row in rows:
            on_row(row)
    return rows


class DaskUnavailable(RuntimeError):
    """The Dask scheduler cannot be reached, or the extra is not installed."""


def _run_dask(path, text, grid_points, seed, address, timeout, on_row) -> list[dict]:
    try:
        from distributed import Client, as_completed as dask_completed
    except ImportError:
        raise DaskUnavailable("--dask needs the dask extra: pip install -e '.[dask]'") from None
    try:
        client = Client(address, timeout=timeout)
    except (OSError, TimeoutError) as exc:
        raise DaskUnavailable(f"cannot reach the Dask scheduler at {address} within {timeout:g} s "
                              f"({type(exc).__name__}: {exc}); check the address and that "
                              "`dask scheduler` (and some `dask worker`s) run there") from None
    with client:
        futures = client.map(run_point, [str(path)] * len(grid_points), [text] * len(grid_points),
                             grid_points, [seed] * len(grid_points), pure=False)
        rows = []
        for future in dask_completed(futures):
            rows += _arrived(future.result(), on_row)
        return rows


def iter_table(rows: list[dict], keys: list[str], metrics: list[str]) -> Iterator[list[str]]:
    variants = any(row.get("variant") for row in rows)
    for row in rows:
        mark = "*" if row.get("overridden") else ""
        yield ([f"{row.get('variant_number', '')}{mark}"] * variants + [str(row["params"][k]) for k in keys]
               + [f"{row['metrics'][m]:.4g}" for m in metrics] + ["pass" if row["passed"] else "FAIL"])
