"""The front doors: how clients reach the API server.

- ``gateway``: every request passes it, in both doors: latency, injected errors, outages,
  dropped connections, and the call log;
- ``transport``: the in-process door, a urllib3 pool inside the real client's ApiClient;
- ``httpserver``, ``httpfront``, ``httpwire``, ``exchange``, ``httpapi``: the HTTP door on
  loopback (``kubesim serve``): sockets and threads, HTTP/1.1 framing, the crossing between a
  connection's thread and the simulation's, and what kubectl needs around the API (discovery,
  health checks, Table output).

It stands on the API server, the kernel and the fault vocabulary (``fakecluster.faults``).
"""
