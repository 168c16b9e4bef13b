"""Prometheus metrics shared by every service (labelled by service)."""

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

REGISTRY = CollectorRegistry(auto_describe=True)

EVENTS_HANDLED = Counter(
    "events_handled_total", "Events handled successfully", ["service", "consumer", "type"], registry=REGISTRY
)
EVENTS_SKIPPED = Counter(
    "events_skipped_total",
    "Events skipped (duplicate or not of interest)",
    ["service", "consumer", "reason"],
    registry=REGISTRY,
)
EVENTS_FAILED = Counter(
    "events_failed_total", "Handler attempts that raised", ["service", "consumer", "type"], registry=REGISTRY
)
EVENTS_DEAD_LETTERED = Counter(
    "events_dead_lettered_total",
    "Records sent to a dead-letter topic",
    ["service", "consumer", "topic"],
    registry=REGISTRY,
)
HANDLER_SECONDS = Histogram(
    "event_handler_seconds",
    "Handler latency",
    ["service", "consumer", "type"],
    registry=REGISTRY,
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
OUTBOX_PUBLISHED = Counter(
    "outbox_events_published_total",
    "Events published by the outbox relay",
    ["service", "topic"],
    registry=REGISTRY,
)
OUTBOX_SET_ASIDE = Counter(
    "outbox_set_aside_total",
    "Outbox entries set aside because they can never be published (too large, "
    "refused by the broker for good); kept in the document's `outbox_dead`",
    ["service", "topic", "reason"],
    registry=REGISTRY,
)
TIMERS_FIRED = Counter("timers_fired_total", "Timers fired", ["service", "kind"], registry=REGISTRY)
TIMERS_FAILED = Counter(
    "timer_handler_failures_total",
    "Timer handler failures (retried after the lease, then given up)",
    ["service", "kind"],
    registry=REGISTRY,
)
HTTP_REQUESTS = Counter(
    "http_requests_total", "HTTP requests", ["service", "method", "route", "status"], registry=REGISTRY
)
READY = Gauge("service_ready", "1 when Kafka and Mongo answer", ["service"], registry=REGISTRY)

# --- what an operator alerts on (issue 16); every name starts with mentorship_ -------------------
HTTP_REQUEST_SECONDS = Histogram(
    "mentorship_http_request_duration_seconds",
    "HTTP request duration, by route template and status",
    ["service", "method", "route", "status"],
    registry=REGISTRY,
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
CONSUMER_LAG = Gauge(
    "mentorship_consumer_lag",
    "Records not yet consumed (end offset minus committed offset) on each partition this replica is assigned",
    ["service", "group", "topic", "partition"],
    registry=REGISTRY,
)
OUTBOX_OLDEST_AGE = Gauge(
    "mentorship_outbox_oldest_unpublished_age_seconds",
    "Age of the oldest event waiting in an outbox collection (0 when none waits)",
    ["service", "collection"],
    registry=REGISTRY,
)
TIMERS_DUE = Gauge(
    "mentorship_timers_due",
    "Timers whose due time has passed but that have not fired",
    ["service"],
    registry=REGISTRY,
)
TIMERS_LATENESS = Gauge(
    "mentorship_timers_oldest_lateness_seconds",
    "How long the most overdue unfired timer is past its due time",
    ["service"],
    registry=REGISTRY,
)
DEAD_LETTERS_WRITTEN = Counter(
    "mentorship_dead_letters_written_total",
    "Records written to a dead-letter topic",
    ["service", "consumer", "topic"],
    registry=REGISTRY,
)
DELIVERIES_FAILED = Counter(
    "mentorship_deliveries_failed_total",
    "Failed delivery attempts (notification); outcome=retrying is retried later, outcome=failed gave up",
    ["service", "channel", "outcome"],
    registry=REGISTRY,
)
GAUGES_SAMPLED = Gauge(
    "mentorship_gauges_sampled_timestamp_seconds",
    "When the lag, outbox and timer gauges were last sampled",
    ["service"],
    registry=REGISTRY,
)
