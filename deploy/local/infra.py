#!/usr/bin/env python3
"""Local infrastructure launcher: Apache Kafka (KRaft, single node) + FerretDB (SQLite).

Stdlib only (Python 3.11+), runs with plain ``python3`` before any venv exists.

    python3 deploy/local/infra.py install
    python3 deploy/local/infra.py up     --state-dir DIR [--kafka-port N] [--mongo-port N] [--partitions N] [--reuse]
    python3 deploy/local/infra.py status --state-dir DIR [--json]
    python3 deploy/local/infra.py down   --state-dir DIR [--purge]

Everything downloaded or built is cached outside the repository under
``${MENTORSHIP_CACHE_DIR:-~/.cache/mentorship}``:

    kafka-<ver>/libs/*.jar        Kafka runtime classpath (from Maven Central via deploy/local/pom.xml)
    kafka-<ver>/cds/*.jsa         JVM class-data-sharing archives (recorded once; ~2x faster Kafka start)
    ferretdb-<ver>/ferretdb       FerretDB binary (built from the Go module proxy, with a few bug-fix patches)

Each cache entry is built in a temporary directory and renamed into place only
after a ``.complete`` marker has been written, so an interrupted install is
never mistaken for a finished one.

Importable API (e.g. from a pytest fixture loading this file by path)::

    info = start(state_dir, kafka_port=None, mongo_port=None, partitions=1)  # -> dict (== DIR/infra.json)
    stop(state_dir)
    status(state_dir)                                                        # -> dict
    install()                                                                # -> dict of paths
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import fcntl
import hashlib
import json
import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any, Callable

# ----------------------------------------------------------------------------
# Versions and layout
# ----------------------------------------------------------------------------

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

HERE = Path(__file__).resolve().parent
POM_FILE = HERE / "pom.xml"
LOG4J2_FILE = HERE / "log4j2.properties"
INFO_FILE = "infra.json"
MARKER = ".complete"

KAFKA_HEAP = os.environ.get("INFRA_KAFKA_HEAP", "512m")
# INFO logs every client connection; WARN still shows startup failures and error replies.
FERRETDB_LOG_LEVEL = os.environ.get("INFRA_FERRETDB_LOG_LEVEL", "WARN")
KAFKA_READY_TIMEOUT = 90.0
FERRETDB_READY_TIMEOUT = 30.0
STOP_TIMEOUT = 20.0

# Processes started by this Python process (so stop() can reap them and they
# never linger as zombies that still look "alive" to kill(pid, 0)).
_CHILDREN: dict[int, subprocess.Popen] = {}


class InfraError(RuntimeError):
    """Any failure of install/start/stop with a human-readable message."""


def cache_dir() -> Path:
    return Path(os.environ.get("MENTORSHIP_CACHE_DIR") or "~/.cache/mentorship").expanduser().resolve()


def kafka_home() -> Path:
    return cache_dir() / f"kafka-{KAFKA_VERSION}"


def ferretdb_home() -> Path:
    return cache_dir() / f"ferretdb-{FERRETDB_VERSION}"


def _log_stderr(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


Log = Callable[[str], None]

# ----------------------------------------------------------------------------
# Small helpers
# ----------------------------------------------------------------------------


def _run(cmd: list[str], *, env: dict[str, str] | None = None, cwd: Path | None = None,
         timeout: float = 1800) -> subprocess.CompletedProcess:
    try:
        proc = subprocess.run(cmd, env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              text=True, timeout=timeout)
    except FileNotFoundError as e:
        raise InfraError(f"command not found: {cmd[0]} ({e})") from e
    except subprocess.TimeoutExpired as e:
        raise InfraError(f"command timed out after {timeout:.0f}s: {' '.join(cmd)}") from e
    if proc.returncode != 0:
        tail = "\n".join(proc.stdout.splitlines()[-40:])
        raise InfraError(f"command failed (exit {proc.returncode}): {' '.join(cmd)}\n{tail}")
    return proc


def _tail(path: Path, lines: int = 40) -> str:
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - 64 * 1024))
            data = f.read().decode("utf-8", "replace")
    except OSError:
        return f"(no log at {path})"
    return f"--- last lines of {path} ---\n" + "\n".join(data.splitlines()[-lines:])


@contextlib.contextmanager
def _flock(path: Path):
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _write_json_atomic(path: Path, data: dict) -> None:
    tmp = path.with_name(path.name + f".tmp{os.getpid()}")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
    os.replace(tmp, path)


def _rmtree(path: Path) -> None:
    if not path.exists():
        return

    def onerror(func, p, _exc):  # module-cache copies are read-only
        with contextlib.suppress(OSError):
            os.chmod(os.path.dirname(p), 0o755)
            os.chmod(p, 0o755)
        func(p)

    if sys.version_info >= (3, 12):
        shutil.rmtree(path, onexc=onerror)
    else:
        shutil.rmtree(path, onerror=onerror)


def _marker_ok(home: Path, expect: dict) -> bool:
    try:
        data = json.loads((home / MARKER).read_text())
    except (OSError, ValueError):
        return False
    return all(data.get(k) == v for k, v in expect.items())


def _free_ports(n: int) -> list[int]:
    socks, ports = [], []
    try:
        for _ in range(n):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("127.0.0.1", 0))
            socks.append(s)
            ports.append(s.getsockname()[1])
    finally:
        for s in socks:
            s.close()
    return ports


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


# ----------------------------------------------------------------------------
# Install: Kafka jars via Maven
# ----------------------------------------------------------------------------


def _java() -> str:
    jh = os.environ.get("JAVA_HOME")
    if jh and (Path(jh) / "bin" / "java").exists():
        return str(Path(jh) / "bin" / "java")
    j = shutil.which("java")
    if not j:
        raise InfraError("java not found: Kafka 4.x needs Java 17+ (e.g. apt-get install openjdk-17-jre-headless)")
    return j


def _check_java(log: Log) -> str:
    java = _java()
    out = _run([java, "-version"]).stdout
    m = re.search(r'version "(\d+)(?:\.(\d+))?', out)
    major = int(m.group(1)) if m else 0
    if major == 1 and m and m.group(2):
        major = int(m.group(2))
    if major < 17:
        raise InfraError(f"Kafka {KAFKA_VERSION} needs Java 17+, but {java} is: {out.splitlines()[0] if out else '?'}")
    return java


def _pom_sha() -> str:
    return hashlib.sha256(POM_FILE.read_bytes()).hexdigest()[:16]


def _kafka_marker() -> dict:
    return {"kafka_version": KAFKA_VERSION, "log4j_version": LOG4J_VERSION, "pom_sha": _pom_sha()}


def kafka_installed() -> bool:
    return _marker_ok(kafka_home(), _kafka_marker())


def install_kafka(log: Log = _log_stderr, force: bool = False) -> Path:
    home = kafka_home()
    if not force and kafka_installed():
        log(f"[install] Kafka {KAFKA_VERSION}: cached at {home}")
        return home
    _check_java(log)
    mvn = shutil.which("mvn")
    if not mvn:
        raise InfraError("mvn not found: needed once to fetch Kafka jars from Maven Central (apt-get install maven)")
    t0 = time.monotonic()
    log(f"[install] Kafka {KAFKA_VERSION}: fetching jars from Maven Central with {POM_FILE.name} ...")
    tmp = Path(tempfile.mkdtemp(prefix=f".kafka-{KAFKA_VERSION}.tmp-", dir=cache_dir()))
    os.chmod(tmp, 0o755)
    try:
        libs = tmp / "libs"
        _run([mvn, "-B", "-q", "-f", str(POM_FILE),
              f"-Dkafka.version={KAFKA_VERSION}", f"-Dlog4j.version={LOG4J_VERSION}",
              "dependency:copy-dependencies", "-DincludeScope=runtime", f"-DoutputDirectory={libs}"])
        jars = sorted(p.name for p in libs.glob("*.jar"))
        for need in (f"kafka_2.13-{KAFKA_VERSION}.jar", f"kafka-clients-{KAFKA_VERSION}.jar",
                     f"log4j-slf4j-impl-{LOG4J_VERSION}.jar", f"log4j-core-{LOG4J_VERSION}.jar"):
            if need not in jars:
                raise InfraError(f"Maven did not produce {need} in {libs}; got: {', '.join(jars)}")
        (tmp / MARKER).write_text(json.dumps({**_kafka_marker(), "jars": len(jars), "installed_at": time.time()}))
        _rmtree(home)
        os.replace(tmp, home)
    finally:
        _rmtree(tmp)
    log(f"[install] Kafka {KAFKA_VERSION}: {len(jars)} jars in {home / 'libs'} ({time.monotonic() - t0:.1f}s)")
    return home


KAFKA_CDS = os.environ.get("INFRA_KAFKA_CDS", "1") != "0"


def _java_fingerprint() -> str:
    j = os.path.realpath(_java())
    st = os.stat(j)
    return f"{j}:{int(st.st_mtime)}:{st.st_size}"


def _kafka_cds_marker() -> dict:
    return {**_kafka_marker(), "java": _java_fingerprint()}


def _kafka_cds_settled() -> bool:
    """A CDS archive was recorded for this Kafka + JVM, or recording it failed (then don't retry)."""
    if not KAFKA_CDS:
        return True
    try:
        return _marker_ok(kafka_home() / "cds", _kafka_cds_marker())
    except (InfraError, OSError):
        return False


def kafka_cds_ok() -> bool:
    if not KAFKA_CDS:
        return False
    try:
        return _marker_ok(kafka_home() / "cds", {**_kafka_cds_marker(), "ok": True})
    except (InfraError, OSError):
        return False


def install_kafka_cds(log: Log = _log_stderr, force: bool = False) -> None:
    """Record JVM class-data-sharing archives (AppCDS) for StorageTool and the broker.

    One short training run of the broker at install time; afterwards every `up` starts Kafka
    ~1 s faster. Optional: on failure a marker says so and Kafka just starts without it.
    """
    if not KAFKA_CDS or (not force and _kafka_cds_settled()):
        return
    t0 = time.monotonic()
    home = kafka_home()
    log(f"[install] Kafka {KAFKA_VERSION}: recording JVM class-data-sharing archives (one short broker run) ...")
    tmp = Path(tempfile.mkdtemp(prefix=".cds.tmp-", dir=home))
    os.chmod(tmp, 0o755)
    proc = None
    ok, why = False, ""
    try:
        kport, cport = _free_ports(2)
        proc = _start_kafka(tmp / "work", kport, cport, 1, KAFKA_HEAP, dump_dir=tmp)
        proc["port"] = kport
        _wait_kafka_ready("Kafka (CDS training run)", proc, KAFKA_READY_TIMEOUT)
        _terminate([proc], timeout=30, log=log)  # the archive is written when the JVM exits
        proc = None
        missing = [n for n in ("format.jsa", "broker.jsa") if not (tmp / n).is_file() or not (tmp / n).stat().st_size]
        if missing:
            raise InfraError(f"JVM did not write {', '.join(missing)}")
        ok = True
    except (InfraError, OSError) as e:
        why = str(e).splitlines()[0]
    finally:
        if proc is not None:
            _terminate([proc], timeout=10, log=log)
    try:
        _rmtree(tmp / "work")
        if not ok:
            for f in tmp.glob("*.jsa"):
                f.unlink()
        (tmp / MARKER).write_text(json.dumps({**_kafka_cds_marker(), "ok": ok, "error": why}))
        _rmtree(home / "cds")
        os.replace(tmp, home / "cds")
    finally:
        _rmtree(tmp)
    if ok:
        log(f"[install] Kafka {KAFKA_VERSION}: CDS archives in {home / 'cds'} ({time.monotonic() - t0:.1f}s)")
    else:
        log(f"[install] Kafka {KAFKA_VERSION}: CDS archive skipped ({why}); Kafka starts ~1s slower without it")


# ----------------------------------------------------------------------------
# Install: FerretDB from the Go module proxy
#
# Small source patches are applied to FerretDB v1.24.2 before building. Each one
# fixes a case where upstream silently returned a wrong result (see README.md).
# Snippets are written with 4-space indents and converted to Go's tabs.
# A patch whose "old" text is not found exactly once aborts the install.
# ----------------------------------------------------------------------------

FERRETDB_PATCHES: list[tuple[str, str, str, str]] = [
    # --- atomic writes -------------------------------------------------------------------
    # Upstream's SQLite handler reads a document, changes it in Go and writes it back with no
    # lock around the two steps, so concurrent updates of one document lose writes (4 x 100
    # concurrent $inc ended at 97) and two conditional updates racing on one version both
    # succeed. MongoDB guarantees single-document atomicity; the outbox and every conditional
    # update here rely on it. One process-wide lock around each write command restores it
    # (SQLite serialises writers anyway, so little throughput is lost).
    (
        "atomic-writes-lock",
        "internal/handler/handler.go",
        """
type Handler struct {
""",
        """
// infraWriteMu (infra.py patch) makes each write command atomic; see infra.py.
var infraWriteMu sync.Mutex

type Handler struct {
""",
    ),
    *[
        (
            f"atomic-writes-{cmd.lower()}",
            f"internal/handler/msg_{file}.go",
            f"""
func (h *Handler) Msg{cmd}(connCtx context.Context, msg *wire.OpMsg) (*wire.OpMsg, error) {{
""",
            f"""
func (h *Handler) Msg{cmd}(connCtx context.Context, msg *wire.OpMsg) (*wire.OpMsg, error) {{
    infraWriteMu.Lock()
    defer infraWriteMu.Unlock()

""",
        )
        for cmd, file in (("Update", "update"), ("FindAndModify", "findandmodify"), ("Delete", "delete"),
                          ("Insert", "insert"))
    ],
    # --- _id lookups use the _id index ------------------------------------------------------
    # Upstream pushed `_id` down only when it was the filter's sole key, and compared
    # `_ferretdb_sjson->'$._id'` while the _id index is on `_ferretdb_sjson->"_id"`, so SQLite
    # never used the index: every find, update and delete by _id scanned the whole table.
    # The handler re-applies the full filter in Go, so pushing `_id` down is always safe.
    (
        "id-index-expression",
        "internal/backends/sqlite/metadata/metadata.go",
        """
    IDColumn = DefaultColumn + "->'$._id'"
""",
        """
    IDColumn = DefaultColumn + `->"_id"` // infra.py patch: same expression as the _id index
""",
    ),
    (
        "id-pushdown-query",
        "internal/backends/sqlite/collection.go",
        """
    if params.Filter.Len() == 1 {
        v, _ := params.Filter.Get("_id")
        switch v.(type) {
        case string, types.ObjectID:
            whereClause = fmt.Sprintf(` WHERE %s = ?`, metadata.IDColumn)
""",
        """
    if params.Filter != nil && params.Filter.Has("_id") { // infra.py patch: not only as sole key
        v, _ := params.Filter.Get("_id")
        switch v.(type) {
        case string, types.ObjectID:
            whereClause = fmt.Sprintf(` WHERE %s = ?`, metadata.IDColumn)
""",
    ),
    # --- string/boolean equality pre-filtered in SQL ---------------------------------------
    # Upstream filters every other condition in Go after decoding each document of the table,
    # so `{state: "pending"}` or `{outbox_pending: true}` cost a full decode of the collection.
    # This pushes top-level equality on strings and booleans into SQL as a pre-filter; a row
    # whose field is an array is let through (MongoDB equality also matches an array holding the
    # value) and the handler re-applies the whole filter in Go, so no match can be lost.
    (
        "scalar-pushdown-query",
        "internal/backends/sqlite/collection.go",
        """
    q += whereClause
    q += prepareOrderByClause(params.Sort)

    if params.Limit != 0 {
        q += ` LIMIT ?`
        args = append(args, params.Limit)
    }

    rows, err := db.QueryContext(ctx, q, args...)
""",
        """
    whereClause, args = infraScalarPushdown(params.Filter, whereClause, args)

    q += whereClause
    q += prepareOrderByClause(params.Sort)

    if params.Limit != 0 {
        q += ` LIMIT ?`
        args = append(args, params.Limit)
    }

    rows, err := db.QueryContext(ctx, q, args...)
""",
    ),
    (
        "scalar-pushdown-func",
        "internal/backends/sqlite/collection.go",
        """
// InsertAll implements backends.Collection interface.
""",
        """
// infraScalarPushdown (infra.py patch) adds SQL pre-filters for top-level string and boolean
// equality; see infra.py for why arrays pass through. The expressions are the same as those of
// FerretDB's indexes (`->"field"`) and of the companion json_type index, so SQLite can use both.
func infraScalarPushdown(filter *types.Document, where string, args []any) (string, []any) {
    if filter == nil {
        return where, args
    }

    for _, k := range filter.Keys() {
        if k == "_id" || !infraPlainKey(k) {
            continue
        }

        v, _ := filter.Get(k)
        switch v.(type) {
        case string, bool:
        default:
            continue
        }

        cond := fmt.Sprintf(
            `(%[1]s->"%[2]s" = ? OR json_type(%[1]s, '$."%[2]s"') = 'array')`,
            metadata.DefaultColumn, k,
        )
        if where == "" {
            where = " WHERE " + cond
        } else {
            where += " AND " + cond
        }

        args = append(args, string(must.NotFail(sjson.MarshalSingleValue(v))))
    }

    return where, args
}

// infraPlainKey reports whether k is a plain identifier (letters, digits, underscore).
func infraPlainKey(k string) bool {
    if k == "" {
        return false
    }

    for i, r := range k {
        if r == '_' || (r >= 'a' && r <= 'z') || (r >= 'A' && r <= 'Z') || (i > 0 && r >= '0' && r <= '9') {
            continue
        }

        return false
    }

    return true
}

// InsertAll implements backends.Collection interface.
""",
    ),
    (
        "json-type-companion-index",
        "internal/backends/sqlite/metadata/registry.go",
        """
        created = append(created, index.Name)
        c.Settings.Indexes = append(c.Settings.Indexes, index)
""",
        """
        created = append(created, index.Name)
        c.Settings.Indexes = append(c.Settings.Indexes, index)

        // infra.py patch: a companion index on each plain top-level key's JSON type, so that
        // the pushed-down equality `(f = ? OR json_type(f) = 'array')` can use indexes for both terms.
        for _, key := range index.Key {
            if key.Field == "_id" || strings.ContainsAny(key.Field, `."'$\\ `) {
                continue
            }

            jt := fmt.Sprintf(
                `CREATE INDEX IF NOT EXISTS %q ON %q (json_type(%s, '$."%s"'))`,
                c.TableName+"_jt_"+key.Field, c.TableName, DefaultColumn, key.Field,
            )
            if _, err := db.ExecContext(ctx, jt); err != nil {
                return lazyerrors.Error(err)
            }
        }
""",
    ),
    (
        "id-pushdown-explain",
        "internal/backends/sqlite/collection.go",
        """
    if params.Filter.Len() == 1 {
        v, _ := params.Filter.Get("_id")
        switch v.(type) {
        case string, types.ObjectID:
            filterPushdown = true
""",
        """
    if params.Filter != nil && params.Filter.Has("_id") { // infra.py patch: not only as sole key
        v, _ := params.Filter.Get("_id")
        switch v.(type) {
        case string, types.ObjectID:
            filterPushdown = true
""",
    ),
    (
        "group-multi-accumulator",
        "internal/handler/common/aggregations/stages/group.go",
        """
        groupIter := iterator.Values(iterator.ForSlice(groupedDocument.documents))
        defer groupIter.Close()

        for _, accumulation := range g.groupBy {
            out, err := accumulation.accumulator.Accumulate(groupIter)
""",
        """
        for _, accumulation := range g.groupBy {
            // infra.py patch: one fresh iterator per accumulator. Upstream shared one, so only the
            // first accumulator of a $group saw the documents and all others returned 0.
            groupIter := iterator.Values(iterator.ForSlice(groupedDocument.documents))
            out, err := accumulation.accumulator.Accumulate(groupIter)
            groupIter.Close()
""",
    ),
    (
        "pull-condition",
        "internal/handler/common/update_array_operators.go",
        """
    for i := array.Len() - 1; i >= 0; i-- {
        elem := must.NotFail(array.Get(i))

        if types.Compare(elem, pullVal) == types.Equal {
""",
        """
    for i := array.Len() - 1; i >= 0; i-- {
        elem := must.NotFail(array.Get(i))

        matched, err := infraPullMatches(elem, pullVal)
        if err != nil {
            return false, err
        }

        if matched {
""",
    ),
    (
        "push-position-slice",
        "internal/handler/common/update_array_operators.go",
        """
    if each == nil {
        each = types.MakeArray(1)
        each.Append(pushVal)
    }

    var changed bool

    for i := range each.Len() {
        array.Append(must.NotFail(each.Get(i)))
        changed = true
    }
""",
        """
    pos, hasPos, slice, hasSlice, err := infraPushModifiers(command, pushVal, each != nil)
    if err != nil {
        return false, err
    }

    if each == nil {
        each = types.MakeArray(1)
        each.Append(pushVal)
    }

    // infra.py patch: honour $position and $slice (upstream silently ignored them)
    n := int64(array.Len())
    if !hasPos || pos > n {
        pos = n
    }
    if pos < 0 {
        pos = max(n+pos, 0)
    }

    merged := types.MakeArray(array.Len() + each.Len())
    for i := int64(0); i <= n; i++ {
        if i == pos {
            for j := range each.Len() {
                merged.Append(must.NotFail(each.Get(j)))
            }
        }
        if i < n {
            merged.Append(must.NotFail(array.Get(int(i))))
        }
    }

    if hasSlice {
        total := int64(merged.Len())
        from, to := int64(0), min(slice, total)
        if slice < 0 {
            from, to = max(total+slice, 0), total
        }
        sliced := types.MakeArray(int(to - from))
        for i := from; i < to; i++ {
            sliced.Append(must.NotFail(merged.Get(int(i))))
        }
        merged = sliced
    }

    changed := each.Len() > 0 || int64(merged.Len()) != n
    array = merged
""",
    ),
    (
        "push-pull-helpers",
        "internal/handler/common/update_array_operators.go",
        """
// processPopArrayUpdateExpression changes document according to $pop operator.
""",
        """
// infraPullMatches (infra.py patch) implements MongoDB's $pull condition semantics:
// a document made of operators ({$gt: 4}, {$in: [...]}) is a condition on the element itself,
// any other document is a query that document elements must match, other values use equality.
func infraPullMatches(elem, pullVal any) (bool, error) {
    cond, ok := pullVal.(*types.Document)
    if !ok || cond.Len() == 0 {
        return types.Compare(elem, pullVal) == types.Equal, nil
    }

    if strings.HasPrefix(cond.Keys()[0], "$") {
        return FilterDocument(must.NotFail(types.NewDocument("v", elem)), must.NotFail(types.NewDocument("v", cond)))
    }

    elemDoc, ok := elem.(*types.Document)
    if !ok {
        return false, nil
    }

    return FilterDocument(elemDoc, cond)
}

// infraPushModifiers (infra.py patch) parses $push modifiers next to $each;
// $position and $slice are supported, others ($sort) are rejected instead of being ignored.
func infraPushModifiers(command string, pushVal any, hasEach bool) (pos int64, hasPos bool, slice int64, hasSlice bool, err error) {
    pushDoc, ok := pushVal.(*types.Document)
    if !ok || !hasEach {
        return
    }

    for _, k := range pushDoc.Keys() {
        v := must.NotFail(pushDoc.Get(k))

        switch k {
        case "$each":
        case "$position":
            if pos, err = handlerparams.GetWholeNumberParam(v); err != nil {
                err = NewUpdateError(handlererrors.ErrBadValue, "The value for $position must be an integer value", command)
                return
            }
            hasPos = true
        case "$slice":
            if slice, err = handlerparams.GetWholeNumberParam(v); err != nil {
                err = NewUpdateError(handlererrors.ErrBadValue, "The value for $slice must be an integer value", command)
                return
            }
            hasSlice = true
        default:
            err = NewUpdateError(handlererrors.ErrNotImplemented, fmt.Sprintf("$push modifier %s is not implemented in FerretDB", k), command)
            return
        }
    }

    return
}

// processPopArrayUpdateExpression changes document according to $pop operator.
""",
    ),
    (
        "elemmatch-document-query",
        "internal/handler/common/filter.go",
        """
    for _, key := range expr.Keys() {
        if slices.Contains([]string{"$text", "$where"}, key) {
""",
        """
    // infra.py patch: $elemMatch with a query on document elements, e.g.
    // {items: {$elemMatch: {sku: "x", qty: {$gt: 5}}}}. Upstream only supported operator
    // conditions on scalar elements and silently matched nothing (or failed) otherwise.
    if expr.Len() > 0 && !strings.HasPrefix(expr.Keys()[0], "$") {
        value, err := doc.Get(filterSuffix)
        if err != nil {
            return false, nil
        }

        arr, ok := value.(*types.Array)
        if !ok {
            return false, nil
        }

        for i := range arr.Len() {
            elemDoc, ok := must.NotFail(arr.Get(i)).(*types.Document)
            if !ok {
                continue
            }

            matched, err := FilterDocument(elemDoc, expr)
            if err != nil {
                return false, err
            }

            if matched {
                return true, nil
            }
        }

        return false, nil
    }

    for _, key := range expr.Keys() {
        if slices.Contains([]string{"$text", "$where"}, key) {
""",
    ),
    (
        "strings-import",
        "internal/handler/common/update_array_operators.go",
        """
    "fmt"
    "strconv"
""",
        """
    "fmt"
    "strconv"
    "strings"
""",
    ),
]


def _go_indent(snippet: str) -> str:
    return "\n".join(re.sub(r"^((?:    )+)", lambda m: "\t" * (len(m.group(1)) // 4), line)
                     for line in snippet.splitlines()) + "\n"


def _ferretdb_patch_id() -> str:
    h = hashlib.sha256(json.dumps(FERRETDB_PATCHES).encode()).hexdigest()[:12]
    return f"{len(FERRETDB_PATCHES)}-{h}"


def _apply_ferretdb_patches(src: Path) -> None:
    for name, rel, old, new in FERRETDB_PATCHES:
        f = src / rel
        text = f.read_text()
        old_t, new_t = _go_indent(old.lstrip("\n")), _go_indent(new.lstrip("\n"))
        if text.count(old_t) != 1:
            raise InfraError(f"FerretDB patch {name!r} does not apply to {rel} (expected text found "
                             f"{text.count(old_t)} times)")
        f.write_text(text.replace(old_t, new_t))


def _ferretdb_marker() -> dict:
    return {"ferretdb_version": FERRETDB_VERSION, "patches": _ferretdb_patch_id()}


def ferretdb_installed() -> bool:
    home = ferretdb_home()
    return _marker_ok(home, _ferretdb_marker()) and os.access(home / "ferretdb", os.X_OK)


def _go_env(log: Log) -> tuple[str, dict[str, str]]:
    go = shutil.which("go")
    if not go:
        raise InfraError("go not found: needed once to build FerretDB (Go >= 1.24, or any Go + GOTOOLCHAIN)")
    env = dict(os.environ)
    env["CGO_ENABLED"] = "0"          # SQLite backend is pure Go (modernc.org/sqlite)
    env["GOFLAGS"] = "-buildvcs=false"  # ignore user GOFLAGS such as -mod=vendor
    if not env.get("GOTOOLCHAIN"):
        out = _run([go, "env", "GOVERSION"], env={**env, "GOTOOLCHAIN": "local"}).stdout.strip()
        m = re.match(r"go(\d+)\.(\d+)", out)
        have = (int(m.group(1)), int(m.group(2))) if m else (0, 0)
        if have >= FERRETDB_MIN_GO:
            env["GOTOOLCHAIN"] = "local"
        else:
            env["GOTOOLCHAIN"] = FALLBACK_GOTOOLCHAIN
            log(f"[install] local {out} < go{FERRETDB_MIN_GO[0]}.{FERRETDB_MIN_GO[1]}: "
                f"using GOTOOLCHAIN={FALLBACK_GOTOOLCHAIN}")
    return go, env


def install_ferretdb(log: Log = _log_stderr, force: bool = False) -> Path:
    home = ferretdb_home()
    if not force and ferretdb_installed():
        log(f"[install] FerretDB {FERRETDB_VERSION}: cached at {home / 'ferretdb'}")
        return home
    go, env = _go_env(log)
    t0 = time.monotonic()
    log(f"[install] FerretDB {FERRETDB_VERSION}: go mod download {FERRETDB_MODULE}@{FERRETDB_VERSION} ...")
    dl = json.loads(_run([go, "mod", "download", "-json", f"{FERRETDB_MODULE}@{FERRETDB_VERSION}"],
                         env=env, cwd=cache_dir()).stdout)
    if dl.get("Error") or not dl.get("Dir"):
        raise InfraError(f"go mod download failed: {dl}")
    commit = (dl.get("Origin") or {}).get("Hash", "")
    tmp = Path(tempfile.mkdtemp(prefix=f".ferretdb-{FERRETDB_VERSION}.tmp-", dir=cache_dir()))
    os.chmod(tmp, 0o755)
    try:
        src = tmp / "src"
        shutil.copytree(dl["Dir"], src, copy_function=shutil.copyfile)
        for root, dirs, files in os.walk(src):  # module cache is read-only; make the copy writable
            os.chmod(root, 0o755)
            for fn in files:
                os.chmod(os.path.join(root, fn), 0o644)
        # build/version/version.go embeds *.txt and panics at start unless
        # version.txt starts with "v" (normally generated by `git describe`).
        vdir = src / "build" / "version"
        (vdir / "version.txt").write_text(FERRETDB_VERSION + "\n")
        if commit:
            (vdir / "commit.txt").write_text(commit + "\n")
        (vdir / "branch.txt").write_text("main-v1\n")
        (vdir / "package.txt").write_text("local+infra-patches\n")
        _apply_ferretdb_patches(src)
        log(f"[install] FerretDB {FERRETDB_VERSION}: applied {len(FERRETDB_PATCHES)} source patches "
            f"({', '.join(x[0] for x in FERRETDB_PATCHES)})")
        binary = tmp / "ferretdb"
        log(f"[install] FerretDB {FERRETDB_VERSION}: go build ./cmd/ferretdb "
            f"(GOTOOLCHAIN={env['GOTOOLCHAIN']}, takes ~1-2 min uncached) ...")
        _run([go, "build", "-trimpath", "-ldflags=-s -w", "-o", str(binary), "./cmd/ferretdb"], env=env, cwd=src)
        out = _run([str(binary), "--version"]).stdout
        if f"version: {FERRETDB_VERSION}" not in out:
            raise InfraError(f"built FerretDB reports an unexpected version:\n{out}")
        _rmtree(src)
        (tmp / MARKER).write_text(json.dumps({**_ferretdb_marker(), "commit": commit, "installed_at": time.time()}))
        _rmtree(home)
        os.replace(tmp, home)
    finally:
        _rmtree(tmp)
    log(f"[install] FerretDB {FERRETDB_VERSION}: built {home / 'ferretdb'} ({time.monotonic() - t0:.1f}s)")
    return home


def install(log: Log = _log_stderr, force: bool = False) -> dict:
    """Install (or reuse cached) Kafka jars and the FerretDB binary. Returns paths."""
    t0 = time.monotonic()
    cache_dir().mkdir(parents=True, exist_ok=True)
    if force or not (kafka_installed() and _kafka_cds_settled() and ferretdb_installed()):
        with _flock(cache_dir() / ".install.lock"):  # concurrent installers wait for each other
            install_kafka(log, force)
            install_kafka_cds(log, force)
            install_ferretdb(log, force)
    else:
        log(f"[install] cached: Kafka {KAFKA_VERSION} and FerretDB {FERRETDB_VERSION} in {cache_dir()}")
    log(f"[install] done in {time.monotonic() - t0:.1f}s")
    return {"cache_dir": str(cache_dir()), "kafka_libs": str(kafka_home() / "libs"),
            "ferretdb_bin": str(ferretdb_home() / "ferretdb")}


# ----------------------------------------------------------------------------
# Wire-protocol readiness probes (pure Python)
# ----------------------------------------------------------------------------


def _recv_exact(sock: socket.socket, n: int) -> bytes:
    buf = bytearray()
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise ConnectionError("connection closed")
        buf += chunk
    return bytes(buf)


def _kafka_call(sock: socket.socket, api_key: int, api_version: int, corr: int, body: bytes) -> bytes:
    client_id = b"infra-probe"
    header = struct.pack(">hhih", api_key, api_version, corr, len(client_id)) + client_id
    msg = header + body
    sock.sendall(struct.pack(">i", len(msg)) + msg)
    (size,) = struct.unpack(">i", _recv_exact(sock, 4))
    resp = _recv_exact(sock, size)
    (rcorr,) = struct.unpack(">i", resp[:4])
    if rcorr != corr:
        raise ConnectionError("kafka correlation id mismatch")
    return resp[4:]  # response header v0 (ApiVersions and non-flexible Metadata)


def kafka_probe(host: str, port: int, timeout: float = 3.0) -> int:
    """ApiVersions + Metadata over the socket; returns the number of live brokers (>=1 means ready)."""
    with socket.create_connection((host, port), timeout=timeout) as s:
        s.settimeout(timeout)
        r = _kafka_call(s, 18, 0, 1, b"")  # ApiVersions v0
        err, n = struct.unpack(">hi", r[:6])
        if err != 0:
            raise ConnectionError(f"ApiVersions error {err}")
        versions = {}
        for i in range(n):
            k, lo, hi = struct.unpack(">hhh", r[6 + 6 * i: 12 + 6 * i])
            versions[k] = (lo, hi)
        lo, hi = versions.get(3, (0, -1))
        v = min(hi, 8)  # v9+ are "flexible" (tagged fields); 1..8 are enough here
        if v < max(lo, 1):
            return 1  # cannot speak a Metadata version; ApiVersions answered
        body = struct.pack(">i", 0)  # topics: empty array -> no topics, just brokers
        if v >= 4:
            body += b"\x00"  # allow_auto_topic_creation
        if v >= 8:
            body += b"\x00\x00"  # include cluster/topic authorized operations
        r = _kafka_call(s, 3, v, 2, body)
        off = 4 if v >= 3 else 0  # throttle_time_ms
        (brokers,) = struct.unpack(">i", r[off:off + 4])
        return brokers


def _bson_encode(doc: dict) -> bytes:
    out = bytearray()
    for k, v in doc.items():
        key = k.encode() + b"\x00"
        if isinstance(v, bool):
            out += b"\x08" + key + (b"\x01" if v else b"\x00")
        elif isinstance(v, int):
            out += (b"\x10" + key + struct.pack("<i", v)) if -2**31 <= v < 2**31 else \
                   (b"\x12" + key + struct.pack("<q", v))
        elif isinstance(v, float):
            out += b"\x01" + key + struct.pack("<d", v)
        elif isinstance(v, str):
            b = v.encode() + b"\x00"
            out += b"\x02" + key + struct.pack("<i", len(b)) + b
        elif isinstance(v, dict):
            out += b"\x03" + key + _bson_encode(v)
        else:
            raise TypeError(f"unsupported BSON value {v!r}")
    return struct.pack("<i", len(out) + 5) + bytes(out) + b"\x00"


def _bson_decode(data: bytes) -> dict:
    """Minimal decoder: top-level scalars we care about; stops at unknown types."""
    res: dict[str, Any] = {}
    i, end = 4, struct.unpack("<i", data[:4])[0] - 1
    while i < end:
        t = data[i]
        j = data.index(b"\x00", i + 1)
        key = data[i + 1:j].decode()
        i = j + 1
        if t == 0x01:
            res[key] = struct.unpack("<d", data[i:i + 8])[0]; i += 8
        elif t == 0x02:
            n = struct.unpack("<i", data[i:i + 4])[0]
            res[key] = data[i + 4:i + 3 + n].decode("utf-8", "replace"); i += 4 + n
        elif t in (0x03, 0x04):
            n = struct.unpack("<i", data[i:i + 4])[0]
            res[key] = _bson_decode(data[i:i + n]) if t == 0x03 else None; i += n
        elif t == 0x05:
            n = struct.unpack("<i", data[i:i + 4])[0]; i += 5 + n
        elif t == 0x07:
            i += 12
        elif t == 0x08:
            res[key] = data[i] == 1; i += 1
        elif t in (0x09, 0x11, 0x12):
            res[key] = struct.unpack("<q", data[i:i + 8])[0]; i += 8
        elif t == 0x0A:
            res[key] = None
        elif t == 0x10:
            res[key] = struct.unpack("<i", data[i:i + 4])[0]; i += 4
        else:
            break
    return res


def mongo_command(host: str, port: int, cmd: dict, timeout: float = 3.0) -> dict:
    """Send one OP_MSG command and return the (minimally) decoded reply."""
    body = struct.pack("<I", 0) + b"\x00" + _bson_encode(cmd)
    header = struct.pack("<iiii", 16 + len(body), 1, 0, 2013)
    with socket.create_connection((host, port), timeout=timeout) as s:
        s.settimeout(timeout)
        s.sendall(header + body)
        (length,) = struct.unpack("<i", _recv_exact(s, 4))
        resp = _recv_exact(s, length - 4)
    _req, _resp_to, opcode = struct.unpack("<iii", resp[:12])
    if opcode != 2013 or resp[16] != 0:
        raise ConnectionError(f"unexpected mongo reply opcode={opcode}")
    return _bson_decode(resp[17:])


def mongo_probe(host: str, port: int, timeout: float = 3.0) -> dict:
    reply = mongo_command(host, port, {"hello": 1, "$db": "admin"}, timeout)
    if reply.get("ok") != 1.0:
        raise ConnectionError(f"hello failed: {reply}")
    info = mongo_command(host, port, {"buildInfo": 1, "$db": "admin"}, timeout)
    return {"maxWireVersion": reply.get("maxWireVersion"), "version": info.get("version"),
            "ferretdbVersion": info.get("ferretdbVersion")}


# ----------------------------------------------------------------------------
# Process management
# ----------------------------------------------------------------------------


def _proc_start_time(pid: int) -> str | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[19]  # field 22: starttime


def _alive(p: dict) -> bool:
    pid = int(p["pid"])
    child = _CHILDREN.get(pid)
    if child is not None:
        return child.poll() is None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return sys.platform != "linux"
    if stat.rsplit(")", 1)[1].split()[0] in ("Z", "X"):
        return False
    # guard against pid reuse
    return p.get("start_time") in (None, _proc_start_time(pid))


def _spawn(name: str, cmd: list[str], cwd: Path, log_file: Path, env: dict | None = None) -> dict:
    log_file.parent.mkdir(parents=True, exist_ok=True)
    with open(log_file, "ab") as out:
        proc = subprocess.Popen(cmd, cwd=cwd, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                env=env, start_new_session=True, close_fds=True)
    _CHILDREN[proc.pid] = proc
    return {"name": name, "pid": proc.pid, "start_time": _proc_start_time(proc.pid), "log": str(log_file),
            "cmd": cmd}


def _terminate(procs: list[dict], timeout: float = STOP_TIMEOUT, log: Log = _log_stderr) -> None:
    live = [p for p in procs if _alive(p)]
    for p in live:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(int(p["pid"]), signal.SIGTERM)  # start_new_session => pgid == pid
    deadline = time.monotonic() + timeout
    while live and time.monotonic() < deadline:
        time.sleep(0.1)
        live = [p for p in live if _alive(p)]
    for p in live:
        log(f"[down] {p['name']} (pid {p['pid']}) ignored SIGTERM for {timeout:.0f}s: SIGKILL")
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(int(p["pid"]), signal.SIGKILL)
    for p in procs:
        child = _CHILDREN.pop(int(p["pid"]), None)
        if child is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                child.wait(5)
    deadline = time.monotonic() + 5
    while any(_alive(p) for p in procs) and time.monotonic() < deadline:
        time.sleep(0.1)


def _read_info(state_dir: Path) -> dict | None:
    try:
        return json.loads((state_dir / INFO_FILE).read_text())
    except FileNotFoundError:
        return None
    except ValueError:
        return {"processes": {}}


def _wait_ready(name: str, proc: dict, probe: Callable[[], Any], timeout: float, extra_check=None) -> Any:
    deadline = time.monotonic() + timeout
    last_err: Exception | None = None
    while time.monotonic() < deadline:
        if not _alive(proc):
            raise InfraError(f"{name} exited during startup.\n{_tail(Path(proc['log']))}"
                             + (f"\n{_tail(Path(proc['extra_log']))}" if proc.get("extra_log") else ""))
        try:
            res = probe()
            if extra_check is None or extra_check():
                return res
        except (OSError, ConnectionError, struct.error, ValueError, IndexError) as e:
            last_err = e
        time.sleep(0.2)
    raise InfraError(f"{name} not ready after {timeout:g}s (last probe error: {last_err!r}).\n"
                     f"{_tail(Path(proc['log']))}"
                     + (f"\n{_tail(Path(proc['extra_log']))}" if proc.get("extra_log") else ""))


# ----------------------------------------------------------------------------
# Kafka / FerretDB launch
# ----------------------------------------------------------------------------


def _kafka_cluster_id() -> str:
    while True:
        cid = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not cid.startswith("-"):  # would be parsed as a CLI option
            return cid


def _kafka_jvm(java: str, heap: str, logs_dir: Path, cds: str, dump_dir: Path | None = None) -> list[str]:
    # C1-only JIT + SerialGC: ~30% faster start on 2 cores; plenty for tests and local development.
    cmd = [java, f"-Xmx{heap}", "-Xms64m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1",
           "-XX:+ExitOnOutOfMemoryError", "-Djava.awt.headless=true",
           f"-Dkafka.logs.dir={logs_dir}", f"-Dlog4j2.configurationFile={LOG4J2_FILE}"]
    if dump_dir is not None:
        cmd.append(f"-XX:ArchiveClassesAtExit={dump_dir / (cds + '.jsa')}")
    elif kafka_cds_ok():
        cmd.append(f"-XX:SharedArchiveFile={kafka_home() / 'cds' / (cds + '.jsa')}")
    return cmd + ["-cp", str(kafka_home() / "libs" / "*")]


def _kafka_properties(data: Path, port: int, ctrl_port: int, partitions: int) -> str:
    props = {
        "process.roles": "broker,controller",
        "node.id": "1",
        "controller.quorum.bootstrap.servers": f"127.0.0.1:{ctrl_port}",
        "listeners": f"PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{ctrl_port}",
        "advertised.listeners": f"PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{ctrl_port}",
        "controller.listener.names": "CONTROLLER",
        "inter.broker.listener.name": "PLAINTEXT",
        "listener.security.protocol.map": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
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
    }
    return "".join(f"{k}={v}\n" for k, v in props.items())


def _start_kafka(kdir: Path, port: int, ctrl_port: int, partitions: int, heap: str,
                 dump_dir: Path | None = None) -> dict:
    java = _java()
    data, logs = kdir / "data", kdir / "logs"
    data.mkdir(parents=True)
    logs.mkdir(parents=True)
    props = kdir / "server.properties"
    props.write_text(_kafka_properties(data, port, ctrl_port, partitions))
    cluster_id = _kafka_cluster_id()
    try:
        _run(_kafka_jvm(java, heap, logs, "format", dump_dir)
             + ["kafka.tools.StorageTool", "format", "--standalone", "-t", cluster_id, "-c", str(props)],
             cwd=kdir, timeout=120)
    except InfraError as e:
        raise InfraError(f"Kafka storage format failed: {e}") from e
    p = _spawn("kafka", _kafka_jvm(java, heap, logs, "broker", dump_dir) + ["kafka.Kafka", str(props)],
               kdir, kdir / "stdout.log")
    p.update(port=port, controller_port=ctrl_port, cluster_id=cluster_id, extra_log=str(logs / "kafka.log"))
    return p


def _start_ferretdb(state_dir: Path, port: int) -> dict:
    fdir = state_dir / "ferretdb"
    data, st = fdir / "data", fdir / "state"
    data.mkdir(parents=True)
    st.mkdir(parents=True)
    cmd = [str(ferretdb_home() / "ferretdb"), "--handler=sqlite", f"--sqlite-url=file:{data}/",
           f"--listen-addr=127.0.0.1:{port}", f"--state-dir={st}", "--telemetry=disable", "--debug-addr=-",
           f"--log-level={FERRETDB_LOG_LEVEL}", "--log-format=text"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("FERRETDB_")}
    p = _spawn("ferretdb", cmd, fdir, fdir / "ferretdb.log", env=env)
    p.update(port=port)
    return p


def _wait_kafka_ready(name: str, proc: dict, timeout: float) -> None:
    def ready() -> int:
        brokers = kafka_probe("127.0.0.1", proc["port"])
        if brokers < 1:
            raise ConnectionError("Metadata lists no live broker yet")
        return brokers

    _wait_ready(name, proc, ready, timeout, extra_check=lambda: _kafka_started_logged(proc))


def _kafka_started_logged(proc: dict) -> bool:
    try:
        return "Kafka Server started" in Path(proc["extra_log"]).read_text(errors="replace")
    except OSError:
        return False


def _summary(info: dict) -> list[str]:
    return [f"Kafka {info['kafka_version']} (KRaft) ready at {info['kafka_bootstrap']}",
            f"FerretDB {info['ferretdb_version']} (SQLite) ready at {info['mongodb_uri']}"]


def start(state_dir: str | os.PathLike, kafka_port: int | None = None, mongo_port: int | None = None,
          partitions: int = 1, reuse: bool = False, kafka_heap: str = KAFKA_HEAP,
          timeout: float = KAFKA_READY_TIMEOUT, log: Log = _log_stderr) -> dict:
    """Start Kafka + FerretDB detached with data under state_dir; returns the infra.json dict."""
    t0 = time.monotonic()
    sd = Path(state_dir).expanduser().resolve()
    sd.mkdir(parents=True, exist_ok=True)
    with _flock(sd / ".infra.lock"):
        old = _read_info(sd)
        if old is not None:
            procs = list(old.get("processes", {}).values())
            alive = [p for p in procs if _alive(p)]
            if alive and reuse and len(alive) == len(procs) == 2 and old.get("status") == "ready":
                try:
                    kafka_probe("127.0.0.1", old["processes"]["kafka"]["port"])
                    mongo_probe("127.0.0.1", old["processes"]["ferretdb"]["port"])
                    log(f"[up] reusing running infra in {sd}")
                    return old
                except (OSError, ConnectionError, struct.error, ValueError) as e:
                    log(f"[up] running infra in {sd} does not answer ({e!r}); restarting it")
                    _terminate(alive, log=log)
            elif alive and reuse:
                log(f"[up] infra in {sd} is only partly alive; restarting it")
                _terminate(alive, log=log)
            elif alive:
                raise InfraError(
                    f"infra already running in {sd} (pids {', '.join(str(p['pid']) for p in alive)}): "
                    f"run `infra.py down --state-dir {sd}` first, or pass --reuse / reuse=True")
            else:
                log(f"[up] removing stale {sd / INFO_FILE} (its processes are gone)")
            (sd / INFO_FILE).unlink(missing_ok=True)

        install(log=log)

        for attempt in (1, 2):
            try:
                return _start_fresh(sd, kafka_port, mongo_port, partitions, kafka_heap, timeout, log, t0)
            except InfraError as e:
                # a port picked from the OS can be taken by someone else before our server binds it
                if attempt == 1 and "already in use" in str(e).lower():
                    log("[up] a picked port was taken meanwhile; retrying with new ports")
                    continue
                raise
    raise AssertionError("unreachable")


def _start_fresh(sd: Path, kafka_port: int | None, mongo_port: int | None, partitions: int, kafka_heap: str,
                 timeout: float, log: Log, t0: float) -> dict:
    for sub in ("kafka", "ferretdb"):  # always start from empty data
        _rmtree(sd / sub)
    if kafka_port is not None and not _port_free(kafka_port):
        raise InfraError(f"Kafka port {kafka_port} is not free")
    if mongo_port is not None and not _port_free(mongo_port):
        raise InfraError(f"MongoDB port {mongo_port} is not free")
    free = iter(p for p in _free_ports(5) if p not in (kafka_port, mongo_port))
    kport = kafka_port or next(free)
    cport = next(free)
    mport = mongo_port or next(free)

    procs: dict[str, dict] = {}
    info = {
        "status": "starting", "state_dir": str(sd),
        "kafka_bootstrap": f"127.0.0.1:{kport}", "mongodb_uri": f"mongodb://127.0.0.1:{mport}/",
        "kafka_version": KAFKA_VERSION, "ferretdb_version": FERRETDB_VERSION,
        "kafka_partitions": partitions, "processes": procs, "pids": {},
    }
    try:
        # FerretDB first: it starts in parallel with Kafka's storage format
        procs["ferretdb"] = _start_ferretdb(sd, mport)
        info["pids"]["ferretdb"] = procs["ferretdb"]["pid"]
        _write_json_atomic(sd / INFO_FILE, info)
        procs["kafka"] = _start_kafka(sd / "kafka", kport, cport, partitions, kafka_heap)
        info["pids"]["kafka"] = procs["kafka"]["pid"]
        _write_json_atomic(sd / INFO_FILE, info)
        log(f"[up] Kafka storage formatted, broker starting (pid {procs['kafka']['pid']}) "
            f"+{time.monotonic() - t0:.1f}s")

        build = _wait_ready("FerretDB", procs["ferretdb"], lambda: mongo_probe("127.0.0.1", mport),
                            FERRETDB_READY_TIMEOUT)
        info["ferretdb_mongodb_compat_version"] = build.get("version")
        if build.get("ferretdbVersion"):
            info["ferretdb_version"] = build["ferretdbVersion"]
        log(f"[up] FerretDB answers hello/buildInfo +{time.monotonic() - t0:.1f}s")
        _wait_kafka_ready("Kafka", procs["kafka"], timeout)
    except BaseException:  # includes KeyboardInterrupt: never leave half-started processes behind
        _terminate(list(procs.values()), timeout=10, log=log)
        (sd / INFO_FILE).unlink(missing_ok=True)
        raise
    log(f"[up] Kafka answers Metadata and logged 'Kafka Server started' +{time.monotonic() - t0:.1f}s")
    info["status"] = "ready"
    info["started_at"] = time.time()
    info["startup_seconds"] = round(time.monotonic() - t0, 2)
    _write_json_atomic(sd / INFO_FILE, info)
    return info


def stop(state_dir: str | os.PathLike, timeout: float = STOP_TIMEOUT, purge: bool = False,
         log: Log = _log_stderr) -> bool:
    """Stop the processes recorded in state_dir/infra.json. Returns False if nothing was recorded."""
    sd = Path(state_dir).expanduser().resolve()
    if not sd.exists():
        return False
    with _flock(sd / ".infra.lock"):
        info = _read_info(sd)
        if info is None:
            found = False
        else:
            found = True
            _terminate(list(info.get("processes", {}).values()), timeout=timeout, log=log)
            (sd / INFO_FILE).unlink(missing_ok=True)
        if purge:
            for sub in ("kafka", "ferretdb"):
                _rmtree(sd / sub)
    return found


def status(state_dir: str | os.PathLike) -> dict:
    """infra.json plus liveness/readiness of each process (key "healthy")."""
    sd = Path(state_dir).expanduser().resolve()
    info = _read_info(sd)
    if info is None:
        return {"state_dir": str(sd), "running": False, "healthy": False}
    healthy = info.get("status") == "ready"
    for name, p in info.get("processes", {}).items():
        p["alive"] = _alive(p)
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
    info["healthy"] = healthy and len(info.get("processes", {})) == 2
    return info


# ----------------------------------------------------------------------------
# CLI
# ----------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Local Kafka (KRaft) + FerretDB (SQLite) for development and tests.")
    sub = ap.add_subparsers(dest="cmd", required=True)
    p_install = sub.add_parser("install", help="download/build Kafka jars and FerretDB into the cache")
    p_install.add_argument("--force", action="store_true", help="rebuild even if cached")
    p_up = sub.add_parser("up", help="start Kafka + FerretDB in the background (installs if needed)")
    p_up.add_argument("--state-dir", required=True)
    p_up.add_argument("--kafka-port", type=int, default=None, help="default: a free port")
    p_up.add_argument("--mongo-port", type=int, default=None, help="default: a free port")
    p_up.add_argument("--partitions", type=int, default=1, help="num.partitions for auto-created topics")
    p_up.add_argument("--kafka-heap", default=KAFKA_HEAP, help="JVM -Xmx for Kafka (default %(default)s)")
    p_up.add_argument("--timeout", type=float, default=KAFKA_READY_TIMEOUT, help="seconds to wait for Kafka")
    p_up.add_argument("--reuse", action="store_true", help="reuse already running infra in this state dir")
    p_down = sub.add_parser("down", help="stop Kafka + FerretDB (SIGTERM, then SIGKILL)")
    p_down.add_argument("--state-dir", required=True)
    p_down.add_argument("--timeout", type=float, default=STOP_TIMEOUT)
    p_down.add_argument("--purge", action="store_true", help="also delete the data directories")
    p_status = sub.add_parser("status", help="show what runs in a state dir; exit 1 unless healthy")
    p_status.add_argument("--state-dir", required=True)
    p_status.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)

    t0 = time.monotonic()
    try:
        if args.cmd == "install":
            install(force=args.force)
        elif args.cmd == "up":
            info = start(args.state_dir, args.kafka_port, args.mongo_port, args.partitions, reuse=args.reuse,
                         kafka_heap=args.kafka_heap, timeout=args.timeout)
            for line in _summary(info):
                print(line)
            print(f"state: {Path(info['state_dir']) / INFO_FILE} (up took {time.monotonic() - t0:.1f}s)")
        elif args.cmd == "down":
            if stop(args.state_dir, timeout=args.timeout, purge=args.purge):
                print(f"stopped infra in {args.state_dir} ({time.monotonic() - t0:.1f}s)")
            else:
                print(f"nothing recorded in {args.state_dir}; nothing to stop")
        elif args.cmd == "status":
            info = status(args.state_dir)
            if args.json:
                print(json.dumps(info, indent=2, sort_keys=True))
            elif not info.get("processes"):
                print(f"not running (no {INFO_FILE} in {info['state_dir']})")
            else:
                for name, p in info["processes"].items():
                    addr = info["kafka_bootstrap"] if name == "kafka" else info["mongodb_uri"]
                    print(f"{name:9} pid {p['pid']:<7} alive={p['alive']!s:5} answering={p['answering']!s:5} {addr}")
                print("healthy" if info["healthy"] else "NOT healthy")
            return 0 if info["healthy"] else 1
    except InfraError as e:
        print(f"infra.py {args.cmd}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"infra.py {args.cmd}: interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
