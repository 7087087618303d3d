import pytest
from hypothesis import given
from hypothesis import strategies as st

from fakecluster.api.selectors import SelectorError, parse_field_selector, parse_label_selector

LABELS = {"app": "airflow", "tier": "worker", "airflow.apache.org/dag-id": "etl"}


def selects(selector, labels=LABELS):
    return parse_label_selector(selector).matches(labels)


def make_pod(**overrides):
    pod = {
        "metadata": {"name": "worker-1", "namespace": "airflow"},
        "spec": {"nodeName": "node-a", "restartPolicy": "Never", "schedulerName": "default-scheduler",
                 "serviceAccountName": "airflow-worker"},
        "status": {"phase": "Running", "podIP": "10.0.0.7", "podIPs": [{"ip": "10.0.0.7"}, {"ip": "fd00::7"}]},
    }
    for path, value in overrides.items():
        section, name = path.split("__")
        pod[section][name] = value
    return pod


def field_selects(selector, pod=None):
    return parse_field_selector(selector).matches(pod or make_pod())


def label_error(selector):
    with pytest.raises(SelectorError) as caught:
        parse_label_selector(selector)
    return str(caught.value)


def field_error(selector):
    with pytest.raises(SelectorError) as caught:
        parse_field_selector(selector)
    return str(caught.value)


# -- label selectors: operators ----------------------------------------------------------------

@pytest.mark.parametrize("text", [None, "", "   "])
def test_empty_label_selector_matches_everything(text):
    selector = parse_label_selector(text)
    assert selector.is_empty
    assert selector.matches({}) and selector.matches(LABELS)


def test_equals():
    assert selects("app=airflow")
    assert not selects("app=other")
    assert not selects("missing=airflow")


def test_double_equals():
    assert selects("app==airflow")
    assert not selects("app==other")


def test_not_equals_also_matches_a_missing_label():
    assert selects("app!=other")
    assert not selects("app!=airflow")
    assert selects("missing!=x")


def test_equals_with_no_value_selects_the_empty_value():
    assert selects("app=", {"app": ""})
    assert not selects("app=", {})


def test_in():
    assert selects("tier in (scheduler,worker)")
    assert not selects("tier in (scheduler,webserver)")
    assert not selects("missing in (x)")


def test_notin_also_matches_a_missing_label():
    assert selects("tier notin (scheduler,webserver)")
    assert not selects("tier notin (worker)")
    assert selects("missing notin (x)")


def test_empty_slots_in_a_set_stand_for_the_empty_value():
    assert parse_label_selector("k in ()").requirements[0].values == ("",)
    assert parse_label_selector("k in (,a)").requirements[0].values == ("", "a")


def test_set_values_are_deduplicated_and_sorted():
    assert parse_label_selector("k in (b,a,b)").requirements[0].values == ("a", "b")


def test_exists():
    assert selects("app")
    assert not selects("missing")


def test_does_not_exist():
    assert selects("!missing")
    assert not selects("!app")


def test_greater_and_less_than_compare_integers():
    assert selects("replicas>2", {"replicas": "3"})
    assert not selects("replicas>3", {"replicas": "3"})
    assert selects("replicas<4", {"replicas": "3"})
    assert not selects("replicas<4", {"replicas": "three"})
    assert not selects("replicas<4", {})


def test_comma_is_and():
    assert selects("app=airflow,tier=worker")
    assert not selects("app=airflow,tier=scheduler")


def test_whitespace_is_tolerated():
    assert selects("  app = airflow ,\ttier in ( worker , scheduler ) , !missing  ")


def test_prefixed_key():
    assert selects("airflow.apache.org/dag-id=etl")
    assert not selects("airflow.apache.org/dag-id=other")


def test_in_and_notin_are_ordinary_words_outside_operator_position():
    assert selects("in in (notin)", {"in": "notin"})


# -- label selectors: index support -------------------------------------------------------

def test_equalities_lists_exact_requirements_only():
    selector = parse_label_selector("a=1,b==2,c in (3),d!=4,e in (5,6),f,!g")
    assert selector.equalities() == {"a": "1", "b": "2", "c": "3"}


def test_is_empty_is_false_once_there_is_a_requirement():
    assert not parse_label_selector("app").is_empty


# -- label selectors: errors ----------------------------------------------------------------

@pytest.mark.parametrize("text, message", [
    ("app in (a", "unable to parse requirement: found '', expected: ',' or ')'"),
    ("app in (a b)", "unable to parse requirement: found 'b', expected: ',' or ')'"),
    ("app in a", "unable to parse requirement: found 'a' expected: '('"),
    ("app b", "unable to parse requirement: found 'b', expected: in, notin, =, ==, !=, gt, lt"),
    ("!", "unable to parse requirement: found '', expected: identifier"),
    ("app=(", "unable to parse requirement: found '(', expected: identifier"),
    ("app=a b", "found 'b', expected: ',' or 'end of string'"),
    ("app=a,", "found '', expected: identifier after ','"),
    ("=a", "found '=', expected: !, identifier, or 'end of string'"),
    ("!app=a", "found '=', expected: ',' or 'end of string'"),
])
def test_bad_syntax_is_reported_as_kubernetes_does(text, message):
    assert label_error(text) == message


def test_bad_key_names_the_key():
    assert label_error("app:airflow") == (
        'unable to parse requirement: <nil>: Invalid value: "app:airflow": name part must consist of '
        "alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character "
        "(e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is "
        "'([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')")


def test_bad_value_names_the_value_and_its_key():
    assert label_error("app=-x").startswith(
        'unable to parse requirement: values[0][app]: Invalid value: "-x": a valid label must be an empty string')


def test_several_bad_values_are_listed_together():
    message = label_error("app in (-x,-y)")
    assert message.startswith('unable to parse requirement: [values[0][app]: Invalid value: "-x": ')
    assert ', values[1][app]: Invalid value: "-y": ' in message and message.endswith("]")


def test_greater_than_needs_an_integer():
    assert label_error("a>x") == ("unable to parse requirement: values[0]: Invalid value: \"x\": "
                                  "for 'Gt', 'Lt' operators, the value must be an integer")


def test_selector_error_is_a_value_error():
    with pytest.raises(ValueError):
        parse_label_selector("app in (")


# -- label selectors: property -----------------------------------------------------------

KEYS = ["app", "tier", "airflow.apache.org/dag-id", "in"]
VALUES = ["", "airflow", "worker", "a.b_c-1", "notin"]
SPACE = st.sampled_from(["", " ", "  "])


@st.composite
def requirement(draw):
    """A (selector text, reference predicate) pair for one random requirement."""
    key, s = draw(st.sampled_from(KEYS)), draw(SPACE)
    op = draw(st.sampled_from(["=", "==", "!=", "in", "notin", "", "!"]))  # "" = exists
    if op in ("in", "notin"):
        values = draw(st.lists(st.sampled_from(VALUES), min_size=1, max_size=3, unique=True))
        text = f"{key} {op}{s}({s}{','.join(sorted(values))}{s})"
        if op == "in":
            return text, lambda labels: key in labels and labels[key] in values
        return text, lambda labels: key not in labels or labels[key] not in values
    if op in ("", "!"):
        return f"{op}{key}", (lambda labels: key in labels) if op == "" else (lambda labels: key not in labels)
    value = draw(st.sampled_from(VALUES))
    text = f"{key}{s}{op}{s}{value}"
    if op == "!=":
        return text, lambda labels: labels.get(key) != value
    return text, lambda labels: key in labels and labels[key] == value


@given(reqs=st.lists(requirement(), min_size=1, max_size=4),
       labels=st.dictionaries(st.sampled_from(KEYS), st.sampled_from(VALUES), max_size=4),
       comma=st.sampled_from([",", " , "]))
def test_random_selectors_agree_with_a_reference_evaluation(reqs, labels, comma):
    text = comma.join(text for text, _ in reqs)
    expected = all(predicate(labels) for _, predicate in reqs)
    assert parse_label_selector(text).matches(labels) == expected


# -- field selectors ----------------------------------------------------------------------

@pytest.mark.parametrize("text", [None, ""])
def test_empty_field_selector_matches_everything(text):
    selector = parse_field_selector(text)
    assert selector.is_empty and selector.matches({})


def test_field_equals():
    assert field_selects("status.phase=Running")
    assert not field_selects("status.phase=Pending")


def test_field_double_equals():
    assert field_selects("metadata.name==worker-1")
    assert not field_selects("metadata.name==worker-2")


def test_field_not_equals():
    assert field_selects("spec.nodeName!=node-b")
    assert not field_selects("spec.nodeName!=node-a")


def test_field_comma_is_and():
    assert field_selects("metadata.namespace=airflow,status.phase!=Failed")
    assert not field_selects("metadata.namespace=airflow,status.phase=Failed")


def test_missing_field_compares_as_empty_string():
    unscheduled = make_pod(spec__nodeName=None)
    del unscheduled["status"]
    assert field_selects("spec.nodeName=", unscheduled)
    assert field_selects("status.phase=,status.nominatedNodeName=", unscheduled)
    assert not field_selects("spec.nodeName!=", unscheduled)


@pytest.mark.parametrize("host_network, expected", [(True, "true"), (False, "false"), (None, "false")])
def test_host_network_compares_as_true_or_false(host_network, expected):
    pod = make_pod(spec__hostNetwork=host_network)
    assert field_selects(f"spec.hostNetwork={expected}", pod)
    assert not field_selects(f"spec.hostNetwork={'false' if expected == 'true' else 'true'}", pod)


def test_pod_ip_falls_back_to_the_first_pod_ips_entry():
    pod = make_pod(status__podIP=None)
    assert field_selects("status.podIP=10.0.0.7", pod)
    assert not field_selects("status.podIP=fd00::7", pod)


def test_pod_ips_is_accepted_but_never_populated_as_in_kubernetes():
    # kube-apiserver converts the status.podIPs label but leaves it out of a pod's selectable fields.
    assert not field_selects("status.podIPs=10.0.0.7")
    assert field_selects("status.podIPs=")


def test_service_account_name_falls_back_to_the_deprecated_field():
    pod = make_pod(spec__serviceAccountName=None, spec__serviceAccount="legacy")
    assert field_selects("spec.serviceAccountName=legacy", pod)


def test_legacy_spec_host_is_rewritten_to_spec_node_name():
    selector = parse_field_selector("spec.host=node-a")
    assert selector.equalities() == {"spec.nodeName": "node-a"}
    assert selector.matches(make_pod())
    assert not selector.matches(make_pod(spec__nodeName="node-b"))


def test_unsupported_field_is_named():
    assert field_error("spec.containers=base") == "field label not supported: spec.containers"


def test_field_terms_are_not_trimmed():
    assert field_error("status.phase = Running") == "field label not supported: status.phase "


@pytest.mark.parametrize("text", ["status.phase in (Running)", "status.phase notin (Failed)",
                                  "spec.nodeName", "!spec.nodeName"])
def test_set_based_and_existence_terms_are_rejected(text):
    assert field_error(text) == f"invalid selector: '{text}'; can't understand '{text}'"


def test_escaped_comma_and_equals_are_part_of_the_value():
    assert field_selects(r"metadata.name=a\,b\=c", make_pod(metadata__name="a,b=c"))


@pytest.mark.parametrize("text, message", [
    ("metadata.name=a=b", "invalid field selector: unescaped character in value: 61"),
    (r"metadata.name=a\x", r"invalid field selector: invalid escape sequence: \x"),
    ("metadata.name=a\\", "invalid field selector: invalid escape sequence: \\"),
])
def test_bad_escapes_are_rejected(text, message):
    assert field_error(text) == message


def test_field_equalities_leave_out_not_equals():
    selector = parse_field_selector("spec.nodeName=node-a,status.phase!=Failed,metadata.name==w")
    assert selector.equalities() == {"spec.nodeName": "node-a", "metadata.name": "w"}
    assert not selector.is_empty


@pytest.mark.parametrize("field", [
    "metadata.name", "metadata.namespace", "spec.nodeName", "spec.restartPolicy", "spec.schedulerName",
    "spec.serviceAccountName", "spec.hostNetwork", "status.phase", "status.podIP", "status.podIPs",
    "status.nominatedNodeName"])
def test_every_documented_pod_field_is_supported(field):
    assert parse_field_selector(f"{field}=x").requirements[0].field == field

