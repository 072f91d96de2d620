"""JSON-schema snapshots of every message, and the rule that keeps them compatible."""

from __future__ import annotations

from typing import Any

from contracts.envelope import Envelope, Payload
from contracts.routing import ALL_MESSAGES


def message_schema(payload: type[Payload]) -> dict[str, Any]:
    return Envelope[payload].model_json_schema()  # type: ignore[valid-type]


def all_schemas() -> dict[str, dict[str, Any]]:
    return {m.routing_key(): message_schema(m) for m in ALL_MESSAGES}


def breaking_changes(old: dict[str, Any], new: dict[str, Any], path: str = "$") -> list[str]:
    """What a consumer written against `old` would trip over in `new`.

    Additive evolution only: no property removed or retyped, no new required property,
    no enum value removed. Definitions ($defs) are compared by name.
    """
    problems: list[str] = []
    old_defs, new_defs = old.get("$defs", {}), new.get("$defs", {})

    def compare(o: dict[str, Any], n: dict[str, Any], where: str) -> None:
        if "$ref" in o:
            name = o["$ref"].rsplit("/", 1)[-1]
            if "$ref" not in n:
                problems.append(f"{where}: reference to {name} replaced")
                return
            new_name = n["$ref"].rsplit("/", 1)[-1]
            if name in old_defs and new_name in new_defs and (name, where) not in seen:
                seen.add((name, where))
                compare(old_defs[name], new_defs[new_name], f"{where}<{name}>")
            return
        if o.get("type") != n.get("type"):
            problems.append(f"{where}: type {o.get('type')!r} became {n.get('type')!r}")
        if "enum" in o:
            lost = set(o["enum"]) - set(n.get("enum", o["enum"]))
            if lost:
                problems.append(f"{where}: enum values removed {sorted(lost)}")
        if "const" in o and o["const"] != n.get("const"):
            problems.append(f"{where}: const changed")
        for key in ("anyOf", "oneOf"):
            if key in o:
                if len(n.get(key, [])) < len(o[key]):
                    problems.append(f"{where}: {key} alternatives removed")
                for i, (oi, ni) in enumerate(zip(o[key], n.get(key, []), strict=False)):
                    compare(oi, ni, f"{where}.{key}[{i}]")
        if "items" in o and isinstance(o["items"], dict):
            compare(o["items"], n.get("items", {}), f"{where}[]")
        new_props = n.get("properties", {})
        for prop, schema in o.get("properties", {}).items():
            if prop not in new_props:
                problems.append(f"{where}.{prop}: property removed")
            else:
                compare(schema, new_props[prop], f"{where}.{prop}")
        added_required = set(n.get("required", [])) - set(o.get("required", []))
        if added_required:
            problems.append(f"{where}: new required properties {sorted(added_required)}")

    seen: set[tuple[str, str]] = set()
    compare(old, new, path)
    return problems
