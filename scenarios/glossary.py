"""What every metric means and in what unit: ``kubesim metrics``, the run report, and
docs/metrics.md (generated from here; a test keeps it in step)."""

from __future__ import annotations

from dataclasses import dataclass

from .schema import METRICS


@dataclass(frozen=True)
class Meaning:
    unit: str
    short: str      # a few words, for the run report's table
    meaning: str    # the full sentence, for `kubesim metrics` and docs/metrics.md


GLOSSARY: dict[str, Meaning] = {
    "makespan": Meaning("s", "start to last task end", "virtual time from the start to the last task ending"),
    "throughput": Meaning("tasks/s", "tasks ended per second",
        "tasks ended (success or failed) per virtual second of makespan"),
    "tasks_succeeded": Meaning("tasks", "tasks ending success", "tasks whose final state is success"),
    "tasks_failed": Meaning("tasks", "tasks ending failed",
        "tasks whose final state is failed (after their retries)"),
    "queue_wait_p50": Meaning("s", "queued to running, median",
        "median time a try waits from QUEUED to RUNNING"),
    "queue_wait_p95": Meaning("s", "queued to running, p95", "95th percentile of the QUEUED to RUNNING wait"),
    "queue_wait_p99": Meaning("s", "queued to running, p99", "99th percentile of the QUEUED to RUNNING wait"),
    "pod_start_p50": Meaning("s", "pod created to Running, median",
        "median time from a pod's creation to Running (scheduling, image pull)"),
    "pod_start_p95": Meaning("s", "pod created to Running, p95",
        "95th percentile of pod creation to Running"),
    "pod_start_p99": Meaning("s", "pod created to Running, p99",
        "99th percentile of pod creation to Running"),
    "result_latency_p50": Meaning("s", "pod ended to reported, median",
        "median time from a try's pod ending (Succeeded or Failed) to its executor reporting the result"),
    "result_latency_p99": Meaning("s", "pod ended to reported, p99",
        "99th percentile of a pod's end to its executor reporting it (a stalled watch shows here)"),
    "watch_restarts": Meaning("watches", "extra watch requests",
        "watch requests beyond each scheduler's first per namespace"),
    "watch_410s": Meaning("events", "410s met and recovered",
        "410 Gone (resourceVersion too old) the watchers met and recovered from"),
    "watch_resumes_from_0": Meaning("watches", "watches started from rv 0",
        "watches started at resourceVersion 0, which replay every pod as ADDED (upstream's restart)"),
    "watcher_deaths": Meaning("watchers", "watchers the health check restarted",
        "watchers that died (an error they could not handle) and were restarted by the health check"),
    "replayed_events": Meaning("events", "duplicate terminal events seen",
        "terminal pod events the executor saw again for a try it had "
                                         "already reported (de-duplicated, never reported twice)"),
    "retries": Meaning("tries", "tries beyond the first", "tries beyond each task's first"),
    "pods_created": Meaning("pods", "creates accepted (201)", "pod creates the API server accepted (201)"),
    "api_calls": Meaning("calls", "requests to the API server",
        "every request that reached the API server's front door"),
    "api_errors": Meaning("calls", "answered >= 400 or failed",
        "requests answered with a status of 400 or more, refused or timed out"),
    "scheduler_restarts": Meaning("schedulers", "schedulers after the first",
        "scheduler jobs started after the first"),
    "adopted_pods": Meaning("pods", "pods taken over from the dead",
        "running pods a scheduler took over from a dead one"),
    "shutdown_seconds": Meaning("s", "longest clean shutdown",
        "the longest clean scheduler shutdown: stopping watchers, collecting results, last clean-ups"),
}


def meaning_of(metric: str) -> Meaning:
    """A metric's entry; a metric added without one still shows (as unexplained)."""
    return GLOSSARY.get(metric, Meaning("", "(not in the glossary)",
                                        "(no glossary entry yet: add one to scenarios/glossary.py)"))


def glossary_markdown() -> str:
    """docs/metrics.md: the glossary as a Markdown table."""
    lines = ["# Metrics", "",
             "Every `kubesim run` reports these (`kubesim metrics` prints this table). Any of them can be",
             "bounded in a scenario's `expect.metrics` (`{min: ..., max: ...}`, or a number for an exact",
             "value) and compared across a sweep (`kubesim sweep --metric NAME`). Times are virtual seconds.",
             "", "| metric | unit | meaning |", "|---|---|---|"]
    lines += [f"| `{name}` | {meaning_of(name).unit} | {meaning_of(name).meaning} |" for name in METRICS]
    lines += ["", "With upstream Airflow's executor (`--executor airflow`), which keeps no such counts, the",
              "executor's own are observed from outside: `watcher_deaths` are watcher processes that ended",
              "with an error, `watch_410s` the 410s that ended one, `replayed_events` the terminal events of",
              "a pod already reported (each a new event, not a result put back after an error), and",
              "`adopted_pods` the task instances its `try_adopt_task_instances` kept. The rest is measured",
              "on the cluster and the task store, as for kubesim's executor."]
    return "\n".join(lines) + "\n"
