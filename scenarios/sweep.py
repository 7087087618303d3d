"""What-if sweeps: a grid of scenario keys, each point run in parallel, results as rows.

Points run in worker processes on this machine (``workers``), or on a Dask cluster when given
its scheduler address (the ``dask`` extra). Each point re-reads the scenario file in its worker,
so only small parameter dicts and results cross process boundaries.
"""

from __future__ import annotations

import itertools
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import Any, Callable, Iterator

import yaml

from .loader import LoadedScenario, ScenarioError, load_variant, parse_yaml, read


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


def load_point(path: Path, params: dict[str, Any]) -> LoadedScenario:
    raw, lines = parse_yaml(path, read(path))
    label = "--set " + " ".join(f"{k}={v}" for k, v in params.items())
    loaded = load_variant(path, raw, lines, params, None, label)
    loaded.variant = ",".join(f"{k.rsplit('.', 1)[-1]}={v}" for k, v in params.items())
    return loaded


def run_point(path: str, params: dict[str, Any], seed: int | None) -> dict:
    """One grid point, in a worker: a plain dict row (picklable, JSON-ready)."""
    from .runner import run
    result = run(load_point(Path(path), params), seed=seed)
    return {"params": params, "passed": result.passed, "metrics": result.metrics,
            "failures": [f"{f.check}: {f.message}" for f in result.failures], "seed": result.seed}


def check_points(path: Path, grid_points: list[dict]) -> None:
    """Validate every point up front: a bad value fails the sweep before any work starts."""
    for params in grid_points:
        load_point(path, params)


def sweep(path: Path, grid: dict[str, list[Any]], workers: int = 2, seed: int | None = None,
          dask_address: str | None = None, on_row: Callable[[dict], None] | None = None) -> list[dict]:
    grid_points = points(grid)
    check_points(path, grid_points)
    rows = _run_dask(path, grid_points, seed, dask_address) if dask_address else \
        _run_local(path, grid_points, seed, workers, on_row)
    order = {repr(p): i for i, p in enumerate(grid_points)}
    return sorted(rows, key=lambda r: order[repr(r["params"])])


def _run_local(path, grid_points, seed, workers, on_row) -> list[dict]:
    rows = []
    if workers <= 1:
        for params in grid_points:
            rows.append(run_point(str(path), params, seed))
            if on_row:
                on_row(rows[-1])
        return rows
    with ProcessPoolExecutor(max_workers=workers) as pool:
        futures = [pool.submit(run_point, str(path), params, seed) for params in grid_points]
        for future in as_completed(futures):
            rows.append(future.result())
            if on_row:
                on_row(rows[-1])
    return rows


def _run_dask(path, grid_points, seed, address) -> list[dict]:
    try:
        from distributed import Client
    except ImportError:
        raise ScenarioError(path, [(None, "", "--dask needs the dask extra: pip install 'kubesim[dask]'")]) from None
    with Client(address) as client:
        futures = client.map(run_point, [str(path)] * len(grid_points), grid_points,
                             [seed] * len(grid_points), pure=False)
        return client.gather(futures)


def iter_table(rows: list[dict], keys: list[str], metrics: list[str]) -> Iterator[list[str]]:
    for row in rows:
        yield ([str(row["params"][k]) for k in keys] + [f"{row['metrics'][m]:g}" for m in metrics]
               + ["pass" if row["passed"] else "FAIL"])
