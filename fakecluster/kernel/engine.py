"""The bridge between blocking-style code and simpy's virtual clock.

Client code (the executor, the kubernetes client under it, a test body) is written in blocking
style. Each such piece runs in its own greenlet. A blocking point hands a simpy event to the
kernel and switches to the hub (the greenlet that drives ``env.step()``); the event's callback
switches back when it fires. Everything stays single-threaded and deterministic.
"""

from __future__ import annotations

import gc
import heapq
import itertools
import logging
from typing import Any, Callable

import greenlet
import simpy
from simpy.events import URGENT


log = logging.getLogger("fakecluster.kernel")


GC_YOUNG_THRESHOLD = 20_000  # allocations between young-generation collections while driving


class SimulationStalled(RuntimeError):
    """No process can make progress: every process is blocked and nothing is scheduled."""


class Livelock(BaseException):
    """Virtual time stopped passing: a client keeps calling the API server at one virtual instant
    (a retry loop with no pause, against a server that answers at once). A BaseException, so that
    the client's own ``except Exception`` cannot swallow it and spin on: the run must end."""


class HorizonExceeded(SimulationStalled):
    """Virtual time would pass the world's horizon while work is still scheduled."""


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
        self.killed = False

    def _main(self, _=None):
        self._started = True
        try:
            self.value = self._fn(*self._args)
        except greenlet.GreenletExit:
            self.killed = True
        except Exception as exc:  # a process dies alone, like a thread; the kernel keeps it
            self.exception = exc
            self._kernel._crash(self, exc)
        except BaseException as exc:  # Ctrl-C, SystemExit: stop the whole simulation, loudly
            self.exception = exc
            self._kernel._crash(self, exc)
            raise
        finally:
            self.done = True
            self._kernel.blocked.pop(self, None)
            self._finished.succeed()

    def is_alive(self) -> bool:
        return not self.done

    def join(self, timeout: float | None = None) -> bool:
        """Wait (in virtual time) for the process to end; True when it has."""
        if not self.done:
            if self._kernel.current() is self:
                raise RuntimeError(f"process {self.name} cannot join itself")
            self._kernel.wait(self._finished, timeout, f"join({self.name})")
        return self.done

    def kill(self) -> None:
        """End the process at its current blocking point (it sees GreenletExit).

        Killing the calling process itself raises GreenletExit right here, as ``sys.exit`` would
        in a thread; the process ends when it unwinds.
        """
        if self.done:
            return
        if greenlet.getcurrent() is self._greenlet:
            raise greenlet.GreenletExit
        self._kernel.blocked.pop(self, None)
        if not self._started:  # never ran: nothing to unwind
            self.done = self.killed = True
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
        self.crashed: list[Process] = []   # processes that ended with an exception
        self._current: dict[greenlet.greenlet, Process] = {}
        self._hub: greenlet.greenlet | None = None
        self._driving = False
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

    def _crash(self, proc: Process, exc: BaseException) -> None:
        """Keep a crashed process (like a thread that died) and say so in the log."""
        self.crashed.append(proc)
        log.warning("simulated process %s crashed at virtual time %gs: %s: %s",
                    proc.name, self.env.now, type(exc).__name__, exc,
                    exc_info=(type(exc), exc, exc.__traceback__))

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
        proc = self._calling_process(what)
        if event.processed:
            return self._outcome(event)
        woken = []
        timer = None

        def wake(fired):
            if not woken:
                woken.append(fired)
                self.blocked.pop(proc, None)
                if timer is not None and fired is not timer:
                    _defuse(timer)  # the event won: the timer must not hold the clock up
                self._enter(proc)

        event.callbacks.append(wake)
        if timeout is not None:
            timer = self.env.timeout(max(timeout, 0))
            timer.callbacks.append(wake)
        self.blocked[proc] = what
        try:
            self._hub.switch()
        finally:
            if not woken:  # killed while blocked: leave nothing behind that would wake a corpse
                self.blocked.pop(proc, None)
                if event.callbacks is not None and wake in event.callbacks:
                    event.callbacks.remove(wake)
                if timer is not None:
                    _defuse(timer)
        return woken[0] is event and self._outcome(event)

    def _calling_process(self, what: str) -> Process:
        proc = self.current()
        if proc is None:
            where = ("from inside a simulation callback (cluster.at / a simpy callback); spawn a "
                     "process for blocking work: cluster.spawn(fn)" if self._driving else
                     "outside a simulated process; wrap the code in a function and run it with "
                     "cluster.run(fn) (or cluster.spawn(fn) for background work)")
            raise NotInSimulation(f"blocking call {what} made {where}")
        return proc

    @staticmethod
    def _outcome(event: simpy.Event) -> bool:
        if not event.ok:
            raise event.value
        return True

    def sleep(self, seconds: float) -> None:
        what = f"sleep({seconds:g})"
        self._calling_process(what)
        self.wait(self.env.timeout(max(seconds, 0)), None, what)

    # -- driving -------------------------------------------------------------------------------

    def run(self, fn: Callable, *args, until: float | None = None) -> Any:
        """Run ``fn(*args)`` as a process to completion and return its value (or raise).

        ``until`` is an absolute virtual time: if the process has not finished by then,
        SimulationStalled says what every process is blocked on.
        """
        self._not_nested("cluster.run()")
        proc = self.spawn(fn, *args, name=getattr(fn, "__name__", "main"))
        self._drive(lambda: proc.done, until)
        if not proc.done:
            if not self._live_queue():
                raise SimulationStalled(f"the simulation can make no progress: {proc.name} is "
                                        f"blocked and nothing is scheduled\n" + self.describe_blocked())
            raise SimulationStalled(f"{proc.name} did not finish by virtual time {until:g}s\n"
                                    + self.describe_blocked())
        if proc.exception is not None:
            raise proc.exception
        return proc.value

    def advance(self, until: float) -> None:
        """Run the simulation up to virtual time ``until`` (absolute)."""
        self._not_nested("cluster.advance()")
        if until < self.env.now:
            raise ValueError(f"cannot advance to {until:g}s: virtual time is already {self.env.now:g}s")
        self._drive(lambda: False, until)
        self.env._now = max(self.env.now, until)  # the clock reaches ``until`` even when idle

    def _live_queue(self) -> bool:
        """Is anything scheduled? Timers nobody waits for any more are dropped unseen first."""
        queue = self.env._queue
        while queue and getattr(queue[0][3], "_kubesim_dead", False):
            heapq.heappop(queue)
        return bool(queue)

    def _not_nested(self, call: str) -> None:
        if self.current() is not None or self._driving:
            raise RuntimeError(f"{call} called from inside the simulation (a process or a "
                               "callback); call the function directly, or use cluster.spawn()")

    def _drive(self, finished: Callable[[], bool], until: float | None) -> None:
        self._hub = greenlet.getcurrent()
        env = self.env
        until = float("inf") if until is None else until
        queue = env._queue
        self._driving = True
        thresholds = gc.get_threshold()
        # A simulation keeps a large live heap (objects, watch history, logs) that the young
        # generation's frequent collections would rescan over and over: collect less often.
        gc.set_threshold(max(thresholds[0], GC_YOUNG_THRESHOLD), *thresholds[1:])
        try:
            while not finished():
                while queue and getattr(queue[0][3], "_kubesim_dead", False):
                    heapq.heappop(queue)  # a timer nobody waits for any more: drop it unseen
                if not queue:
                    if until != float("inf"):
                        return
                    raise SimulationStalled("the simulation can make no progress: every process is "
                                            "blocked and nothing is scheduled\n" + self.describe_blocked())
                at = queue[0][0]
                if at > until:
                    return
                if at > self.horizon:
                    raise HorizonExceeded(
                        f"virtual time would pass the horizon ({self.horizon:g}s): the next event "
                        f"is due at {at:g}s (now {env.now:g}s); raise FakeCluster(horizon=...) if "
                        "the run really needs longer\n" + self.describe_blocked())
                # simpy's Environment.step, inlined: one call less for every event
                env._now, _, _, event = heapq.heappop(queue)
                callbacks, event.callbacks = event.callbacks, None
                for callback in callbacks:
                    callback(event)
                if not event._ok and not hasattr(event, "_defused"):
                    raise _failure(event)
        finally:
            self._driving = False
            gc.set_threshold(*thresholds)

    def describe_blocked(self) -> str:
        if not self.blocked:
            return "no process is blocked"
        lines = [f"  {proc.name}: waiting on {what}" for proc, what in self.blocked.items()]
        return "blocked processes:\n" + "\n".join(sorted(lines))


class ModelTimer(simpy.Event):
    """A timeout for the cluster model (scheduler, kubelets, controllers).

    It is scheduled ahead of ordinary timeouts due at the same instant, so what the world does
    at time t is visible to every process that wakes at t: a test that sleeps exactly a pod's
    run time sees the pod finished, whichever timer was created first. ``callback`` (optional)
    is called with the timer when it fires.
    """

    def __init__(self, env: simpy.Environment, delay: float, callback: Callable | None = None):
        # simpy's Event.__init__ and Environment.schedule, inlined: a timer or two for every pod
        self.env = env
        self.callbacks = [] if callback is None else [callback]
        self._ok, self._value = True, None
        heapq.heappush(env._queue, (env._now + max(0.0, delay), URGENT, next(env._eid), self))


class Immediate(simpy.Event):
    """An event due at this very instant, ahead of the ordinary events due now: as simpy starts
    and interrupts a process. (Unlike ModelTimer(env, 0), it leaves the clock an int if it is one.)"""

    def __init__(self, env: simpy.Environment, callback: Callable):
        self.env, self.callbacks = env, [callback]
        self._ok, self._value = True, None
        heapq.heappush(env._queue, (env._now, URGENT, next(env._eid), self))


def _failure(event: simpy.Event) -> BaseException:
    """The exception of a failed event nobody handled, as simpy raises it (a copy, caused by it)."""
    exc = type(event._value)(*event._value.args)
    exc.__cause__ = event._value
    return exc


def _defuse(timer: simpy.Event) -> None:
    """Mark a pending timer as dead: the driver drops it instead of advancing the clock to it."""
    timer._kubesim_dead = True  # (not simpy's own _defused, which means "failure handled")
    if timer.callbacks:
        timer.callbacks.clear()
