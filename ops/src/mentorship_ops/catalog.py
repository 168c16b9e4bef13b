"""The event catalog (`make docs`): AsyncAPI from the code (FastStream), JSON Schemas, a page per
event (purpose, producer, topic, key, consumers, personal data, example), and each service's OpenAPI."""

from __future__ import annotations

import importlib
import json
import shutil
from pathlib import Path
from typing import Any

from faststream.specification import AsyncAPI

from mentorship_contracts import Envelope, EventData, Topic, all_models
from mentorship_contracts.registry import protection_of, superseded_by_upcast, upcast_target
from mentorship_contracts.snapshots import SNAPSHOT_DIR

from .connection import SERVICES

# Insights only reads the topics; it is catalogued as a consumer of the events and for its OpenAPI.
CATALOG_SERVICES = SERVICES


def _apps() -> dict[str, Any]:
    apps = {}
    for name in CATALOG_SERVICES:
        module = importlib.import_module(f"{name}_service.entrypoints.app")
        apps[name] = module.create()
    return apps


def _example(schema: dict[str, Any], root: dict[str, Any], name: str = "") -> Any:
    """A plausible example value from a JSON Schema (enough to show the payload's shape)."""
    if "$ref" in schema:
        return _example(root["$defs"][schema["$ref"].split("/")[-1]], root, name)
    if "default" in schema and schema["default"] not in (None, [], {}):
        return schema["default"]
    if "anyOf" in schema:
        options = [o for o in schema["anyOf"] if o.get("type") != "null"]
        return _example(options[0], root, name) if options else None
    if "enum" in schema:
        return schema["enum"][0]
    if "const" in schema:
        return schema["const"]
    t = schema.get("type")
    if t == "object":
        props = schema.get("properties", {})
        if not props and "additionalProperties" in schema:
            return {}
        return {k: _example(v, root, k) for k, v in props.items()}
    if t == "array":
        return [_example(schema.get("items", {}), root, name)]
    if t == "integer":
        return max(schema.get("minimum", 1), 1)
    if t == "number":
        return 0.9
    if t == "boolean":
        return False
    fmt = schema.get("format")
    if fmt == "date-time":
        return "2026-12-01T09:00:00Z"
    if fmt == "date":
        return "2027-03-31"
    if name.endswith("_id") or name == "id":
        return f"{name.removesuffix('_id') or 'x'}-7f3c"
    if name.endswith("_ids"):
        return f"{name.removesuffix('_ids')}-7f3c"
    return {"email": "ada@example.org", "time_zone": "Europe/Berlin", "display_name": "Ada Lovelace"}.get(
        name, name or "text"
    )


def _personal_data_section(type_: str, model: type[EventData]) -> str:
    """Which fields are personal and how each is protected; for a newer version, what it replaces."""
    lines = ["## Personal data\n"]
    protection = protection_of(model)
    if protection:
        lines.append("| field | how it is protected |\n|---|---|")
        lines += [f"| `{field}` | {how} |" for field, how in protection.items()]
    else:
        lines.append("None: ids, states, times, numbers and codes only.")
    newer = upcast_target(type_)
    if newer:
        lines.append(
            f"\nSuperseded by [`{newer}`]({newer}.md): producers publish the newer version; readers get "
            "old records upcast to it (the text dropped), so a replay never re-creates it."
        )
    older = superseded_by_upcast(type_)
    if older:
        links = ", ".join(f"[`{o}`]({o}.md)" for o in older)
        if str(model.topic) == Topic.PROFILE:
            lines.append(
                f"\nReplaces {links}, whose records are read as this version (the upcaster drops the personal "
                "fields). A person's name, email, job, manager, goals and preferences travel only on the "
                "compacted `profile.state` ([`ProfileState`](mentorship.profile.profile_state.md)), where an "
                "erase writes a tombstone."
            )
        else:
            lines.append(
                f"\nReplaces {links}, whose records are read as this version. What people wrote stays in the "
                f"{str(model.topic).split('.')[0]} service, readable through its API by those allowed; this event "
                "only says that it exists (`has_...`) or why in a word (`reason_code`)."
            )
    return "\n".join(lines) + "\n\n"


def _consumers_of(type_: str, consumers: dict[str, list[str]]) -> str:
    """Who reads this type; an old version is read (upcast) by the consumers of the newer one."""
    names = list(consumers.get(type_, []))
    newer = upcast_target(type_)
    if newer:
        names += [f"{c} (as v2)" for c in consumers.get(newer, []) if c not in names]
    return ", ".join(names)


def _protection_summary(type_: str, model: type[EventData]) -> str:
    if not model.personal_data:
        return "no" + (" (replaces a version with text)" if superseded_by_upcast(type_) else "")
    return "; ".join(f"`{f}`: {how.split(';')[0]}" for f, how in protection_of(model).items())


def build_catalog(out: str | Path) -> list[Path]:
    out = Path(out)
    if out.exists():
        shutil.rmtree(out)
    (out / "schemas").mkdir(parents=True)
    (out / "events").mkdir()
    (out / "openapi").mkdir()
    (out / "asyncapi").mkdir()
    written: list[Path] = []

    def write(path: Path, text: str) -> None:
        path.write_text(text)
        written.append(path)

    apps = _apps()
    consumers: dict[str, list[str]] = {}
    for name, app in apps.items():
        runtime = app.state.runtime
        spec = AsyncAPI(
            runtime.broker,
            title=f"Mentorship {name} service",
            version=app.version,
            description=f"Events the {name} service publishes and consumes.",
        )
        # Sorted keys: FastStream's channel order varies between runs, the committed catalog must not.
        write(
            out / "asyncapi" / f"{name}.json",
            json.dumps(json.loads(spec.to_specification().to_json()), indent=2, sort_keys=True) + "\n",
        )
        write(out / "openapi" / f"{name}.json", json.dumps(app.openapi(), indent=2, sort_keys=True) + "\n")
        for c in runtime.consumers:
            model = getattr(c, "model", None)  # a state topic's table consumer reads one type
            for type_ in [*c.handlers, *([model.event_type] if model is not None else [])]:
                consumers.setdefault(type_, []).append(f"{name} ({c.name})")
    for path in sorted(SNAPSHOT_DIR.glob("*.json")):
        shutil.copy(path, out / "schemas" / path.name)
        written.append(out / "schemas" / path.name)

    rows = []
    for type_, model in all_models().items():
        producer = str(model.topic).split(".")[0]
        schema = model.model_json_schema(mode="serialization")
        data = _example(schema, schema)
        envelope = {
            "specversion": "1.0",
            "id": "5b0e6c1e-3f4a-4d7e-9c55-0d5f3c2a9e10",
            "type": type_,
            "source": producer,
            "subject": data.get(model.subject_field, "id"),
            "time": "2026-12-01T09:00:00Z",
            "datacontenttype": "application/json",
            "dataschema": model.dataschema(),
            "dataversion": model.event_version,
            "correlationid": "5b0e6c1e-3f4a-4d7e-9c55-0d5f3c2a9e10",
            "causationid": None,
            "data": data,
        }
        pd = ", ".join(f"`{f}`" for f in model.personal_data) or "none"
        version_note = f", superseded by `{upcast_target(type_)}`" if upcast_target(type_) else ""
        page = (
            f"# {model.__name__}\n\n`{type_}` (version {model.event_version}{version_note})\n\n"
            f"{(model.__doc__ or '').strip()}\n\n"
            f"| | |\n|---|---|\n| producer | {producer} service |\n| topic | `{model.topic}` |\n"
            f"| key | `{model.subject_field}` (also the envelope's `subject`) |\n"
            f"| consumers | {_consumers_of(type_, consumers) or 'none inside the platform'} |\n"
            f"| personal data | {pd} |\n| JSON Schema | [../schemas/{type_}.json](../schemas/{type_}.json) |\n\n"
            + _personal_data_section(type_, model)
            + f"## Example\n\n```json\n{json.dumps(envelope, indent=2, default=str)}\n```\n"
        )
        write(out / "events" / f"{type_}.md", page)
        rows.append(
            f"| [{model.__name__}](events/{type_}.md) | `{model.topic}` | `{model.subject_field}` | "
            f"{_protection_summary(type_, model)} | {model.summary} |"
        )
    index = (
        "# Event catalog\n\nGenerated by `make docs` from the code. Every event travels in a CloudEvents 1.0 "
        "envelope (structured mode, `content-type: application/cloudevents+json`); the Kafka key is the "
        "envelope's `subject`. Changes are additive only; a breaking change is a new version.\n\n"
        "- AsyncAPI (from FastStream): " + ", ".join(f"[{s}](asyncapi/{s}.json)" for s in CATALOG_SERVICES) + "\n"
        "- OpenAPI: " + ", ".join(f"[{s}](openapi/{s}.json)" for s in CATALOG_SERVICES) + "\n"
        "- Dead letters: `<topic>.dlt`, original bytes, key and headers plus `dlt-error`, `dlt-attempts`, "
        "`dlt-original-topic`, `dlt-original-partition`, `dlt-original-offset`, `dlt-consumer-group`; a state "
        "topic's letters carry no value (`dlt-value-omitted: true`): replaying the topic recovers it.\n"
        "- State topics (`*.state`, compacted, kept forever): read them like a table, the latest value per key "
        "is the current state; a tombstone (null value) means erased: delete what you hold about that key.\n"
        "- Personal data (docs/decisions/personal-data-in-events.md): events carry ids and non-personal facts. "
        "A person's name, email and profile travel on the compacted `profile.state` topic (a tombstone on "
        "erasure); free text people write (messages, reasons, agendas, notes, comments, goal titles) stays "
        "in the service where it was written, readable through its API, and version 2 of each event that "
        "carried it has only a flag (`has_message`, ...) or a reason code. The column below says, per "
        "event, which fields are personal and how each is protected.\n\n"
        "| event | topic | key | personal data (how protected) | purpose |\n|---|---|---|---|---|\n"
        + "\n".join(rows)
        + "\n"
    )
    write(out / "README.md", index)
    _ = Envelope
    return written
