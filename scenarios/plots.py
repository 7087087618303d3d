"""Plots of a run (pods by phase and queue depth over virtual time, faults marked) and of a
sweep (a metric over the grid). PNG through matplotlib; HTML embeds the same PNG."""

from __future__ import annotations

import base64
import io
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only: no display on CI machines
import matplotlib.pyplot as plt  # noqa: E402

PHASE_COLOURS = {"Pending": "tab:orange", "Running": "tab:blue", "Succeeded": "tab:green",
                 "Failed": "tab:red", "Unknown": "tab:gray"}


def plot_run(result, out: Path) -> Path:
    fig, (pods_ax, queue_ax) = plt.subplots(2, 1, figsize=(10, 6), sharex=True,
                                            gridspec_kw={"height_ratios": [3, 1]})
    times = [t for t, _ in result.phases]
    for phase, colour in PHASE_COLOURS.items():
        counts = [c.get(phase, 0) for _, c in result.phases]
        if any(counts):
            pods_ax.step(times, counts, where="post", label=phase, color=colour)
    pods_ax.set_ylabel("pods")
    pods_ax.legend(loc="upper right")
    pods_ax.set_title(f"{result.scenario_id} (seed {result.seed})")
    queue_times = [t for t, _ in result.queue_depth]
    queue_ax.step(queue_times, [d for _, d in result.queue_depth], where="post", color="tab:purple")
    queue_ax.set_ylabel("queued tries")
    queue_ax.set_xlabel("virtual time (s)")
    for when, action in result.faults:
        for ax in (pods_ax, queue_ax):
            ax.axvline(when, color="black", linestyle=":", linewidth=0.8)
        pods_ax.annotate(action, (when, 1), xycoords=("data", "axes fraction"), rotation=90,
                         va="top", ha="right", fontsize=7)
    return save(fig, out)


def plot_sweep(rows: list[dict], keys: list[str], metric: str, out: Path) -> Path:
    fig, ax = plt.subplots(figsize=(8, 5))
    if len(keys) == 1:
        xs = [str(r["params"][keys[0]]) for r in rows]
        ax.plot(xs, [r["metrics"][metric] for r in rows], marker="o")
        ax.set_xlabel(keys[0])
        ax.set_ylabel(metric)
    else:
        first = sorted({r["params"][keys[0]] for r in rows}, key=natural)
        second = sorted({r["params"][keys[1]] for r in rows}, key=natural)
        grid = [[next((r["metrics"][metric] for r in rows if r["params"][keys[0]] == a
                       and r["params"][keys[1]] == b), float("nan")) for a in first] for b in second]
        image = ax.imshow(grid, origin="lower", aspect="auto", cmap="viridis")
        ax.set_xticks(range(len(first)), [str(v) for v in first])
        ax.set_yticks(range(len(second)), [str(v) for v in second])
        ax.set_xlabel(keys[0])
        ax.set_ylabel(keys[1])
        fig.colorbar(image, label=metric)
    ax.set_title(f"{metric} over the sweep")
    return save(fig, out)


def natural(value) -> tuple:
    """Numbers in numeric order, before anything else in text order."""
    return (0, value, "") if isinstance(value, (int, float)) else (1, 0, str(value))


def save(fig, out: Path) -> Path:
    out = Path(out)
    if out.suffix.lower() == ".html":
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
        data = base64.b64encode(buffer.getvalue()).decode()
        out.write_text(f'<!doctype html><meta charset="utf-8"><title>kubesim</title>'
                       f'<img alt="kubesim plot" src="data:image/png;base64,{data}">\n')
    elif out.suffix.lower() in (".png", ".svg", ".pdf"):
        fig.savefig(out, dpi=110, bbox_inches="tight")
    else:
        plt.close(fig)
        raise ValueError(f"cannot write a plot to {out}: use a .png, .svg, .pdf or .html file name")
    plt.close(fig)
    return out
