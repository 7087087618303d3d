"""Kubernetes name, label and annotation validation, reported as Status causes.

Messages follow kube-apiserver's wording (k8s.io/apimachinery util/validation, api/validation and
util/validation/field), because clients, logs and humans match on that text. Lengths are counted
in UTF-8 bytes, as Go's len() does.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from typing import Iterable, Mapping

INVALID = "FieldValueInvalid"
REQUIRED = "FieldValueRequired"
TOO_LONG = "FieldValueTooLong"

DNS1123_LABEL_MAX = 63
DNS1123_SUBDOMAIN_MAX = 253
LABEL_NAME_MAX = 63
LABEL_VALUE_MAX = 63
ANNOTATIONS_MAX_BYTES = 256 * 1024

_DNS1123_LABEL = "[a-z0-9]([-a-z0-9]*[a-z0-9])?"
_DNS1123_SUBDOMAIN = _DNS1123_LABEL + r"(\." + _DNS1123_LABEL + ")*"
_LABEL_NAME = "([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]"
_LABEL_VALUE = "(" + _LABEL_NAME + ")?"

_is_dns1123_label = re.compile(_DNS1123_LABEL).fullmatch
_is_dns1123_subdomain = re.compile(_DNS1123_SUBDOMAIN).fullmatch
_is_label_name = re.compile(_LABEL_NAME).fullmatch
_is_label_value = re.compile(_LABEL_VALUE).fullmatch


# -- message text --------------------------------------------------------------------------

def _regex_error(rule: str, regex: str, *examples: str) -> str:
    # The double space in "',  or '" is Kubernetes' own; keep it so messages compare equal.
    shown = " or ".join(f"'{example}', " for example in examples)
    return f"{rule} (e.g. {shown}regex used for validation is '{regex}')"


_LABEL_NAME_ERROR = _regex_error(
    "must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character",
    _LABEL_NAME, "MyName", "my.name", "123-abc")


def _max_len_error(limit: int) -> str:
    return f"must be no more than {limit} characters"


def _nbytes(text: str) -> int:
    return len(text.encode("utf-8", "surrogatepass"))


_GO_ESCAPES = {"\a": r"\a", "\b": r"\b", "\f": r"\f", "\n": r"\n", "\r": r"\r",
               "\t": r"\t", "\v": r"\v", "\\": r"\\", '"': r"\""}


def _go_escape(char: str) -> str:
    if char in _GO_ESCAPES:
        return _GO_ESCAPES[char]
    if char.isprintable():
        return char
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x80 else f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def go_quote(text: str) -> str:
    """``text`` quoted as Go's %q prints it, which is how Kubernetes shows an offending value."""
    return '"' + "".join(map(_go_escape, text)) + '"'


# -- format checks: each returns the problems found, as message fragments ------------------

def dns1123_subdomain_errors(value: str) -> list[str]:
    errors = []
    if _nbytes(value) > DNS1123_SUBDOMAIN_MAX:
        errors.append(_max_len_error(DNS1123_SUBDOMAIN_MAX))
    if not _is_dns1123_subdomain(value):
        errors.append(_regex_error(
            "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, "
            "'-' or '.', and must start and end with an alphanumeric character",
            _DNS1123_SUBDOMAIN, "example.com"))
    return errors


def dns1123_label_errors(value: str) -> list[str]:
    return list(_dns1123_label_problems(value))


@functools.lru_cache(maxsize=4096)  # every pod of a load repeats the same few container names
def _dns1123_label_problems(value: str) -> tuple[str, ...]:
    errors = []
    if _nbytes(value) > DNS1123_LABEL_MAX:
        errors.append(_max_len_error(DNS1123_LABEL_MAX))
    if _is_dns1123_label(value):
        return tuple(errors)
    if _is_dns1123_subdomain(value):  # length is already reported, so only the dots are wrong
        return (*errors, "must not contain dots")
    return (*errors, _regex_error(
        "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', "
        "and must start and end with an alphanumeric character",
        _DNS1123_LABEL, "my-name", "123-abc"))


def label_key_errors(key: str) -> list[str]:
    """A Kubernetes "qualified name": optional DNS-subdomain prefix and '/', then a short name."""
    return list(_label_key_problems(key))


@functools.lru_cache(maxsize=4096)  # every pod of a load carries the same few keys
def _label_key_problems(key: str) -> tuple[str, ...]:
    parts = key.split("/")
    if len(parts) > 2:
        return (f"a qualified name {_LABEL_NAME_ERROR} with an optional DNS subdomain prefix and '/' "
                "(e.g. 'example.com/MyName')",)
    errors = _prefix_errors(parts[0]) if len(parts) == 2 else []
    name = parts[-1]
    if not name:
        errors.append("name part must be non-empty")
    elif _nbytes(name) > LABEL_NAME_MAX:
        errors.append("name part " + _max_len_error(LABEL_NAME_MAX))
    if not _is_label_name(name):
        errors.append("name part " + _LABEL_NAME_ERROR)
    return tuple(errors)


def _prefix_errors(prefix: str) -> list[str]:
    if not prefix:
        return ["prefix part must be non-empty"]
    return ["prefix part " + error for error in dns1123_subdomain_errors(prefix)]


def label_value_errors(value: str) -> list[str]:
    errors = []
    if _nbytes(value) > LABEL_VALUE_MAX:
        errors.append(_max_len_error(LABEL_VALUE_MAX))
    if not _is_label_value(value):
        errors.append(_regex_error(
            "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', "
            "and must start and end with an alphanumeric character",
            _LABEL_VALUE, "MyValue", "my_value", "12345"))
    return errors


# -- causes -----------------------------------------------------------------------------------

@dataclass(frozen=True)
class Cause:
    """One entry of a Status ``details.causes`` list (a Go ``field.Error``)."""

    reason: str
    message: str
    field: str

    def to_dict(self) -> dict[str, str]:
        return {"reason": self.reason, "message": self.message, "field": self.field}

    def __str__(self) -> str:
        return f"{self.field}: {self.message}"


def invalid(field: str, value: str, detail: str) -> Cause:
    return Cause(INVALID, f"Invalid value: {go_quote(value)}: {detail}", field)


def required(field: str, detail: str = "") -> Cause:
    return Cause(REQUIRED, f"Required value: {detail}" if detail else "Required value", field)


def too_long(field: str, limit: int) -> Cause:
    return Cause(TOO_LONG, f"Too long: must have at most {limit} bytes", field)


def join_causes(causes: Iterable[Cause]) -> str:
    """Go's aggregate error text: distinct ``field: message`` entries, bracketed when several."""
    texts = list(dict.fromkeys(map(str, causes)))
    return texts[0] if len(texts) == 1 else "[" + ", ".join(texts) + "]"


def invalid_message(kind: str, name: str, causes: Iterable[Cause]) -> str:
    """The top-level message of a 422 Invalid Status, e.g. ``Pod "x" is invalid: metadata.name: ...``."""
    causes = list(causes)
    head = f"{kind} {go_quote(name)} is invalid"
    return f"{head}: {join_causes(causes)}" if causes else head


# -- object metadata ------------------------------------------------------------------------
# Loops rather than comprehensions where the usual answer is "no error": in Python 3.11 even an
# empty comprehension costs a function call.

def validate_pod_name(name: str | None, generate_name: str | None = None) -> list[Cause]:
    """metadata.name (and metadata.generateName, if given) of a pod: DNS-1123 subdomains."""
    causes = []
    if generate_name:
        masked = _mask_trailing_dash(generate_name)  # a random suffix will follow the dash
        causes += [invalid("metadata.generateName", generate_name, error)
                   for error in dns1123_subdomain_errors(masked)]
    if name:
        for error in dns1123_subdomain_errors(name):
            causes.append(invalid("metadata.name", name, error))
    elif not generate_name:
        causes.append(required("metadata.name", "name or generateName is required"))
    return causes


def _mask_trailing_dash(prefix: str) -> str:
    # Upstream drops the last two characters, not one; reproduced so the same prefixes pass.
    return prefix[:-2] + "a" if len(prefix) > 1 and prefix.endswith("-") else prefix


def validate_namespace_name(name: str | None, field: str = "metadata.namespace") -> list[Cause]:
    """A namespace name is a DNS-1123 label. ``field`` is metadata.name for a Namespace itself."""
    if not name:
        return [required(field)]
    causes = []
    for error in _dns1123_label_problems(name):
        causes.append(invalid(field, name, error))
    return causes


def validate_labels(labels: Mapping[str, str] | None, field: str = "metadata.labels") -> list[Cause]:
    causes = []
    for key, value in (labels or {}).items():
        # the value's pattern admits ASCII only, so its length in characters is its length in bytes
        if _label_key_problems(key) or len(value) > LABEL_VALUE_MAX or not _is_label_value(value):
            causes += [invalid(field, key, error) for error in label_key_errors(key)]
            causes += [invalid(field, value, error) for error in label_value_errors(value)]
    return causes


def validate_annotations(annotations: Mapping[str, str] | None,
                         field: str = "metadata.annotations") -> list[Cause]:
    """Keys are label keys, but case-insensitive; keys and values together fit in 256 KiB."""
    annotations = annotations or {}
    causes = []
    for key in annotations:
        for error in _label_key_problems(key.lower()):
            causes.append(invalid(field, key, error))
    if _too_large(annotations):
        causes.append(too_long(field, ANNOTATIONS_MAX_BYTES))
    return causes


def _too_large(annotations: Mapping[str, str]) -> bool:
    characters = sum(map(len, annotations)) + sum(map(len, annotations.values()))
    if characters * 4 <= ANNOTATIONS_MAX_BYTES:  # a character is at most 4 bytes in UTF-8
        return False
    return sum(_nbytes(key) + _nbytes(value) for key, value in annotations.items()) > ANNOTATIONS_MAX_BYTES


def validate_pod_metadata(metadata: Mapping) -> list[Cause]:
    """All of the above for a pod's metadata, in the order kube-apiserver reports them."""
    return (validate_pod_name(metadata.get("name"), metadata.get("generateName"))
            + validate_namespace_name(metadata.get("namespace"))
            + validate_labels(metadata.get("labels"))
            + validate_annotations(metadata.get("annotations")))
