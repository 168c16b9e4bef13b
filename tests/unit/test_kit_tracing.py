"""Trace context in outbox entries and Kafka headers, the exporter choice, trace ids in logs."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider

from mentorship_contracts.profile import ProfileDeactivated
from mentorship_kit.clock import Clock
from mentorship_kit.outbox import outbox_entries
from mentorship_kit.tracing import add_trace_ids, context_from_headers, exporter_choice, trace_headers
from mentorship_kit.usecase import EventFactory


@pytest.fixture
def tracer() -> Iterator[trace.Tracer]:
    provider = TracerProvider()  # local: the process-wide provider stays as it is
    yield provider.get_tracer("test")
    provider.shutdown()


def test_exporter_is_off_unless_an_endpoint_or_an_exporter_is_given() -> None:
    assert exporter_choice({}) == "none"
    assert exporter_choice({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"}) == "otlp"
    assert exporter_choice({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://collector:4318/v1/traces"}) == "otlp"
    assert exporter_choice({"OTEL_TRACES_EXPORTER": "console"}) == "console"
    assert exporter_choice({"OTEL_TRACES_EXPORTER": "none", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318"}) == "none"
    assert exporter_choice({"OTEL_SDK_DISABLED": "true", "OTEL_TRACES_EXPORTER": "otlp"}) == "none"
    with pytest.raises(ValueError, match="OTEL_TRACES_EXPORTER"):
        exporter_choice({"OTEL_TRACES_EXPORTER": "zipkin"})


def test_no_trace_headers_outside_a_span() -> None:
    assert trace_headers() == []


def test_trace_headers_carry_the_active_span_and_come_back(tracer: trace.Tracer) -> None:
    with tracer.start_as_current_span("use case") as span:
        headers = dict(trace_headers())
    ctx = span.get_span_context()
    expected = f"00-{ctx.trace_id:032x}-{ctx.span_id:016x}-{ctx.trace_flags:02x}"
    assert headers["traceparent"] == headers["ce_traceparent"] == expected.encode()
    back = trace.get_current_span(context_from_headers(list(headers.items()))).get_span_context()
    assert (back.trace_id, back.span_id, back.is_remote) == (ctx.trace_id, ctx.span_id, True)
    # the CloudEvents spelling alone is enough
    only_ce = context_from_headers([("ce_traceparent", expected.encode())])
    assert trace.get_current_span(only_ce).get_span_context().trace_id == ctx.trace_id
    assert not trace.get_current_span(context_from_headers([])).get_span_context().is_valid


def test_outbox_entries_keep_the_use_cases_trace_context(tracer: trace.Tracer) -> None:
    events = EventFactory("profile", Clock())
    event = events.new(ProfileDeactivated(profile_id="p1"), correlation_id="c1")
    [untraced] = outbox_entries([event])
    assert "traceparent" not in untraced["headers"]
    with tracer.start_as_current_span("use case") as span:
        [entry] = outbox_entries([event])
    ctx = span.get_span_context()
    assert entry["headers"]["traceparent"] == f"00-{ctx.trace_id:032x}-{ctx.span_id:016x}-{ctx.trace_flags:02x}"
    assert entry["headers"]["ce_traceparent"] == entry["headers"]["traceparent"]
    assert entry["headers"]["ce_type"] == event.type  # the CloudEvents headers are still there


def test_log_lines_carry_trace_and_span_id_inside_a_span(tracer: trace.Tracer) -> None:
    assert add_trace_ids(None, "info", {"event": "x"}) == {"event": "x"}
    with tracer.start_as_current_span("handling") as span:
        line = add_trace_ids(None, "info", {"event": "x"})
    ctx = span.get_span_context()
    assert line == {"event": "x", "trace_id": f"{ctx.trace_id:032x}", "span_id": f"{ctx.span_id:016x}"}
