"""fakecluster: a simulated Kubernetes API server and cluster in virtual time.

The real ``kubernetes`` client talks to it through its own urllib3 pool; see ``FakeCluster``.
Its parts, each a subpackage (DESIGN.md's layers inside fakecluster):

    kernel   the simulation kernel: virtual time, the greenlet bridge, simulated and real-time runtimes
    api      the API server: routing and verbs, store and watch cache, streams, selectors, strategies,
             validation, patch, Status errors, tables, discovery, OpenAPI, wire encoding
    model    the cluster model: nodes, scheduler, kubelets, the behaviour model, the node and
             namespace controllers, the event recorder, container logs
    doors    the front doors: the gateway (latency, errors, outages), the in-process urllib3
             transport, the HTTP server on loopback

plus, at the top, ``faults`` (the fault vocabulary), ``tenants`` (other writers' pods),
``cluster`` (``FakeCluster``: one world wired from the parts) and this module, the public face.

Imports flow one way, and ``tests/test_layers.py`` fails a module that imports against it:
- ``kernel`` imports nothing else of fakecluster;
- ``api`` imports the kernel;
- ``model`` imports the kernel and the API server's store (``api.store``), nothing else of ``api``;
- ``faults`` imports the API server's Status errors (``api.status``); ``tenants`` imports nothing
  (it drives a FakeCluster it is handed);
- ``doors`` import the API server, the kernel and ``faults``: front doors -> API server -> kernel;
- ``cluster`` and this module may import every part; no part imports them.
"""

from .api.server import ServerOptions
from .cluster import FakeCluster
from .doors.httpserver import HttpServer, serve
from .doors.httpwire import HttpLimits
from .faults import ErrorRule, Faults, LostAnswer, Outage, constant, exponential, lognormal, uniform
from .kernel.engine import HorizonExceeded, Livelock, NotInSimulation, Process, SimulationStalled
from .kernel.runtime import SimRuntime
from .model.behaviour import Behaviour, Outcome
from .tenants import Churn

__all__ = [
    "FakeCluster", "Behaviour", "Outcome", "Faults", "ErrorRule", "Outage", "ServerOptions",
    "SimRuntime", "Process", "SimulationStalled", "HorizonExceeded", "Livelock", "NotInSimulation",
    "constant", "uniform", "exponential", "lognormal",
    "serve", "HttpServer", "HttpLimits", "Churn", "LostAnswer",
]
