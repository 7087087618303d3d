"""Executor settings: every ``[kubernetes_executor]`` option, plus the ``[core]`` and ``[scheduler]``
options the executor reads and the simulation's watcher settings.

Defaults are current upstream Airflow's. Values may be typed Python values or the strings an
airflow.cfg section holds ("True", "32", comma-separated lists, JSON objects).
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Mapping
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

DEFAULT_FATAL_CONTAINER_STATE_REASONS = [
    "CreateContainerConfigError", "ErrImagePull", "CreateContainerError", "ImageInspectError",
    "InvalidImageName"]


class ConfigError(ValueError):
    """Invalid executor configuration; the message lists every bad option and how to fix it."""


# -- parsing of the string forms an airflow.cfg file uses -------------------------------------

def _split_commas(value: Any) -> Any:
    if isinstance(value, str):
        return [item.strip() for item in value.split(",") if item.strip()]
    return value


def _parse_json_object(value: Any) -> Any:
    if not isinstance(value, str):
        return value
    if not value.strip():
        return {}
    try:
        parsed = json.loads(value)
    except json.JSONDecodeError as error:
        raise ValueError(f"not valid JSON ({error})") from None
    if not isinstance(parsed, dict):
        raise ValueError("JSON must be an object ({...}), not " + type(parsed).__name__)
    return parsed


def _parse_request_args(value: Any) -> Any:
    args = _parse_json_object(value)
    # JSON has no tuples, but the client only treats a 2-tuple as (connect, read) timeouts.
    if isinstance(args, dict) and isinstance(args.get("_request_timeout"), list):
        args = {**args, "_request_timeout": tuple(args["_request_timeout"])}
    return args


def _blank_to_none(value: Any) -> Any:
    return None if isinstance(value, str) and not value.strip() else value


CommaList = Annotated[list[str], BeforeValidator(_split_commas)]
JsonObject = Annotated[dict[str, Any], BeforeValidator(_parse_json_object)]
RequestArgs = Annotated[dict[str, Any], BeforeValidator(_parse_request_args)]
OptionalText = Annotated[str | None, BeforeValidator(_blank_to_none)]
Seconds = Annotated[float, Field(gt=0)]


def _option(default: Any, expected: str, **constraints: Any) -> Any:
    # The description doubles as the "expected" part of ConfigError messages.
    return Field(default, description=expected, **constraints)


class ExecutorConfig(BaseModel):
    """Immutable executor settings; build with ``from_mapping`` (or keywords) and ``replace``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # [kubernetes_executor]: where and how pods are created
    namespace: str = _option("default", "a namespace name", min_length=1)
    multi_namespace_mode: bool = _option(False, "true or false")
    multi_namespace_mode_namespace_list: CommaList = _option(
        [], "a list of namespaces or a comma-separated string (empty: all namespaces)")
    worker_pods_creation_batch_size: int = _option(
        1, "an integer >= 1, the pods created per scheduler loop", ge=1)
    async_pod_creation: bool = _option(False, "true or false")
    pod_creation_max_concurrency: int = _option(0, "an integer >= 0 (0: the batch size)", ge=0)
    task_publish_max_retries: int = _option(
        0, "an integer >= -1, re-queues after a retryable create error (-1: unlimited)", ge=-1)
    pod_launch_failure_retries: int = _option(
        1, "an integer >= -1, re-launches of a pod that failed before the task started "
           "(-1: unlimited)", ge=-1)
    pod_launch_failure_excluded_container_reasons: CommaList = _option(
        ["Error"], "a list of container reasons or a comma-separated string")
    worker_pod_pending_fatal_container_state_reasons: CommaList = _option(
        DEFAULT_FATAL_CONTAINER_STATE_REASONS,
        "a list of container waiting reasons or a comma-separated string")
    pod_template_file: OptionalText = _option(None, "a path to a pod YAML file, or empty")
    worker_container_repository: OptionalText = _option(None, "an image repository, or empty")
    worker_container_tag: OptionalText = _option(None, "an image tag, or empty")

    # [kubernetes_executor]: what happens to finished pods
    delete_worker_pods: bool = _option(True, "true or false")
    delete_worker_pods_on_failure: bool = _option(False, "true or false")
    delete_option_kwargs: JsonObject = _option(
        {}, 'V1DeleteOptions fields as a dict or JSON object, e.g. {"grace_period_seconds": 10}')

    # [kubernetes_executor]: API client settings, accepted so that a real airflow.cfg section
    # loads; the simulated cluster ignores the connection ones.
    kube_client_request_args: RequestArgs = _option(
        {}, 'extra API call kwargs as a dict or JSON object, e.g. {"_request_timeout": [5, 60]}')
    api_client_retry_configuration: JsonObject = _option(
        {}, "urllib3 Retry kwargs as a dict or JSON object")
    enable_tcp_keepalive: bool = _option(True, "true or false")
    tcp_keep_idle: int = _option(120, "an integer >= 1 (seconds)", ge=1)
    tcp_keep_intvl: int = _option(30, "an integer >= 1 (seconds)", ge=1)
    tcp_keep_cnt: int = _option(6, "an integer >= 1", ge=1)
    in_cluster: bool = _option(True, "true or false")
    cluster_context: OptionalText = _option(None, "a kubeconfig context name, or empty")
    config_file: OptionalText = _option(None, "a kubeconfig path, or empty")
    verify_ssl: bool = _option(True, "true or false")
    ssl_ca_cert: OptionalText = _option(None, "a CA certificate path, or empty")
    logs_task_metadata: bool = _option(False, "true or false")
    running_pod_log_lines: int = _option(100, "an integer >= 0", ge=0)

    # Airflow 2.2-era periodic checks (removed upstream, kept here as options)
    worker_pods_pending_timeout: Seconds = _option(300, "seconds > 0 a pod may stay Pending")
    worker_pods_pending_timeout_check_interval: Seconds = _option(120, "seconds > 0")
    worker_pods_pending_timeout_batch_size: int = _option(
        100, "an integer >= 1, pending pods listed per check", ge=1)
    worker_pods_queued_check_interval: Seconds = _option(60, "seconds > 0")

    # [core] and [scheduler] options the executor reads
    parallelism: int = _option(32, "an integer >= 0, running tasks at most (0: unlimited)", ge=0)
    orphaned_tasks_check_interval: Seconds = _option(300, "seconds > 0")
    task_queued_timeout: Seconds = _option(600, "seconds > 0 a task may stay queued")
    task_queued_timeout_check_interval: Seconds = _option(120, "seconds > 0")
    num_stuck_in_queued_retries: int = _option(
        2, "an integer >= 0, re-queues of a task stuck in queued before it fails", ge=0)
    scheduler_health_check_threshold: Seconds = _option(30, "seconds > 0")

    # Watcher defaults, used unless kube_client_request_args sets them
    watch_timeout_seconds: int = _option(
        3600, "an integer >= 1, seconds before the server ends a watch", ge=1)
    watch_request_timeout: Seconds = _option(30, "seconds > 0 a watch may stay silent")
    # Speed option: hand watch events on as dicts instead of deserialized V1Pod models.
    raw_watch_events: bool = _option(False, "true or false")

    def __init__(self, **options: Any) -> None:
        try:
            super().__init__(**options)
        except ValidationError as error:
            raise ConfigError(_explain(error, options)) from error

    @classmethod
    def from_mapping(cls, options: Mapping[str, Any]) -> ExecutorConfig:
        """Settings from a dict such as an airflow.cfg section; raises ``ConfigError``."""
        if not isinstance(options, Mapping):
            raise ConfigError(f"executor configuration must be a mapping of option names to "
                              f"values, got {type(options).__name__}: {options!r}")
        return cls(**{str(name): value for name, value in options.items()})

    def replace(self, **changes: Any) -> ExecutorConfig:
        """A copy with ``changes`` applied and validated again."""
        return type(self)(**{**self.model_dump(), **changes})

    def watch_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for ``Watch.stream``: the watch timeouts, overridden by
        ``kube_client_request_args``."""
        return {"timeout_seconds": self.watch_timeout_seconds,
                "_request_timeout": self.watch_request_timeout,
                **self.kube_client_request_args}

    @property
    def worker_image(self) -> str | None:
        """``repository:tag`` if a repository is configured; it replaces the template's image."""
        repository, tag = self.worker_container_repository, self.worker_container_tag
        if not repository:
            return None
        return f"{repository}:{tag}" if tag else repository


# -- readable errors --------------------------------------------------------------------------

def _explain(error: ValidationError, options: Mapping[str, Any]) -> str:
    problems = [_explain_one(detail, options) for detail in error.errors()]
    plural = "s" if len(problems) > 1 else ""
    return f"invalid executor configuration ({len(problems)} problem{plural}):\n" + "\n".join(problems)


def _explain_one(detail: Mapping[str, Any], options: Mapping[str, Any]) -> str:
    name, *inner = detail["loc"] or ("<options>",)
    # A bad list item is shown on its own, e.g. "multi_namespace_mode_namespace_list[1] = None".
    where = str(name) + "".join(f"[{step}]" for step in inner)
    value = detail["input"] if inner else options.get(name, detail["input"])
    if detail["type"] == "extra_forbidden":
        guesses = difflib.get_close_matches(str(name), ExecutorConfig.model_fields, n=1)
        fix = f"rename it to {guesses[0]!r}" if guesses else "remove it or check its spelling"
        return f"  {where} = {value!r}\n    problem:  unknown option\n    fix:      {fix}"
    field = ExecutorConfig.model_fields[name]
    problem = str(detail["ctx"]["error"]) if detail["type"] == "value_error" else detail["msg"]
    return (f"  {where} = {value!r}\n    problem:  {problem}\n    expected: {field.description}\n"
            f"    fix:      set such a value, or remove the option to use the default {field.default!r}")
