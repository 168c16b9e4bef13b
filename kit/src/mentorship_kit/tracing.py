"""OpenTelemetry traces, configured from the standard `OTEL_*` variables, and W3C trace context
carried across Kafka in record headers.

Off unless asked for: without `OTEL_EXPORTER_OTLP_ENDPOINT` (or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`)
and without `OTEL_TRACES_EXPORTER`, nothing is exported and spans cost next to nothing. Even
then a `traceparent` that arrives (HTTP header, Kafka record header) is passed on, so a traced
caller's trace is not cut by an untraced service.

- `OTEL_TRACES_EXPORTER`: `otlp` (OTLP over HTTP/protobuf), `console` (JSON on stdout) or `none`;
  default `otlp` when an endpoint is set, else `none`.
- `OTEL_SERVICE_NAME`: defaults to the service's name (`SERVICE_NAME`).
- `OTEL_TRACES_SAMPLER` / `OTEL_TRACES_SAMPLER_ARG`, `OTEL_RESOURCE_ATTRIBUTES`, `OTEL_BSP_*`,
  `OTEL_EXPORTER_OTLP_HEADERS` ...: read by the SDK as documented by OpenTelemetry.

Where trace context travels: a use case's events get the current `traceparent`/`tracestate` in
their outbox entry (`trace_headers`, called by `outbox_entries`); the relay publishes each entry
in a PRODUCER span that is a child of it and sends that span's context as the record's
`traceparent`/`tracestate` headers, plus `ce_traceparent`/`ce_tracestate` (the CloudEvents
distributed-tracing extension in the binary-mode header spelling the kit's `ce_` headers use);
a consumer handles the record in a CONSUMER span that is a child of it (`context_from_headers`).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, MutableMapping
from typing import Any

import structlog
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace import Span, SpanKind, Status, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from pymongo import monitoring

log = structlog.get_logger()

TRACE_HEADERS = ("traceparent", "tracestate")
CE_TRACE_HEADERS = ("ce_traceparent", "ce_tracestate")

_propagator = TraceContextTextMapPropagator()
_tracer = trace.get_tracer("mentorship_kit")
_provider: Any = None  # the SDK TracerProvider, once configured in this process
_exporter_name = "none"


def tracer() -> trace.Tracer:
    return _tracer


def exporter_choice(environ: Mapping[str, str] | None = None) -> str:
    """`otlp`, `console` or `none`, from `OTEL_TRACES_EXPORTER` (or whether an endpoint is set)."""
    env = os.environ if environ is None else environ
    if env.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return "none"
    chosen = env.get("OTEL_TRACES_EXPORTER", "").strip().lower()
    if chosen:
        # a list is allowed by the spec; the first one we know wins
        known = [c.strip() for c in chosen.split(",") if c.strip() in ("otlp", "console", "none")]
        if not known:
            raise ValueError(f"OTEL_TRACES_EXPORTER={chosen!r}: use otlp, console or none")
        return known[0]
    endpoint = env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or env.get("OTEL_EXPORTER_OTLP_ENDPOINT")
    return "otlp" if endpoint else "none"


def configure_tracing(service: str) -> bool:
    """Install the SDK's tracer provider with the configured exporter; True when spans are exported.

    Once per process (OpenTelemetry allows one global provider): later calls keep the first."""
    global _provider, _exporter_name
    if _provider is not None:
        return _exporter_name != "none"
    choice = exporter_choice()
    if choice == "none":
        return False
    from opentelemetry.sdk.resources import SERVICE_NAME, Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SpanExporter

    resource = Resource.create({SERVICE_NAME: os.environ.get("OTEL_SERVICE_NAME") or service})
    provider = TracerProvider(resource=resource)  # the sampler comes from OTEL_TRACES_SAMPLER
    exporter: SpanExporter
    if choice == "console":
        exporter = ConsoleSpanExporter(formatter=lambda span: span.to_json(indent=None) + os.linesep)
    else:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        exporter = OTLPSpanExporter()  # endpoint, headers, timeout from OTEL_EXPORTER_OTLP_*
    provider.add_span_processor(BatchSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    _provider, _exporter_name = provider, choice
    log.info("tracing on", exporter=choice, service_name=resource.attributes.get(SERVICE_NAME))
    return True


def tracing_enabled() -> bool:
    return _provider is not None and _exporter_name != "none"


async def flush_tracing() -> None:
    """Export what is buffered (at shutdown)."""
    if _provider is not None:
        _provider.force_flush(5000)


# --- trace context in headers --------------------------------------------------------------------


def trace_headers(span_context: Context | None = None) -> list[tuple[str, bytes]]:
    """The current (or given) context as Kafka headers: W3C names and their CloudEvents `ce_` twins.
    Empty when no trace is active."""
    carrier: dict[str, str] = {}
    _propagator.inject(carrier, context=span_context)
    out: list[tuple[str, bytes]] = []
    for name, ce_name in zip(TRACE_HEADERS, CE_TRACE_HEADERS, strict=True):
        if value := carrier.get(name):
            out += [(name, value.encode()), (ce_name, value.encode())]
    return out


def without_trace_headers(headers: Iterable[tuple[str, bytes]]) -> list[tuple[str, bytes]]:
    dropped = set(TRACE_HEADERS) | set(CE_TRACE_HEADERS)
    return [(k, v) for k, v in headers if k not in dropped]


def context_from_headers(headers: Iterable[tuple[str, bytes | str]] | None) -> Context:
    """The trace context a record (or request) carries: `traceparent`, else `ce_traceparent`."""
    found: dict[str, str] = {}
    for key, value in headers or ():
        name = key.lower()
        text = value.decode("latin-1") if isinstance(value, bytes) else value
        if name in TRACE_HEADERS:
            found[name] = text
        elif name in CE_TRACE_HEADERS:
            found.setdefault(name.removeprefix("ce_"), text)
    return _propagator.extract(found) if found else Context()


def record_failure(span: Span, exc: BaseException) -> None:
    span.record_exception(exc)
    span.set_status(Status(StatusCode.ERROR, f"{type(exc).__name__}"))


# --- store calls ---------------------------------------------------------------------------------


class StoreSpans(monitoring.CommandListener):
    """One CLIENT span per store command, only inside a trace (a request, a handled event, a publish,
    a timer firing): the relay's and timers' idle polling does not fill the trace store."""

    def __init__(self, database_system: str = "mongodb") -> None:
        self.system = database_system
        self._open: dict[tuple[Any, int], Span] = {}

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        if not trace.get_current_span().get_span_context().is_valid:
            return
        collection = event.command.get(event.command_name)
        target = collection if isinstance(collection, str) else ""
        span = _tracer.start_span(
            f"{event.command_name} {target}".strip(),
            kind=SpanKind.CLIENT,
            attributes={
                "db.system": self.system,
                "db.name": event.database_name,
                "db.operation": event.command_name,
                "db.mongodb.collection": target,
            },
        )
        if len(self._open) < 10_000:  # a listener must never grow without bound
            self._open[(event.connection_id, event.request_id)] = span
        else:
            span.end()

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        span = self._open.pop((event.connection_id, event.request_id), None)
        if span is not None:
            span.end()

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        span = self._open.pop((event.connection_id, event.request_id), None)
        if span is not None:
            span.set_status(Status(StatusCode.ERROR, str(event.failure.get("codeName", "failed"))[:100]))
            span.end()


# --- logs ----------------------------------------------------------------------------------------


def add_trace_ids(_: Any, __: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """structlog processor: `trace_id` and `span_id` of the active span, when there is one."""
    ctx = trace.get_current_span().get_span_context()
    if ctx.is_valid:
        event_dict.setdefault("trace_id", format(ctx.trace_id, "032x"))
        event_dict.setdefault("span_id", format(ctx.span_id, "016x"))
    return event_dict
