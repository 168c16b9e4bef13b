"""Pinned versions, tunables (environment overrides) and where everything is cached."""

from __future__ import annotations

import os
from pathlib import Path

KAFKA_VERSION = os.environ.get("INFRA_KAFKA_VERSION", "4.1.2")
# log4j version used by the chosen Kafka (kafka-server's log4j-core); the slf4j
# binding (log4j-slf4j-impl, for slf4j-api 1.7.36) must match it.
LOG4J_VERSION = os.environ.get("INFRA_LOG4J_VERSION", "2.25.3")
FERRETDB_MODULE = "github.com/FerretDB/FerretDB"
FERRETDB_VERSION = "v1.24.2"
# FerretDB v1.24.2's go.mod says `go 1.24`; an older local Go needs a toolchain
# from the module proxy (only this one is known to be available there).
FERRETDB_MIN_GO = (1, 24)
FALLBACK_GOTOOLCHAIN = os.environ.get("INFRA_GOTOOLCHAIN", "go1.27.3")

LOCAL_DIR = Path(__file__).resolve().parent.parent  # deploy/local
POM_FILE = LOCAL_DIR / "pom.xml"
LOG4J2_FILE = LOCAL_DIR / "log4j2.properties"
PATCHES_DIR = LOCAL_DIR / "patches"
INFO_FILE = "infra.json"
MARKER = ".complete"

KAFKA_HEAP = os.environ.get("INFRA_KAFKA_HEAP", "512m")
KAFKA_CDS = os.environ.get("INFRA_KAFKA_CDS", "1") != "0"
# INFO logs every client connection; WARN still shows startup failures and error replies.
FERRETDB_LOG_LEVEL = os.environ.get("INFRA_FERRETDB_LOG_LEVEL", "WARN")
KAFKA_READY_TIMEOUT = 90.0
FERRETDB_READY_TIMEOUT = 30.0
STOP_TIMEOUT = 20.0


def cache_dir() -> Path:
    return Path(os.environ.get("MENTORSHIP_CACHE_DIR") or "~/.cache/mentorship").expanduser().resolve()


def kafka_home() -> Path:
    return cache_dir() / f"kafka-{KAFKA_VERSION}"


def ferretdb_home() -> Path:
    """One directory per FerretDB version and patch set: a changed patch builds into a new
    directory (a fresh clone rebuilds), and branches with different patches do not evict each
    other's binary."""
    from .patches import patch_set_id  # patches imports this module

    return cache_dir() / f"ferretdb-{FERRETDB_VERSION}-{patch_set_id()}"
