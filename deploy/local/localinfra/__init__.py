"""Local Kafka (KRaft, one node) + FerretDB (SQLite) without Docker or root; Python standard library only.

Modules, in dependency order:

    versions    pinned versions, environment overrides, the cache directory
    common      InfraError, logging, subprocess runs, atomic files, cache markers, free ports
    probes      Kafka and MongoDB wire-protocol readiness probes (hand-written, no client libraries)
    processes   detached processes: spawn, liveness, SIGTERM/SIGKILL, wait until ready
    tls         `up --sasl`: throwaway CA and certificates, SASL_SSL and mutual-TLS listener settings
    kafka       Kafka jars from Maven Central, JVM class-data-sharing archives, broker launch
    patches     applies the FerretDB source patches in ../patches/
    ferretdb    FerretDB build from the Go module proxy, server launch
    lifecycle   install / start / stop / status of the pair and its state file (DIR/infra.json)
    cli         `python3 deploy/local/infra.py install|up|down|status`

The public API is re-exported here (and by deploy/local/infra.py for callers that load it by path).
"""

from __future__ import annotations

from .common import InfraError
from .lifecycle import install, start, status, stop
from .probes import kafka_probe, mongo_command, mongo_probe
from .versions import FERRETDB_VERSION, KAFKA_VERSION, cache_dir

__all__ = [
    "FERRETDB_VERSION",
    "KAFKA_VERSION",
    "InfraError",
    "cache_dir",
    "install",
    "kafka_probe",
    "mongo_command",
    "mongo_probe",
    "start",
    "status",
    "stop",
]
