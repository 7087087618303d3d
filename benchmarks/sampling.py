"""How the benchmarks measure time: a stopwatch, a sampling profiler that sees through greenlet
switches, and the map from code to layer (client, executor, the fake's parts) they share.

cProfile cannot follow greenlet switches (its stack gets garbled); a SIGALRM timer that records
the running stack can, because the handler sees the frame of whichever greenlet is running.
"""

from __future__ import annotations

import gc
import os
import signal
import time
from collections import Counter
from dataclasses import dataclass
from typing import Callable


class Sampler:
    """Samples the running stack every ``interval`` wall seconds (SIGALRM; ITIMER_PROF ticks
    only every few milliseconds).

    The handler sees the frame of whichever greenlet is running, so time lands on the right
    code even across switches; time in C (json, greenlet.switch, pydantic-core) lands on the
    Python function that called it. A garbage collection can last far longer than the interval,
    and the timer ticks it spans collapse into one signal delivered right after it, in whatever
    code allocated; so ``gc.callbacks`` counts the ticks each collection swallowed as samples
    of their own and the collapsed signal is dropped.
    """

    def __init__(self, interval: float = 0.0005):
        self.interval = interval
        self.stacks: Counter = Counter()
        self.gc_samples = 0
        self._skip_next = False

    def _tick(self, moment: float) -> int:
        return int((moment - self._started) / self.interval)

    def _on_gc(self, phase: str, info: dict) -> None:
        now = time.perf_counter()
        if phase == "start":
            self._gc_started = now
            return
        swallowed = self._tick(now) - self._tick(self._gc_started)
        if swallowed:
            self.gc_samples += swallowed
            self._skip_next = True

    def _sample(self, signum, frame) -> None:
        if self._skip_next:   # the ticks of a collection, already counted
            self._skip_next = False
            return
        stack = []
        while frame is not None:
            stack.append(frame.f_code)
            frame = frame.f_back
        self.stacks[tuple(stack)] += 1

    def start(self) -> None:
        gc.callbacks.append(self._on_gc)
        self._previous = signal.signal(signal.SIGALRM, self._sample)
        self._started = time.perf_counter()
        signal.setitimer(signal.ITIMER_REAL, self.interval, self.interval)

    def stop(self) -> None:
        signal.setitimer(signal.ITIMER_REAL, 0, 0)
        signal.signal(signal.SIGALRM, self._previous)
        gc.callbacks.remove(self._on_gc)


class Stopwatch:
    """Wall, CPU and garbage-collection seconds of a block. CPU time is the steadier figure on a
    shared machine; collection time shows what a large live heap costs every allocation."""

    wall = cpu = gc = 0.0

    def __init__(self, sampler: Sampler | None = None):
        self._sampler = sampler   # profiles exactly the timed block, when given

    def __enter__(self):
        gc.collect()   # start every run from a clean heap
        gc.callbacks.append(self._on_gc)
        if self._sampler is not None:
            self._sampler.start()
        self._wall, self._cpu = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc):
        self.wall = time.perf_counter() - self._wall
        self.cpu = time.process_time() - self._cpu
        if self._sampler is not None:
            self._sampler.stop()
        gc.callbacks.remove(self._on_gc)

    def _on_gc(self, phase: str, info: dict) -> None:
        if phase == "start":
            self._gc_started = time.perf_counter()
        else:
            self.gc += time.perf_counter() - self._gc_started


# -- which layer a piece of code belongs to ----------------------------------------------------

FAKE_MODULES = {
    "fake: API server/store/watch": ("server", "store", "watch", "selectors", "strategies",
                                     "validation", "status", "patch", "query", "decoding", "wire"),
    "fake: cluster model": ("cluster", "scheduler", "kubelet", "nodes", "behaviour", "faults"),
    "fake: transport": ("transport", "stream", "gateway"),
    "fake: simulation kernel": ("engine", "runtime", "realtime"),
}
FAKE_FILES = {f"{module}.py": layer for layer, modules in FAKE_MODULES.items() for module in modules}
FAKE_LAYERS = tuple(FAKE_MODULES)
CLIENT_PARTS = ("/kubernetes/", "/urllib3/", "/pydantic", "/dateutil/")


def fake_layer(path: str) -> str | None:
    """The fake's layer of a source file (fakecluster, simpy, greenlet), or None."""
    if "/fakecluster/" in path:
        return FAKE_FILES.get(os.path.basename(path), "fake: API server/store/watch")
    if "/simpy/" in path or "/greenlet/" in path:
        return "fake: simulation kernel"
    return None


def is_client(path: str) -> bool:
    """The kubernetes client and what it runs on. urllib3 counts as client even where the fake's
    transport calls it (its Retry bookkeeping): a real pool does that work too."""
    return any(part in path for part in CLIENT_PARTS) or path.endswith("http/client.py")


def executor_layer(path: str) -> str | None:
    """'host' for Airflow's part (executor/host.py, executor/scheduler_job.py, scenarios/world.py),
    'executor' for the rest of executor/, else None."""
    if path.endswith(("executor/host.py", "executor/scheduler_job.py", "scenarios/world.py")):
        return "host"
    if "/executor/" in path:
        return "executor"
    return None


# -- summaries -----------------------------------------------------------------------------------

def layer_shares(sampler: Sampler, layer_of: Callable) -> dict[str, float]:
    """Share of samples per layer; a frame with no layer (the stdlib) is charged to its nearest
    caller that has one, so json.dumps counts for whoever asked for it."""
    total = sum(sampler.stacks.values()) + sampler.gc_samples or 1
    layers = Counter({"garbage collection": sampler.gc_samples})
    for stack, hits in sampler.stacks.items():
        layers[next((layer for code in stack if (layer := layer_of(code))), "other")] += hits
    return {layer: hits / total for layer, hits in layers.most_common()}


@dataclass
class Profile:
    layers: dict[str, float]          # layer -> share of samples
    self_time: dict[str, float]       # function -> share (innermost frame with a layer)
    cumulative: dict[str, float]      # function -> share (anywhere on the stack)
    layer_of_function: dict[str, str]  # function -> its layer


def summarise(sampler: Sampler, layer_of: Callable) -> Profile:
    """Layers as ``layer_shares`` charges them, plus self and cumulative time per function.

    Self time is the innermost function that has a layer, C calls and stdlib frames it makes
    included; cumulative time counts a sample once for every function anywhere on its stack."""
    total = sum(sampler.stacks.values()) + sampler.gc_samples or 1
    layers, own, cumulative = Counter({"garbage collection": sampler.gc_samples}), Counter(), Counter()
    layer_of_function: dict[str, str] = {}
    for stack, hits in sampler.stacks.items():
        classified = [(code, layer) for code in stack if (layer := layer_of(code))]
        if not classified:
            layers["other"] += hits
            continue
        layers[classified[0][1]] += hits
        own[function_name(classified[0][0])] += hits
        for code, layer in classified:
            layer_of_function.setdefault(function_name(code), layer)
        for name in {function_name(code) for code, _ in classified}:
            cumulative[name] += hits
    share = lambda counts: {k: v / total for k, v in counts.most_common()}
    return Profile(share(layers), share(own), share(cumulative), layer_of_function)


def top_functions(profile: Profile, count: int, wanted: Callable[[str], bool]) -> list[dict]:
    """The ``count`` functions of the ``wanted`` layers with most self time, then those with most
    cumulative time (each listed once)."""
    mine = lambda names: [n for n in names if wanted(profile.layer_of_function.get(n, ""))][:count]
    names = mine(profile.self_time)
    names += [name for name in mine(profile.cumulative) if name not in names]
    return [{"function": name, "layer": profile.layer_of_function.get(name, ""),
             "self_share": profile.self_time.get(name, 0.0),
             "cumulative_share": profile.cumulative.get(name, 0.0)} for name in names]


def function_name(code) -> str:
    """``path:line qualname``, the path cut to the package (fakecluster/, executor/, ...)."""
    path = code.co_filename
    for root in ("/fakecluster/", "/executor/", "/scenarios/", "/benchmarks/", "/simpy/", "/greenlet/",
                 "/kubernetes/", "/urllib3/", "/pydantic/", "/pydantic_core/"):
        if root in path:
            path = root.strip("/") + "/" + path.split(root, 1)[1]
            break
    return f"{path}:{code.co_firstlineno} {code.co_qualname}"
