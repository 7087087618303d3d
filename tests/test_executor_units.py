"""Unit tests of the executor's pure parts: keys, configuration and pod generation."""

import hashlib
import random
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st
from kubernetes.client import ApiClient, V1Container, V1EnvVar, V1ObjectMeta, V1Pod, V1PodSpec

from executor.config import ConfigError, ExecutorConfig
from executor.keys import InvalidCommand, State, TaskInstanceKey, is_task_run_command
from executor.podgen import (
    DEFAULT_WORKER_IMAGE,
    POD_NAME_MAX_LENGTH,
    InvalidExecutorConfig,
    PodMutationHookError,
    PodReconciliationError,
    PodTemplateError,
    annotations_to_key,
    build_annotations,
    build_labels,
    construct_pod,
    create_unique_id,
    executor_config_pod_override,
    load_pod_template,
    make_safe_label_value,
    random_suffix,
)
from fakecluster.api.validation import dns1123_subdomain_errors, label_value_errors, validate_pod_metadata

KEY = TaskInstanceKey("etl", "load", "manual__2024-01-01T00:00:00+00:00", try_number=2)
COMMAND = ["airflow", "tasks", "run", "etl", "load", "manual__2024-01-01T00:00:00+00:00"]
SUFFIX = "abc12345"
LABEL_VALUE = re.compile(r"(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?")


def as_dict(pod):
    return ApiClient().sanitize_for_serialization(pod)


def build(base_pod=None, **kwargs):
    return construct_pod(KEY, COMMAND, 7, "work", "etl-load-abc12345",
                         base_pod or load_pod_template(None), **kwargs)


def base_container(pod):
    return next(c for c in pod.spec.containers if c.name == "base")


# -- keys ---------------------------------------------------------------------------------------

def test_key_primary_drops_try_number_and_with_try_number_replaces_it():
    later = KEY.with_try_number(3)
    assert later.try_number == 3 and later.primary == KEY.primary
    assert KEY.primary == ("etl", "load", KEY.run_id, -1)


def test_states_use_airflow_spellings_and_adopted_is_internal():
    assert (State.QUEUED, State.SUCCESS, State.UP_FOR_RETRY, State.NONE) == (
        "queued", "success", "up_for_retry", None)
    assert State.ADOPTED == "adopted"


@pytest.mark.parametrize("command, expected", [
    (COMMAND, True), (tuple(COMMAND), True), (["airflow", "tasks", "test", "x"], False),
    (["airflow", "tasks"], False), ("airflow tasks run", False), (None, False)])
def test_only_airflow_tasks_run_commands_are_task_commands(command, expected):
    assert is_task_run_command(command) is expected


def test_invalid_command_names_the_command_and_the_expected_prefix():
    message = str(InvalidCommand(["bash", "-c", "true"]))
    assert "['bash', '-c', 'true']" in message and "['airflow', 'tasks', 'run']" in message


# -- pod names ----------------------------------------------------------------------------------

@pytest.mark.parametrize("dag_id, task_id, expected", [
    ("etl", "load", "etl-load-abc12345"),
    ("My_DAG", "Task.Name", "my-dag-task-name-abc12345"),
    ("café", "naïve—task", "cafe-naive-task-abc12345"),
    ("", "", "task-abc12345"),
    ("日本", "!!!", "task-abc12345"),
    ("d" * 50, "-" + "t" * 50, "d" * 50 + "-ttt-abc12345"),
])
def test_pod_names_are_short_valid_slugs_ending_in_the_suffix(dag_id, task_id, expected):
    assert create_unique_id(dag_id, task_id, SUFFIX) == expected


def test_a_long_name_is_cut_before_a_trailing_dash():
    name = create_unique_id("a" * 53, "b", SUFFIX)  # the cut lands right after "a"*53 + "-"
    assert name == "a" * 53 + "-abc12345" and len(name) == 62


@given(st.text(), st.text(), st.randoms(use_true_random=False))
def test_any_ids_give_a_valid_dns1123_name_of_at_most_63_chars(dag_id, task_id, rng):
    name = create_unique_id(dag_id, task_id, random_suffix(rng))
    assert len(name) <= POD_NAME_MAX_LENGTH
    assert dns1123_subdomain_errors(name) == []
    assert "." not in name  # also a valid hostname label


def test_random_suffix_is_reproducible_from_the_rng():
    first, again = random_suffix(random.Random(4)), random_suffix(random.Random(4))
    assert first == again and re.fullmatch("[a-z0-9]{8}", first)
    assert random_suffix(random.Random(5)) != first


@pytest.mark.parametrize("suffix", ["short", "ABCDEFGH", "abc-1234", "abcdefghi"])
def test_a_bad_suffix_is_rejected(suffix):
    with pytest.raises(ValueError, match="random_suffix"):
        create_unique_id("d", "t", suffix)


# -- label values -------------------------------------------------------------------------------

@given(st.text())
def test_safe_label_values_are_always_valid(value):
    safe = make_safe_label_value(value)
    assert label_value_errors(safe) == [] and len(safe) <= 63
    assert make_safe_label_value(safe) == safe


@given(st.from_regex(LABEL_VALUE, fullmatch=True).filter(lambda v: len(v) <= 63))
def test_already_safe_values_are_kept(value):
    assert make_safe_label_value(value) == value


@pytest.mark.parametrize("value", ["manual__2024-01-01T00:00:00+00:00", "x" * 64, "-lead", "!!!"])
def test_changed_values_get_a_hash_of_the_original(value):
    digest = hashlib.md5(value.encode()).hexdigest()[:9]
    safe = make_safe_label_value(value)
    assert safe.endswith(digest) and safe != value and len(safe) <= 63


def test_values_that_sanitize_alike_stay_distinct():
    assert make_safe_label_value("a+b") != make_safe_label_value("a/b")


# -- labels and annotations ---------------------------------------------------------------------

def test_labels_identify_the_task_and_the_scheduler():
    labels = build_labels(KEY, 7)
    assert labels["dag_id"] == "etl" and labels["try_number"] == "2"
    assert labels["airflow-worker"] == "7" and labels["kubernetes_executor"] == "True"
    assert labels["run_id"] == make_safe_label_value(KEY.run_id)
    assert "map_index" not in labels
    assert build_labels(KEY._replace(map_index=0), 7)["map_index"] == "0"


@pytest.mark.parametrize("key", [
    KEY, KEY._replace(map_index=3), TaskInstanceKey("ünï", "t" * 300, "run/with spaces", 10, 0)])
def test_annotations_round_trip_to_the_key(key):
    assert annotations_to_key(build_annotations(key)) == key


def test_annotations_hold_map_index_only_when_mapped():
    assert "map_index" not in build_annotations(KEY)
    assert build_annotations(KEY._replace(map_index=2))["map_index"] == "2"


def test_missing_annotations_are_named():
    annotations = build_annotations(KEY)
    del annotations["try_number"], annotations["run_id"]
    with pytest.raises(ValueError, match="lack run_id, try_number"):
        annotations_to_key(annotations)
    with pytest.raises(ValueError, match="lack dag_id"):
        annotations_to_key(None)


def test_a_non_numeric_try_number_is_reported():
    with pytest.raises(ValueError, match="try_number='two'"):
        annotations_to_key({**build_annotations(KEY), "try_number": "two"})


# -- configuration ------------------------------------------------------------------------------

UPSTREAM_DEFAULTS = {
    "namespace": "default", "multi_namespace_mode": False, "multi_namespace_mode_namespace_list": [],
    "worker_pods_creation_batch_size": 1, "task_publish_max_retries": 0,
    "delete_worker_pods": True, "delete_worker_pods_on_failure": False,
    "delete_option_kwargs": {}, "kube_client_request_args": {},
    "worker_pod_pending_fatal_container_state_reasons": [
        "CreateContainerConfigError", "ErrImagePull", "CreateContainerError", "ImageInspectError",
        "InvalidImageName"],
    "pod_template_file": None, "worker_container_repository": None, "worker_container_tag": None,
    "pod_launch_failure_retries": 1, "pod_launch_failure_excluded_container_reasons": ["Error"],
    "async_pod_creation": False, "pod_creation_max_concurrency": 0,
    "enable_tcp_keepalive": True, "tcp_keep_idle": 120, "tcp_keep_intvl": 30, "tcp_keep_cnt": 6,
    "worker_pods_pending_timeout": 300, "worker_pods_pending_timeout_check_interval": 120,
    "worker_pods_pending_timeout_batch_size": 100, "worker_pods_queued_check_interval": 60,
    "parallelism": 32, "orphaned_tasks_check_interval": 300, "task_queued_timeout": 600,
    "scheduler_health_check_threshold": 30,
    "watch_timeout_seconds": 3600, "watch_request_timeout": 30, "raw_watch_events": False,
}


def test_defaults_are_upstreams():
    defaults = ExecutorConfig().model_dump()
    assert {name: defaults[name] for name in UPSTREAM_DEFAULTS} == UPSTREAM_DEFAULTS


def test_defaults_are_not_shared_between_instances():
    first, second = ExecutorConfig(), ExecutorConfig()
    assert first.kube_client_request_args is not second.kube_client_request_args


def test_an_unknown_option_is_named_with_a_suggestion():
    with pytest.raises(ConfigError) as raised:
        ExecutorConfig.from_mapping({"worker_pods_creation_batchsize": 5})
    assert "worker_pods_creation_batchsize = 5" in str(raised.value)
    assert "unknown option" in str(raised.value)
    assert "rename it to 'worker_pods_creation_batch_size'" in str(raised.value)


@pytest.mark.parametrize("option, value, expected", [
    ("worker_pods_creation_batch_size", 0, "an integer >= 1"),
    ("parallelism", -1, "0: unlimited"),
    ("task_publish_max_retries", -2, "-1: unlimited"),
    ("pod_launch_failure_retries", "often", "an integer >= -1"),
    ("watch_request_timeout", 0, "seconds > 0"),
    ("kube_client_request_args", "{not json", "dict or JSON object"),
    ("delete_option_kwargs", "[1, 2]", "dict or JSON object"),
])
def test_a_bad_value_is_reported_with_field_value_expectation_and_fix(option, value, expected):
    with pytest.raises(ConfigError) as raised:
        ExecutorConfig.from_mapping({option: value})
    message = str(raised.value)
    assert f"{option} = {value!r}" in message
    assert expected in message and "use the default" in message


def test_every_bad_option_is_listed_at_once():
    with pytest.raises(ConfigError, match=r"\(3 problems\)") as raised:
        ExecutorConfig.from_mapping({"parallelism": -5, "namespace": "", "colour": "red"})
    assert all(name in str(raised.value) for name in ("parallelism", "namespace", "colour"))


def test_a_bad_list_item_is_pinpointed():
    with pytest.raises(ConfigError, match=r"multi_namespace_mode_namespace_list\[1\] = None"):
        ExecutorConfig.from_mapping({"multi_namespace_mode_namespace_list": ["a", None]})


def test_airflow_cfg_strings_are_accepted():
    config = ExecutorConfig.from_mapping({
        "multi_namespace_mode": "True", "multi_namespace_mode_namespace_list": "team-a, team-b,",
        "parallelism": "0", "kube_client_request_args": '{"_request_timeout": [5, 60]}',
        "delete_option_kwargs": '{"grace_period_seconds": 10}', "pod_template_file": "",
        "worker_pod_pending_fatal_container_state_reasons": "ErrImagePull",
    })
    assert config.multi_namespace_mode is True and config.parallelism == 0
    assert config.multi_namespace_mode_namespace_list == ["team-a", "team-b"]
    assert config.kube_client_request_args == {"_request_timeout": (5, 60)}
    assert config.delete_option_kwargs == {"grace_period_seconds": 10}
    assert config.pod_template_file is None
    assert config.worker_pod_pending_fatal_container_state_reasons == ["ErrImagePull"]


def test_a_non_mapping_is_rejected_clearly():
    with pytest.raises(ConfigError, match="must be a mapping"):
        ExecutorConfig.from_mapping(["namespace"])


def test_replace_validates_again():
    config = ExecutorConfig().replace(worker_pods_creation_batch_size=8)
    assert config.worker_pods_creation_batch_size == 8
    with pytest.raises(ConfigError, match="worker_pods_creation_batch_size"):
        config.replace(worker_pods_creation_batch_size=0)


def test_watch_kwargs_default_to_the_watch_timeouts():
    assert ExecutorConfig().watch_kwargs() == {"timeout_seconds": 3600, "_request_timeout": 30}


def test_request_args_win_in_watch_kwargs():
    config = ExecutorConfig(watch_timeout_seconds=60,
                            kube_client_request_args={"_request_timeout": (3, 9), "pretty": "true"})
    assert config.watch_kwargs() == {"timeout_seconds": 60, "_request_timeout": (3, 9),
                                     "pretty": "true"}


@pytest.mark.parametrize("repository, tag, image", [
    (None, None, None), ("repo/airflow", "2.9", "repo/airflow:2.9"), ("repo/airflow", "", "repo/airflow")])
def test_worker_image_joins_repository_and_tag(repository, tag, image):
    config = ExecutorConfig(worker_container_repository=repository, worker_container_tag=tag)
    assert config.worker_image == image


# -- pod templates ------------------------------------------------------------------------------

TEMPLATE = """\
apiVersion: v1
kind: Pod
metadata:
  labels: {team: data}
spec:
  serviceAccountName: airflow-worker
  containers:
    - name: base
      image: example/airflow:1
      env: [{name: FROM_TEMPLATE, value: "1"}]
"""


def write(tmp_path, text):
    path = tmp_path / "pod.yaml"
    path.write_text(text)
    return path


def test_the_default_template_runs_one_base_container_once():
    pod = load_pod_template(None)
    assert [c.name for c in pod.spec.containers] == ["base"]
    assert pod.spec.containers[0].image == DEFAULT_WORKER_IMAGE
    assert pod.spec.restart_policy == "Never"
    assert load_pod_template(None, image="repo/x:1").spec.containers[0].image == "repo/x:1"


def test_a_template_file_is_loaded_and_the_worker_image_replaces_its_image(tmp_path):
    path = write(tmp_path, TEMPLATE)
    pod = load_pod_template(path)
    assert pod.spec.service_account_name == "airflow-worker"
    assert pod.spec.containers[0].image == "example/airflow:1"
    assert load_pod_template(str(path), image="repo/x:2").spec.containers[0].image == "repo/x:2"


def test_an_image_that_is_not_a_name_is_refused():
    with pytest.raises(TypeError, match="config.worker_image"):
        load_pod_template(None, ExecutorConfig())


@pytest.mark.parametrize("text, problem", [
    (None, "cannot be read"),
    ("spec: [unclosed", "is not valid YAML"),
    ("", "must hold one Pod manifest"),
    ("- a\n- b\n", "must hold one Pod manifest"),
    ("kind: Service\nspec: {}\n", "describes a 'Service'"),
    ("kind: Pod\nspec: {containers: []}\n", "has no spec.containers"),
    ("kind: Pod\nspec: {containers: [{name: worker, image: x}]}\n", "named 'base' first"),
    ("kind: Pod\nspec: {containers: [{name: base}]}\nextra: 1\n", "unknown pod field(s) extra"),
])
def test_bad_templates_name_the_file_and_the_problem(tmp_path, text, problem):
    path = tmp_path / "pod.yaml" if text is None else write(tmp_path, text)
    with pytest.raises(PodTemplateError) as raised:
        load_pod_template(path)
    assert str(path) in str(raised.value) and problem in str(raised.value)


# -- constructing pods --------------------------------------------------------------------------

def test_the_pod_carries_identity_command_and_marker_env():
    pod = build()
    assert (pod.metadata.name, pod.metadata.namespace) == ("etl-load-abc12345", "work")
    assert pod.metadata.labels == build_labels(KEY, 7)
    assert annotations_to_key(pod.metadata.annotations) == KEY
    base = base_container(pod)
    assert base.args == COMMAND and base.image == DEFAULT_WORKER_IMAGE
    assert [(e.name, e.value) for e in base.env] == [("AIRFLOW_IS_K8S_EXECUTOR_POD", "True")]
    assert validate_pod_metadata(as_dict(pod)["metadata"]) == []


def test_awkward_ids_still_give_metadata_the_api_server_accepts():
    key = TaskInstanceKey("Ünïcode DAG/" + "x" * 80, "task id!", "scheduled__2024-01-01T00:00:00+00:00",
                          try_number=1, map_index=12)
    name = create_unique_id(key.dag_id, key.task_id, SUFFIX)
    pod = construct_pod(key, COMMAND, "job 1", "default", name, load_pod_template(None))
    assert validate_pod_metadata(as_dict(pod)["metadata"]) == []


OVERRIDE = V1Pod(
    metadata=V1ObjectMeta(labels={"extra": "yes"}, annotations={"note": "hi"}),
    spec=V1PodSpec(containers=[
        V1Container(name="base", image="custom/image:3", env=[V1EnvVar(name="EXTRA", value="1")]),
        V1Container(name="sidecar", image="busybox")]))


def test_pod_override_merges_field_by_field(tmp_path):
    base_pod = load_pod_template(write(tmp_path, TEMPLATE))
    pod = build(base_pod, pod_override=OVERRIDE)
    base = base_container(pod)
    assert base.image == "custom/image:3" and base.args == COMMAND
    assert [e.name for e in base.env] == ["FROM_TEMPLATE", "AIRFLOW_IS_K8S_EXECUTOR_POD", "EXTRA"]
    assert [c.name for c in pod.spec.containers] == ["base", "sidecar"]
    assert pod.metadata.labels == {"team": "data", **build_labels(KEY, 7), "extra": "yes"}
    assert pod.metadata.annotations["note"] == "hi" and annotations_to_key(pod.metadata.annotations) == KEY
    assert pod.spec.service_account_name == "airflow-worker"


def test_the_base_pod_is_not_changed(tmp_path):
    base_pod = load_pod_template(write(tmp_path, TEMPLATE))
    before = as_dict(base_pod)
    build(base_pod, pod_override=OVERRIDE)
    assert as_dict(base_pod) == before


def test_a_dict_override_works_like_a_model():
    assert as_dict(build(pod_override=as_dict(OVERRIDE))) == as_dict(build(pod_override=OVERRIDE))


def test_an_unmergeable_override_raises_reconciliation_error():
    with pytest.raises(PodReconciliationError, match="containers needs a name") as raised:
        build(pod_override={"spec": {"containers": [{"image": "x"}]}})
    assert isinstance(raised.value.__cause__, ValueError)


def test_the_mutation_hook_may_mutate_in_place_or_return_a_pod():
    def add_label(pod):
        pod.metadata.labels["hooked"] = "yes"

    def replace(pod):
        return V1Pod(metadata=V1ObjectMeta(name="other"))

    assert build(mutation_hook=add_label).metadata.labels["hooked"] == "yes"
    assert build(mutation_hook=replace).metadata.name == "other"


def test_a_failing_mutation_hook_is_wrapped_with_its_cause():
    original = RuntimeError("policy says no")

    def refuse(pod):
        raise original

    with pytest.raises(PodMutationHookError, match="refuse.*policy says no") as raised:
        build(mutation_hook=refuse)
    assert raised.value.__cause__ is original


def test_a_mutation_hook_returning_junk_is_rejected():
    with pytest.raises(PodMutationHookError, match="returned str"):
        build(mutation_hook=lambda pod: "nope")


# -- executor_config ----------------------------------------------------------------------------

def test_empty_executor_configs_mean_no_override():
    assert executor_config_pod_override(None) is None
    assert executor_config_pod_override({}) is None
    assert executor_config_pod_override({"pod_template_file": "/x.yaml"}) is None


def test_pod_override_is_taken_from_a_model_or_a_dict():
    assert executor_config_pod_override({"pod_override": OVERRIDE}) is OVERRIDE
    from_dict = executor_config_pod_override({"pod_override": as_dict(OVERRIDE)})
    assert isinstance(from_dict, V1Pod) and as_dict(from_dict) == as_dict(OVERRIDE)


@pytest.mark.parametrize("executor_config, reason", [
    ("pod_override", "must be a dict"),
    ({"KubernetesExecutor": {"image": "x"}}, "unknown key(s) KubernetesExecutor"),
    ({"pod_override": "image: x"}, "must be a V1Pod or a pod dict"),
    ({"pod_override": {"spec": {"containers": [{"image": "x"}]}}}, "not a valid pod"),
    ({"pod_override": {"containers": []}}, "unknown pod field(s) containers"),
])
def test_invalid_executor_configs_are_rejected_with_a_reason(executor_config, reason):
    with pytest.raises(InvalidExecutorConfig) as raised:
        executor_config_pod_override(executor_config)
    assert reason in str(raised.value)


def test_a_fatal_reason_in_any_container_status_fails_the_try():
    """Init containers first, then every container, not only the first (upstream reads the base
    container only): a sidecar that cannot pull its image keeps the pod Pending for ever."""
    from executor.events import fatal_container_reason

    fatal = frozenset({"ErrImagePull", "CreateContainerConfigError"})
    waiting = lambda name, reason: {"name": name, "state": {"waiting": {"reason": reason, "message": "m"}}}
    sidecar = {"containerStatuses": [waiting("base", "ContainerCreating"), waiting("proxy", "ErrImagePull")]}
    init = {"initContainerStatuses": [waiting("setup", "CreateContainerConfigError")],
            "containerStatuses": [waiting("base", "PodInitializing")]}
    assert fatal_container_reason(sidecar, fatal) == "container proxy cannot start: ErrImagePull: m"
    assert fatal_container_reason(init, fatal) == "container setup cannot start: CreateContainerConfigError: m"
    assert fatal_container_reason({"containerStatuses": [waiting("base", "ContainerCreating")]}, fatal) is None
