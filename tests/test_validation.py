import pytest

from fakecluster.api.validation import (
    Cause,
    invalid_message,
    validate_annotations,
    validate_labels,
    validate_namespace_name,
    validate_pod_metadata,
    validate_pod_name,
)

SUBDOMAIN_RULE = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', "
    "and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is "
    r"'[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')")
LABEL_VALUE_RULE = (
    "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', "
    "and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', "
    "regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')")
NAME_PART_RULE = (
    "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an "
    "alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is "
    "'([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')")


def messages(causes):
    return [cause.message for cause in causes]


# -- pod names ------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["worker", "a", "0", "worker-1", "airflow.worker.1", "1st-pod", "a" * 253])
def test_valid_pod_names(name):
    assert validate_pod_name(name) == []


def test_uppercase_and_underscore_name_gets_kubernetes_message():
    assert validate_pod_name("Bad_Name") == [
        Cause("FieldValueInvalid", f'Invalid value: "Bad_Name": {SUBDOMAIN_RULE}', "metadata.name")]


def test_254_character_name_is_too_long():
    name = "a" * 254
    assert messages(validate_pod_name(name)) == [f'Invalid value: "{name}": must be no more than 253 characters']


@pytest.mark.parametrize("name", ["-worker", "worker-", ".worker", "worker.", "a..b", "a.-b", "wörker", "a b"])
def test_names_breaking_the_subdomain_shape_are_invalid(name):
    assert messages(validate_pod_name(name)) == [f'Invalid value: "{name}": {SUBDOMAIN_RULE}']


def test_too_long_and_malformed_name_reports_both():
    assert len(validate_pod_name("A" * 254)) == 2


def test_missing_name_without_generate_name_is_required():
    assert validate_pod_name("") == validate_pod_name(None) == [
        Cause("FieldValueRequired", "Required value: name or generateName is required", "metadata.name")]


def test_generate_name_may_end_with_a_dash_and_stands_in_for_the_name():
    assert validate_pod_name("", generate_name="worker-") == []


def test_bad_generate_name_is_reported_on_its_own_field():
    [cause] = validate_pod_name(None, generate_name="Worker-")
    assert cause.field == "metadata.generateName"
    assert cause.message.startswith('Invalid value: "Worker-": a lowercase RFC 1123 subdomain')


def test_cause_to_dict_matches_a_status_cause():
    [cause] = validate_pod_name("Bad_Name")
    assert cause.to_dict() == {"reason": "FieldValueInvalid",
                               "message": f'Invalid value: "Bad_Name": {SUBDOMAIN_RULE}',
                               "field": "metadata.name"}


def test_offending_value_is_quoted_like_go():
    [cause] = validate_pod_name('a"b\\c\n')
    assert cause.message.startswith(r'Invalid value: "a\"b\\c\n": ')


# -- namespaces ----------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["default", "airflow", "a" * 63, "0-0"])
def test_valid_namespace_names(name):
    assert validate_namespace_name(name) == []


def test_namespace_with_dots_is_invalid():
    assert messages(validate_namespace_name("team.airflow")) == [
        'Invalid value: "team.airflow": must not contain dots']


def test_64_character_namespace_is_too_long():
    assert messages(validate_namespace_name("a" * 64))[0].endswith(": must be no more than 63 characters")


def test_uppercase_namespace_gets_the_label_message():
    [cause] = validate_namespace_name("Airflow")
    assert cause.field == "metadata.namespace"
    assert cause.message == (
        'Invalid value: "Airflow": a lowercase RFC 1123 label must consist of lower case alphanumeric characters '
        "or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', "
        "regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')")


def test_missing_namespace_is_required_on_the_given_field():
    assert validate_namespace_name("", field="metadata.name") == [
        Cause("FieldValueRequired", "Required value", "metadata.name")]


# -- labels ------------------------------------------------------------------------------

def test_valid_labels():
    labels = {"app": "airflow", "airflow.apache.org/dag-id": "My_DAG.v2", "empty": "", "x": "v" * 63}
    assert validate_labels(labels) == []


def test_64_character_label_value_is_too_long():
    value = "v" * 64
    assert validate_labels({"app": value}) == [
        Cause("FieldValueInvalid", f'Invalid value: "{value}": must be no more than 63 characters',
              "metadata.labels")]


@pytest.mark.parametrize("value", ["-airflow", "airflow_", "air flow", "a/b"])
def test_malformed_label_value_gets_kubernetes_message(value):
    assert messages(validate_labels({"app": value})) == [f'Invalid value: "{value}": {LABEL_VALUE_RULE}']


def test_malformed_label_key_is_reported_on_the_labels_field():
    assert validate_labels({"app:x": "y"}) == [
        Cause("FieldValueInvalid", f'Invalid value: "app:x": {NAME_PART_RULE}', "metadata.labels")]


def test_label_key_name_part_is_limited_to_63_characters():
    assert validate_labels({"k" * 63: "v"}) == []
    assert messages(validate_labels({"k" * 64: "v"})) == [
        f'Invalid value: "{"k" * 64}": name part must be no more than 63 characters']


def test_label_key_prefix_must_be_a_lowercase_subdomain():
    assert messages(validate_labels({"Airflow.org/x": "v"})) == [
        f'Invalid value: "Airflow.org/x": prefix part {SUBDOMAIN_RULE}']


def test_label_key_prefix_may_be_long_but_not_empty():
    assert validate_labels({"p" * 253 + "/x": "v"}) == []
    assert messages(validate_labels({"/x": "v"})) == ['Invalid value: "/x": prefix part must be non-empty']


def test_label_key_needs_a_name_after_the_prefix():
    assert messages(validate_labels({"example.com/": "v"})) == [
        'Invalid value: "example.com/": name part must be non-empty',
        f'Invalid value: "example.com/": {NAME_PART_RULE}']


def test_label_key_with_two_slashes_is_not_a_qualified_name():
    [message] = messages(validate_labels({"a/b/c": "v"}))
    assert message.startswith('Invalid value: "a/b/c": a qualified name must consist of')
    assert message.endswith("with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')")


def test_labels_field_can_be_overridden():
    [cause] = validate_labels({"app": "-"}, field="spec.template.metadata.labels")
    assert cause.field == "spec.template.metadata.labels"


# -- annotations ---------------------------------------------------------------------------

def test_annotation_keys_are_case_insensitive_label_keys():
    assert validate_annotations({"Example.COM/Some-Key": "any value at all, even / and spaces"}) == []
    [cause] = validate_annotations({"bad key": "v"})
    assert (cause.field, cause.reason) == ("metadata.annotations", "FieldValueInvalid")


def test_annotations_may_total_256_kib():
    assert validate_annotations({"k": "v" * (262144 - 1)}) == []
    assert validate_annotations({"k": "v" * 262144}) == [
        Cause("FieldValueTooLong", "Too long: must have at most 262144 bytes", "metadata.annotations")]


def test_annotation_size_counts_utf8_bytes():
    assert len(validate_annotations({"k": "é" * 131072})) == 1


# -- whole metadata and the 422 message ---------------------------------------------------------

def test_pod_metadata_causes_come_in_kubernetes_order():
    causes = validate_pod_metadata({"name": "Bad", "namespace": "Ns", "labels": {"a": "-"},
                                    "annotations": {"bad key": ""}})
    assert [c.field for c in causes] == ["metadata.name", "metadata.namespace", "metadata.labels",
                                         "metadata.annotations"]


def test_invalid_message_with_one_cause():
    assert invalid_message("Pod", "Bad_Name", validate_pod_name("Bad_Name")) == (
        f'Pod "Bad_Name" is invalid: metadata.name: Invalid value: "Bad_Name": {SUBDOMAIN_RULE}')


def test_invalid_message_brackets_several_causes():
    causes = validate_pod_metadata({"name": "", "namespace": "default", "labels": {"app": "-"}})
    assert invalid_message("Pod", "", causes) == (
        'Pod "" is invalid: [metadata.name: Required value: name or generateName is required, '
        f'metadata.labels: Invalid value: "-": {LABEL_VALUE_RULE}]')


def test_invalid_message_lists_repeated_causes_once():
    cause = Cause("FieldValueInvalid", 'Invalid value: "x": nope', "metadata.labels")
    expected = 'Pod "p" is invalid: metadata.labels: Invalid value: "x": nope'
    assert invalid_message("Pod", "p", [cause, cause]) == expected
