"""One service process: settings, Mongo, Kafka, consumers, outbox relay, timers, HTTP app.

Each service builds a `ServiceRuntime`, registers its consumers, outbox collections, timer
handlers and routers on it, and calls `create_app()`. Start-up creates indexes and topics,
starts the producer, relay, timers and consumers; shutdown stops consuming, lets in-flight
handlers finish, drains the outbox and flushes the producer.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Mapping, Sequence
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any

import structlog
from aiokafka import AIOKafkaProducer
from fastapi import APIRouter, FastAPI, Request, Response
from faststream.kafka import KafkaBroker
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import AwareDatetime, BaseModel, Field
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import ConnectionFailure

from mentorship_contracts import Envelope, EventData, Topic, all_models, dead_letter_topic

from .auth import CurrentPrincipal
from .bodylimit import BodyLimit, BodyTooLarge, too_large_response
from .clock import Clock
from .consumer import PROCESSED, EventConsumer, Handler, RetryPolicy
from .logging import configure_logging
from .messaging import (
    TopicNames,
    ensure_topics,
    faststream_security,
    kafka_client_options,
    kafka_failure_reason,
    missing_topics,
    new_producer,
    parse_topic_configs,
    topic_spec,
)
from .metrics import (
    CONSUMER_LAG,
    GAUGES_SAMPLED,
    HTTP_REQUEST_SECONDS,
    HTTP_REQUESTS,
    OUTBOX_OLDEST_AGE,
    READY,
    REGISTRY,
    TIMERS_DUE,
    TIMERS_LATENESS,
)
from .mongo import Indexes, connect, ensure_indexes, ping
from .oidc import IdentityDirectory, OidcVerifier
from .outbox import OutboxRelay, outbox_indexes, set_event_max_bytes
from .policy import Policy, policy
from .problems import Problem, install_problem_handlers
from .settings import ServiceSettings
from .tables import Delete, TableConsumer, Upsert
from .timers import TimerHandler, TimerLoop, Timers, timer_indexes
from .tracing import StoreSpans, configure_tracing, flush_tracing
from .usecase import EventFactory, UseCaseContext

log = structlog.get_logger()
OPS_CONSUMERS = "ops_consumers"


class ServiceRuntime:
    # How often consumer lag, the oldest outbox entry and overdue timers are sampled (seconds).
    gauge_interval: float = 15.0

    def __init__(self, settings: ServiceSettings) -> None:
        self.settings = settings
        self.service = settings.service_name
        set_event_max_bytes(settings.event_max_bytes)
        self.clock = Clock()
        if settings.dev_clock_enabled and settings.dev_clock_offset_seconds:
            self.clock.advance(timedelta(seconds=settings.dev_clock_offset_seconds))
        self.topics = TopicNames(settings.kafka_topic_prefix)
        tracing = configure_tracing(self.service)  # before the Mongo client: its listener records store spans
        self.client = connect(settings.mongodb_uri, app_name=self.service, listeners=[StoreSpans()] if tracing else [])
        self.db: AsyncDatabase[dict[str, Any]] = self.client[settings.database_name]
        self.kafka_options = kafka_client_options(settings)
        self.broker = KafkaBroker(
            settings.kafka_bootstrap_servers,
            client_id=self.service,
            graceful_timeout=15.0,
            logger=None,
            security=faststream_security(settings),
        )
        self.retry = RetryPolicy(
            settings.consumer_max_attempts,
            settings.consumer_retry_backoff_ms / 1000,
            settings.consumer_retry_backoff_max_ms / 1000,
        )
        self.timers = Timers(self.db, self.clock, lease_seconds=settings.timer_lease_seconds)
        self.events = EventFactory(self.service, self.clock)
        self.consumers: list[EventConsumer] = []
        self._indexes: list[Indexes] = [Indexes(PROCESSED), timer_indexes(), outbox_indexes("timers")]
        self._outbox_collections: list[str] = ["timers"]
        self._outbox_ordering: dict[str, tuple[str, str]] = {}
        self._timer_handlers: dict[str, TimerHandler] = {}
        self._produces: set[str] = set()
        # Company sign-on: the token verifier (caches the provider's keys) and the service's map from
        # a signed-in person to a profile id (set by bootstrap; see mentorship_kit.auth).
        self.oidc: OidcVerifier | None = OidcVerifier(settings) if settings.oidc_issuer else None
        self.identities: IdentityDirectory | None = None
        self._read_models: dict[str, list[str]] = {}
        self._background: list[Callable[[], Coroutine[Any, Any, None]]] = []
        self._stop_hooks: list[Callable[[], Awaitable[None]]] = []
        self._ready_checks: dict[str, Callable[[], str]] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._lag_labels: dict[str, set[tuple[str, str, str]]] = {}
        self._producer: AIOKafkaProducer | None = None
        self._broker_started = False
        self._kafka_task: asyncio.Task[None] | None = None
        self.kafka_problem: str | None = None  # why the Kafka side is not up yet (readiness says it)
        self.relay: OutboxRelay | None = None
        self.timer_loop: TimerLoop | None = None
        self.started = False

    # --- registration (before start) -------------------------------------------------------
    def consume(
        self,
        name: str,
        topic: str,
        handlers: Mapping[type[EventData], Handler],
        *,
        read_models: Sequence[str] = (),
    ) -> EventConsumer:
        """Subscribe to a topic. `read_models` names the collections this consumer alone builds,
        so that an operator can rebuild them by replaying the topic (`mentorship replay --rebuild`)."""
        self._read_models[name] = list(read_models)
        consumer = EventConsumer(
            service=self.service,
            name=name,
            topic=topic,
            handlers=handlers,
            db=self.db,
            dlt_producer=lambda: self.producer,
            topics=self.topics,
            retry=self.retry,
            on_handled=self.wake_relay,
        )
        consumer.subscribe(self.broker)
        self.consumers.append(consumer)
        return consumer

    def consume_table(
        self,
        name: str,
        topic: str,
        model: type[EventData],
        *,
        upsert: Upsert,
        delete: Delete,
        read_models: Sequence[str] = (),
    ) -> TableConsumer:
        """Read a compacted state topic like a table (see `mentorship_kit.tables`): `upsert(key,
        envelope)` on a value, `delete(key, at)` on a tombstone. `read_models` as for `consume`: a
        rebuild clears them and replays the topic, which holds everyone's current state."""
        self._read_models[name] = list(read_models)
        consumer = TableConsumer(
            model=model,
            upsert=upsert,
            delete=delete,
            service=self.service,
            name=name,
            topic=topic,
            db=self.db,
            dlt_producer=lambda: self.producer,
            topics=self.topics,
            retry=self.retry,
            on_handled=self.wake_relay,
        )
        consumer.subscribe(self.broker)
        self.consumers.append(consumer)
        return consumer

    def outbox_collection(self, name: str, *, ordered_by: tuple[str, str] | None = None) -> None:
        """A collection whose documents carry outbox events. `ordered_by=(key field, sequence field)`
        when one aggregate's events span several documents (one per version): the relay then
        publishes an aggregate's documents in sequence order, never a later one first."""
        if ordered_by is not None:
            self._outbox_ordering[name] = ordered_by
        if name not in self._outbox_collections:
            self._outbox_collections.append(name)
            self._indexes.append(outbox_indexes(name))

    def indexes(self, *declarations: Indexes) -> None:
        self._indexes.extend(declarations)

    def produces(self, *topics: str) -> None:
        """Declare the topics this service publishes to; also documents each event in AsyncAPI."""
        for topic in set(topics) - self._produces:
            for type_, model in all_models().items():
                if model.topic == topic:
                    # Never called: the outbox relay publishes. FastStream builds the AsyncAPI from it.
                    self.broker.publisher(
                        self.topics(topic),
                        title=type_,
                        schema=Envelope[model],  # type: ignore[valid-type]
                        description=f"{model.summary} Key: `{model.subject_field}`.",
                    )
        self._produces.update(topics)

    def timer(self, kind: str, handler: TimerHandler) -> None:
        self._timer_handlers[kind] = handler

    def background(self, job: Callable[[], Coroutine[Any, Any, None]]) -> None:
        self._background.append(job)

    def ready_check(self, name: str, check: Callable[[], str]) -> None:
        """One more condition for /ready (e.g. an in-memory index is built): "ok" or why not."""
        self._ready_checks[name] = check

    def on_stop(self, hook: Callable[[], Awaitable[None]]) -> None:
        """Run at shutdown after consumers, timers and the relay stopped (e.g. close an SMTP pool)."""
        self._stop_hooks.append(hook)

    def context(self) -> UseCaseContext:
        """What a service's application object is built from (see `mentorship_kit.usecase`)."""
        return UseCaseContext(clock=self.clock, timers=self.timers, events=self.events, events_written=self.wake_relay)

    # --- lifecycle ---------------------------------------------------------------------------
    @property
    def producer(self) -> AIOKafkaProducer:
        if self._producer is None:
            raise RuntimeError("runtime not started")
        return self._producer

    async def _renew_producer(self) -> AIOKafkaProducer:
        """A fresh producer (new producer id, sequences from zero) in place of the current one."""
        old = self._producer
        fresh = new_producer(self.settings.kafka_bootstrap_servers, f"{self.service}-producer")
        await fresh.start()
        self._producer = fresh
        if old is not None:
            with contextlib.suppress(Exception):
                await old.stop()
        return fresh

    def wake_relay(self) -> None:
        if self.relay is not None:
            self.relay.wake()

    async def start(self) -> None:
        """Mongo first; then the Kafka side (topics, producer, relay, timers, jobs, consumers).

        When the store is unreachable, or Kafka refuses us (credentials, TLS, missing topics,
        unreachable), the process stays up, not ready, says why on /ready and in the log, and keeps
        trying in the background: an orchestrator sees a not-ready pod with a reason instead of a
        silent crash loop.
        """
        self.settings.check_secrets()
        if not await self._try_start_store_side():
            # The store is down (e.g. restarting): stay up and not ready, and finish starting when it
            # is back, instead of exiting into a crash loop.
            self._kafka_task = asyncio.create_task(self._start_until_done(), name="store-connect")
            return
        if not await self._try_start_kafka_side():
            self._kafka_task = asyncio.create_task(self._start_kafka_side_until_done(), name="kafka-connect")

    async def _try_start_store_side(self) -> bool:
        try:
            await self._start_store_side()
        except ConnectionFailure as exc:  # unreachable, selection timeout, connection reset
            log.error("store not reachable at start: service not ready, retrying", error=type(exc).__name__)
            return False
        return True

    async def _start_until_done(self) -> None:
        delay = 1.0
        while not await self._try_start_store_side():
            await asyncio.sleep(delay)
            delay = min(delay * 2, 30.0)
        log.info("store reachable again: starting")
        await self._start_kafka_side_until_done()

    async def _start_store_side(self) -> None:
        await ensure_indexes(self.db, self._indexes)
        for c in self.consumers:  # what the operator CLI needs to replay or rebuild this service
            await self.db[OPS_CONSUMERS].replace_one(
                {"_id": c.name},
                {
                    "_id": c.name,
                    "group_id": c.group_id,
                    "topic": self.topics(c.topic),
                    "read_models": self._read_models.get(c.name, []),
                },
                upsert=True,
            )

    def required_topics(self) -> list[str]:
        """The topics this service produces to and consumes, and its dead-letter topics."""
        topics = {self.topics(t) for t in self._produces}
        topics |= {self.topics(c.topic) for c in self.consumers}
        topics |= {dead_letter_topic(self.topics(c.topic)) for c in self.consumers}
        return sorted(topics)

    async def _try_start_kafka_side(self) -> bool:
        try:
            await self._start_kafka_side()
        except asyncio.CancelledError:
            raise
        except MissingTopics as exc:
            self.kafka_problem = str(exc)
        except Exception as exc:
            await self._stop_kafka_clients()
            self.kafka_problem = await kafka_failure_reason(
                exc, self.settings.kafka_bootstrap_servers, self.kafka_options
            )
        else:
            self.kafka_problem = None
            return True
        log.error("kafka not usable: service not ready", reason=self.kafka_problem)
        return False

    async def _start_kafka_side_until_done(self) -> None:
        delay = 1.0
        while not await self._try_start_kafka_side():
            await asyncio.sleep(delay)
            delay = min(delay * 2, 30.0)
        log.info("kafka usable again: service ready")

    async def _start_kafka_side(self) -> None:
        s = self.settings
        topics = self.required_topics()
        if s.kafka_create_topics:
            await ensure_topics(
                s.kafka_bootstrap_servers,
                [
                    topic_spec(
                        t,
                        s.kafka_topic_partitions,
                        s.kafka_replication_factor,
                        parse_topic_configs(s.kafka_state_topic_configs),
                    )
                    for t in topics
                ],
                options=self.kafka_options,
            )
        elif missing := await missing_topics(s.kafka_bootstrap_servers, topics, self.kafka_options):
            raise MissingTopics(missing)
        if self._producer is None:
            self._producer = new_producer(s.kafka_bootstrap_servers, f"{self.service}-producer", self.kafka_options)
            await self._producer.start()
        self.relay = OutboxRelay(
            self.db,
            self._outbox_collections,
            self._producer,
            self.topics,
            self.clock,
            service=self.service,
            poll_interval=s.outbox_poll_interval_ms / 1000,
            lease_seconds=s.outbox_lease_seconds,
            renew_producer=self._renew_producer,
            ordering=self._outbox_ordering,
        )
        self._tasks.append(asyncio.create_task(self.relay.run(), name="outbox-relay"))
        if self._timer_handlers:
            self.timer_loop = TimerLoop(
                self.timers,
                self._timer_handlers,
                service=self.service,
                poll_interval=s.timer_poll_interval_ms / 1000,
                on_fired=self.wake_relay,
            )
            self._tasks.append(asyncio.create_task(self.timer_loop.run(), name="timers"))
        for job in self._background:
            self._tasks.append(asyncio.create_task(job(), name=getattr(job, "__name__", "job")))
        self._tasks.append(asyncio.create_task(self._sample_gauges_forever(), name="gauges"))
        self._broker_started = True  # stop() must stop it even when start fails halfway
        await self.broker.start()
        self.started = True
        log.info(
            "service started", topics=topics, database=s.database_name, consumers=[c.group_id for c in self.consumers]
        )

    async def _stop_kafka_clients(self) -> None:
        """Undo a half-done Kafka start before the next attempt."""
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks.clear()
        self.relay, self.timer_loop = None, None
        if self._broker_started:
            with contextlib.suppress(Exception):
                await self.broker.stop()
            self._broker_started = False
        if self._producer is not None:
            with contextlib.suppress(Exception):
                await self._producer.stop()
            self._producer = None

    async def stop(self) -> None:
        log.info("service stopping")
        self.started = False
        if self._kafka_task is not None:
            self._kafka_task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._kafka_task
        if self._broker_started:
            await self.broker.stop()  # stop consuming; in-flight handlers finish (graceful_timeout)
        if self.timer_loop:
            self.timer_loop.stop()
        for task in self._tasks:
            if task.get_name() != "outbox-relay":
                task.cancel()
        if self.relay:
            await self.relay.stop()  # drain what is pending
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if self._producer:
            await self._producer.stop()  # flushes
        for hook in self._stop_hooks:
            try:
                await hook()
            except Exception:
                log.exception("stop hook failed", hook=getattr(hook, "__name__", repr(hook)))
        await self.client.close()
        await flush_tracing()  # export the last spans before the process ends
        log.info("service stopped")

    async def sample_gauges(self) -> None:
        """Set the lag, outbox-age and overdue-timer gauges; each part fails on its own."""
        service = self.service
        for consumer in self.consumers:
            try:
                lags = await consumer.lag()
            except Exception as exc:
                log.warning("consumer lag sample failed", consumer=consumer.name, error=repr(exc)[:300])
                continue
            seen = {(consumer.group_id, topic, str(partition)) for topic, partition in lags}
            for gone in self._lag_labels.get(consumer.name, set()) - seen:
                # a partition moved to another replica in a rebalance: that one reports it now
                with contextlib.suppress(KeyError):
                    CONSUMER_LAG.remove(service, *gone)
            for (topic, partition), lag in lags.items():
                CONSUMER_LAG.labels(service, consumer.group_id, topic, str(partition)).set(lag)
            self._lag_labels[consumer.name] = seen
        try:
            if self.relay is not None:
                for collection, age in (await self.relay.oldest_unpublished_age()).items():
                    OUTBOX_OLDEST_AGE.labels(service, collection).set(age)
        except Exception as exc:
            log.warning("outbox age sample failed", error=repr(exc)[:300])
        try:
            count, lateness = await self.timers.overdue()
            TIMERS_DUE.labels(service).set(count)
            TIMERS_LATENESS.labels(service).set(lateness)
        except Exception as exc:
            log.warning("timer sample failed", error=repr(exc)[:300])
        GAUGES_SAMPLED.labels(service).set(time.time())

    async def _sample_gauges_forever(self) -> None:
        while True:
            await self.sample_gauges()
            await asyncio.sleep(self.gauge_interval)

    async def readiness(self) -> dict[str, str]:
        checks: dict[str, str] = {}
        try:
            await asyncio.wait_for(ping(self.client), 3)
            checks["mongo"] = "ok"
        except Exception as exc:
            checks["mongo"] = f"unreachable: {type(exc).__name__}"
        try:
            if self.kafka_problem is not None:
                checks["kafka"] = self.kafka_problem
            elif self._producer is None:
                checks["kafka"] = "connecting"
            else:
                await asyncio.wait_for(self._producer.client.fetch_all_metadata(), 3)
                checks["kafka"] = "ok"
        except Exception as exc:  # e.g. credentials rotated under a running service: say which it is
            checks["kafka"] = await kafka_failure_reason(
                exc, self.settings.kafka_bootstrap_servers, self.kafka_options, wait_seconds=2
            )
        checks["consumers"] = "ok" if self.started else "not started"
        for name, check in self._ready_checks.items():
            checks[name] = check()
        return checks


class MissingTopics(RuntimeError):
    """KAFKA_CREATE_TOPICS=false and some of the service's topics do not exist."""

    def __init__(self, topics: Sequence[str]) -> None:
        self.topics = list(topics)
        super().__init__(
            f"missing topics (KAFKA_CREATE_TOPICS=false; an operator creates them, e.g. "
            f"`mentorship topics apply`): {', '.join(self.topics)}"
        )


# The dev clock moves at most this far in one call: further, and "now + a delay" overflows (a 500).
MAX_CLOCK_MOVE = timedelta(days=3660)


class ClockChange(BaseModel):
    advance_seconds: float | None = Field(default=None, ge=0, le=MAX_CLOCK_MOVE.total_seconds())
    set_to: AwareDatetime | None = Field(default=None, description="at most ten years ahead")


def create_app(
    runtime: ServiceRuntime,
    *,
    title: str,
    description: str = "",
    routers: Sequence[APIRouter] = (),
    version: str = "0.1.0",
) -> FastAPI:
    """FastAPI app with health, readiness, metrics, problem+json and the runtime's lifecycle."""
    configure_logging(runtime.service, runtime.settings.log_level)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await runtime.start()
        try:
            yield
        finally:
            await runtime.stop()

    # FastAPI's own OpenTelemetry support makes the SERVER span of each request (named by the route
    # template, continuing a caller's `traceparent`) once `configure_tracing` installed a provider;
    # without one it does nothing. Spans per dependency and serialisation step are left out.
    app = FastAPI(
        title=title,
        description=description,
        version=version,
        lifespan=lifespan,
        telemetry={"operation_spans": False},
    )
    app.state.runtime = runtime
    install_problem_handlers(app)

    @app.middleware("http")
    async def count_requests(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        started = time.perf_counter()
        response = await call_next(request)
        if request.method not in ("GET", "HEAD", "OPTIONS"):
            runtime.wake_relay()  # a write may have queued events: publish them now
        route = request.scope.get("route")
        path = getattr(route, "path", "unmatched")
        elapsed = time.perf_counter() - started
        HTTP_REQUESTS.labels(runtime.service, request.method, path, str(response.status_code)).inc()
        HTTP_REQUEST_SECONDS.labels(runtime.service, request.method, path, str(response.status_code)).observe(elapsed)
        response.headers["server-timing"] = f"app;dur={elapsed * 1000:.2f}"
        return response

    @app.get("/health", tags=["operations"], summary="Liveness", openapi_extra=policy(Policy.ANONYMOUS))
    async def health() -> dict[str, str]:
        return {"status": "ok", "service": runtime.service}

    @app.get(
        "/ready",
        tags=["operations"],
        summary="Readiness: Kafka and Mongo reachable",
        openapi_extra=policy(Policy.ANONYMOUS),
    )
    async def ready() -> Response:
        checks = await runtime.readiness()
        ok = all(v == "ok" for v in checks.values())
        READY.labels(runtime.service).set(1 if ok else 0)
        from fastapi.responses import JSONResponse

        return JSONResponse(
            {"status": "ready" if ok else "not ready", "checks": checks}, status_code=200 if ok else 503
        )

    @app.get(
        "/metrics",
        tags=["operations"],
        summary="Prometheus metrics",
        openapi_extra=policy(Policy.ANONYMOUS, "for the scraper; keep the port on the internal network"),
    )
    async def metrics() -> Response:
        return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)

    if runtime.settings.dev_clock_enabled:

        @app.post(
            "/_dev/clock",
            tags=["operations"],
            summary="Move this process's clock (dev only, admin)",
            openapi_extra=policy(Policy.ADMIN, "moving time fires every due timer: expiries, reminders"),
        )
        async def move_clock(change: ClockChange, principal: CurrentPrincipal) -> dict[str, str]:
            principal.require_admin()
            if change.set_to is not None:
                if change.set_to - runtime.clock.now() > MAX_CLOCK_MOVE:
                    raise Problem(422, "Invalid request", "set_to is at most ten years ahead")
                runtime.clock.set(change.set_to)
            elif change.advance_seconds is not None:
                runtime.clock.advance(timedelta(seconds=change.advance_seconds))
            else:
                raise Problem(422, "Invalid request", "give advance_seconds or set_to")
            if runtime.timer_loop:
                await runtime.timer_loop.run_due()
                runtime.wake_relay()
            return {"now": runtime.clock.now().isoformat()}

    for router in routers:
        app.include_router(router)

    @app.exception_handler(BodyTooLarge)
    async def _too_large(request: Request, exc: BodyTooLarge) -> Response:
        return too_large_response(request.url.path, exc.limit)

    # Outermost of the app's middleware: a too-large body is refused before anything reads it.
    app.add_middleware(
        BodyLimit, default=runtime.settings.http_max_body_bytes, per_route=runtime.settings.body_limits()
    )
    return app


def all_topics() -> list[str]:
    return [t.value for t in Topic]
