"""fakecluster: a simulated Kubernetes API server and cluster in virtual time.

The real ``kubernetes`` client talks to it through its own urllib3 pool; see ``FakeCluster``.
"""

from .apiserver import ServerOptions
from .behaviour import Behaviour, Outcome
from .cluster import FakeCluster
from .faults import ErrorRule, Faults, Outage, constant, exponential, lognormal, uniform
from .httpserver import HttpServer, serve
from .httpwire import HttpLimits
from .kernel import HorizonExceeded, NotInSimulation, Process, SimulationStalled
from .runtime import SimRuntime

__all__ = [
    "FakeCluster", "Behaviour", "Outcome", "Faults", "ErrorRule", "Outage", "ServerOptions",
    "SimRuntime", "Process", "SimulationStalled", "HorizonExceeded", "NotInSimulation",
    "constant", "uniform", "exponential", "lognormal",
    "serve", "HttpServer", "HttpLimits",
]
