"""Plots of a run (pods by phase and queue depth over virtual time with faults marked and
shaded; latency distributions; API calls over time) and of a sweep (a metric over the grid).
PNG through matplotlib; HTML embeds the same PNG."""

from __future__ import annotations

import base64
import io
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only: no display on CI machines
import matplotlib.pyplot as plt  # noqa: E402

from .runner import under_test  # noqa: E402

WINDOW_COLOURS = ("tab:red", "tab:gray", "tab:olive", "tab:cyan", "tab:pink")
WINDOW_ALPHA = 0.12
STATUS_COLOURS = {"200": "#2ca02c", "201": "#98df8a"}  # successes green; the rest by matplotlib's cycle
PHASE_COLOURS = {"Pending": "tab:orange", "Running": "tab:blue", "Succeeded": "tab:green",
                 "Failed": "tab:red", "Unknown": "tab:gray"}


def plot_run(result, out: Path) -> Path:
    return save(run_figure(result), out)


def run_figure(result):
    """Pods by phase and queue depth over virtual time; every fault strike marked, every fault
    window (outage, error rule, lost node) shaded."""
    fig, (pods_ax, queue_ax) = plt.subplots(2, 1, figsize=(10, 6), sharex=True,
                                            gridspec_kw={"height_ratios": [3, 1]})
    times = [t for t, _ in result.phases]
    for phase, colour in PHASE_COLOURS.items():
        counts = [c.get(phase, 0) for _, c in result.phases]
        if any(counts):
            pods_ax.step(times, counts, where="post", label=phase, color=colour)
    pods_ax.set_ylabel("pods")
    pods_ax.set_title(f"{result.scenario_id} (seed {result.seed}{under_test(result)})")
    queue_times = [t for t, _ in result.queue_depth]
    queue_ax.step(queue_times, [d for _, d in result.queue_depth], where="post", color="tab:purple")
    queue_ax.set_ylabel("queued tries")
    queue_ax.set_xlabel("virtual time (s)")
    queue_ax.set_ylim(bottom=0)
    mark_faults(result, (pods_ax, queue_ax), pods_ax)
    pods_ax.legend(loc="upper right", fontsize=8)
    return fig


def mark_faults(result, axes, labelled) -> None:
    end = result.virtual_seconds
    shades: dict[str, str] = {}   # one colour per kind of window, labelled once
    for event in result.faults:
        if event.window:
            stop = min(event.end, end)
            label = event.label if event.label not in shades else None
            colour = shades.setdefault(event.label, WINDOW_COLOURS[len(shades) % len(WINDOW_COLOURS)])
            for ax in axes:
                ax.axvspan(event.start, stop, color=colour, alpha=WINDOW_ALPHA, label=label if ax is labelled else None)
        else:
            for ax in axes:
                ax.axvline(event.start, color="black", linestyle=":", linewidth=0.8)
    instants: dict[str, list[float]] = {}
    for event in result.faults:
        if not event.window:
            instants.setdefault(event.label, []).append(event.start)
    for label, starts in instants.items():  # one caption per kind, at its first strike
        caption = label if len(starts) == 1 else f"{label} x{len(starts)}"
        labelled.annotate(caption, (starts[0], 1), xycoords=("data", "axes fraction"), rotation=90,
                          va="top", ha="right", fontsize=7)


def latency_figure(result):
    """Distributions: result latency (pod ended -> executor reported), pod start, queue wait."""
    panels = [("result_latency", "result latency (s)", "pod ended -> executor reported it"),
              ("pod_start", "pod start latency (s)", "pod created -> Running"),
              ("queue_wait", "queue wait (s)", "try queued -> running")]
    fig, axes = plt.subplots(1, len(panels), figsize=(12, 3.4))
    for ax, (key, xlabel, title) in zip(axes, panels):
        values = result.samples.get(key) or []
        if values:
            ax.hist(values, bins=min(40, max(5, len(set(values)))), color="tab:blue", alpha=0.8)
            for q, style in ((50, "-"), (95, "--"), (99, ":")):
                ax.axvline(quantile(values, q), color="black", linestyle=style, linewidth=0.9, label=f"p{q}")
            ax.legend(fontsize=7)
        else:
            ax.text(0.5, 0.5, "no samples", ha="center", va="center", transform=ax.transAxes)
        ax.set_xlabel(xlabel)
        ax.set_ylabel("count")
        ax.set_title(f"{title} ({len(values)})", fontsize=9)
    fig.tight_layout()
    return fig


def api_figure(result):
    """API calls over virtual time, stacked by status, with the faults marked."""
    fig, ax = plt.subplots(figsize=(10, 3.4))
    series = result.api_over_time.get("series") or {}
    width = result.api_over_time.get("bin_seconds") or 1.0
    bins = len(next(iter(series.values()))) if series else 0
    starts = [i * width for i in range(bins)]
    bottom = [0] * bins
    for status, counts in series.items():
        colour = STATUS_COLOURS.get(status)
        ax.bar(starts, counts, width=width, bottom=bottom, align="edge", label=status, color=colour,
               edgecolor="none")
        bottom = [b + c for b, c in zip(bottom, counts)]
    ax.set_xlabel("virtual time (s)")
    ax.set_ylabel(f"calls per {width:.3g}s")
    ax.set_title("API calls over time by status")
    mark_faults(result, (ax,), ax)
    if series:
        ax.legend(fontsize=7, ncol=min(6, len(series) + 1), loc="upper right")
    return fig


def quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))]


def png_bytes(fig) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100, bbox_inches="tight")
    plt.close(fig)
    return buffer.getvalue()


def plot_sweep(rows: list[dict], keys: list[str], metric: str, out: Path) -> Path:
    """A line per matrix variant for one key; a heatmap per variant for two."""
    variants = list(dict.fromkeys(row.get("variant", "") for row in rows))
    if len(keys) == 1:
        fig, ax = plt.subplots(figsize=(8, 5))
        for variant in variants:
            mine = [r for r in rows if r.get("variant", "") == variant]
            ax.plot([str(r["params"][keys[0]]) for r in mine], [r["metrics"][metric] for r in mine], marker="o",
                    label=variant or None)
        ax.set_xlabel(keys[0])
        ax.set_ylabel(metric)
        if any(variants):
            ax.legend(fontsize=8)
        ax.set_title(f"{metric} over the sweep")
        return save(fig, out)
    fig, axes = plt.subplots(1, len(variants), figsize=(6 * len(variants), 5), squeeze=False)
    for ax, variant in zip(axes[0], variants):
        heatmap(fig, ax, [r for r in rows if r.get("variant", "") == variant], keys, metric)
        ax.set_title(f"{metric}" + (f" ({variant})" if variant else " over the sweep"), fontsize=9)
    fig.tight_layout()
    return save(fig, out)


def heatmap(fig, ax, rows: list[dict], keys: list[str], metric: str) -> None:
    first = sorted({r["params"][keys[0]] for r in rows}, key=natural)
    second = sorted({r["params"][keys[1]] for r in rows}, key=natural)
    grid = [[next((r["metrics"][metric] for r in rows if r["params"][keys[0]] == a
                   and r["params"][keys[1]] == b), float("nan")) for a in first] for b in second]
    image = ax.imshow(grid, origin="lower", aspect="auto", cmap="viridis")
    ax.set_xticks(range(len(first)), [str(v) for v in first])
    ax.set_yticks(range(len(second)), [str(v) for v in second])
    ax.set_xlabel(keys[0])
    ax.set_ylabel(keys[1])
    fig.colorbar(image, ax=ax, label=metric)


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
