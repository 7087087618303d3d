"""Worker pods: names, labels, annotations, templates and the merge that builds each pod.

Pods are ``kubernetes.client.V1Pod`` models. Merging works on API-form dicts (camelCase keys, as
in a pod YAML) because both client generations (classic models and pydantic models) serialize
and deserialize those the same way.
"""

from __future__ import annotations

import functools
import hashlib
import os
import random
import re
import string
import unicodedata
from collections.abc import Callable, Mapping
from typing import Any

import yaml
from kubernetes.client import ApiClient, V1Pod

try:
    from orjson import dumps as dump_json
except ImportError:  # pragma: no cover - orjson is a dependency; the executor runs without it
    import json

    def dump_json(value: Any) -> bytes:
        return json.dumps(value, separators=(",", ":"), allow_nan=False).encode()

from .keys import CommandType, TaskInstanceKey

POD_NAME_MAX_LENGTH = 63  # pod names double as hostnames, which Linux caps at 64 - 1
LABEL_VALUE_MAX_LENGTH = 63
SUFFIX_LENGTH = 8
DEFAULT_WORKER_IMAGE = "apache/airflow:2.10.0"
BASE_CONTAINER = "base"  # the container that runs the task command

WORKER_LABEL = "airflow-worker"  # the scheduler job that owns the pod; the watch selects on it
EXECUTOR_LABEL = "kubernetes_executor"
EXECUTOR_POD_ENV = "AIRFLOW_IS_K8S_EXECUTOR_POD"

PodMutationHook = Callable[[V1Pod], "V1Pod | None"]


class PodTemplateError(ValueError):
    """The pod template file is missing or does not describe a usable pod."""


class PodReconciliationError(ValueError):
    """The base pod, the executor's fields and ``pod_override`` could not be merged into a pod."""


class PodMutationHookError(ValueError):
    """The pod mutation hook failed; ``__cause__`` is what it raised."""


class InvalidExecutorConfig(ValueError):
    """A task's ``executor_config`` is not ``None``, ``{}`` or ``{"pod_override": ...}``."""


# -- names --------------------------------------------------------------------------------------

_SUFFIX_ALPHABET = string.ascii_lowercase + string.digits
_SUFFIX = re.compile(f"[a-z0-9]{{{SUFFIX_LENGTH}}}")


def random_suffix(rng: random.Random) -> str:
    """The random part of a pod name, drawn from an injected RNG so runs are reproducible."""
    return "".join(rng.choices(_SUFFIX_ALPHABET, k=SUFFIX_LENGTH))


def create_unique_id(dag_id: str, task_id: str, rng_suffix: str) -> str:
    """A pod name: ``{dag_id}-{task_id}`` slugified and cut so that ``-{rng_suffix}`` fits in
    63 characters. Always a valid DNS-1123 label (hence subdomain)."""
    if not _SUFFIX.fullmatch(rng_suffix):
        raise ValueError(f"pod name suffix {rng_suffix!r} must be {SUFFIX_LENGTH} characters "
                         f"of [a-z0-9]; draw it with random_suffix(rng)")
    base = _slugify(f"{dag_id}-{task_id}") or "task"
    base = base[:POD_NAME_MAX_LENGTH - SUFFIX_LENGTH - 1].strip("-.")
    return f"{base}-{rng_suffix}"


def _slugify(text: str) -> str:
    # Accented letters lose their accents; any other run outside [a-z0-9] becomes one '-'.
    decomposed = unicodedata.normalize("NFKD", text)
    letters = "".join(char for char in decomposed if not unicodedata.combining(char)).lower()
    return re.sub(r"[^a-z0-9]+", "-", letters).strip("-")


# -- labels and annotations -------------------------------------------------------------------

_is_safe_label_value = re.compile(r"(?:[A-Za-z0-9](?:[-A-Za-z0-9_.]*[A-Za-z0-9])?)?").fullmatch


def make_safe_label_value(value: str) -> str:
    """``value`` as a valid label value (at most 63 characters). A value that had to change gets
    a hash of the original appended, so distinct values stay distinct."""
    if len(value) <= LABEL_VALUE_MAX_LENGTH and _is_safe_label_value(value):
        return value  # the common case: nothing to strip
    safe = re.sub(r"[^-A-Za-z0-9_.]", "", value)
    safe = re.sub(r"^[^A-Za-z0-9]+|[^A-Za-z0-9]+$", "", safe)
    if safe == value and len(safe) <= LABEL_VALUE_MAX_LENGTH:
        return safe
    digest = hashlib.md5(value.encode("utf-8", "surrogatepass"), usedforsecurity=False).hexdigest()[:9]
    # Nothing usable left: the digest alone, since a value must not start with '-'.
    return f"{safe[:LABEL_VALUE_MAX_LENGTH - 10]}-{digest}" if safe else digest


def build_labels(key: TaskInstanceKey, scheduler_job_id: object) -> dict[str, str]:
    """Labels that identify a worker pod and select it for its scheduler's watch."""
    values = {"dag_id": key.dag_id, "task_id": key.task_id, "run_id": key.run_id,
              "try_number": key.try_number, WORKER_LABEL: scheduler_job_id}
    if key.map_index >= 0:
        values["map_index"] = key.map_index
    labels = {name: make_safe_label_value(str(value)) for name, value in values.items()}
    return {**labels, EXECUTOR_LABEL: "True"}


def build_annotations(key: TaskInstanceKey) -> dict[str, str]:
    """The task instance key, unaltered (labels may be hashed); ``annotations_to_key`` reads it."""
    annotations = {"dag_id": key.dag_id, "task_id": key.task_id,
                   "try_number": str(key.try_number), "run_id": key.run_id}
    if key.map_index >= 0:
        annotations["map_index"] = str(key.map_index)
    return annotations


_KEY_ANNOTATIONS = ("dag_id", "task_id", "run_id", "try_number")


def annotations_to_key(annotations: Mapping[str, str] | None) -> TaskInstanceKey:
    """The key ``build_annotations`` stored; ``ValueError`` naming what is missing or malformed."""
    annotations = annotations or {}
    missing = [name for name in _KEY_ANNOTATIONS if name not in annotations]
    if missing:
        raise ValueError(f"pod annotations lack {', '.join(missing)} (found {dict(annotations)!r}); "
                         f"only pods built by this executor carry {', '.join(_KEY_ANNOTATIONS)}")
    try:
        try_number = int(annotations["try_number"])
        map_index = int(annotations.get("map_index", -1))
    except ValueError:
        raise ValueError(f"pod annotations try_number={annotations['try_number']!r} and "
                         f"map_index={annotations.get('map_index')!r} must be integers") from None
    return TaskInstanceKey(annotations["dag_id"], annotations["task_id"], annotations["run_id"],
                           try_number, map_index)


# -- pods as API-form dicts -------------------------------------------------------------------

_POD_FIELDS = {"apiVersion", "kind", "metadata", "spec", "status"}


@functools.cache
def _api_client() -> ApiClient:
    return ApiClient()


def pod_to_dict(pod: V1Pod | Mapping[str, Any]) -> dict[str, Any]:
    """A new API-form dict (camelCase keys, no ``None`` fields) for a pod model or dict."""
    return _api_client().sanitize_for_serialization(pod)


def pod_from_dict(data: Mapping[str, Any]) -> V1Pod:
    """A ``V1Pod`` from an API-form dict; ``ValueError`` if it is not pod-shaped."""
    if not isinstance(data, Mapping):
        raise ValueError(f"a pod must be a mapping, got {type(data).__name__}")
    unknown = sorted(set(data) - _POD_FIELDS)
    if unknown:
        raise ValueError(f"unknown pod field(s) {', '.join(unknown)}; a pod has "
                         f"{', '.join(sorted(_POD_FIELDS))}")
    try:
        # The one deserializer both client generations share; the public ``deserialize``
        # differs between them and wants an HTTP response.
        return _api_client()._ApiClient__deserialize(dict(data), "V1Pod")
    except (TypeError, AttributeError, KeyError) as error:  # bad values, classic models
        raise ValueError(str(error)) from error


# -- templates ----------------------------------------------------------------------------------

def default_pod_template(image: str | None = None) -> V1Pod:
    """The base pod used without a template file: one ``base`` container, never restarted."""
    return pod_from_dict({
        "apiVersion": "v1", "kind": "Pod", "metadata": {},
        "spec": {"containers": [{"name": BASE_CONTAINER, "image": image or DEFAULT_WORKER_IMAGE}],
                 "restartPolicy": "Never"}})


def load_pod_template(path: str | os.PathLike[str] | None, image: str | None = None) -> V1Pod:
    """The base pod from a YAML file, or ``default_pod_template`` when ``path`` is None.
    ``image`` (e.g. ``ExecutorConfig.worker_image``) replaces the ``base`` container's image."""
    if image is not None and not isinstance(image, str):
        raise TypeError(f"image must be an image name such as config.worker_image, "
                        f"got {type(image).__name__}")
    if path is None:
        return default_pod_template(image)
    data = _read_template(path)
    if image:
        data["spec"]["containers"][0]["image"] = image
    try:
        return pod_from_dict(data)
    except ValueError as error:
        raise PodTemplateError(f"pod template file {os.fspath(path)!r} is not a valid pod: "
                               f"{error}") from error


def _read_template(path: str | os.PathLike[str]) -> dict[str, Any]:
    def fail(problem: str) -> PodTemplateError:
        return PodTemplateError(f"pod template file {os.fspath(path)!r} {problem}")

    try:
        with open(path, encoding="utf-8") as file:
            data = yaml.safe_load(file)
    except OSError as error:
        raise fail(f"cannot be read ({error.strerror}); point pod_template_file at an existing "
                   f"YAML file or leave it empty for the default pod") from error
    except (yaml.YAMLError, UnicodeDecodeError) as error:
        raise fail(f"is not valid YAML: {error}") from error
    if not isinstance(data, dict):
        raise fail(f"must hold one Pod manifest (a YAML mapping), got {type(data).__name__}")
    if data.get("kind", "Pod") != "Pod":
        raise fail(f"describes a {data['kind']!r}; it must describe a Pod (kind: Pod)")
    containers = (data.get("spec") or {}).get("containers")
    if not containers or not isinstance(containers, list):
        raise fail("has no spec.containers; add a container named 'base' to run the task")
    if not isinstance(containers[0], dict) or containers[0].get("name") != BASE_CONTAINER:
        raise fail("must have the container named 'base' first in spec.containers; the task "
                   "command runs in it")
    return data


# -- per-task pods ------------------------------------------------------------------------------

def executor_config_pod_override(executor_config: object) -> V1Pod | None:
    """The ``pod_override`` of a task's ``executor_config`` (a V1Pod or an API-form pod dict).
    ``pod_template_file`` is allowed beside it, as upstream allows; it is read elsewhere.

    A pod dict is parsed once per distinct content (``parsed_overrides``): every task carrying
    an equal dict gets the same V1Pod, which is only read (``construct_pod`` copies from it)."""
    if executor_config is None:
        return None
    if not isinstance(executor_config, Mapping):
        raise InvalidExecutorConfig(
            f"executor_config must be a dict such as {{'pod_override': V1Pod(...)}}, "
            f"got {type(executor_config).__name__}: {executor_config!r}")
    unknown = sorted(map(str, set(executor_config) - {"pod_override", "pod_template_file"}))
    if unknown:
        raise InvalidExecutorConfig(
            f"executor_config has unknown key(s) {', '.join(unknown)}; "
            f"the allowed keys are pod_override and pod_template_file")
    override = executor_config.get("pod_override")
    if override is None or isinstance(override, V1Pod):
        return override
    if not isinstance(override, Mapping):
        raise InvalidExecutorConfig(f"executor_config['pod_override'] must be a V1Pod or a pod "
                                    f"dict, got {type(override).__name__}: {override!r}")
    return parsed_overrides.parse(override)


class ParsedOverrides:
    """``pod_override`` dicts parsed into V1Pods, once per distinct content.

    A backfill queues thousands of tries with the same ``executor_config``; parsing each into
    its own V1Pod costs about 50 us and 9 KB a try. Entries are keyed by the dict's content (its
    JSON bytes, which keep 1, 1.0 and true apart), so an equal dict built anew hits and a dict
    changed after it was parsed misses. At most ``size`` are kept, the oldest forgotten first.
    Invalid overrides are not kept: they fail their task each time.
    """

    def __init__(self, size: int = 256):
        self.size = size
        self._pods: dict[object, V1Pod] = {}
        self.parsed = 0  # how many dicts were actually parsed (the rest came from here)

    def parse(self, override: Mapping[str, Any]) -> V1Pod:
        try:
            key = json_key(override)
        except TypeError:  # not JSON-like (a model inside, say): parse it, keep nothing
            return self._parse(override)
        pod = self._pods.get(key)
        if pod is None:
            pod = self._pods[key] = self._parse(override)
            if len(self._pods) > self.size:
                del self._pods[next(iter(self._pods))]
        return pod

    def _parse(self, override: Mapping[str, Any]) -> V1Pod:
        self.parsed += 1
        try:
            return pod_from_dict(override)
        except ValueError as error:
            raise InvalidExecutorConfig(f"executor_config['pod_override'] is not a valid pod: "
                                        f"{error}") from error


parsed_overrides = ParsedOverrides()


def json_key(value: Any) -> bytes:
    """The content of an API-form value as JSON bytes (dict order kept); TypeError if it is
    not JSON-like."""
    try:
        return dump_json(value)
    except (TypeError, ValueError) as error:  # orjson raises its TypeError subclass
        raise TypeError(str(error)) from None


def construct_pod(key: TaskInstanceKey, command: CommandType, scheduler_job_id: object,
                  namespace: str, pod_id: str, base_pod: V1Pod,
                  pod_override: V1Pod | Mapping[str, Any] | None = None,
                  mutation_hook: PodMutationHook | None = None) -> V1Pod:
    """The worker pod for one task attempt: ``base_pod`` <- the executor's fields <-
    ``pod_override``, then ``mutation_hook``. ``base_pod`` is left unchanged."""
    dynamic = {
        "metadata": {"name": pod_id, "namespace": namespace,
                     "labels": build_labels(key, scheduler_job_id),
                     "annotations": build_annotations(key)},
        "spec": {"containers": [{"name": BASE_CONTAINER, "args": list(command),
                                 "env": [{"name": EXECUTOR_POD_ENV, "value": "True"}]}]},
    }
    try:
        merged = merge_pod_dicts(merge_pod_dicts(pod_to_dict(base_pod), dynamic),
                                 pod_to_dict(pod_override) if pod_override is not None else {})
        pod = pod_from_dict(merged)
    except Exception as error:
        raise PodReconciliationError(f"cannot build the pod for {key}: the pod template and "
                                     f"pod_override do not merge: {error}") from error
    return _apply_mutation_hook(pod, mutation_hook) if mutation_hook else pod


def _apply_mutation_hook(pod: V1Pod, hook: PodMutationHook) -> V1Pod:
    name = getattr(hook, "__qualname__", repr(hook))
    try:
        result = hook(pod)
    except Exception as error:
        raise PodMutationHookError(f"pod mutation hook {name} failed on pod {pod.metadata.name}: "
                                   f"{type(error).__name__}: {error}") from error
    if result is not None and not isinstance(result, V1Pod):
        raise PodMutationHookError(f"pod mutation hook {name} returned {type(result).__name__}; "
                                   f"it must mutate the pod in place or return a V1Pod")
    return pod if result is None else result


# -- merging ------------------------------------------------------------------------------------

# Lists of named objects: an override entry updates the base entry of the same name (two
# containers or volumes with one name would be rejected by the API server).
_MERGED_BY_NAME = {"containers", "initContainers", "volumes"}
# Lists an override extends, as upstream does.
_APPENDED = {"env", "envFrom", "volumeMounts", "ports", "imagePullSecrets", "tolerations"}


def merge_pod_dicts(base: Any, override: Any, field: str = "") -> Any:
    """``override`` laid over ``base`` (API-form dicts): mappings merge key by key, ``None``
    keeps the base value, lists follow the tables above, anything else is replaced."""
    if override is None:
        return base
    if isinstance(base, dict) and isinstance(override, dict):
        return {**base, **{name: merge_pod_dicts(base.get(name), value, name)
                           for name, value in override.items()}}
    if isinstance(base, list) and isinstance(override, list):
        if field in _MERGED_BY_NAME:
            return _merge_by_name(base, override, field)
        if field in _APPENDED:
            return base + override
    return override


def _merge_by_name(base: list[Any], override: list[Any], field: str) -> list[Any]:
    merged: dict[str, Any] = {}
    for entry in base + override:
        name = entry.get("name") if isinstance(entry, dict) else None
        if not name:
            raise ValueError(f"every entry of {field} needs a name, got {entry!r}")
        merged[name] = merge_pod_dicts(merged.get(name), entry)
    return list(merged.values())
