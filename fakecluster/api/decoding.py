"""Decoding request bodies (JSON and YAML) the way kube-apiserver does, with Go's error messages:
clients and people match on that text, so a malformed body reads as it would from Kubernetes."""

from __future__ import annotations

import json

import orjson

from . import status as errors
from .status import ApiError
from .validation import go_quote


def go_json_type(value) -> str:
    """The JSON type name Go's decoder prints in its unmarshal errors."""
    if isinstance(value, dict):
        return "object"
    if isinstance(value, list):
        return "array"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (int, float)):
        return "number"
    return "string" if isinstance(value, str) else "null"


class _Constant(ValueError):
    """NaN or Infinity: Python's json takes them, JSON (and Go) does not."""


def _reject_constant(name: str):
    raise _Constant(name)


# Every digit made "0": a run of 19 zeros then marks a number orjson might not keep exact.
_DIGITS_AS_ZERO = bytes.maketrans(b"123456789", b"0" * 9)
_LONG_NUMBER = b"0" * 19


def decode_json(body: bytes):
    """Parse a JSON body; a syntax error is a 400 worded as encoding/json words it."""
    if _LONG_NUMBER not in body.translate(_DIGITS_AS_ZERO):  # orjson makes huge integers floats
        try:
            return orjson.loads(body)
        except orjson.JSONDecodeError:
            pass  # the careful parser below words the error as Go does
    text = body.decode("utf-8", errors="replace")  # Go keeps invalid UTF-8 as U+FFFD
    try:
        return json.loads(text, parse_constant=_reject_constant, parse_float=_finite_float)
    except _Constant as constant:
        name = str(constant)
        problem = ("invalid character 'I' in numeric literal" if name.startswith("-")
                   else f"invalid character {quote_char(name[0])} looking for beginning of value")
    except _Overflow as overflow:
        problem = f"json: cannot unmarshal number {overflow} into Go value of type float64"
    except json.JSONDecodeError as exc:
        problem = go_syntax_error(text, exc)
    raise errors.bad_request(f"couldn't get version/kind; json parse error: {problem}")


class _Overflow(ValueError):
    """A number too large for a float64 (Python would make it infinity, which is no JSON)."""


def _finite_float(text: str) -> float:
    value = float(text)
    if value in (float("inf"), float("-inf")):
        raise _Overflow(text)
    return value


def decode_yaml(body: bytes):
    """Parse a YAML body (JSON is YAML) into JSON values, as YAMLToJSON does."""
    try:
        return decode_json(body)
    except ApiError:
        pass
    import yaml  # a dependency of the kubernetes client
    try:
        obj = yaml.load(body.decode("utf-8", errors="replace"), Loader=_yaml_loader())
        return json.loads(json.dumps(obj, allow_nan=False))  # as YAMLToJSON: JSON values, string keys
    except (yaml.YAMLError, TypeError, ValueError) as exc:
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise errors.bad_request(f"error converting YAML to JSON: yaml: {problem}") from None


_LOADER = None


def _yaml_loader():
    """SafeLoader without the timestamp type: YAMLToJSON keeps timestamps as strings."""
    global _LOADER
    if _LOADER is None:
        import yaml

        class Loader(yaml.SafeLoader):
            pass

        Loader.yaml_implicit_resolvers = {
            first: [r for r in resolvers if r[0] != "tag:yaml.org,2002:timestamp"]
            for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()}
        _LOADER = Loader
    return _LOADER


def quote_char(char: str) -> str:
    """Go's encoding/json quoteChar: how a syntax error shows the offending character."""
    if char == "'":
        return "'\\''"
    if char == '"':
        return "'\"'"
    return "'" + go_quote(char)[1:-1] + "'"


def go_syntax_error(text: str, exc: json.JSONDecodeError) -> str:
    """encoding/json's SyntaxError text for the error Python's parser found."""
    pos, msg = exc.pos, exc.msg
    if pos >= len(text.rstrip()) or msg.startswith("Unterminated string"):
        return "unexpected end of JSON input"
    char = text[pos]
    if msg == "Expecting value":
        for literal in ("true", "false", "null"):
            if char == literal[0]:
                for got, want in zip(text[pos:pos + len(literal)], literal):
                    if got != want:
                        return f"invalid character {quote_char(got)} in literal {literal} (expecting {quote_char(want)})"
                return "unexpected end of JSON input"
        return f"invalid character {quote_char(char)} looking for beginning of value"
    if msg.startswith("Expecting property name"):
        return f"invalid character {quote_char(char)} looking for beginning of object key string"
    if msg == "Expecting ':' delimiter":
        return f"invalid character {quote_char(char)} after object key"
    if msg == "Expecting ',' delimiter":
        where = "object key:value pair" if _innermost_open(text, pos) == "{" else "array element"
        return f"invalid character {quote_char(char)} after {where}"
    if msg == "Extra data":
        return f"invalid character {quote_char(char)} after top-level value"
    if msg.startswith("Invalid control character"):
        return f"invalid character {quote_char(char)} in string literal"
    if msg.startswith("Invalid \\"):
        escaped = text[pos + 1] if char == "\\" and pos + 1 < len(text) else char
        return f"invalid character {quote_char(escaped)} in string escape code"
    return msg


def _innermost_open(text: str, pos: int) -> str:
    """The bracket ("{" or "[") enclosing position ``pos`` of a JSON text."""
    stack, in_string, escaped = [], False, False
    for char in text[:pos]:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "{[":
            stack.append(char)
        elif char in "}]" and stack:
            stack.pop()
    return stack[-1] if stack else ""


def find_kind_error(value) -> str:
    """Go's error for a body that is not a JSON object (it is read into {apiVersion, kind} first)."""
    return (f"json: cannot unmarshal {go_json_type(value)} into Go value of type struct "
            '{ APIVersion string "json:\\"apiVersion,omitempty\\""; Kind string "json:\\"kind,omitempty\\"" }')


def summarize(body: bytes, limit: int = 30) -> str:
    """transformDecodeError's summarizeData: a JSON object's first bytes, else hex."""
    if not body:
        return "<empty>"
    more = " ..." if len(body) > limit else ""
    if body[:1] == b"{":
        return body[:limit].decode("utf-8", errors="replace") + more
    return body[:limit].hex() + more
