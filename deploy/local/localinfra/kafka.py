"""Apache Kafka (KRaft, one node): jars from Maven Central, JVM class-data-sharing archives, launch.

Cache layout (under versions.cache_dir()):

    kafka-<ver>/libs/*.jar   runtime classpath, made by `mvn dependency:copy-dependencies` with pom.xml
    kafka-<ver>/cds/*.jsa    AppCDS archives for StorageTool and the broker (~2x faster start)
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import shutil
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from .common import InfraError, Log, free_ports, log_stderr, marker_ok, rmtree, run
from .probes import kafka_probe
from .processes import spawn, terminate, wait_ready
from .tls import SaslSetup, broker_properties, scram_format_args
from .versions import (
    KAFKA_CDS,
    KAFKA_HEAP,
    KAFKA_READY_TIMEOUT,
    KAFKA_VERSION,
    LOG4J2_FILE,
    LOG4J_VERSION,
    MARKER,
    POM_FILE,
    cache_dir,
    kafka_home,
)

# ----------------------------------------------------------------------------
# Install: jars via Maven
# ----------------------------------------------------------------------------


def java() -> str:
    jh = os.environ.get("JAVA_HOME")
    if jh and (Path(jh) / "bin" / "java").exists():
        return str(Path(jh) / "bin" / "java")
    j = shutil.which("java")
    if not j:
        raise InfraError("java not found: Kafka 4.x needs Java 17+ (e.g. apt-get install openjdk-17-jre-headless)")
    return j


def _check_java() -> str:
    exe = java()
    out = run([exe, "-version"]).stdout
    m = re.search(r'version "(\d+)(?:\.(\d+))?', out)
    major = int(m.group(1)) if m else 0
    if major == 1 and m and m.group(2):
        major = int(m.group(2))
    if major < 17:
        raise InfraError(f"Kafka {KAFKA_VERSION} needs Java 17+, but {exe} is: {out.splitlines()[0] if out else '?'}")
    return exe


def _pom_sha() -> str:
    return hashlib.sha256(POM_FILE.read_bytes()).hexdigest()[:16]


def _kafka_marker() -> dict[str, Any]:
    return {"kafka_version": KAFKA_VERSION, "log4j_version": LOG4J_VERSION, "pom_sha": _pom_sha()}


def kafka_installed() -> bool:
    return marker_ok(kafka_home(), _kafka_marker())


def install_kafka(log: Log = log_stderr, force: bool = False) -> Path:
    home = kafka_home()
    if not force and kafka_installed():
        log(f"[install] Kafka {KAFKA_VERSION}: cached at {home}")
        return home
    _check_java()
    mvn = shutil.which("mvn")
    if not mvn:
        raise InfraError("mvn not found: needed once to fetch Kafka jars from Maven Central (apt-get install maven)")
    t0 = time.monotonic()
    log(f"[install] Kafka {KAFKA_VERSION}: fetching jars from Maven Central with {POM_FILE.name} ...")
    tmp = Path(tempfile.mkdtemp(prefix=f".kafka-{KAFKA_VERSION}.tmp-", dir=cache_dir()))
    os.chmod(tmp, 0o755)
    try:
        libs = tmp / "libs"
        run(
            [
                mvn,
                "-B",
                "-q",
                "-f",
                str(POM_FILE),
                f"-Dkafka.version={KAFKA_VERSION}",
                f"-Dlog4j.version={LOG4J_VERSION}",
                "dependency:copy-dependencies",
                "-DincludeScope=runtime",
                f"-DoutputDirectory={libs}",
            ]
        )
        jars = sorted(p.name for p in libs.glob("*.jar"))
        for need in (
            f"kafka_2.13-{KAFKA_VERSION}.jar",
            f"kafka-clients-{KAFKA_VERSION}.jar",
            f"log4j-slf4j-impl-{LOG4J_VERSION}.jar",
            f"log4j-core-{LOG4J_VERSION}.jar",
        ):
            if need not in jars:
                raise InfraError(f"Maven did not produce {need} in {libs}; got: {', '.join(jars)}")
        (tmp / MARKER).write_text(json.dumps({**_kafka_marker(), "jars": len(jars), "installed_at": time.time()}))
        rmtree(home)
        os.replace(tmp, home)
    finally:
        rmtree(tmp)
    log(f"[install] Kafka {KAFKA_VERSION}: {len(jars)} jars in {home / 'libs'} ({time.monotonic() - t0:.1f}s)")
    return home


# ----------------------------------------------------------------------------
# Install: JVM class-data-sharing archives
# ----------------------------------------------------------------------------


def _java_fingerprint() -> str:
    j = os.path.realpath(java())
    st = os.stat(j)
    return f"{j}:{int(st.st_mtime)}:{st.st_size}"


def _kafka_cds_marker() -> dict[str, Any]:
    return {**_kafka_marker(), "java": _java_fingerprint()}


def kafka_cds_settled() -> bool:
    """A CDS archive was recorded for this Kafka + JVM, or recording it failed (then don't retry)."""
    if not KAFKA_CDS:
        return True
    try:
        return marker_ok(kafka_home() / "cds", _kafka_cds_marker())
    except (InfraError, OSError):
        return False


def kafka_cds_ok() -> bool:
    if not KAFKA_CDS:
        return False
    try:
        return marker_ok(kafka_home() / "cds", {**_kafka_cds_marker(), "ok": True})
    except (InfraError, OSError):
        return False


def install_kafka_cds(log: Log = log_stderr, force: bool = False) -> None:
    """Record JVM class-data-sharing archives (AppCDS) for StorageTool and the broker.

    One short training run of the broker at install time; afterwards every `up` starts Kafka
    ~1 s faster. Optional: on failure a marker says so and Kafka just starts without it.
    """
    if not KAFKA_CDS or (not force and kafka_cds_settled()):
        return
    t0 = time.monotonic()
    home = kafka_home()
    log(f"[install] Kafka {KAFKA_VERSION}: recording JVM class-data-sharing archives (one short broker run) ...")
    tmp = Path(tempfile.mkdtemp(prefix=".cds.tmp-", dir=home))
    os.chmod(tmp, 0o755)
    proc = None
    ok, why = False, ""
    try:
        kport, cport = free_ports(2)
        proc = start_kafka(tmp / "work", kport, cport, 1, KAFKA_HEAP, dump_dir=tmp)
        proc["port"] = kport
        wait_kafka_ready("Kafka (CDS training run)", proc, KAFKA_READY_TIMEOUT)
        terminate([proc], timeout=30, log=log)  # the archive is written when the JVM exits
        proc = None
        missing = [n for n in ("format.jsa", "broker.jsa") if not (tmp / n).is_file() or not (tmp / n).stat().st_size]
        if missing:
            raise InfraError(f"JVM did not write {', '.join(missing)}")
        ok = True
    except (InfraError, OSError) as e:
        why = str(e).splitlines()[0]
    finally:
        if proc is not None:
            terminate([proc], timeout=10, log=log)
    try:
        rmtree(tmp / "work")
        if not ok:
            for f in tmp.glob("*.jsa"):
                f.unlink()
        (tmp / MARKER).write_text(json.dumps({**_kafka_cds_marker(), "ok": ok, "error": why}))
        rmtree(home / "cds")
        os.replace(tmp, home / "cds")
    finally:
        rmtree(tmp)
    if ok:
        log(f"[install] Kafka {KAFKA_VERSION}: CDS archives in {home / 'cds'} ({time.monotonic() - t0:.1f}s)")
    else:
        log(f"[install] Kafka {KAFKA_VERSION}: CDS archive skipped ({why}); Kafka starts ~1s slower without it")


# ----------------------------------------------------------------------------
# Launch
# ----------------------------------------------------------------------------


def _cluster_id() -> str:
    while True:
        cid = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not cid.startswith("-"):  # would be parsed as a CLI option
            return cid


def _jvm(exe: str, heap: str, logs_dir: Path, cds: str, dump_dir: Path | None = None) -> list[str]:
    # C1-only JIT + SerialGC: ~30% faster start on 2 cores; plenty for tests and local development.
    cmd = [
        exe,
        f"-Xmx{heap}",
        "-Xms64m",
        "-XX:+UseSerialGC",
        "-XX:TieredStopAtLevel=1",
        "-XX:+ExitOnOutOfMemoryError",
        "-Djava.awt.headless=true",
        f"-Dkafka.logs.dir={logs_dir}",
        f"-Dlog4j2.configurationFile={LOG4J2_FILE}",
    ]
    if dump_dir is not None:
        cmd.append(f"-XX:ArchiveClassesAtExit={dump_dir / (cds + '.jsa')}")
    elif kafka_cds_ok():
        cmd.append(f"-XX:SharedArchiveFile={kafka_home() / 'cds' / (cds + '.jsa')}")
    return cmd + ["-cp", str(kafka_home() / "libs" / "*")]


def _properties(data: Path, port: int, ctrl_port: int, partitions: int, sasl: SaslSetup | None = None) -> str:
    listeners = f"PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{ctrl_port}"
    protocols = "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT"
    if sasl is not None:  # clients use it; inter-broker and controller traffic stay PLAINTEXT
        listeners += f",SASL_SSL://127.0.0.1:{sasl.port},SSL://127.0.0.1:{sasl.mtls_port}"
        protocols += ",SASL_SSL:SASL_SSL,SSL:SSL"
    props = {
        "process.roles": "broker,controller",
        "node.id": "1",
        "controller.quorum.bootstrap.servers": f"127.0.0.1:{ctrl_port}",
        "listeners": listeners,
        "advertised.listeners": listeners,
        "controller.listener.names": "CONTROLLER",
        "inter.broker.listener.name": "PLAINTEXT",
        "listener.security.protocol.map": protocols,
        "log.dirs": str(data),
        "num.partitions": str(partitions),
        "default.replication.factor": "1",
        "auto.create.topics.enable": "true",
        "offsets.topic.num.partitions": "1",
        "offsets.topic.replication.factor": "1",
        "transaction.state.log.num.partitions": "1",
        "transaction.state.log.replication.factor": "1",
        "transaction.state.log.min.isr": "1",
        "share.coordinator.state.topic.num.partitions": "1",
        "share.coordinator.state.topic.replication.factor": "1",
        "share.coordinator.state.topic.min.isr": "1",
        "group.initial.rebalance.delay.ms": "0",
        "num.network.threads": "2",
        "num.io.threads": "2",
        "num.recovery.threads.per.data.dir": "1",
        "log.retention.hours": "24",
        **(broker_properties(sasl) if sasl is not None else {}),
    }
    return "".join(f"{k}={v}\n" for k, v in props.items())


def start_kafka(
    kdir: Path,
    port: int,
    ctrl_port: int,
    partitions: int,
    heap: str,
    dump_dir: Path | None = None,
    sasl: SaslSetup | None = None,
) -> dict[str, Any]:
    """Format fresh KRaft storage in kdir, then start the broker detached; returns its process record.

    With `sasl`, the broker also listens with SASL_SSL on sasl.port, and its SCRAM user is
    written into the storage by the format step."""
    exe = java()
    data, logs = kdir / "data", kdir / "logs"
    data.mkdir(parents=True)
    logs.mkdir(parents=True)
    props = kdir / "server.properties"
    props.write_text(_properties(data, port, ctrl_port, partitions, sasl))
    cluster_id = _cluster_id()
    try:
        run(
            _jvm(exe, heap, logs, "format", dump_dir)
            + ["kafka.tools.StorageTool", "format", "--standalone", "-t", cluster_id, "-c", str(props)]
            + (scram_format_args(sasl) if sasl is not None else []),
            cwd=kdir,
            timeout=120,
        )
    except InfraError as e:
        raise InfraError(f"Kafka storage format failed: {e}") from e
    p = spawn(
        "kafka", _jvm(exe, heap, logs, "broker", dump_dir) + ["kafka.Kafka", str(props)], kdir, kdir / "stdout.log"
    )
    p.update(port=port, controller_port=ctrl_port, cluster_id=cluster_id, extra_log=str(logs / "kafka.log"))
    return p


def wait_kafka_ready(name: str, proc: dict[str, Any], timeout: float) -> None:
    """Ready = Metadata lists a live broker and the log says 'Kafka Server started'."""

    def ready() -> int:
        brokers = kafka_probe("127.0.0.1", proc["port"])
        if brokers < 1:
            raise ConnectionError("Metadata lists no live broker yet")
        return brokers

    wait_ready(name, proc, ready, timeout, extra_check=lambda: _started_logged(proc))


def _started_logged(proc: dict[str, Any]) -> bool:
    try:
        return "Kafka Server started" in Path(proc["extra_log"]).read_text(errors="replace")
    except OSError:
        return False
