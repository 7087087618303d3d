"""The watch cache's cold changes (kept as compressed frames, fakecluster/api/cold.py) read back
exactly as they were written: objects, previous states, event bytes, past lists, and whole
worlds whose watches resume from history give the same run with every change frozen at once."""

from __future__ import annotations

import json
import logging

import pytest

import fakecluster.api.store as store_module
from fakecluster.api.store import ADDED, DELETED, MODIFIED, ResourceStore, Revision
from helpers import pod_manifest
from scenarios.loader import load
from scenarios.runner import run

CATALOGUE = "scenarios/catalogue"


def pod(name: str, phase: str, labels: dict | None = None) -> dict:
    manifest = pod_manifest(name, labels=labels or {"app": "web"})
    manifest["metadata"]["namespace"] = "default"
    return {**manifest, "status": {"phase": phase, "message": "line\nbreak \u00e9"}}


@pytest.fixture
def all_cold(monkeypatch):
    monkeypatch.setattr(store_module, "HOT_CHANGES", 0)


def written_store() -> tuple[ResourceStore, list]:
    store = ResourceStore("pods", "Pod", True, Revision())
    first = store.create(pod("a", "Pending"))
    second = store.replace(pod("a", "Running") | {"metadata": first["metadata"]})
    store.create(pod("b", "Pending", {"app": "other"}))
    store.remove("default", "a")
    seen = [(c.rv, c.type, c.obj, c.prev, c.chunk()) for c in store.history]
    return store, [seen, first, second]


def test_a_cold_change_reads_back_its_object_previous_state_and_event_bytes(monkeypatch):
    _, (hot, *_) = written_store()
    monkeypatch.setattr(store_module, "HOT_CHANGES", 0)
    store, (cold, *_) = written_store()
    assert all(change._frame is not None and change._obj is None for change in store.history)
    assert cold == hot
    assert [entry[1] for entry in cold] == [ADDED, MODIFIED, ADDED, DELETED]
    assert json.loads(cold[1][4].split(b"\r\n")[1])["object"]["status"]["message"] == "line\nbreak \u00e9"


def test_a_past_list_from_cold_changes_is_the_state_at_that_revision(all_cold):
    store, (_, first, second) = written_store()   # revisions 1 to 4: create, modify, create, delete
    assert store.state_at(1)[("default", "a")] == first
    assert store.state_at(2)[("default", "a")] == second
    assert ("default", "a") not in store.state_at(4)


@pytest.mark.parametrize("scenario", ["watch_410_storm", "idle_read_timeouts", "watcher_dies", "scheduler_restart",
                                      "two_schedulers"])
def test_a_world_runs_the_same_with_every_change_frozen_at_once(scenario, monkeypatch):
    logging.disable(logging.CRITICAL)
    loaded = load(f"{CATALOGUE}/{scenario}.yaml")[0]
    hot = run(loaded)
    monkeypatch.setattr(store_module, "HOT_CHANGES", 0)
    cold = run(loaded)
    logging.disable(logging.NOTSET)
    assert hot.passed and cold.passed
    assert (cold.metrics, cold.api_calls, list(cold.phases)) == (hot.metrics, hot.api_calls, list(hot.phases))


def test_a_change_out_of_the_window_holds_no_link_back(all_cold):
    """Each change links to the one that wrote its previous state; the links stop at the window's
    edge, or an object changed all run long would keep every change it ever had."""
    store = ResourceStore("pods", "Pod", True, Revision(), history_size=5)
    current = store.create(pod("a", "Pending"))
    for i in range(50):
        current = store.replace({**current, "status": {"phase": "Running", "message": str(i)}})
    oldest = store.history[0]
    assert oldest.prev["status"]["message"] == "44" and oldest._before._before is None
    assert [c.obj["status"]["message"] for c in store.history] == [str(i) for i in range(45, 50)]
