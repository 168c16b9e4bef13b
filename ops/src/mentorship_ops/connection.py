"""Where the platform is: env vars first, then the `make run` state file (.run/infra/infra.json)."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SERVICES = ("profile", "matching", "scheduling", "notification", "insights")
DEFAULT_PORTS = {"profile": 8001, "matching": 8002, "scheduling": 8003, "notification": 8004, "insights": 8005}


@dataclass(frozen=True)
class Platform:
    kafka: str
    mongo: str
    prefix: str
    urls: dict[str, str]
    jwt_secret: str
    service_stores: dict[str, str] = field(default_factory=dict)

    def database(self, service: str) -> str:
        return os.environ.get(f"{service.upper()}_DATABASE") or f"mentorship_{service}"

    def store(self, service: str) -> str:
        """The service's own store: `<SERVICE>_MONGODB_URI` or its store in `make run`'s state
        file (one FerretDB per service), else the one `mongo`."""
        return self.service_stores.get(service) or self.mongo


def _infra_file() -> Path:
    run_dir = Path(os.environ.get("MENTORSHIP_RUN_DIR", ".run"))
    return run_dir / "infra" / "infra.json"


def locate_kafka(kafka: str | None = None) -> str:
    """Kafka bootstrap servers only (for commands that need no store). The security settings
    (KAFKA_SECURITY_PROTOCOL, KAFKA_SASL_*, KAFKA_SSL_*) come from the environment, as for the
    services: see `mentorship_kit.messaging.kafka_client_options`."""
    path = _infra_file()
    info = json.loads(path.read_text()) if path.exists() else {}
    found = kafka or os.environ.get("KAFKA_BOOTSTRAP_SERVERS") or info.get("kafka_bootstrap")
    if not found:
        raise SystemExit("cannot find Kafka: start the platform with `make run`, or set KAFKA_BOOTSTRAP_SERVERS")
    return str(found)


def locate(kafka: str | None = None, mongo: str | None = None, prefix: str | None = None) -> Platform:
    info: dict[str, Any] = {}
    path = _infra_file()
    if path.exists():
        info = json.loads(path.read_text())
    kafka = kafka or os.environ.get("KAFKA_BOOTSTRAP_SERVERS") or info.get("kafka_bootstrap")
    mongo_given = bool(mongo)
    mongo = mongo or os.environ.get("MONGODB_URI") or info.get("mongodb_uri")
    if not kafka or not mongo:
        raise SystemExit(
            "cannot find the platform: start it with `make run`, or set KAFKA_BOOTSTRAP_SERVERS and MONGODB_URI"
        )
    urls = {
        s: os.environ.get(f"{s.upper()}_URL") or f"http://127.0.0.1:{os.environ.get(f'{s.upper()}_PORT', p)}"
        for s, p in DEFAULT_PORTS.items()
    }
    from mentorship_kit.settings import ServiceSettings

    # An explicit --mongo or MONGODB_URI names the one store; else make run's store per service.
    stores = {} if (mongo_given or os.environ.get("MONGODB_URI")) else dict(info.get("mongodb_uris", {}))
    for s in SERVICES:
        if os.environ.get(f"{s.upper()}_MONGODB_URI") and not mongo_given:
            stores[s] = os.environ[f"{s.upper()}_MONGODB_URI"]
    return Platform(
        kafka=kafka,
        mongo=mongo,
        prefix=prefix if prefix is not None else os.environ.get("KAFKA_TOPIC_PREFIX", ""),
        urls=urls,
        jwt_secret=ServiceSettings().jwt_secret,
        service_stores=stores,
    )
