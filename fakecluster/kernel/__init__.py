"""The simulation kernel: virtual time and the code that runs in it.

- ``engine``: the greenlet bridge between blocking-style code and simpy's clock (``Kernel``,
  ``Process``, model timers, ``SimulationStalled``);
- ``runtime``: ``SimRuntime``, the executor's Runtime (now, sleep, spawn, queues) in virtual time;
- ``realtime``: the driver that runs the same kernel against the wall clock, for ``kubesim serve``.

It imports nothing else of fakecluster: every other part stands on it.
"""
