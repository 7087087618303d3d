"""The virtual-time kernel and the simulated Runtime: processes, blocking, stalls, the horizon."""

import queue
from datetime import timedelta

import kubernetes
import pytest

from fakecluster import FakeCluster, NotInSimulation, SimulationStalled
from fakecluster.kernel.engine import HorizonExceeded
from fakecluster.kernel.runtime import EPOCH


@pytest.fixture
def cluster():
    return FakeCluster(seed=1, nodes=1)


# -- run -------------------------------------------------------------------------------------


def test_run_returns_the_value_of_the_function(cluster):
    assert cluster.run(lambda a, b: a + b, 2, 3) == 5


def test_run_reraises_the_exception_of_the_function(cluster):
    def main():
        cluster.sleep(2)
        raise LookupError("nope")

    with pytest.raises(LookupError, match="nope"):
        cluster.run(main)
    assert cluster.now == 2


def test_run_from_inside_a_process_is_refused(cluster):
    def main():
        cluster.run(lambda: None)

    with pytest.raises(RuntimeError, match="inside the simulation"):
        cluster.run(main)


# -- sleep and time --------------------------------------------------------------------------


def test_sleep_advances_virtual_time_exactly(cluster):
    def main():
        start = cluster.now
        cluster.sleep(2.5)
        middle = cluster.now
        cluster.sleep(0.25)
        return start, middle, cluster.now

    assert cluster.run(main) == (0, 2.5, 2.75)


def test_negative_sleep_returns_at_once(cluster):
    def main():
        cluster.sleep(-3)
        return cluster.now

    assert cluster.run(main) == 0


def test_runtime_now_and_utcnow_follow_the_virtual_clock(cluster):
    runtime = cluster.runtime

    def main():
        runtime.sleep(90)
        return runtime.now(), runtime.utcnow()

    now, utc = cluster.run(main)
    assert now == 90
    assert utc == EPOCH + timedelta(seconds=90) == cluster.utcnow()
    assert utc.tzinfo is not None


def test_advance_moves_the_clock_even_when_idle(cluster):
    cluster.advance(42)
    assert cluster.now == 42
    fired = []
    cluster.at(50, lambda: fired.append(cluster.now))
    cluster.advance(5)
    assert cluster.now == 47 and fired == []
    cluster.advance(5)
    assert fired == [50] and cluster.now == 52


def test_advance_from_inside_a_process_is_refused(cluster):
    with pytest.raises(RuntimeError, match="inside the simulation"):
        cluster.run(lambda: cluster.advance(1))


# -- spawn, join, kill -----------------------------------------------------------------------


def test_spawned_processes_run_concurrently_and_join_waits_for_them(cluster):
    order = []

    def worker(name, delay):
        cluster.sleep(delay)
        order.append((name, cluster.now))
        return name.upper()

    def main():
        slow = cluster.spawn(worker, "slow", 5, name="slow")
        fast = cluster.spawn(worker, "fast", 1, name="fast")
        assert slow.join() and fast.join()
        return slow.value, fast.value, cluster.now

    assert cluster.run(main) == ("SLOW", "FAST", 5)
    assert order == [("fast", 1), ("slow", 5)]


def test_join_with_a_timeout_gives_up_at_the_timeout(cluster):
    def main():
        worker = cluster.spawn(cluster.sleep, 10)
        finished = worker.join(timeout=3)
        return finished, worker.is_alive(), cluster.now

    assert cluster.run(main) == (False, True, 3)


def test_a_crashed_process_is_recorded_and_does_not_stop_the_world(cluster):
    def crasher():
        cluster.sleep(1)
        raise ValueError("boom")

    def main():
        proc = cluster.spawn(crasher, name="crasher")
        proc.join()
        cluster.sleep(1)
        return proc

    proc = cluster.run(main)
    assert cluster.kernel.crashed == [proc]
    assert isinstance(proc.exception, ValueError) and not proc.is_alive()
    assert cluster.now == 2


def test_kill_ends_a_blocked_process_at_its_blocking_point(cluster):
    unwound = []

    def victim():
        try:
            cluster.sleep(100)
        finally:
            unwound.append(cluster.now)
        return "never"

    def main():
        proc = cluster.spawn(victim, name="victim")
        cluster.sleep(5)
        proc.kill()
        return proc

    proc = cluster.run(main)
    assert unwound == [5]
    assert not proc.is_alive() and proc.killed and proc.value is None
    assert proc not in cluster.kernel.crashed
    cluster.advance(200)  # its old sleep must not wake the corpse
    assert unwound == [5]


def test_kill_before_the_process_ever_ran(cluster):
    ran = []

    def main():
        proc = cluster.spawn(ran.append, 1)
        proc.kill()
        cluster.sleep(1)
        return proc

    proc = cluster.run(main)
    assert ran == [] and not proc.is_alive()


def test_a_process_can_kill_itself(cluster):
    after = []

    def main():
        cluster.kernel.current().kill()
        after.append("still here")

    assert cluster.run(main) is None
    assert after == []


def test_a_killed_getter_does_not_swallow_the_next_item(cluster):
    jobs = cluster.runtime.queue("jobs")
    got = []

    def getter(name):
        got.append((name, jobs.get()))

    def main():
        first = cluster.spawn(getter, "first")
        cluster.spawn(getter, "second")
        cluster.sleep(1)
        first.kill()
        jobs.put("job")
        cluster.sleep(1)

    cluster.run(main)
    assert got == [("second", "job")]


# -- stalls, horizon, blocking outside a process ---------------------------------------------


def test_stalled_simulation_names_each_blocked_process_and_what_it_waits_on(cluster):
    jobs = cluster.runtime.queue("jobs")
    done = cluster.runtime.event()

    def main():
        cluster.spawn(done.wait, name="waiter")
        return jobs.get()

    with pytest.raises(SimulationStalled) as info:
        cluster.run(main)
    message = str(info.value)
    assert "can make no progress" in message
    assert "main: waiting on jobs.get()" in message
    assert "waiter: waiting on Event.wait()" in message


def test_a_stall_is_detected_without_running_out_an_unused_timeout(cluster):
    jobs = cluster.runtime.queue("jobs")

    def main():
        jobs.put(1)
        jobs.get(timeout=3600)  # satisfied at once: its timer must not hold the clock up
        return jobs.get()

    with pytest.raises(SimulationStalled, match="jobs.get"):
        cluster.run(main)
    assert cluster.now == 0


def test_run_until_reports_the_blocked_process(cluster):
    def main():
        cluster.sleep(100)

    with pytest.raises(SimulationStalled, match="did not finish by virtual time 10s") as info:
        cluster.run(main, until=10)
    assert "sleep(100)" in str(info.value)


def test_passing_the_horizon_raises():
    cluster = FakeCluster(seed=1, nodes=1, horizon=100)

    def forever():
        while True:
            cluster.sleep(30)

    with pytest.raises(HorizonExceeded, match=r"horizon \(100s\)") as info:
        cluster.run(forever)
    assert isinstance(info.value, SimulationStalled)
    assert "forever: waiting on sleep(30)" in str(info.value)
    assert cluster.now == 90


def test_advance_past_the_horizon_raises_instead_of_skipping_events():
    cluster = FakeCluster(seed=1, nodes=1, horizon=100)
    cluster.spawn(cluster.sleep, 150)
    with pytest.raises(HorizonExceeded):
        cluster.advance(1000)
    assert cluster.now <= 100


def test_blocking_outside_a_process_raises_not_in_simulation(cluster):
    with pytest.raises(NotInSimulation, match=r"sleep\(1\).*cluster.run\(fn\)"):
        cluster.sleep(1)
    with pytest.raises(NotInSimulation, match=r"jobs.get\(\)"):
        cluster.runtime.queue("jobs").get()
    with pytest.raises(NotInSimulation):
        cluster.runtime.event().wait(1)
    assert cluster.now == 0
    cluster.advance(1)  # nothing was left behind on the clock
    assert cluster.kernel.blocked == {}


def test_blocking_inside_a_timeline_callback_raises_not_in_simulation(cluster):
    cluster.at(5, lambda: cluster.sleep(1))
    with pytest.raises(NotInSimulation, match="callback"):
        cluster.advance(10)


def test_the_real_client_outside_a_process_says_how_to_fix_it():
    from fakecluster import Faults, constant
    cluster = FakeCluster(seed=1, nodes=1, faults=Faults(latency={"list": constant(0.1)}))
    api = kubernetes.client.CoreV1Api(cluster.api_client())
    with pytest.raises(NotInSimulation, match="cluster.run"):
        api.list_namespaced_pod("default")


# -- the runtime's Queue and Event -----------------------------------------------------------


def test_queue_is_fifo(cluster):
    jobs = cluster.runtime.queue()

    def main():
        for i in range(5):
            jobs.put(i)
        return [jobs.get() for _ in range(5)], jobs.empty(), jobs.qsize()

    assert cluster.run(main) == ([0, 1, 2, 3, 4], True, 0)


def test_queue_get_with_timeout_raises_empty_at_exactly_the_timeout(cluster):
    jobs = cluster.runtime.queue()

    def main():
        with pytest.raises(queue.Empty):
            jobs.get(timeout=2.5)
        return cluster.now

    assert cluster.run(main) == 2.5


def test_queue_get_nowait_raises_empty_at_once(cluster):
    jobs = cluster.runtime.queue()

    def main():
        with pytest.raises(queue.Empty):
            jobs.get_nowait()
        with pytest.raises(queue.Empty):
            jobs.get(block=False)
        return cluster.now

    assert cluster.run(main) == 0


def test_queue_put_wakes_a_blocked_getter_at_the_time_of_the_put(cluster):
    jobs = cluster.runtime.queue()

    def producer():
        cluster.sleep(4)
        jobs.put("work")

    def main():
        cluster.spawn(producer)
        item = jobs.get(timeout=10)
        return item, cluster.now

    assert cluster.run(main) == ("work", 4)


def test_queue_getters_are_served_in_the_order_they_arrived(cluster):
    jobs = cluster.runtime.queue()
    got = []

    def getter(name):
        got.append((name, jobs.get()))

    def main():
        for name in ("a", "b", "c"):
            cluster.spawn(getter, name)
            cluster.sleep(1)
        for item in (1, 2, 3):
            jobs.put(item)
        cluster.sleep(1)

    cluster.run(main)
    assert got == [("a", 1), ("b", 2), ("c", 3)]


def test_a_getter_that_loses_the_race_keeps_only_what_is_left_of_its_timeout(cluster):
    jobs = cluster.runtime.queue()

    def thief():
        cluster.sleep(2)
        jobs.put("x")
        jobs.get_nowait()  # takes it before the woken getter runs

    def main():
        cluster.spawn(thief)
        with pytest.raises(queue.Empty):
            jobs.get(timeout=5)
        return cluster.now

    assert cluster.run(main) == 5


def test_queue_rejects_a_negative_timeout(cluster):
    with pytest.raises(ValueError, match="non-negative"):
        cluster.runtime.queue().get(timeout=-1)


def test_event_wait_times_out_with_false(cluster):
    flag = cluster.runtime.event()

    def main():
        return flag.wait(timeout=3), cluster.now

    assert cluster.run(main) == (False, 3)


def test_event_set_wakes_every_waiter(cluster):
    flag = cluster.runtime.event()
    woken = []

    def waiter(name):
        woken.append((name, flag.wait(), cluster.now))

    def main():
        cluster.spawn(waiter, "a")
        cluster.spawn(waiter, "b")
        cluster.sleep(7)
        flag.set()
        cluster.sleep(0)
        return flag.is_set(), flag.wait(timeout=1), cluster.now

    assert cluster.run(main) == (True, True, 7)
    assert sorted(woken) == [("a", True, 7), ("b", True, 7)]


def test_event_clear_makes_wait_block_again(cluster):
    flag = cluster.runtime.event()

    def main():
        flag.set()
        flag.clear()
        return flag.is_set(), flag.wait(timeout=2), cluster.now

    assert cluster.run(main) == (False, False, 2)
