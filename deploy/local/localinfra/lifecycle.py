"""The set as a whole: install, start, stop and inspect Kafka and the stores through DIR/infra.json.

The stores: one default FerretDB (`mongodb_uri`), plus, with `stores=[...]`, one FerretDB process
per named store (`mongodb_uris[name]`), as production gives each service its own MongoDB.

infra.json is the state file: addresses, versions and one record per process (pid, its start
time against pid reuse, log paths). `up` writes it as soon as a process starts, so `down` can
always stop what was started, even after a failed or interrupted `up`.
"""

from __future__ import annotations

import functools
import json
import os
import struct
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .common import InfraError, Log, flock, free_ports, log_stderr, port_free, rmtree, write_json_atomic
from .ferretdb import ferretdb_installed, install_ferretdb, start_ferretdb, store_dir_name
from .kafka import install_kafka, install_kafka_cds, kafka_cds_settled, kafka_installed, start_kafka, wait_kafka_ready
from .probes import kafka_probe, mongo_probe
from .processes import alive, terminate, wait_ready
from .tls import make_sasl_setup
from .versions import (
    FERRETDB_READY_TIMEOUT,
    FERRETDB_VERSION,
    INFO_FILE,
    KAFKA_HEAP,
    KAFKA_READY_TIMEOUT,
    KAFKA_VERSION,
    STOP_TIMEOUT,
    cache_dir,
    ferretdb_home,
    kafka_home,
)


def install(log: Log = log_stderr, force: bool = False) -> dict[str, str]:
    """Install (or reuse cached) Kafka jars and the FerretDB binary. Returns paths."""
    t0 = time.monotonic()
    cache_dir().mkdir(parents=True, exist_ok=True)
    if force or not (kafka_installed() and kafka_cds_settled() and ferretdb_installed()):
        with flock(cache_dir() / ".install.lock"):  # concurrent installers wait for each other
            install_kafka(log, force)
            install_kafka_cds(log, force)
            install_ferretdb(log, force)
    else:
        log(f"[install] cached: Kafka {KAFKA_VERSION} and FerretDB {FERRETDB_VERSION} in {cache_dir()}")
    log(f"[install] done in {time.monotonic() - t0:.1f}s")
    return {
        "cache_dir": str(cache_dir()),
        "kafka_libs": str(kafka_home() / "libs"),
        "ferretdb_bin": str(ferretdb_home() / "ferretdb"),
    }


def read_info(state_dir: Path) -> dict[str, Any] | None:
    try:
        info: dict[str, Any] = json.loads((state_dir / INFO_FILE).read_text())
    except FileNotFoundError:
        return None
    except ValueError:
        return {"processes": {}}
    return info


def start(
    state_dir: str | os.PathLike[str],
    kafka_port: int | None = None,
    mongo_port: int | None = None,
    partitions: int = 1,
    reuse: bool = False,
    kafka_heap: str = KAFKA_HEAP,
    timeout: float = KAFKA_READY_TIMEOUT,
    log: Log = log_stderr,
    sasl: bool = False,
    stores: Sequence[str] = (),
) -> dict[str, Any]:
    """Start Kafka + FerretDB detached with data under state_dir; returns the infra.json dict.

    stores=["profile", ...]: also one FerretDB process per name, each with its own data
    (infra.json `mongodb_uris`: name -> URI); the default store (`mongodb_uri`) always runs.

    sasl=True: Kafka also gets a SASL_SSL listener (throwaway CA, SCRAM-SHA-512 user) and an SSL
    listener that requires a client certificate; infra.json then holds their addresses, the CA file,
    user and password, client certificate and key, and the client variables of each
    (`kafka_sasl_env`, `kafka_mtls_env`)."""
    t0 = time.monotonic()
    stores = _check_store_names(stores)
    sd = Path(state_dir).expanduser().resolve()
    sd.mkdir(parents=True, exist_ok=True)
    with flock(sd / ".infra.lock"):
        old = read_info(sd)
        if old is not None:
            procs = list(old.get("processes", {}).values())
            running = [p for p in procs if alive(p)]
            same_shape = bool(old.get("kafka_sasl_bootstrap")) == sasl and list(old.get("mongodb_uris", {})) == stores
            all_alive = len(running) == len(procs) == 2 + len(stores)
            if running and reuse and all_alive and old.get("status") == "ready" and same_shape:
                try:
                    kafka_probe("127.0.0.1", old["processes"]["kafka"]["port"])
                    for name, p in old["processes"].items():
                        if name != "kafka":
                            mongo_probe("127.0.0.1", p["port"])
                    log(f"[up] reusing running infra in {sd}")
                    return old
                except (OSError, ConnectionError, struct.error, ValueError) as e:
                    log(f"[up] running infra in {sd} does not answer ({e!r}); restarting it")
                    terminate(running, log=log)
            elif running and reuse:
                log(f"[up] infra in {sd} is only partly alive or has other stores; restarting it")
                terminate(running, log=log)
            elif running:
                raise InfraError(
                    f"infra already running in {sd} (pids {', '.join(str(p['pid']) for p in running)}): "
                    f"run `infra.py down --state-dir {sd}` first, or pass --reuse / reuse=True"
                )
            else:
                log(f"[up] removing stale {sd / INFO_FILE} (its processes are gone)")
            (sd / INFO_FILE).unlink(missing_ok=True)

        install(log=log)

        for attempt in (1, 2):
            try:
                return _start_fresh(sd, kafka_port, mongo_port, partitions, kafka_heap, timeout, log, t0, sasl, stores)
            except InfraError as e:
                # a port picked from the OS can be taken by someone else before our server binds it
                if attempt == 1 and "already in use" in str(e).lower():
                    log("[up] a picked port was taken meanwhile; retrying with new ports")
                    continue
                raise
    raise AssertionError("unreachable")


def _check_store_names(stores: Sequence[str]) -> list[str]:
    names = list(dict.fromkeys(stores))
    bad = [n for n in names if not n or not n.replace("-", "").replace("_", "").isalnum()]
    if bad:
        raise InfraError(f"store names are letters, digits, '-' and '_': {bad}")
    return names


def _data_dirs(sd: Path) -> list[Path]:
    """Kafka's and every store's data directory present under sd."""
    return [sd / "kafka", sd / "ferretdb", *sorted(sd.glob("ferretdb-*"))]


def _start_fresh(
    sd: Path,
    kafka_port: int | None,
    mongo_port: int | None,
    partitions: int,
    kafka_heap: str,
    timeout: float,
    log: Log,
    t0: float,
    sasl: bool = False,
    stores: Sequence[str] = (),
) -> dict[str, Any]:
    for data_dir in _data_dirs(sd):  # always start from empty data
        rmtree(data_dir)
    if kafka_port is not None and not port_free(kafka_port):
        raise InfraError(f"Kafka port {kafka_port} is not free")
    if mongo_port is not None and not port_free(mongo_port):
        raise InfraError(f"MongoDB port {mongo_port} is not free")
    free = iter(p for p in free_ports(7 + len(stores)) if p not in (kafka_port, mongo_port))
    kport = kafka_port or next(free)
    cport = next(free)
    mport = mongo_port or next(free)
    store_ports = {name: next(free) for name in stores}
    sasl_setup = make_sasl_setup(sd / "kafka" / "tls", next(free), next(free)) if sasl else None

    procs: dict[str, dict[str, Any]] = {}
    pids: dict[str, int] = {}
    info: dict[str, Any] = {
        "status": "starting",
        "state_dir": str(sd),
        "kafka_bootstrap": f"127.0.0.1:{kport}",
        "mongodb_uri": f"mongodb://127.0.0.1:{mport}/",
        "mongodb_uris": {name: f"mongodb://127.0.0.1:{port}/" for name, port in store_ports.items()},
        "kafka_version": KAFKA_VERSION,
        "ferretdb_version": FERRETDB_VERSION,
        "kafka_partitions": partitions,
        "processes": procs,
        "pids": pids,
        **(sasl_setup.client_info() if sasl_setup is not None else {}),
    }
    try:
        # FerretDB first: it starts in parallel with Kafka's storage format
        procs["ferretdb"] = start_ferretdb(sd, mport)
        pids["ferretdb"] = procs["ferretdb"]["pid"]
        for name, port in store_ports.items():
            proc = procs[store_dir_name(name)] = start_ferretdb(sd, port, name)
            pids[store_dir_name(name)] = proc["pid"]
        write_json_atomic(sd / INFO_FILE, info)
        procs["kafka"] = start_kafka(sd / "kafka", kport, cport, partitions, kafka_heap, sasl=sasl_setup)
        pids["kafka"] = procs["kafka"]["pid"]
        write_json_atomic(sd / INFO_FILE, info)
        log(
            f"[up] Kafka storage formatted, broker starting (pid {procs['kafka']['pid']}) +{time.monotonic() - t0:.1f}s"
        )

        build = wait_ready(
            "FerretDB", procs["ferretdb"], lambda: mongo_probe("127.0.0.1", mport), FERRETDB_READY_TIMEOUT
        )
        info["ferretdb_mongodb_compat_version"] = build.get("version")
        if build.get("ferretdbVersion"):
            info["ferretdb_version"] = build["ferretdbVersion"]
        for name, port in store_ports.items():
            wait_ready(
                f"FerretDB ({name})",
                procs[store_dir_name(name)],
                functools.partial(mongo_probe, "127.0.0.1", port),
                FERRETDB_READY_TIMEOUT,
            )
        stores_note = f" (default store + {len(store_ports)} service stores)" if store_ports else ""
        log(f"[up] FerretDB answers hello/buildInfo{stores_note} +{time.monotonic() - t0:.1f}s")
        wait_kafka_ready("Kafka", procs["kafka"], timeout)
    except BaseException:  # includes KeyboardInterrupt: never leave half-started processes behind
        terminate(list(procs.values()), timeout=10, log=log)
        (sd / INFO_FILE).unlink(missing_ok=True)
        raise
    log(f"[up] Kafka answers Metadata and logged 'Kafka Server started' +{time.monotonic() - t0:.1f}s")
    info["status"] = "ready"
    info["started_at"] = time.time()
    info["startup_seconds"] = round(time.monotonic() - t0, 2)
    write_json_atomic(sd / INFO_FILE, info)
    return info


def stop(
    state_dir: str | os.PathLike[str], timeout: float = STOP_TIMEOUT, purge: bool = False, log: Log = log_stderr
) -> bool:
    """Stop the processes recorded in state_dir/infra.json. Returns False if nothing was recorded."""
    sd = Path(state_dir).expanduser().resolve()
    if not sd.exists():
        return False
    with flock(sd / ".infra.lock"):
        info = read_info(sd)
        if info is None:
            found = False
        else:
            found = True
            terminate(list(info.get("processes", {}).values()), timeout=timeout, log=log)
            (sd / INFO_FILE).unlink(missing_ok=True)
        if purge:
            for data_dir in _data_dirs(sd):
                rmtree(data_dir)
    return found


def status(state_dir: str | os.PathLike[str]) -> dict[str, Any]:
    """infra.json plus liveness/readiness of each process (key "healthy")."""
    sd = Path(state_dir).expanduser().resolve()
    info = read_info(sd)
    if info is None:
        return {"state_dir": str(sd), "running": False, "healthy": False}
    healthy = info.get("status") == "ready"
    for name, p in info.get("processes", {}).items():
        p["alive"] = alive(p)
        try:
            if not p["alive"]:
                raise ConnectionError("process not running")
            if name == "kafka":
                p["answering"] = kafka_probe("127.0.0.1", p["port"]) >= 1
            else:
                p["answering"] = bool(mongo_probe("127.0.0.1", p["port"]))
        except (OSError, ConnectionError, struct.error, ValueError) as e:
            p["answering"] = False
            p["error"] = repr(e)
        healthy = healthy and p["alive"] and p["answering"]
    info["running"] = any(p.get("alive") for p in info.get("processes", {}).values())
    info["healthy"] = healthy and len(info.get("processes", {})) == 2 + len(info.get("mongodb_uris", {}))
    return info
