"""The defaults a scenario file leaves in force: what ``kubesim validate -v`` shows, so a short
file does not hide what it will run (ten tasks of 30 s, three nodes, no faults...)."""

from __future__ import annotations

import json

from pydantic import BaseModel


def defaults_in_force(model: BaseModel, prefix: str = "") -> list[tuple[str, str]]:
    """(dotted key, value as YAML flow text) for every field the file did not set; a whole
    section left out is one entry."""
    found = []
    for name in type(model).model_fields:
        value = getattr(model, name)
        dotted = f"{prefix}{name}"
        if name in model.model_fields_set:
            if isinstance(value, BaseModel):
                found += defaults_in_force(value, dotted + ".")
            continue
        if value is None or value == "" or value == [] or value == {}:
            continue  # nothing applies: no description, no matrix, no faults
        found.append((dotted, flow(value)))
    return found


def flow(value) -> str:
    """A value as it would be written in the file (YAML flow style)."""
    if isinstance(value, BaseModel):
        value = value.model_dump(exclude_none=True)
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {flow(v)}" for k, v in value.items() if v not in ({}, [], None)) + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(flow(v) for v in value) + "]"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    plain = isinstance(value, str) and value[:1].isalpha() and value.replace("_", "").isalnum()
    return value if plain else json.dumps(value)
