"""JSON Schema snapshots of every event, and the backward-compatibility check against them.

`make schemas` (python -m mentorship_contracts.snapshots write) refreshes the snapshots on
purpose; the contract test calls `incompatibilities()` and fails on any finding.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from .registry import all_models

SNAPSHOT_DIR = Path(__file__).parent / "schemas"


def current_schemas() -> dict[str, dict[str, Any]]:
    out = {}
    for type_, model in all_models().items():
        schema = model.model_json_schema(mode="serialization")
        schema["x-event-type"] = type_
        schema["x-event-version"] = model.event_version
        schema["x-topic"] = str(model.topic)
        schema["x-key"] = model.subject_field
        schema["x-personal-data"] = list(model.personal_data)
        out[type_] = schema
    return out


def snapshot_path(type_: str) -> Path:
    return SNAPSHOT_DIR / f"{type_}.json"


def write_snapshots() -> list[Path]:
    SNAPSHOT_DIR.mkdir(parents=True, exist_ok=True)
    written = []
    for type_, schema in current_schemas().items():
        path = snapshot_path(type_)
        path.write_text(json.dumps(schema, indent=2, sort_keys=True) + "\n")
        written.append(path)
    return written


def incompatibilities() -> list[str]:
    """What in the current models would break a reader of a committed snapshot."""
    problems: list[str] = []
    current = current_schemas()
    for path in sorted(SNAPSHOT_DIR.glob("*.json")):
        old = json.loads(path.read_text())
        type_ = old.get("x-event-type", path.stem)
        new = current.get(type_)
        if new is None:
            problems.append(f"{type_}: event removed (publish a new version instead)")
            continue
        _compare(type_, old, new, old, new, "", problems)
    for type_ in current:
        if not snapshot_path(type_).exists():
            problems.append(f"{type_}: no committed snapshot (run `make schemas`)")
    return problems


def _resolve(node: dict[str, Any], root: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in node:
        name = node["$ref"].split("/")[-1]
        node = root.get("$defs", {}).get(name, {})
    return node


def _types(node: dict[str, Any], root: dict[str, Any]) -> set[str]:
    node = _resolve(node, root)
    if "anyOf" in node:
        out: set[str] = set()
        for option in node["anyOf"]:
            out |= _types(option, root)
        return out
    if "enum" in node:
        return {f"enum:{v}" for v in node["enum"]}
    if "const" in node:
        return {f"enum:{node['const']}"}
    t = node.get("type")
    if isinstance(t, list):
        return set(t)
    if t:
        fmt = node.get("format")
        return {f"{t}:{fmt}" if fmt else t}
    return {"any"}


def _compare(
    type_: str, old: Any, new: Any, old_root: dict[str, Any], new_root: dict[str, Any], where: str, problems: list[str]
) -> None:
    old = _resolve(old, old_root)
    new = _resolve(new, new_root)
    old_props = old.get("properties", {})
    new_props = new.get("properties", {})
    for name in old_props:
        if name not in new_props:
            problems.append(f"{type_}: field {where}{name} removed")
    old_required, new_required = set(old.get("required", [])), set(new.get("required", []))
    for name in sorted(new_required - old_required):
        problems.append(f"{type_}: field {where}{name} is newly required")
    for name in sorted((old_required - new_required) & set(new_props)):
        problems.append(f"{type_}: field {where}{name} is no longer required (readers rely on it)")
    for name, old_field in old_props.items():
        if name not in new_props:
            continue
        new_field = new_props[name]
        old_t, new_t = _types(old_field, old_root), _types(new_field, new_root)
        # Narrowing breaks the reading of old events, widening breaks existing readers: equal only.
        if old_t != new_t and "any" not in old_t | new_t:
            problems.append(f"{type_}: field {where}{name} changed type {sorted(old_t)} -> {sorted(new_t)}")
            continue
        o, n = _resolve(old_field, old_root), _resolve(new_field, new_root)
        _compare_limits(type_, f"{where}{name}", _leaf(old_field, old_root), _leaf(new_field, new_root), problems)
        if "properties" in o and "properties" in n:
            _compare(type_, o, n, old_root, new_root, f"{where}{name}.", problems)
        if o.get("type") == "array" and n.get("type") == "array":
            oi, ni = o.get("items", {}), n.get("items", {})
            if "properties" in _resolve(oi, old_root):
                _compare(type_, oi, ni, old_root, new_root, f"{where}{name}[].", problems)


# Limits a field may gain without breaking anyone (see `_compare_limits`).
_CAPS = ("maxLength", "maxItems", "maxProperties")
_FLOORS = ("minLength", "minItems", "minProperties")
_SHAPES = ("pattern", "patternProperties")


def _leaf(node: dict[str, Any], root: dict[str, Any]) -> dict[str, Any]:
    """The non-null option of an optional field (`anyOf: [X, null]`), resolved."""
    node = _resolve(node, root)
    options = [o for o in node.get("anyOf", []) if _resolve(o, root).get("type") != "null"]
    return _resolve(options[0], root) if len(options) == 1 else node


def _compare_limits(type_: str, field: str, old: dict[str, Any], new: dict[str, Any], problems: list[str]) -> None:
    """Limits stay as they are, except that a field may gain a cap or a pattern it never had.

    Why adding one is allowed: a cap is added together with the same (or a tighter) cap on the
    request models that produce the field, chosen above anything writers accepted before, so no
    event already on a topic breaks it; and a reader of the older schema accepts everything the
    newer one allows. Lowering, raising or dropping an existing limit is refused like a type change:
    a lower cap or a higher floor fails old events, a higher cap or a dropped one fails old readers.
    """
    for key in (*_CAPS, *_FLOORS, *_SHAPES):
        if key not in old and key in new and key in (*_CAPS, *_SHAPES):
            continue  # a first cap or pattern: see above
        if old.get(key) != new.get(key) and (key in old or key in new):
            problems.append(f"{type_}: field {field} changed {key} {old.get(key)!r} -> {new.get(key)!r}")
    old_items, new_items = old.get("items"), new.get("items")
    if isinstance(old_items, dict) and isinstance(new_items, dict) and "properties" not in old_items:
        _compare_limits(type_, f"{field}[]", old_items, new_items, problems)


def main(argv: list[str] | None = None) -> int:
    args = argv if argv is not None else sys.argv[1:]
    if args[:1] == ["write"]:
        for path in write_snapshots():
            print(f"wrote {path.relative_to(Path.cwd()) if path.is_relative_to(Path.cwd()) else path}")
        return 0
    problems = incompatibilities()
    for p in problems:
        print(p)
    print("compatible" if not problems else f"{len(problems)} incompatible change(s)")
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
