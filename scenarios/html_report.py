"""``kubesim run FILE --report out.html``: the run report as one self-contained HTML file.

The same sections as the terminal report, plus the plots (embedded as PNG data, so the file
can be mailed or attached to a CI run): pods by phase and queue depth over time with faults
marked and windows shaded, result latency and pod start latency distributions, API calls over
time by status. Reads the runner's Result generically, as the terminal report does.
"""

from __future__ import annotations

import base64
from html import escape
from pathlib import Path

from . import plots
from .glossary import meaning_of
from .runner import under_test
from .samples import calls_by_verb

STYLE = """
body { font: 14px/1.45 system-ui, sans-serif; margin: 2em auto; max-width: 72em; color: #222; }
h1 { font-size: 1.5em; margin-bottom: .2em; } h2 { font-size: 1.15em; margin-top: 1.6em; }
.passed { color: #1a7f37; } .failed { color: #cf222e; } .unjudged { color: #9a6700; }
table { border-collapse: collapse; margin: .4em 0; } td, th { border: 1px solid #ddd; padding: .25em .6em;
  vertical-align: top; text-align: left; } th { background: #f6f8fa; } td.num { text-align: right; }
.why { color: #666; font-size: .9em; } pre { background: #f6f8fa; padding: .6em; overflow-x: auto; }
img { max-width: 100%; border: 1px solid #eee; }
"""


def write_html_report(result, out: Path, outputs: list[tuple[str, str]], log_path: str | None) -> Path:
    out = Path(out)
    out.write_text(render(result, outputs, log_path), encoding="utf-8")
    return out


def render(result, outputs: list[tuple[str, str]], log_path: str | None) -> str:
    verdict = "PASSED" if result.passed else "FAILED"
    parts = ["<!doctype html><html lang=en><meta charset=utf-8>",
             f"<title>kubesim: {escape(result.scenario_id)} {verdict}</title><style>{STYLE}</style><body>",
             f"<h1 id=verdict>{escape(result.scenario_id)} (seed {result.seed}{escape(under_test(result))}): "
             f"<span class={verdict.lower()}>{verdict}</span></h1>",
             f"<p id=description>{escape(result.description)}</p>" if result.description else "",
             section("Faults as they happened", fault_rows(result), ["when", "fault", "what the executor did"], "faults"),
             figure("pods by phase and queue depth", plots.run_figure(result), "timeline"),
             section("Expectations (the scenario file)", check_rows(result.expectations),
                     ["", "check", "bound", "actual"], "expectations"),
             section("Invariants (every run)", check_rows(result.invariants), ["", "check", "bound", "actual"],
                     "invariants"),
             section("Metrics", metric_rows(result), ["metric", "value", "unit", "meaning"], "metrics"),
             figure("result latency, pod start latency and queue wait", plots.latency_figure(result), "latency"),
             section("API calls by verb and status", api_rows(result), ["verb", "calls", "by status"], "api"),
             figure("API calls over time by status", plots.api_figure(result), "api-over-time"),
             crash_section(result),
             "<h2>Run</h2><ul id=run>", *[f"<li>{escape(line)}</li>" for line in run_lines(result, outputs, log_path)],
             "</ul></body></html>\n"]
    return "\n".join(part for part in parts if part)


def section(title: str, rows: list[list[str]], header: list[str], anchor: str) -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(rows_cells(row)) + "</tr>" for row in rows)
    return f"<h2>{escape(title)}</h2><table id={anchor}><tr>{head}</tr>{body}</table>"


def rows_cells(row: list[str]) -> list[str]:
    return [cell if cell.startswith("<td") else f"<td>{cell}</td>" for cell in row]


def fault_rows(result) -> list[list[str]]:
    if not result.faults:
        return [["-", "no faults in this scenario", ""]]
    rows = []
    for event in result.faults:
        fault = escape(event.label) + (f"<div class=why>{escape(event.detail)}</div>" if event.detail else "")
        rows.append([escape(event.when()), fault, "<br>".join(escape(r) for r in event.reactions)])
    return rows


def check_rows(checks: list) -> list[list[str]]:
    rows = []
    for check in checks:
        kind, mark = (("unjudged", "–") if check.passed is None else ("passed", "✓") if check.passed
                      else ("failed", "✗"))
        why = f"<div class=why>{escape(check.why)}</div>" if check.why else ""
        rows.append([f"<td class={kind}>{mark}</td>", escape(check.name) + why, escape(check.bound),
                     escape(check.actual)])
    return rows


def metric_rows(result) -> list[list[str]]:
    return [[escape(name), f"<td class=num>{value:,.4g}</td>" if isinstance(value, float) else f"<td class=num>{value:,}</td>",
             escape(meaning_of(name).unit), f"<span class=why>{escape(meaning_of(name).meaning)}</span>"]
            for name, value in result.metrics.items()]


def api_rows(result) -> list[list[str]]:
    return [[escape(verb), f"<td class=num>{sum(s.values()):,}</td>",
             escape(", ".join(f"{status} x{n:,}" for status, n in sorted(s.items())))]
            for verb, s in sorted(calls_by_verb(result.api_calls).items())]


def figure(title: str, fig, anchor: str) -> str:
    data = base64.b64encode(plots.png_bytes(fig)).decode()
    return f'<h2>{escape(title)}</h2><img id={anchor} alt="{escape(title)}" src="data:image/png;base64,{data}">'


def crash_section(result) -> str:
    if not result.crash:
        return ""
    return f"<h2>The crashed process</h2><pre id=crash>{escape(result.crash)}</pre>"


def run_lines(result, outputs: list[tuple[str, str]], log_path: str | None) -> list[str]:
    speed = result.virtual_seconds / result.wall_seconds if result.wall_seconds else 0
    counts = result.log_counts
    lines = [f"time: {result.virtual_seconds:,.1f} virtual seconds in {result.wall_seconds:,.2f} wall seconds "
             f"({speed:,.0f}x)",
             f"logs: {counts.get('ERROR', 0):,} errors, {counts.get('WARNING', 0):,} warnings, "
             f"{counts.get('INFO', 0):,} info lines" + (f" in {log_path}" if log_path else "")]
    lines += [f"{what}: {path}" for what, path in outputs]
    lines.append(f"replay: {result.replay}")
    return lines
