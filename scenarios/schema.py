"""The scenario file schema (pydantic), exported as JSON Schema by ``kubesim schema``.

A scenario says what cluster to build, how the executor is configured, what load arrives,
which faults strike when, what must hold at the end and when the run ends.
"""

from __future__ import annotations

import difflib
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, WithJsonSchema, field_validator, model_validator

from executor.config import ConfigError, ExecutorConfig


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class NumberOrObject(Strict):
    """A section that also accepts a plain number (its ``before`` validator expands it): the
    JSON Schema says so too, or editors would flag valid files."""

    @classmethod
    def __get_pydantic_json_schema__(cls, core_schema, handler):
        schema = handler(core_schema)
        return {"anyOf": [{"type": "number"}, schema]}


# -- distributions -----------------------------------------------------------------------------

class LogNormal(Strict):
    median: float = Field(gt=0)
    p99: float = Field(gt=0)


class Distribution(NumberOrObject):
    """Exactly one of: constant, uniform [low, high], exponential (mean), lognormal {median, p99}.
    A plain number means a constant."""

    constant: float | None = Field(default=None, ge=0)
    uniform: tuple[float, float] | None = None
    exponential: float | None = Field(default=None, gt=0)
    lognormal: LogNormal | None = None

    @model_validator(mode="before")
    @classmethod
    def number_is_constant(cls, value):
        return {"constant": value} if isinstance(value, (int, float)) else value

    @model_validator(mode="after")
    def exactly_one(self):
        chosen = [k for k in ("constant", "uniform", "exponential", "lognormal") if getattr(self, k) is not None]
        if len(chosen) != 1:
            raise ValueError("give exactly one of constant, uniform, exponential, lognormal "
                             f"(got {', '.join(chosen) or 'none'})")
        if self.uniform is not None and not 0 <= self.uniform[0] <= self.uniform[1]:
            raise ValueError("uniform needs [low, high] with 0 <= low <= high")
        if self.lognormal is not None and self.lognormal.p99 < self.lognormal.median:
            raise ValueError("lognormal needs p99 >= median")
        return self


Probability = Field(default=0.0, ge=0.0, le=1.0)


# -- sections ----------------------------------------------------------------------------------

class NodeSpec(Strict):
    cpu: str = "8"
    memory: str = "32Gi"
    pods: int = Field(default=110, ge=1)


class ClusterSpec(Strict):
    nodes: int = Field(default=3, ge=1, description="how many identical nodes")
    node: NodeSpec = NodeSpec()
    watch_cache_size: int = Field(default=100 * 1024, ge=1, description="events the watch cache keeps")
    watch_cache_seconds: float | None = Field(default=None, gt=0, description=
                                              "also drop events older than this (kube-apiserver: 75)")
    api_latency: dict[str, Distribution] = Field(default_factory=dict,
                                                 description='latency by verb (get, list, watch, create, '
                                                             'update, patch, delete) or "*"')
    # Pods take time to start, as on a real cluster: kube-scheduler's queue and binding, then the
    # kubelet's sandbox, image pull and container start (set both to 0 for instant starts).
    events: Literal["all", "warnings", "none"] = Field(
        default="all", description="core/v1 Events the cluster writes: all (Scheduled, Pulling, Started... "
                                   "and the warnings), warnings only, or none (the least memory at scale)")
    scheduling_delay: float = Field(default=0.5, ge=0, description="seconds from a pod's creation to its binding")
    image_pull_seconds: Distribution = Field(default=Distribution(lognormal=LogNormal(median=3.0, p99=20.0)),
                                             description="seconds from binding to the container running "
                                                         "(sandbox, image pull, start)")
    namespaces: list[str] = Field(default_factory=lambda: ["default"])


class SchedulerSpec(Strict):
    loop_interval: float = Field(default=1.0, gt=0, description="seconds between scheduler loops")
    max_tis_per_query: int = Field(default=512, ge=0, description=
                                   "task instances queued per scheduler loop at most, whatever the "
                                   "parallelism (Airflow's [scheduler] max_tis_per_query; 0: no cap)")


class Arrival(Strict):
    mode: Literal["at_once", "rate"] = "at_once"
    per_second: float | None = Field(default=None, gt=0, description="tasks per second, for mode: rate")

    @model_validator(mode="after")
    def rate_needs_per_second(self):
        if self.mode == "rate" and self.per_second is None:
            raise ValueError("mode: rate needs per_second")
        return self


class Requests(Strict):
    cpu: str = "500m"
    memory: str = "256Mi"


class EnvVar(Strict):
    name: str = Field(min_length=1)
    value: str = ""


class WorkloadSpec(Strict):
    dags: int = Field(default=1, ge=1)
    tasks_per_dag: int = Field(default=10, ge=1)
    names: Literal["plain", "realistic", "awkward"] = Field(
        default="realistic", description="plain: dag_1/task_1; realistic: Faker names; awkward: long, "
                                         "mixed case and unicode ids that stress name and label sanitising")
    retries: int = Field(default=0, ge=0)
    arrival: Arrival = Arrival()
    run_seconds: Distribution = Distribution(constant=30.0)
    failure_probability: float = Probability
    oom_probability: float = Probability
    image_error_probability: float = Probability
    image_error: Literal["ErrImagePull", "ImagePullBackOff", "InvalidImageName", "ErrImageNeverPull"] = "ErrImagePull"
    unschedulable_probability: float = Probability
    requests: Requests = Requests()
    sidecar_image: str | None = Field(default=None, min_length=1, description="a second container, 'sidecar', "
                                      "in every task pod, with this image (an invalid name never starts)")
    annotations: dict[str, str] = Field(default_factory=dict, description="added to every task pod "
                                        "(kubesim.io/* annotations steer the pod)")
    env: list[EnvVar] = Field(default_factory=list, description="environment variables of the task "
                              "container, in order; a name may repeat (a Helm chart that sets one twice), "
                              "which Kubernetes accepts with a warning")


class ApiErrors(Strict):
    code: Literal[400, 403, 404, 409, 410, 422, 429, 500, 503, 504]
    verbs: list[Literal["get", "list", "watch", "create", "update", "patch", "delete"]] = ["create"]
    probability: float = Field(default=1.0, ge=0, le=1)
    count: int | None = Field(default=None, ge=1)
    start: float = Field(default=0.0, ge=0)
    end: float | None = None
    retry_after: int = Field(default=1, ge=0)
    status_body: bool = False
    reason: str | None = Field(default=None, min_length=1, description=
                               'the Status reason, e.g. "Conflict" for a 409 that is not "AlreadyExists"')
    message: str | None = Field(default=None, min_length=1, description="the Status message")


class LostAnswers(Strict):
    """The server performs the request; the client never hears back (the connection drops)."""

    verbs: list[Literal["get", "list", "create", "update", "patch", "delete"]] = ["create", "delete", "patch"]
    probability: float = Field(default=1.0, ge=0, le=1)
    count: int | None = Field(default=None, ge=1)
    start: float = Field(default=0.0, ge=0)
    end: float | None = None


class ChurnSpec(Strict):
    """Other tenants' pods come and go beside the executor's, moving the resourceVersion on."""

    pods_per_second: float = Field(default=1.0, gt=0)
    namespace: str = Field(default="tenant", min_length=1)
    run_seconds: float = Field(default=10.0, ge=0)
    keep_seconds: float = Field(default=5.0, ge=0)
    start: float = Field(default=0.0, ge=0)
    end: float | None = None


class Outage(Strict):
    start: float = Field(ge=0)
    end: float
    mode: Literal["unavailable", "refused"] = "unavailable"

    @model_validator(mode="after")
    def ordered(self):
        if self.end <= self.start:
            raise ValueError(f"outage end ({self.end}) must come after its start ({self.start})")
        return self


class Empty(Strict):
    pass


class Compact(Strict):
    keep: int = Field(default=0, ge=0)


class Stall(Strict):
    seconds: float | None = Field(default=None, gt=0, description="omit: until the client gives up")


class LoseNode(Strict):
    node: str = "node-1"
    restore_after: float | None = Field(default=None, gt=0)


class DeleteNode(Strict):
    node: str = "node-1"


class Evict(Strict):
    count: int = Field(default=1, ge=1)


Which = Literal["newest", "oldest"] | int


class EndScheduler(Strict):
    scheduler: Which = Field(default="newest", description='which running scheduler: "newest", "oldest" or a job id')
    restart_after: float | None = Field(default=None, ge=0, description=
                                        "a successor starts this many seconds later (omit: none)")


class StallScheduler(Strict):
    scheduler: Which = Field(default="newest", description='which running scheduler: "newest", "oldest" or a job id')
    seconds: float = Field(gt=0, description="how long its loop stops (no heartbeat, no scheduling)")


ACTIONS = ("expire_watches", "compact", "stall_watches", "drop_watches", "restart_scheduler",
           "start_scheduler", "crash_scheduler", "stop_scheduler", "stall_scheduler", "lose_node",
           "delete_node", "evict", "api_errors", "outage", "connection_resets", "lost_answers", "churn")
RULES = ("api_errors", "outage", "connection_resets", "lost_answers", "churn")


class Fault(Strict):
    """One fault: a timed action (at, optionally every ... until), or a rule (api_errors, outage,
    connection_resets, lost_answers, churn) that holds for the whole run or its own window."""

    at: float | None = Field(default=None, ge=0)
    every: float | None = Field(default=None, gt=0)
    until: float | None = None
    expire_watches: Empty | None = None
    compact: Compact | None = None
    stall_watches: Stall | None = None
    drop_watches: Empty | None = None
    restart_scheduler: Empty | None = None
    start_scheduler: Empty | None = None
    crash_scheduler: EndScheduler | None = None
    stop_scheduler: EndScheduler | None = None
    stall_scheduler: StallScheduler | None = None
    lose_node: LoseNode | None = None
    delete_node: DeleteNode | None = None
    evict: Evict | None = None
    api_errors: ApiErrors | None = None
    outage: Outage | None = None
    connection_resets: float | None = Field(default=None, ge=0, le=1)
    lost_answers: LostAnswers | None = None
    churn: ChurnSpec | None = None

    @model_validator(mode="after")
    def one_action(self):
        chosen = [a for a in ACTIONS if getattr(self, a) is not None]
        if len(chosen) != 1:
            raise ValueError(f"each fault names exactly one action of {', '.join(ACTIONS)} "
                             f"(got {', '.join(chosen) or 'none'})")
        timed = chosen[0] not in RULES
        if timed and self.at is None:
            raise ValueError(f"{chosen[0]} needs 'at' (the virtual second it strikes)")
        return self

    @property
    def action(self) -> str:
        return next(a for a in ACTIONS if getattr(self, a) is not None)


class Bound(NumberOrObject):
    min: float | None = None
    max: float | None = None
    why: str | None = Field(default=None, description="the behaviour this bound guards, printed when it fails")

    @model_validator(mode="before")
    @classmethod
    def number_is_exact(cls, value):
        return {"min": value, "max": value} if isinstance(value, (int, float)) else value


METRICS = ("makespan", "throughput", "tasks_succeeded", "tasks_failed", "queue_wait_p50", "queue_wait_p95",
           "queue_wait_p99", "pod_start_p50", "pod_start_p95", "pod_start_p99", "result_latency_p50",
           "result_latency_p99", "watch_restarts", "watch_410s", "watch_resumes_from_0", "watcher_deaths",
           "replayed_events", "retries", "pods_created", "api_calls", "api_errors", "scheduler_restarts",
           "adopted_pods", "shutdown_seconds")


def known_metric(name: str) -> str:
    if name not in METRICS:
        guess = difflib.get_close_matches(name, METRICS, n=1)
        hint = f"did you mean {guess[0]}? " if guess else ""
        raise ValueError(f"unknown metric {name}; {hint}known: {', '.join(METRICS)}")
    return name


# Checked per key, so an error points at the misspelt metric's own line.
MetricName = Annotated[str, AfterValidator(known_metric), WithJsonSchema({"type": "string", "enum": list(METRICS)})]


Verb = Literal["get", "list", "watch", "create", "update", "patch", "delete", "*"]
CallStatus = int | Literal["refused", "reset", "lost", "read-timeout", "*"]


class CallBound(Strict):
    """A bound on the API calls of one verb answered with one status (``*``: any)."""

    verb: Verb = "*"
    status: CallStatus = "*"
    min: float | None = None
    max: float | None = None
    why: str | None = Field(default=None, description="the behaviour this bound guards, printed when it fails")

    @model_validator(mode="after")
    def has_a_bound(self):
        if self.min is None and self.max is None:
            raise ValueError("a call bound needs min or max")
        return self


class PerPodBound(Strict):
    """A bound on the calls of one verb sent to any single pod (e.g. DELETEs per pod at most 1)."""

    verb: Literal["get", "create", "update", "patch", "delete"]
    max: int = Field(ge=0)
    why: str | None = Field(default=None, description="the behaviour this bound guards, printed when it fails")


class Expect(Strict):
    metrics: dict[MetricName, Bound] = Field(default_factory=dict,
                                             description="bounds on metrics: " + ", ".join(METRICS))
    calls: list[CallBound] = Field(default_factory=list, description="bounds on API calls by verb and status")
    per_pod: list[PerPodBound] = Field(default_factory=list, description="bounds on calls per pod by verb")
    all_tasks: Literal["success", "terminal"] | None = Field(
        default="terminal", description="success: every task succeeds; terminal: every task ends")


class Until(Strict):
    max_virtual_seconds: float = Field(default=6 * 3600.0, gt=0)


class ExploreSpec(Strict):
    """What ``kubesim explore`` draws for this world (``kubesim run`` ignores it)."""

    kinds: list[str] = Field(default_factory=list, description="fault kinds to draw from (empty: all; "
                             "kubesim explore --list-kinds names them)")
    horizon: float = Field(default=300.0, gt=0, description="faults strike within this many virtual seconds")
    max_faults: int = Field(default=4, ge=1, le=20, description="faults per drawn schedule at most")


class Scenario(Strict):
    name: str | None = None
    description: str = ""
    seed: int = 0
    markers: list[str] = Field(default_factory=list, description="pytest markers, e.g. slow, scale")
    cluster: ClusterSpec = ClusterSpec()
    under_test: Literal["kubesim", "airflow"] = Field(
        default="kubesim", description="the executor under test: kubesim's own, or upstream Airflow's unmodified "
                                       "KubernetesExecutor (the cncf-kubernetes provider; needs the airflow extra)")
    executor: dict[str, Any] = Field(default_factory=dict, description="any [kubernetes_executor] option")
    scheduler: SchedulerSpec = SchedulerSpec()
    workload: WorkloadSpec = WorkloadSpec()
    faults: list[Fault] = Field(default_factory=list)
    expect: Expect = Expect()
    until: Until = Until()
    explore: ExploreSpec = ExploreSpec()
    matrix: list[dict[str, Any]] = Field(default_factory=list,
                                         description="variants: each maps dotted keys to values")

    @field_validator("executor")
    @classmethod
    def valid_executor_config(cls, options):
        try:
            ExecutorConfig.from_mapping(options)
        except ConfigError as exc:
            raise ValueError(str(exc)) from exc  # the loader finds the bad option's line via the cause
        return options

    def executor_config(self) -> ExecutorConfig:
        return ExecutorConfig.from_mapping(self.executor)


def json_schema() -> dict:
    schema = Scenario.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "kubesim scenario"
    return schema
