"""The bridge between blocking-style code and simpy's virtual clock.

Client code (the executor, the kubernetes client under it, a test body) is written in blocking
style. Each such piece runs in its own greenlet. A blocking point hands a simpy event to the
kernel and switches to the hub (the greenlet that drives ``env.step()``); the event's callback
switches back when it fires. Everything stays single-threaded and deterministic.
"""

from __future__ import annotations

import itertools
from typing import Any, Callable

import greenlet
import simpy


class SimulationStalled(RuntimeError):
    """No process can make progress: every process is blocked and nothing is scheduled."""


class NotInSimulation(RuntimeError):
    """A blocking call was made outside a simulated process."""


class Process:
    """A handle on one simulated process (a greenlet), like a thread handle."""

    def __init__(self, kernel: "Kernel", fn: Callable, args: tuple, name: str):
        self.name = name
        self.value: Any = None
        self.exception: BaseException | None = None
        self.done = False
        self._kernel = kernel
        self._finished = kernel.env.event()
        self._greenlet = greenlet.greenlet(self._main)
        self._fn, self._args = fn, args
        self._started = False

    def _main(self, _=None):
        self._started = True
        try:
            self.value = self._fn(*self._args)
        except greenlet.GreenletExit:
            pass
        except BaseException as exc:  # a process dies alone, like a thread; the kernel keeps it
            self.exception = exc
            self._kernel.crashed.append(self)
        finally:
            self.done = True
            self._kernel.blocked.pop(self, None)
            self._finished.succeed()

    def is_alive(self) -> bool:
        return not self.done

    def join(self, timeout: float | None = None) -> bool:
        """Wait (in virtual time) for the process to end; True when it has."""
        if not self.done:
            self._kernel.wait(self._finished, timeout, f"join({self.name})")
        return self.done

    def kill(self) -> None:
        """End the process at its current blocking point (it sees GreenletExit)."""
        if self.done:
            return
        self._kernel.blocked.pop(self, None)
        if not self._started:  # never ran: nothing to unwind
            self.done = True
            self._finished.succeed()
            return
        self._greenlet.parent = greenlet.getcurrent()  # come back here once it has unwound
        self._greenlet.throw(greenlet.GreenletExit)

    def __repr__(self):
        state = "done" if self.done else self._kernel.blocked.get(self, "runnable")
        return f"<Process {self.name}: {state}>"


class Kernel:
    """Runs greenlet processes on one simpy Environment."""

    def __init__(self, env: simpy.Environment, horizon: float = float("inf")):
        self.env = env
        self.horizon = horizon
        self.blocked: dict[Process, str] = {}
        self.crashed: list[Process] = []
        self._current: dict[greenlet.greenlet, Process] = {}
        self._hub: greenlet.greenlet | None = None
        self._ids = itertools.count(1)

    # -- processes -----------------------------------------------------------------------------

    def spawn(self, fn: Callable, *args, name: str | None = None) -> Process:
        """Start ``fn(*args)`` as a process at the current virtual time."""
        proc = Process(self, fn, args, name or f"{getattr(fn, '__name__', 'process')}-{next(self._ids)}")
        self._current[proc._greenlet] = proc
        start = self.env.event()
        start.callbacks.append(lambda _: self._enter(proc))
        start.succeed()
        return proc

    def current(self) -> Process | None:
        return self._current.get(greenlet.getcurrent())

    def _enter(self, proc: Process, value: Any = None) -> None:
        if proc.done:
            self._current.pop(proc._greenlet, None)
            return
        proc._greenlet.parent = self._hub
        proc._greenlet.switch(value)
        if proc.done:
            self._current.pop(proc._greenlet, None)

    # -- blocking ------------------------------------------------------------------------------

    def wait(self, event: simpy.Event, timeout: float | None = None, what: str = "an event") -> bool:
        """Block the calling process until ``event`` fires (True) or ``timeout`` passes (False)."""
        proc = self.current()
        if proc is None:
            raise NotInSimulation(
                f"blocking call ({what}) outside a simulated process: wrap the code in "
                "cluster.run(fn) or cluster.spawn(fn)")
        if event.processed:
            return self._outcome(event)
        woken = []

        def wake(fired):
            if not woken:
                woken.append(fired)
                self.blocked.pop(proc, None)
                self._enter(proc)

        event.callbacks.append(wake)
        if timeout is not None:
            self.env.timeout(max(timeout, 0)).callbacks.append(wake)
        self.blocked[proc] = what
        self._hub.switch()
        return woken[0] is event and self._outcome(event)

    @staticmethod
    def _outcome(event: simpy.Event) -> bool:
        if not event.ok:
            raise event.value
        return True

    def sleep(self, seconds: float) -> None:
        self.wait(self.env.timeout(max(seconds, 0)), None, f"sleep({seconds:g})")

    # -- driving -------------------------------------------------------------------------------

    def run(self, fn: Callable, *args, until: float | None = None) -> Any:
        """Run ``fn(*args)`` as a process to completion and return its value (or raise)."""
        if self.current() is not None:
            raise RuntimeError("cluster.run() called from inside a simulated process; "
                               "call the function directly, or use cluster.spawn()")
        proc = self.spawn(fn, *args, name=getattr(fn, "__name__", "main"))
        self._drive(lambda: proc.done, until)
        if not proc.done:
            raise SimulationStalled(f"{proc.name} did not finish by virtual time {until:g}s\n"
                                    + self.describe_blocked())
        if proc.exception is not None:
            raise proc.exception
        return proc.value

    def advance(self, until: float) -> None:
        """Run the simulation up to virtual time ``until``."""
        self._drive(lambda: False, until)
        self.env._now = max(self.env.now, until)  # the clock reaches ``until`` even when idle

    def _drive(self, finished: Callable[[], bool], until: float | None) -> None:
        self._hub = greenlet.getcurrent()
        env, limit = self.env, min(until if until is not None else float("inf"), self.horizon)
        queue = env._queue
        while not finished():
            if not queue:
                if until is not None:
                    return
                raise SimulationStalled("the simulation can make no progress: every process is "
                                        "blocked and nothing is scheduled\n" + self.describe_blocked())
            if queue[0][0] > limit:
                if until is None:
                    raise SimulationStalled(f"virtual time passed the horizon ({self.horizon:g}s)\n"
                                            + self.describe_blocked())
                return
            env.step()

    def describe_blocked(self) -> str:
        if not self.blocked:
            return "no process is blocked"
        lines = [f"  {proc.name}: waiting on {what}" for proc, what in self.blocked.items()]
        return "blocked processes:\n" + "\n".join(sorted(lines))
