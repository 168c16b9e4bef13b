"""One trace across the event flow: an accept request, the MentorshipStarted it causes, scheduling's
reaction and the email sent, with the services as separate processes exporting over OTLP/HTTP to a
receiver started by this test."""

from __future__ import annotations

import gzip
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.trace.v1.trace_pb2 import Span as ProtoSpan

from mentorship_ops.support import SmtpSink
from tests.support.kafka import eventually
from tests.support.processes import ServiceProcess, free_port, service_env, token

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]

STARTED = "mentorship.matching.v2.mentorship_started"
ACCEPT_ROUTE = "POST /mentorships/{mentorship_id}/accept"


@dataclass(frozen=True)
class ExportedSpan:
    service: str
    name: str
    kind: int
    trace_id: str
    span_id: str
    parent_id: str
    attributes: dict[str, Any]


def _value(v: Any) -> Any:
    which = v.WhichOneof("value")
    return getattr(v, which) if which else None


@dataclass
class OtlpReceiver:
    """A minimal OTLP/HTTP (protobuf) trace receiver: POST /v1/traces."""

    port: int = field(default_factory=free_port)
    spans: list[ExportedSpan] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def start(self) -> OtlpReceiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                if self.headers.get("content-encoding") == "gzip":
                    body = gzip.decompress(body)
                if self.path != "/v1/traces":
                    self.send_response(404)
                    self.end_headers()
                    return
                receiver.add(ExportTraceServiceRequest.FromString(body))
                answer = ExportTraceServiceResponse().SerializeToString()
                self.send_response(200)
                self.send_header("content-type", "application/x-protobuf")
                self.send_header("content-length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def add(self, request: ExportTraceServiceRequest) -> None:
        found = []
        for rs in request.resource_spans:
            resource = {a.key: _value(a.value) for a in rs.resource.attributes}
            for ss in rs.scope_spans:
                for s in ss.spans:
                    found.append(
                        ExportedSpan(
                            service=str(resource.get("service.name")),
                            name=s.name,
                            kind=s.kind,
                            trace_id=s.trace_id.hex(),
                            span_id=s.span_id.hex(),
                            parent_id=s.parent_span_id.hex(),
                            attributes={a.key: _value(a.value) for a in s.attributes},
                        )
                    )
        with self.lock:
            self.spans.extend(found)

    def snapshot(self) -> list[ExportedSpan]:
        with self.lock:
            return list(self.spans)


@pytest.fixture
def receiver() -> Iterator[OtlpReceiver]:
    r = OtlpReceiver().start()
    yield r
    r.stop()


@pytest.fixture
def sink() -> Iterator[SmtpSink]:
    smtp = SmtpSink(free_port()).start()
    yield smtp
    smtp.stop()


def person(name: str, role: str, **fields: Any) -> dict[str, Any]:
    return {
        "display_name": name,
        "email": f"{name.split()[0].lower()}@example.org",
        "roles": [role],
        "time_zone": "Europe/Berlin",
        **fields,
    }


def ancestors(span: ExportedSpan, by_id: dict[str, ExportedSpan]) -> list[str]:
    chain, parent = [], span.parent_id
    while parent and parent in by_id:
        chain.append(parent)
        parent = by_id[parent].parent_id
    return chain


@pytest.fixture
def platform(
    infra: Any, prefix: str, tmp_path: Path, receiver: OtlpReceiver, sink: SmtpSink
) -> Iterator[dict[str, ServiceProcess]]:
    """Profile, matching, scheduling and notification as processes, exporting their spans to the
    receiver (started side by side, with a generous readiness wait: this machine may be busy)."""
    otel = {
        "otel_exporter_otlp_endpoint": f"http://127.0.0.1:{receiver.port}",
        "otel_bsp_schedule_delay": "200",
        "otel_traces_sampler": "parentbased_always_on",
    }
    extra = {"notification": {"smtp_host": "127.0.0.1", "smtp_port": str(sink.port)}}
    procs: dict[str, ServiceProcess] = {}
    for name in ("profile", "matching", "scheduling", "notification"):
        port = free_port()
        env = service_env(
            name,
            kafka=infra.kafka_bootstrap,
            mongo=infra.mongodb_uri,
            prefix=prefix,
            port=port,
            **otel,
            **extra.get(name, {}),
        )
        procs[name] = ServiceProcess(name, port, env, tmp_path / f"{name}.log").launch()
    try:
        for proc in procs.values():
            proc.wait_ready(240)
        yield procs
    finally:
        for proc in procs.values():
            proc.stop()
            print(f"--- {proc.name} log (tail) ---\n{proc.tail(60)}")


async def test_accept_to_email_is_one_trace_across_the_services(
    platform: dict[str, ServiceProcess], receiver: OtlpReceiver, sink: SmtpSink
) -> None:
    procs = platform
    admin = token("admin-1", "admin")
    async with httpx.AsyncClient(timeout=15) as http:
        ids = {}
        for role, body in (
            (
                "mentor",
                person("Grace Hopper", "mentor", mentor_capacity=2, skills=[{"name": "cobol", "proficiency": 5}]),
            ),
            ("mentee", person("Ada Lovelace", "mentee")),
        ):
            r = await http.post(f"{procs['profile'].url}/profiles", json=body, headers=admin)
            assert r.status_code == 201, r.text
            ids[role] = r.json()["profile_id"]

        async def known_everywhere() -> bool:
            for service, path in (("matching", "/read-models/profiles/{}"), ("notification", "/contacts/{}")):
                for pid in ids.values():
                    r = await http.get(f"{procs[service].url}{path.format(pid)}", headers=admin)
                    if r.status_code != 200:
                        return False
            return True

        await eventually(known_everywhere, timeout=60)
        r = await http.post(
            f"{procs['matching'].url}/mentorships",
            headers=token(ids["mentee"], "mentee"),
            json={"mentor_id": ids["mentor"], "message": "Would you mentor me?"},
        )
        assert r.status_code == 201, r.text
        mid = r.json()["mentorship_id"]
        agreement = {
            "goals": ["Write a compiler"],
            "expectations": "an hour a week",
            "cadence": "weekly",
            "planned_end": (datetime.now(UTC) + timedelta(days=90)).date().isoformat(),
        }
        r = await http.post(
            f"{procs['matching'].url}/mentorships/{mid}/accept",
            headers=token(ids["mentor"], "mentor"),
            json={"agreement": agreement},
        )
        assert r.status_code == 200, r.text

    def accept_span() -> ExportedSpan | None:
        found = [
            s
            for s in receiver.snapshot()
            if s.service == "matching" and s.name == ACCEPT_ROUTE and s.attributes.get("url.path", "").find(mid) >= 0
        ]
        return found[0] if found else None

    async def whole_trace() -> dict[str, Any] | None:
        accept = accept_span()
        if accept is None:
            return None
        spans = [s for s in receiver.snapshot() if s.trace_id == accept.trace_id]
        publish = [
            s
            for s in spans
            if s.service == "matching"
            and s.kind == ProtoSpan.SPAN_KIND_PRODUCER
            and s.attributes.get("cloudevents.event_type") == STARTED
        ]
        handled = {
            service: [
                s
                for s in spans
                if s.service == service
                and s.kind == ProtoSpan.SPAN_KIND_CONSUMER
                and s.attributes.get("cloudevents.event_type") == STARTED
            ]
            for service in ("scheduling", "notification")
        }
        smtp = [s for s in spans if s.service == "notification" and s.name == "smtp send"]
        if not (publish and handled["scheduling"] and handled["notification"] and len(smtp) >= 2):
            return None
        return {"accept": accept, "spans": spans, "publish": publish, "handled": handled, "smtp": smtp}

    found = await eventually(whole_trace, timeout=90)
    accept, spans = found["accept"], found["spans"]
    by_id = {s.span_id: s for s in spans}
    assert accept.kind == ProtoSpan.SPAN_KIND_SERVER and accept.attributes["http.response.status_code"] == 200
    assert accept.parent_id == ""  # the trace starts at the accept request

    # matching's relay publishes MentorshipStarted as a child of the request that wrote it
    [publish] = found["publish"]
    assert publish.parent_id == accept.span_id
    assert publish.attributes["messaging.destination.name"].endswith("matching.events")

    # both consumers handle it as children of that publication (the record's traceparent header)
    for service in ("scheduling", "notification"):
        [handled] = found["handled"][service]
        assert handled.parent_id == publish.span_id, service
        assert handled.attributes["mentorship.outcome"] == "handled"

    # the emails to mentee and mentor are sent while notification handles it
    notification_handling = found["handled"]["notification"][0]
    started_emails = [s for s in found["smtp"] if notification_handling.span_id in ancestors(s, by_id)]
    assert len(started_emails) == 2, [(s.name, s.parent_id) for s in found["smtp"]]

    # store calls are spans of the trace too, under the request and the handling
    stores = [s for s in spans if s.kind == ProtoSpan.SPAN_KIND_CLIENT and s.attributes.get("db.system") == "mongodb"]
    assert {s.service for s in stores} >= {"matching", "scheduling", "notification"}
    assert any(s.parent_id == accept.span_id for s in stores)
    assert len(sink.messages) >= 2
