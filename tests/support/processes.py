"""How the tests run services as processes: the suite's JWT secret, its service settings (short poll
intervals, two partitions) and tokens. The launcher itself is mentorship_ops.support.ServiceProcess."""

from __future__ import annotations

from mentorship_kit.auth import issue_token
from mentorship_ops import support
from mentorship_ops.support import ServiceProcess, free_port

__all__ = ["JWT_SECRET", "ServiceProcess", "free_port", "service_env", "token"]

JWT_SECRET = "test-secret-for-the-whole-suite-0123456789"


def service_env(name: str, *, kafka: str, mongo: str, prefix: str, port: int, **extra: str) -> dict[str, str]:
    settings = dict(
        kafka_topic_partitions="2",
        log_level="INFO",
        outbox_poll_interval_ms="200",
        timer_poll_interval_ms="200",
        consumer_retry_backoff_ms="50",
    )
    settings.update(extra)
    return support.service_env(
        name, kafka=kafka, mongo=mongo, prefix=prefix, port=port, jwt_secret=JWT_SECRET, **settings
    )


def token(subject: str, *roles: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {issue_token(JWT_SECRET, subject, list(roles) or ['mentee'])}"}
