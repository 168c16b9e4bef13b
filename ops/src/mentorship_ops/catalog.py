"""The event catalog (`make docs`): AsyncAPI from the code (FastStream), JSON Schemas, a page per
event (purpose, producer, topic, key, consumers, personal data, example), and each service's OpenAPI."""

from __future__ import annotations

import importlib
import json
import shutil
from pathlib import Path
from typing import Any

from faststream.specification import AsyncAPI

from mentorship_contracts import Envelope, all_models
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


def _protection(model: Any) -> str:
    """The page's "Personal data" section: each personal field and how it is protected (the model's
    `personal_data_protection`, field -> sentence), and the fields a model says it leaves out."""
    said: dict[str, str] = dict(getattr(model, "personal_data_protection", {}) or {})
    if not model.personal_data and not said:
        return ""
    lines = ["## Personal data\n", "| field | how it is protected |", "|---|---|"]
    for name in model.personal_data:
        lines.append(
            f"| `{name}` | {said.pop(name, 'carried in the event; erased from every store on ProfileErased')} |"
        )
    lines += [f"| {name} | {text} |" for name, text in said.items()]
    return "\n".join(lines) + "\n\n"


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
        page_protection = _protection(model)
        page = (
            f"# {model.__name__}\n\n`{type_}` (version {model.event_version})\n\n{(model.__doc__ or '').strip()}\n\n"
            f"| | |\n|---|---|\n| producer | {producer} service |\n| topic | `{model.topic}` |\n"
            f"| key | `{model.subject_field}` (also the envelope's `subject`) |\n"
            f"| consumers | {', '.join(consumers.get(type_, [])) or 'none inside the platform'} |\n"
            f"| personal data | {pd} |\n| JSON Schema | [../schemas/{type_}.json](../schemas/{type_}.json) |\n\n"
            f"{page_protection}"
            f"## Example\n\n```json\n{json.dumps(envelope, indent=2, default=str)}\n```\n"
        )
        write(out / "events" / f"{type_}.md", page)
        rows.append(
            f"| [{model.__name__}](events/{type_}.md) | `{model.topic}` | `{model.subject_field}` | "
            f"{'yes' if model.personal_data else 'no'} | {model.summary} |"
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
        "is the current state; a tombstone (null value) means erased: delete what you hold about that key. "
        "Personal data travels only there (see docs/decisions/personal-data-in-events.md).\n\n"
        "| event | topic | key | personal data | purpose |\n|---|---|---|---|---|\n" + "\n".join(rows) + "\n"
    )
    write(out / "README.md", index)
    _ = Envelope
    return written
