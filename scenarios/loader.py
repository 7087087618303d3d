"""Reading scenario files: YAML in, validated ``Scenario`` objects out, or an error that names
the file, the line and the field, says what was expected, and how to fix it."""

from __future__ import annotations

import copy
import difflib
import re
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from .schema import Scenario

Location = tuple


class ScenarioError(ValueError):
    """A scenario file that cannot be used; ``problems`` are (line, field, message) triples."""

    def __init__(self, path: Path | str, problems: list[tuple[int | None, str, str]]):
        self.path, self.problems = Path(path), problems
        super().__init__(self.render())

    def render(self) -> str:
        lines = [f"{self.path}: invalid scenario ({len(self.problems)} problem{'s' * (len(self.problems) > 1)})"]
        for line, where, message in self.problems:
            place = f"{self.path}:{line}" if line else str(self.path)
            lines.append(f"  {place}: {where}: {message}" if where else f"  {place}: {message}")
        lines.append("  (run `kubesim schema` for the full schema)")
        return "\n".join(lines)


@dataclass
class LoadedScenario:
    scenario: Scenario
    path: Path
    variant: str = ""                      # matrix entry id, "" when the file has no matrix
    lines: dict[Location, int] = field(default_factory=dict)

    @property
    def id(self) -> str:
        name = self.scenario.name or self.path.stem
        return f"{name}[{self.variant}]" if self.variant else name

    def line_of(self, *location) -> int | None:
        return line_for(self.lines, tuple(location))


def load(path: str | Path) -> list[LoadedScenario]:
    """Every scenario a file declares: one, or one per matrix entry."""
    path = Path(path)
    raw, lines = parse_yaml(path, read(path))
    base = validate(path, raw, lines)
    if not base.matrix:
        return [LoadedScenario(base, path, "", lines)]
    return [load_variant(path, raw, lines, entry, ("matrix", i)) for i, entry in enumerate(base.matrix)]


def select_variant(scenarios: list[LoadedScenario], variant: str | None) -> list[LoadedScenario]:
    """All of a file's variants, or only the one named (ScenarioError naming those there are)."""
    if variant is None:
        return scenarios
    chosen = [s for s in scenarios if s.variant == variant]
    if not chosen:
        known = ", ".join(s.variant for s in scenarios) or "(the file has no matrix)"
        raise ScenarioError(scenarios[0].path, [(None, "matrix", f"no variant {variant!r}; known: {known}")])
    return chosen


def read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ScenarioError(path, [(None, "", f"cannot read the file: {exc.strerror}")]) from None
    except UnicodeDecodeError as exc:
        raise ScenarioError(path, [(None, "", f"not UTF-8 text: {exc.reason}")]) from None


def load_variant(path: Path, raw: dict, lines: dict[Location, int], entry: Any,
                 origin: Location | None, label: str | None = None) -> LoadedScenario:
    """The file with one variant's dotted overrides applied. ``origin`` is where the entry sits
    in the file (("matrix", i)); None for overrides given elsewhere (``kubesim sweep --set``).
    Errors and failed expectations point at the override's own line, not the base file's."""
    label = label or (f"matrix[{origin[1]}]" if origin else "the override")
    variant = apply_overrides(path, raw, entry, lines, origin, label)
    variant_lines = override_lines(lines, entry, origin)
    try:
        scenario = validate(path, variant, variant_lines)
    except ScenarioError as exc:
        raise ScenarioError(path, [(line, where, f"{message} (in {label})")
                                   for line, where, message in exc.problems]) from None
    fallback = str(origin[1]) if origin else ""  # an entry that only sets sections still needs an id
    return LoadedScenario(scenario, path, variant_id(entry) or fallback, variant_lines)


def override_lines(lines: dict[Location, int], entry: dict, origin: Location | None) -> dict[Location, int]:
    """``lines`` with every overridden location moved to the line that overrides it."""
    keys = {str(dotted): tuple(str(dotted).split(".")) for dotted in entry}
    moved = {loc: line for loc, line in lines.items()
             if not any(loc[:len(key)] == key for key in keys.values())}
    for dotted, key in keys.items():
        moved[key] = None  # no line in the file (a --set value)
        if origin is None:
            continue
        prefix = (*origin, dotted)
        for loc, line in lines.items():
            if loc[:len(prefix)] == prefix:
                moved[key + loc[len(prefix):]] = line
    return moved


def parse_yaml(path: Path, text: str) -> tuple[dict, dict[Location, int]]:
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ScenarioError(path, [yaml_problem(exc)]) from None
    if raw is None:
        raise ScenarioError(path, [(None, "", "the file is empty (or only comments): a scenario needs at "
                                              "least a workload, e.g. `workload: {dags: 1, tasks_per_dag: 10}`; "
                                              "`kubesim validate -v` shows the defaults that apply")])
    if not isinstance(raw, dict):
        raise ScenarioError(path, [(1, "", f"a scenario is a mapping of sections (cluster, executor, "
                                           f"workload, faults, expect, until), not a {type(raw).__name__}")])
    lines: dict[Location, int] = {}
    if node is not None:
        index_lines(node, (), lines)
    return raw, lines


def yaml_problem(exc: yaml.YAMLError) -> tuple[int | None, str, str]:
    """Where the parser stopped and, for a construct left open (a ``[``, ``{`` or quote), where
    that construct began: the line to fix is usually the one where it began."""
    mark, began = getattr(exc, "problem_mark", None), getattr(exc, "context_mark", None)
    problem = getattr(exc, "problem", None) or str(exc)
    stopped = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "the end"
    if began is not None and getattr(exc, "context", None) and (mark is None or began.line != mark.line):
        construct = exc.context.removeprefix("while parsing ").removeprefix("while scanning ").removeprefix("a ")
        return (began.line + 1, "", f"YAML syntax error: the {construct} begun on line {began.line + 1}, "
                                    f"column {began.column + 1} is not closed: the parser stopped at "
                                    f"{stopped} ({problem}); check its closing bracket or quote, and indentation")
    return (mark.line + 1 if mark else None, "",
            f"YAML syntax error at {stopped}: {problem}; check indentation and quoting")


def index_lines(node, location: Location, lines: dict) -> None:
    lines[location] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            child = location + (key.value,)
            lines[child] = key.start_mark.line + 1
            index_lines(value, child, lines)
            lines[child] = key.start_mark.line + 1
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            index_lines(item, location + (i,), lines)


def line_for(lines: dict[Location, int | None], location: Location) -> int | None:
    while location:
        if location in lines:
            return lines[location]
        location = location[:-1]
    return lines.get(())


def validate(path: Path, raw: dict, lines: dict[Location, int]) -> Scenario:
    try:
        return Scenario.model_validate(raw)
    except ValidationError as exc:
        raise ScenarioError(path, [problem(error, lines) for error in exc.errors()]) from None


def problem(error: dict, lines: dict[Location, int]) -> tuple[int | None, str, str]:
    location = tuple(part for part in error["loc"]
                     if not (isinstance(part, str) and (part.startswith("function-") or part == "[key]")))
    location = location + bad_executor_option(error, location)
    where = ".".join(f"[{p}]" if isinstance(p, int) else str(p) for p in location).replace(".[", "[")
    message = error["msg"].removeprefix("Value error, ")
    if error["type"] == "extra_forbidden":
        guess = closest(str(location[-1]), keys_at(location[:-1]))
        message = (f"unknown key {location[-1]!r}: did you mean {guess!r}?" if guess
                   else f"unknown key {location[-1]!r}: remove it or check its spelling")
    elif error["type"] == "literal_error" and isinstance(error.get("input"), str):
        guess = closest(error["input"], re.findall(r"'([^']*)'", error["ctx"]["expected"]))
        message += f" (got {error['input']!r}" + (f": did you mean {guess!r}?)" if guess else ")")
    elif "input" in error and error["type"] not in ("missing",) and not isinstance(error["input"], dict):
        message += f" (got {error['input']!r})"
    return line_for(lines, location), where, message


def closest(word: str, choices) -> str | None:
    """The likeliest intended spelling: of difflib's close matches, the fewest edits away
    (a swap of two neighbouring letters is one edit), then the same length: "nodse" is "nodes"
    with its letters swapped rather than "node" with one added."""
    guesses = difflib.get_close_matches(word, [str(c) for c in choices], n=3, cutoff=0.6)
    return min(guesses, key=lambda guess: (edits(word, guess), abs(len(guess) - len(word))), default=None)


def edits(a: str, b: str) -> int:
    """Optimal string alignment distance: insertions, deletions, changes, neighbour swaps."""
    rows = [list(range(len(b) + 1))]
    for i, x in enumerate(a, 1):
        row = [i]
        for j, y in enumerate(b, 1):
            cost = min(rows[-1][j] + 1, row[j - 1] + 1, rows[-1][j - 1] + (x != y))
            if i > 1 and j > 1 and x == b[j - 2] and a[i - 2] == y:
                cost = min(cost, rows[-2][j - 2] + 1)
            row.append(cost)
        rows.append(row)
    return rows[-1][-1]


def keys_at(location: Location) -> list[str]:
    """The keys the schema knows at ``location`` (a section, a fault, a fault's action...)."""
    annotation: Any = Scenario
    for part in location:
        annotation = inner(annotation, part)
        if annotation is None:
            return []
    model = model_in(annotation)
    return list(model.model_fields) if isinstance(model, type) else []


def inner(annotation, part):
    """The annotation one step down: a list's item, a dict's value, a model's field."""
    annotation = model_in(annotation) or annotation
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is list:
        return args[0]
    if origin is dict:
        return args[1]
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        field_info = annotation.model_fields.get(str(part))
        return field_info.annotation if field_info is not None else None
    return None


def model_in(annotation):
    """The pydantic model, list or dict inside ``X | None``; the model itself as it is."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    if typing.get_origin(annotation) in (list, dict):
        return annotation
    for arg in typing.get_args(annotation):
        if arg is not type(None):
            found = model_in(arg)
            if found is not None:
                return found
    return None


def bad_executor_option(error: dict, location: Location) -> Location:
    """For an ExecutorConfig error: the first bad option's name, so the line is that option's."""
    cause = getattr((error.get("ctx") or {}).get("error"), "__cause__", None)  # the ConfigError
    details = getattr(getattr(cause, "__cause__", None), "errors", None)    # its ValidationError
    if location != ("executor",) or not callable(details):
        return ()
    return tuple(details()[0]["loc"][:1])


def apply_overrides(path: Path, raw: dict, entry: Any, lines, origin: Location | None,
                    label: str = "the override") -> dict:
    """A matrix entry's dotted keys (``executor.worker_pods_creation_batch_size: 8``) applied."""
    line = line_for(lines, origin) if origin else None
    if not isinstance(entry, dict):
        raise ScenarioError(path, [(line, label, "each matrix entry maps dotted keys to values")])
    variant = copy.deepcopy(raw)
    variant.pop("matrix", None)
    for dotted, value in entry.items():
        try:
            set_dotted(variant, str(dotted), value)
        except ValueError as exc:
            key_line = line_for(lines, (*origin, dotted)) if origin else None
            raise ScenarioError(path, [(key_line, label, str(exc))]) from None
    return variant


def set_dotted(data: dict, dotted: str, value: Any) -> None:
    *parents, last = dotted.split(".")
    for part in parents:
        data = data.setdefault(part, {})
        if not isinstance(data, dict):
            raise ValueError(f"cannot set {dotted}: {part} is not a section")
    data[last] = value


def variant_id(entry: dict) -> str:
    """Named by what it varies; expectations that come with a variant do not name it."""
    varied = {k: v for k, v in entry.items() if not str(k).startswith("expect")} or entry
    return ",".join(f"{str(key).rsplit('.', 1)[-1]}={value}" for key, value in varied.items()
                    if not isinstance(value, (dict, list)))
