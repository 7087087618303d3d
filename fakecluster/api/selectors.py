"""Label and field selectors, parsed and matched the way kube-apiserver does it.

Errors carry the apiserver's own wording (k8s.io/apimachinery ``labels.Parse``, ``fields.ParseSelector``
and the field-label conversions of pods, events, nodes and namespaces), so the fake's 400
BadRequest reads like a real cluster's.
Selectors are compiled once into tuples of small predicates, because they run on every watch event.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from operator import attrgetter
from typing import Callable, Iterable, Mapping

from .validation import invalid, join_causes, label_key_errors, label_value_errors


class SelectorError(ValueError):
    """A selector kube-apiserver rejects with 400 BadRequest; ``str()`` is the Status message."""


# Operator names as in k8s.io/apimachinery/pkg/selection.
EXISTS, DOES_NOT_EXIST = "exists", "!"
EQUALS, DOUBLE_EQUALS, NOT_EQUALS = "=", "==", "!="
IN, NOT_IN = "in", "notin"
GREATER_THAN, LESS_THAN = "gt", "lt"


class _CompiledSelector:
    """Shared shape: ``requirements`` (AND-ed) and one precompiled predicate per requirement."""

    __slots__ = ("requirements", "is_empty", "_tests")

    def __init__(self, requirements: Iterable = ()):
        self.requirements = tuple(requirements)
        self.is_empty = not self.requirements
        self._tests = tuple(map(self._compile, self.requirements))

    def matches(self, obj) -> bool:
        """Whether a label dict (LabelSelector) or a pod dict (FieldSelector) is selected."""
        for test in self._tests:  # a plain loop: markedly cheaper than all() on the watch path
            if not test(obj):
                return False
        return True

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.requirements!r})"


# -- label selectors ------------------------------------------------------------------------

@dataclass(frozen=True)
class Requirement:
    key: str
    operator: str
    values: tuple[str, ...] = ()


class LabelSelector(_CompiledSelector):
    __slots__ = ()

    def equalities(self) -> dict[str, str]:
        """Labels every match must carry with exactly this value: candidates for an index lookup.

        ``k=v`` and ``k==v``, plus ``k in (v)``, which means the same thing.
        """
        return {r.key: r.values[0] for r in self.requirements
                if r.operator in (EQUALS, DOUBLE_EQUALS) or (r.operator == IN and len(r.values) == 1)}

    @staticmethod
    def _compile(req: Requirement) -> Callable[[Mapping[str, str]], bool]:
        key, values = req.key, frozenset(req.values)
        value = req.values[0] if req.values else ""
        if req.operator == EXISTS:
            return lambda labels: key in labels
        if req.operator == DOES_NOT_EXIST:
            return lambda labels: key not in labels
        if req.operator in (EQUALS, DOUBLE_EQUALS):
            return lambda labels: labels.get(key) == value
        if req.operator == NOT_EQUALS:  # an absent label is "not equal" too
            return lambda labels: labels.get(key) != value
        if req.operator == IN:
            return lambda labels: key in labels and labels[key] in values
        if req.operator == NOT_IN:
            return lambda labels: labels.get(key) not in values
        bound = _go_int64(value)  # parsing guaranteed an integer
        if req.operator == GREATER_THAN:
            return lambda labels: (number := _go_int64(labels.get(key))) is not None and number > bound
        return lambda labels: (number := _go_int64(labels.get(key))) is not None and number < bound


_INT64 = re.compile(r"[+-]?[0-9]+")


def _go_int64(text: str | None) -> int | None:
    """``text`` as Go's strconv.ParseInt(text, 10, 64) reads it, or None where Go fails."""
    if text is None or not _INT64.fullmatch(text):
        return None
    number = int(text)
    return number if -2**63 <= number < 2**63 else None


def parse_label_selector(text: str | None) -> LabelSelector:
    """Parse ``?labelSelector=``; empty or None selects everything."""
    if not text:
        return LabelSelector()
    return LabelSelector(sorted(_LabelParser(text).parse(), key=attrgetter("key")))


# One token: a two-character operator, a one-character symbol, or a run of anything else
# (Kubernetes' lexer). Only ' ', \t, \r and \n separate tokens, and they are skipped.
_LABEL_TOKEN = re.compile(r"==|!=|[=!(),<>]|[^ \t\r\n=!(),<>]+")
_SYMBOLS = frozenset(("==", "!=", "=", "!", "(", ")", ",", "<", ">"))
_END = ""  # end of input; Kubernetes prints it as '' in messages
_BINARY_OPERATORS = {"in": IN, "notin": NOT_IN, "=": EQUALS, "==": DOUBLE_EQUALS, "!=": NOT_EQUALS,
                     ">": GREATER_THAN, "<": LESS_THAN}
_EXPECTED_OPERATOR = "in, notin, =, ==, !=, gt, lt"


def _is_identifier(token: str) -> bool:
    # "in" and "notin" count as identifiers everywhere except in operator position,
    # so they are valid keys and values.
    return token != _END and token not in _SYMBOLS


class _LabelParser:
    """Recursive descent over the token list, mirroring Kubernetes' parser and its messages."""

    def __init__(self, text: str):
        self.tokens = _LABEL_TOKEN.findall(text) + [_END]
        self.position = 0

    def peek(self) -> str:
        return self.tokens[self.position]

    def take(self) -> str:
        self.position += 1
        return self.tokens[self.position - 1]

    def parse(self) -> list[Requirement]:
        requirements: list[Requirement] = []
        if self.peek() == _END:
            return requirements
        if not (_is_identifier(self.peek()) or self.peek() == "!"):
            raise SelectorError(f"found '{self.peek()}', expected: !, identifier, or 'end of string'")
        while True:
            requirements.append(self.requirement())
            separator = self.take()
            if separator == _END:
                return requirements
            if separator != ",":
                raise SelectorError(f"found '{separator}', expected: ',' or 'end of string'")
            if not (_is_identifier(self.peek()) or self.peek() == "!"):
                raise SelectorError(f"found '{self.peek()}', expected: identifier after ','")

    def requirement(self) -> Requirement:
        try:
            return self._requirement()
        except SelectorError as error:
            raise SelectorError(f"unable to parse requirement: {error}") from None

    def _requirement(self) -> Requirement:
        negated = self.peek() == "!"
        if negated:
            self.take()
        key = self.take()
        if not _is_identifier(key):
            raise SelectorError(f"found '{key}', expected: identifier")
        _check_key(key)
        if negated:  # "!k" never takes an operator; anything after it fails in parse()
            return Requirement(key, DOES_NOT_EXIST)
        if self.peek() in (",", _END):
            return Requirement(key, EXISTS)
        operator = self.operator()
        values = self.value_set() if operator in (IN, NOT_IN) else [self.single_value()]
        return _checked_requirement(key, operator, sorted(set(values)))

    def operator(self) -> str:
        token = self.take()
        if token not in _BINARY_OPERATORS:
            raise SelectorError(f"found '{token}', expected: {_EXPECTED_OPERATOR}")
        return _BINARY_OPERATORS[token]

    def single_value(self) -> str:
        if self.peek() in (",", _END):  # "k=" selects the empty value
            return ""
        token = self.take()
        if not _is_identifier(token):
            raise SelectorError(f"found '{token}', expected: identifier")
        return token

    def value_set(self) -> list[str]:
        token = self.take()
        if token != "(":
            raise SelectorError(f"found '{token}' expected: '('")
        if self.peek() == ")":  # "()" is the set holding only the empty value
            self.take()
            return [""]
        if not (_is_identifier(self.peek()) or self.peek() == ","):
            raise SelectorError(f"found '{self.peek()}', expected: ',', ')' or identifier")
        values = self.value_list()
        self.take()  # the ")" value_list stopped at
        return values

    def value_list(self) -> list[str]:
        """Comma-separated values up to ")"; an empty slot stands for the empty value.

        Walks the tokens exactly as Kubernetes does, quirks included (it rejects "(,,)").
        """
        values: list[str] = []
        while True:
            token = self.take()
            if _is_identifier(token):
                values.append(token)
                if self.peek() == ")":
                    return values
                if self.peek() != ",":
                    raise SelectorError(f"found '{self.peek()}', expected: ',' or ')'")
            elif token == ",":
                if not values:
                    values.append("")
                if self.peek() == ")":
                    return values + [""]
                if self.peek() == ",":
                    self.take()
                    values.append("")
            else:
                raise SelectorError(f"found '{token}', expected: ',', or identifier")


def _check_key(key: str) -> None:
    errors = label_key_errors(key)
    if errors:  # the parser has no field path, which Go prints as "<nil>"
        raise SelectorError(str(invalid("<nil>", key, "; ".join(errors))))


def _checked_requirement(key: str, operator: str, values: list[str]) -> Requirement:
    """Kubernetes' NewRequirement checks on values, reported together as one aggregate."""
    causes = []
    if operator in (GREATER_THAN, LESS_THAN):
        causes += [invalid(f"values[{i}]", value, "for 'Gt', 'Lt' operators, the value must be an integer")
                   for i, value in enumerate(values) if _go_int64(value) is None]
    for i, value in enumerate(values):
        errors = label_value_errors(value)
        if errors:
            causes.append(invalid(f"values[{i}][{key}]", value, "; ".join(errors)))
    if causes:
        raise SelectorError(join_causes(causes))
    return Requirement(key, operator, tuple(values))


# -- field selectors --------------------------------------------------------------------------

@dataclass(frozen=True)
class FieldRequirement:
    field: str
    operator: str  # "=", "==" or "!="
    value: str


def _text_field(section: str, name: str) -> Callable[[dict], str]:
    def read(pod: dict) -> str:
        return (pod.get(section) or {}).get(name) or ""
    return read


def _service_account(pod: dict) -> str:
    spec = pod.get("spec") or {}
    return spec.get("serviceAccountName") or spec.get("serviceAccount") or ""  # deprecated alias


def _host_network(pod: dict) -> str:
    return "true" if (pod.get("spec") or {}).get("hostNetwork") is True else "false"


def _pod_ip(pod: dict) -> str:
    # status.podIP is authoritative; podIPs[0] stands in when only the list is set.
    status = pod.get("status") or {}
    ips = status.get("podIPs") or [{}]
    return status.get("podIP") or ips[0].get("ip") or ""


def _never_set(pod: dict) -> str:
    # kube-apiserver accepts status.podIPs as a field label but never fills it into the pod's
    # selectable fields (pkg/registry/core/pod ToSelectableFields), so it always compares as "".
    return ""


# What each supported field reads from a pod's JSON (pkg/registry/core/pod ToSelectableFields).
_POD_READERS: dict[str, Callable[[dict], str]] = {
    "metadata.name": _text_field("metadata", "name"),
    "metadata.namespace": _text_field("metadata", "namespace"),
    "spec.nodeName": _text_field("spec", "nodeName"),
    "spec.restartPolicy": _text_field("spec", "restartPolicy"),
    "spec.schedulerName": _text_field("spec", "schedulerName"),
    "spec.serviceAccountName": _service_account,
    "spec.hostNetwork": _host_network,
    "status.phase": _text_field("status", "phase"),
    "status.podIP": _pod_ip,
    "status.podIPs": _never_set,
    "status.nominatedNodeName": _text_field("status", "nominatedNodeName"),
}


def _top_field(name: str) -> Callable[[dict], str]:
    def read(obj: dict) -> str:
        return obj.get(name) or ""
    return read


def _event_source(event: dict) -> str:
    # source.component, or the newer reportingComponent when an Event has no source
    return (event.get("source") or {}).get("component") or event.get("reportingComponent") or ""


def _unschedulable(node: dict) -> str:
    return "true" if (node.get("spec") or {}).get("unschedulable") is True else "false"


# pkg/registry/core/event ToSelectableFields
_EVENT_READERS: dict[str, Callable[[dict], str]] = {
    "metadata.name": _text_field("metadata", "name"),
    "metadata.namespace": _text_field("metadata", "namespace"),
    **{f"involvedObject.{name}": _text_field("involvedObject", name)
       for name in ("kind", "namespace", "name", "uid", "apiVersion", "resourceVersion", "fieldPath")},
    "reason": _top_field("reason"),
    "reportingComponent": _top_field("reportingComponent"),
    "source": _event_source,
    "type": _top_field("type"),
}


@dataclass(frozen=True)
class SelectableFields:
    """The fields one kind can be selected by, and the legacy labels its conversion renames."""

    readers: Mapping[str, Callable[[dict], str]]
    renames: Mapping[str, str] = field(default_factory=dict)


POD_FIELDS = SelectableFields(_POD_READERS, {"spec.host": "spec.nodeName"})
EVENT_FIELDS = SelectableFields(_EVENT_READERS)
NODE_FIELDS = SelectableFields({"metadata.name": _text_field("metadata", "name"),
                                "spec.unschedulable": _unschedulable})
SERVICE_FIELDS = SelectableFields({"metadata.name": _text_field("metadata", "name"),
                                   "metadata.namespace": _text_field("metadata", "namespace")})
NAMESPACE_FIELDS = SelectableFields({"metadata.name": _text_field("metadata", "name"),
                                     "status.phase": _text_field("status", "phase")})


class FieldSelector(_CompiledSelector):
    __slots__ = ("_readers",)

    def __init__(self, requirements: Iterable = (), readers: Mapping[str, Callable[[dict], str]] | None = None):
        self._readers = readers or {}
        super().__init__(requirements)

    def equalities(self) -> dict[str, str]:
        return {r.field: r.value for r in self.requirements if r.operator != NOT_EQUALS}

    def _compile(self, req: FieldRequirement) -> Callable[[dict], bool]:
        read, value = self._readers[req.field], req.value
        if req.operator == NOT_EQUALS:
            return lambda obj: read(obj) != value
        return lambda obj: read(obj) == value


def parse_field_selector(text: str | None, selectable: SelectableFields = POD_FIELDS) -> FieldSelector:
    """Parse ``?fieldSelector=`` for one kind (pods by default); empty or None selects everything.

    As in Kubernetes, terms are not trimmed and only ``=``, ``==`` and ``!=`` exist; a value may
    escape ``\\``, ``,`` and ``=`` with a backslash.
    """
    if not text:
        return FieldSelector()
    terms = sorted(_split_terms(text))  # sorted, as Kubernetes does, so errors name the same term
    parsed = [_parse_term(text, term) for term in terms if term]
    return FieldSelector([_converted(req, selectable) for req in parsed], selectable.readers)


def _split_terms(text: str) -> list[str]:
    """Split on commas not escaped by a backslash; escapes stay in place for _unescape."""
    terms, start, escaped = [], 0, False
    for i, char in enumerate(text):
        if escaped:
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == ",":
            terms.append(text[start:i])
            start = i + 1
    return terms + [text[start:]]


_FIELD_OPERATOR = re.compile("!=|==|=")  # leftmost operator wins; "!=" and "==" before "="


def _parse_term(selector: str, term: str) -> FieldRequirement:
    found = _FIELD_OPERATOR.search(term)
    if not found:  # this is also where set-based and existence terms end up
        raise SelectorError(f"invalid selector: '{selector}'; can't understand '{term}'")
    return FieldRequirement(term[:found.start()], found.group(), _unescape(term[found.end():]))


def _unescape(value: str) -> str:
    if not any(char in value for char in "\\,="):
        return value
    chars, escaped = [], False
    for char in value:
        if escaped:
            if char not in "\\,=":
                raise SelectorError(f"invalid field selector: invalid escape sequence: \\{char}")
            chars.append(char)
            escaped = False
        elif char == "\\":
            escaped = True
        elif char in ",=":  # Go prints the rune as a number, e.g. 61 for "="
            raise SelectorError(f"invalid field selector: unescaped character in value: {ord(char)}")
        else:
            chars.append(char)
    if escaped:
        raise SelectorError("invalid field selector: invalid escape sequence: \\")
    return "".join(chars)


def _converted(req: FieldRequirement, selectable: SelectableFields) -> FieldRequirement:
    """The kind's field-label conversion: rename legacy labels, reject unknown ones."""
    field_name = selectable.renames.get(req.field, req.field)
    if field_name not in selectable.readers:
        raise SelectorError(f"field label not supported: {req.field}")
    return replace(req, field=field_name)


__all__ = ["SelectorError", "Requirement", "LabelSelector", "parse_label_selector",
           "FieldRequirement", "FieldSelector", "parse_field_selector", "SelectableFields",
           "POD_FIELDS", "EVENT_FIELDS", "NODE_FIELDS", "NAMESPACE_FIELDS", "SERVICE_FIELDS"]

