"""Company Kafka: topics owned by the platform team, and every client over SASL_SSL.

The topic tests use the suite's broker. The secured tests start their own second broker through
the local launcher (`start(..., sasl=True)`: a throwaway CA, a broker certificate for 127.0.0.1, a
SCRAM-SHA-512 user on a SASL_SSL listener, a mutual-TLS listener) once for the module, on free
ports, and run the services as processes over it, given only the secured listener's address.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from faststream.security import BaseSecurity, SASLPlaintext, SASLScram256, SASLScram512

from mentorship_kit.messaging import (
    DEAD_LETTER_RETENTION_MS,
    EVENTS_RETENTION_MS,
    faststream_security,
    kafka_client_options,
)
from mentorship_kit.settings import KafkaClientSettings
from mentorship_ops.journey import SERVICES, Journey
from mentorship_ops.support import ServiceProcess, SmtpSink, free_port
from tests.support.kafka import eventually
from tests.support.processes import JWT_SECRET, service_env, token

pytestmark = pytest.mark.integration


async def cli(kafka: str, prefix: str, *args: str, env: dict[str, str] | None = None) -> str:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "mentorship_ops",
        "--kafka",
        kafka,
        "--prefix",
        prefix,
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        env={"PATH": "/usr/bin:/bin", **(env or {})},
    )
    out, _ = await proc.communicate()
    assert proc.returncode == 0, out.decode()
    return out.decode()


async def ready_body(proc: ServiceProcess) -> tuple[int, dict[str, Any]]:
    async with httpx.AsyncClient(timeout=5) as http:
        r = await http.get(f"{proc.url}/ready")
        return r.status_code, r.json()


async def wait_ready_state(proc: ServiceProcess, want: int, contains: str = "", within: float = 60) -> dict[str, Any]:
    """Poll /ready until it answers `want` (and its checks mention `contains`); the process must live."""
    deadline = time.monotonic() + within
    last: Any = None
    while time.monotonic() < deadline:
        assert proc.proc is not None and proc.proc.poll() is None, f"{proc.name} exited:\n{proc.tail()}"
        try:
            status, body = await ready_body(proc)
            last = (status, body)
            if status == want and contains in json.dumps(body):
                return body
        except httpx.HTTPError as exc:
            last = exc
        await asyncio.sleep(0.3)
    raise AssertionError(f"/ready never answered {want} with {contains!r}; last: {last!r}\n{proc.tail()}")


def launch(name: str, env: dict[str, str], log_dir: Any) -> ServiceProcess:
    """Start a service process without waiting for readiness (it may never be ready)."""
    import subprocess

    port = int(env["HTTP_PORT"])
    proc = ServiceProcess(name, port, env, log_dir / f"{name}-{port}.log")
    proc.log_path.parent.mkdir(parents=True, exist_ok=True)
    proc.proc = subprocess.Popen(
        [sys.executable, "-m", f"{name}_service"], env=env, stdout=proc.log_path.open("ab"), stderr=subprocess.STDOUT
    )
    return proc


# --- topics owned by the platform team (suite broker) ---------------------------------------------


async def test_topics_plan_prints_every_topic_with_partitions_replication_retention_and_cleanup(infra, prefix):
    out = await cli(
        infra.kafka_bootstrap, prefix, "topics", "plan", "--partitions", "6", "--replication", "3", "--json"
    )
    plan = {t["name"]: t for t in json.loads(out)}
    streams = ("profile.events", "matching.events", "scheduling.events", "notification.events")
    states = ("profile.state",)  # compacted, kept forever (issue 12): everyone's current profile
    assert set(plan) == {prefix + s for s in streams + states} | {f"{prefix}{s}.dlt" for s in streams + states}
    for s in states:
        assert plan[prefix + s]["configs"]["cleanup.policy"] == "compact", plan[prefix + s]
    for s in streams:
        events, dead = plan[prefix + s], plan[f"{prefix}{s}.dlt"]
        assert (events["partitions"], events["replication_factor"]) == (6, 3)
        assert events["configs"] == {
            "cleanup.policy": "delete",
            "retention.ms": str(30 * 86_400_000),
            "min.insync.replicas": "2",
        }
        assert dead["kind"] == "dead letters" and dead["configs"]["retention.ms"] == str(14 * 86_400_000)
    assert EVENTS_RETENTION_MS == 30 * 86_400_000 and DEAD_LETTER_RETENTION_MS == 14 * 86_400_000

    table = await cli(infra.kafka_bootstrap, prefix, "topics", "plan")
    assert "dead letters" in table and "14 days" in table and "30 days" in table and "compact" in table


async def test_topics_apply_creates_the_missing_ones_and_reports_the_differing_ones(infra, prefix):
    odd = f"{prefix}matching.events"
    admin = AIOKafkaAdminClient(bootstrap_servers=infra.kafka_bootstrap)
    await admin.start()
    try:  # provisioned earlier by hand, with a one-hour retention
        await admin.create_topics([NewTopic(odd, 1, 1, topic_configs={"retention.ms": "3600000"})])
    finally:
        await admin.close()

    out = await cli(infra.kafka_bootstrap, prefix, "topics", "apply", "--partitions", "2")
    assert "9 topic(s) created, 1 already there" in out
    assert f"created {prefix}profile.events.dlt" in out and f"created {odd}\n" not in out
    drift = [line for line in out.splitlines() if odd in line and "created" not in line]
    assert any("retention.ms" in line and "3600000" in line and "2592000000" in line for line in drift), out
    assert any("partitions" in line for line in drift), out

    admin = AIOKafkaAdminClient(bootstrap_servers=infra.kafka_bootstrap)
    await admin.start()
    try:
        described = {t["topic"]: t for t in await admin.describe_topics([f"{prefix}profile.events.dlt"])}
        assert len(described[f"{prefix}profile.events.dlt"]["partitions"]) == 2
    finally:
        await admin.close()

    again = await cli(infra.kafka_bootstrap, prefix, "topics", "apply", "--partitions", "2")
    assert "0 topic(s) created, 10 already there" in again


async def test_without_topic_creation_a_service_is_not_ready_and_names_the_missing_topics(infra, prefix, tmp_path):
    env = service_env(
        "profile",
        kafka=infra.kafka_bootstrap,
        mongo=infra.mongodb_uri,
        prefix=prefix,
        port=free_port(),
        KAFKA_CREATE_TOPICS="false",
    )
    proc = launch("profile", env, tmp_path)
    try:
        body = await wait_ready_state(proc, 503, f"{prefix}profile.events")
        assert "missing topics" in body["checks"]["kafka"] and "KAFKA_CREATE_TOPICS=false" in body["checks"]["kafka"]
        assert "missing topics" in proc.tail(200)  # the log says it too

        await cli(infra.kafka_bootstrap, prefix, "topics", "apply", "--partitions", "2")
        body = await wait_ready_state(proc, 200, within=90)  # it kept checking and starts on its own
        assert body["checks"]["kafka"] == "ok"
    finally:
        proc.stop()


# --- one mapping from KAFKA_* settings to every client ----------------------------------------------


def test_settings_map_to_aiokafka_options_and_to_faststream_security(tmp_path):
    plain = KafkaClientSettings()
    assert kafka_client_options(plain) == {"security_protocol": "PLAINTEXT"} and faststream_security(plain) is None

    tls = KafkaClientSettings(kafka_security_protocol="SSL")
    options = kafka_client_options(tls)
    assert options["security_protocol"] == "SSL" and options["ssl_context"].check_hostname
    security = faststream_security(tls)
    assert type(security) is BaseSecurity and security.use_ssl

    for mechanism, cls in (("SCRAM-SHA-256", SASLScram256), ("SCRAM-SHA-512", SASLScram512), ("PLAIN", SASLPlaintext)):
        sasl = KafkaClientSettings(
            kafka_security_protocol="SASL_PLAINTEXT",
            kafka_sasl_mechanism=mechanism,
            kafka_sasl_username="svc",
            kafka_sasl_password="pw",
        )
        assert kafka_client_options(sasl) == {
            "security_protocol": "SASL_PLAINTEXT",
            "sasl_mechanism": mechanism,
            "sasl_plain_username": "svc",
            "sasl_plain_password": "pw",
        }
        security = faststream_security(sasl)
        assert type(security) is cls and not security.use_ssl and security.username == "svc"
        assert "pw" not in repr(sasl)  # the password is a secret in the settings


def test_incomplete_or_unreadable_security_settings_are_refused_with_the_variable_names(tmp_path):
    with pytest.raises(ValueError, match="KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD"):
        KafkaClientSettings(kafka_security_protocol="SASL_SSL")
    with pytest.raises(ValueError, match="KAFKA_SSL_CERT_FILE and KAFKA_SSL_KEY_FILE"):
        KafkaClientSettings(kafka_security_protocol="SSL", kafka_ssl_cert_file="/x.pem")
    with pytest.raises(ValueError, match="KAFKA_SSL_CA_FILE"):
        kafka_client_options(
            KafkaClientSettings(kafka_security_protocol="SSL", kafka_ssl_ca_file=str(tmp_path / "absent.pem"))
        )


# --- every client over SASL_SSL (a second, own broker) --------------------------------------------


@dataclass(frozen=True)
class SecureKafka:
    bootstrap: str
    plaintext_bootstrap: str
    mongodb_uri: str
    env: dict[str, str]  # KAFKA_BOOTSTRAP_SERVERS, KAFKA_SECURITY_PROTOCOL, KAFKA_SASL_*, KAFKA_SSL_CA_FILE
    mtls_env: dict[str, str]  # the SSL listener that requires a client certificate


@pytest.fixture(scope="module")
def secure_kafka(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SecureKafka]:
    from tests.support.infra import _launcher

    launcher = _launcher()
    state_dir = tmp_path_factory.mktemp("sasl-infra")
    info = launcher.start(state_dir, sasl=True)  # free ports: it runs beside the suite's broker
    try:
        env = dict(info["kafka_sasl_env"])
        assert env["KAFKA_SECURITY_PROTOCOL"] == "SASL_SSL" and Path(env["KAFKA_SSL_CA_FILE"]).is_file()
        yield SecureKafka(
            info["kafka_sasl_bootstrap"],
            info["kafka_bootstrap"],
            info["mongodb_uri"],
            env,
            dict(info["kafka_mtls_env"]),
        )
    finally:
        launcher.stop(state_dir)


def secure_env(kafka: SecureKafka, name: str, prefix: str, **extra: str) -> dict[str, str]:
    """A service's environment on the SASL_SSL listener only (the plaintext one is never given)."""
    sasl = {k: v for k, v in kafka.env.items() if k != "KAFKA_BOOTSTRAP_SERVERS"}
    return service_env(
        name, kafka=kafka.bootstrap, mongo=kafka.mongodb_uri, prefix=prefix, port=free_port(), **{**sasl, **extra}
    )


def client_settings(kafka: SecureKafka, **overrides: str) -> KafkaClientSettings:
    values = {k.lower(): v for k, v in kafka.env.items() if k != "KAFKA_BOOTSTRAP_SERVERS"}
    return KafkaClientSettings(**{**values, **overrides})


async def read_all(kafka: SecureKafka, topic: str, *, want: int, within: float = 30) -> list[Any]:
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=kafka.bootstrap,
        group_id=f"reader-{uuid.uuid4().hex}",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        **kafka_client_options(client_settings(kafka)),
    )
    await consumer.start()
    records: list[Any] = []
    try:
        deadline = time.monotonic() + within
        while len(records) < want and time.monotonic() < deadline:
            for part in (await consumer.getmany(timeout_ms=300)).values():
                records.extend(part)
    finally:
        await consumer.stop()
    return records


def start_secure(kafka: SecureKafka, name: str, prefix: str, log_dir: Path, **extra: str) -> ServiceProcess:
    env = secure_env(kafka, name, prefix, **extra)
    return ServiceProcess(name, int(env["HTTP_PORT"]), env, log_dir / f"{name}.log").start(timeout=90)


async def test_a_registered_profile_reaches_matching_over_sasl_ssl(secure_kafka, prefix, tmp_path):
    started: list[ServiceProcess] = []
    try:
        profile_svc = start_secure(secure_kafka, "profile", prefix, tmp_path)
        started.append(profile_svc)
        matching_svc = start_secure(secure_kafka, "matching", prefix, tmp_path)
        started.append(matching_svc)
        admin = token("admin-1", "admin")
        body = {
            "display_name": "Grace Hopper",
            "email": "grace@example.org",
            "roles": ["mentor"],
            "time_zone": "America/New_York",
            "skills": [{"name": "COBOL", "proficiency": 5}],
            "mentor_capacity": 2,
        }
        async with httpx.AsyncClient(timeout=10) as http:
            created = await http.post(f"{profile_svc.url}/profiles", json=body, headers=admin)
            assert created.status_code == 201, created.text
            pid = created.json()["profile_id"]

            async def in_read_model() -> Any:
                r = await http.get(f"{matching_svc.url}/read-models/profiles/{pid}", headers=admin)
                return r.json() if r.status_code == 200 else None

            seen = await eventually(in_read_model)
        assert seen["profile"]["mentor_capacity"] == 2

        # A poison record: matching's dead-letter producer writes it to the .dlt topic over SASL_SSL.
        options = kafka_client_options(client_settings(secure_kafka))
        producer = AIOKafkaProducer(bootstrap_servers=secure_kafka.bootstrap, acks="all", **options)
        await producer.start()
        try:
            await producer.send_and_wait(f"{prefix}profile.events", b"\x00not an event", key=b"poison")
        finally:
            await producer.stop()
        dead = await read_all(secure_kafka, f"{prefix}profile.events.dlt", want=1)
        assert [(r.key, r.value) for r in dead] == [(b"poison", b"\x00not an event")]
        assert dict(dead[0].headers)["dlt-service"] == b"matching"
        for svc in started:
            status, ready = await ready_body(svc)
            assert status == 200 and ready["checks"]["kafka"] == "ok"
    finally:
        for svc in started:
            svc.stop()


async def test_wrong_credentials_leave_the_service_up_not_ready_and_saying_why(secure_kafka, prefix, tmp_path):
    env = secure_env(secure_kafka, "profile", prefix, KAFKA_SASL_PASSWORD="not-the-password")
    proc = launch("profile", env, tmp_path)
    try:
        body = await wait_ready_state(proc, 503, "authentication failed")
        reason = body["checks"]["kafka"]
        assert "SCRAM-SHA-512" in reason and "mentorship" in reason and "not-the-password" not in reason
        await asyncio.sleep(2)  # it keeps trying, and keeps saying why, without exiting
        status, again = await ready_body(proc)
        assert status == 503 and "authentication failed" in again["checks"]["kafka"]
        assert "authentication failed" in proc.tail(200)
    finally:
        assert proc.stop() is not None


async def test_plaintext_client_on_the_sasl_listener_is_told_the_protocol_may_not_match(secure_kafka, prefix, tmp_path):
    env = secure_env(secure_kafka, "profile", prefix, KAFKA_SECURITY_PROTOCOL="PLAINTEXT")
    proc = launch("profile", env, tmp_path)
    try:
        body = await wait_ready_state(proc, 503, "KAFKA_SECURITY_PROTOCOL")
        assert "closed the connection" in body["checks"]["kafka"]
    finally:
        proc.stop()


async def test_mutual_tls_with_a_client_certificate_and_without_one(secure_kafka, prefix, tmp_path):
    mtls = dict(secure_kafka.mtls_env)
    bootstrap = mtls.pop("KAFKA_BOOTSTRAP_SERVERS")
    env = service_env(
        "profile", kafka=bootstrap, mongo=secure_kafka.mongodb_uri, prefix=prefix, port=free_port(), **mtls
    )
    with_cert = ServiceProcess("profile", int(env["HTTP_PORT"]), env, tmp_path / "profile-mtls.log").start(timeout=90)
    try:
        async with httpx.AsyncClient(timeout=10) as http:
            created = await http.post(
                f"{with_cert.url}/profiles",
                headers=token("admin-1", "admin"),
                json={"display_name": "Ada", "email": "ada@example.org", "roles": ["mentee"]},
            )
            assert created.status_code == 201, created.text
        settings = KafkaClientSettings(**{k.lower(): v for k, v in mtls.items()})
        consumer = AIOKafkaConsumer(
            f"{prefix}profile.events",
            bootstrap_servers=bootstrap,
            group_id=f"reader-{uuid.uuid4().hex}",
            auto_offset_reset="earliest",
            **kafka_client_options(settings),
        )
        await consumer.start()
        try:
            record = await asyncio.wait_for(consumer.getone(), 30)
        finally:
            await consumer.stop()
        assert record.key == created.json()["profile_id"].encode()
    finally:
        with_cert.stop()

    no_cert = {k: v for k, v in mtls.items() if k not in ("KAFKA_SSL_CERT_FILE", "KAFKA_SSL_KEY_FILE")}
    env = service_env(
        "profile", kafka=bootstrap, mongo=secure_kafka.mongodb_uri, prefix=prefix, port=free_port(), **no_cert
    )
    proc = launch("profile", env, tmp_path)
    try:
        body = await wait_ready_state(proc, 503, "KAFKA_SSL_CERT_FILE")
        assert "closed the connection" in body["checks"]["kafka"]
    finally:
        proc.stop()


async def test_the_journey_runs_over_sasl_ssl_on_topics_an_operator_provisioned(secure_kafka, tmp_path, monkeypatch):
    """The operator CLI provisions the topics over SASL_SSL; the four services, not allowed to create
    topics, play the whole journey; the journey's own watcher reads the topics over SASL_SSL too."""
    prefix = f"s{uuid.uuid4().hex[:8]}."
    applied = await cli(secure_kafka.bootstrap, prefix, "topics", "apply", "--partitions", "2", env=secure_kafka.env)
    assert "10 topic(s) created" in applied

    for key, value in secure_kafka.env.items():  # the journey's watcher is a client of this process
        monkeypatch.setenv(key, value)
    sink = SmtpSink(free_port()).start()
    processes: dict[str, ServiceProcess] = {}
    try:
        for name in SERVICES:
            extra = {"DEV_CLOCK_ENABLED": "true", "KAFKA_CREATE_TOPICS": "false"}
            if name == "notification":
                extra.update(
                    SMTP_HOST="127.0.0.1",
                    SMTP_PORT=str(sink.port),
                    WEBHOOK_ALLOW_LOOPBACK="true",
                    DELIVERY_RECOVERY_INTERVAL_SECONDS="2",
                )
            processes[name] = await asyncio.to_thread(start_secure, secure_kafka, name, prefix, tmp_path, **extra)
        journey = Journey(
            urls={n: p.url for n, p in processes.items()},
            kafka=secure_kafka.bootstrap,
            prefix=prefix,
            jwt_secret=JWT_SECRET,
            sink=sink,
            mentees=6,
            mentors=3,
            wait_timeout=120,
        )
        try:
            steps = await journey.run()
            summary = await journey.summary()
        finally:
            await journey.close()
        titles = [s.title for s in steps]  # every step ran; the program manager's health check ends it
        assert "Pay it forward: a mentee becomes a mentor" in titles, titles
        assert titles[-1] == "The program manager checks the program's health", titles
        enrolled = next(s for s in steps if s.title == "People enroll in the program")  # self-enrolment allowed
        assert (enrolled.facts["enrolled mentees"], enrolled.facts["enrolled mentors"]) == (
            len(journey.people["mentees"]),
            len(journey.people["mentors"]),
        ), enrolled.facts
        imported = next(s for s in steps if s.title.startswith("HR bulk-imports"))
        assert imported.events["ProfileRegistered"] == len(journey.everyone)
        assert summary, summary
        assert len(sink.messages) > 0  # notification consumed over SASL_SSL and mailed people

        dead = await cli(
            secure_kafka.bootstrap,
            prefix,
            "dlt",
            "list",
            env={**secure_kafka.env, "MONGODB_URI": secure_kafka.mongodb_uri},
        )
        assert "Dead letters" in dead  # the CLI's consumers and admin client work over SASL_SSL
    finally:
        for proc in processes.values():
            proc.stop()
            print(f"--- {proc.name} log (tail) ---\n{proc.tail(30)}")
        sink.stop()
