"""Command line: install | up | down | status (what `python3 deploy/local/infra.py ...` runs)."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from .common import InfraError
from .lifecycle import install, start, status, stop
from .versions import INFO_FILE, KAFKA_HEAP, KAFKA_READY_TIMEOUT, STOP_TIMEOUT


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog="infra.py", description="Local Kafka (KRaft) + FerretDB (SQLite) for development and tests."
    )
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
    p_up.add_argument(
        "--sasl",
        action="store_true",
        help="also SASL_SSL (SCRAM-SHA-512 user) and mutual-TLS listeners, throwaway CA; "
        "addresses and credentials in infra.json",
    )
    p_up.add_argument(
        "--stores",
        default="",
        help="comma-separated names (e.g. profile,matching): one more FerretDB process per name, "
        "each its own store; infra.json mongodb_uris[name]",
    )
    p_down = sub.add_parser("down", help="stop Kafka + FerretDB (SIGTERM, then SIGKILL)")
    p_down.add_argument("--state-dir", required=True)
    p_down.add_argument("--timeout", type=float, default=STOP_TIMEOUT)
    p_down.add_argument("--purge", action="store_true", help="also delete the data directories")
    p_status = sub.add_parser("status", help="show what runs in a state dir; exit 1 unless healthy")
    p_status.add_argument("--state-dir", required=True)
    p_status.add_argument("--json", action="store_true")
    return ap


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    t0 = time.monotonic()
    try:
        if args.cmd == "install":
            install(force=args.force)
        elif args.cmd == "up":
            info = start(
                args.state_dir,
                args.kafka_port,
                args.mongo_port,
                args.partitions,
                reuse=args.reuse,
                kafka_heap=args.kafka_heap,
                timeout=args.timeout,
                sasl=args.sasl,
                stores=[s.strip() for s in args.stores.split(",") if s.strip()],
            )
            print(f"Kafka {info['kafka_version']} (KRaft) ready at {info['kafka_bootstrap']}")
            if info.get("kafka_sasl_bootstrap"):
                print(
                    f"Kafka SASL_SSL ({info['kafka_sasl_mechanism']}, user {info['kafka_sasl_username']}) at "
                    f"{info['kafka_sasl_bootstrap']}, CA {info['kafka_ssl_ca_file']}"
                )
                print(
                    f"Kafka SSL with client certificates (mutual TLS) at {info['kafka_mtls_bootstrap']}, "
                    f"client certificate {info['kafka_ssl_cert_file']}"
                )
            print(f"FerretDB {info['ferretdb_version']} (SQLite) ready at {info['mongodb_uri']}")
            for name, uri in info.get("mongodb_uris", {}).items():
                print(f"FerretDB store of {name} ready at {uri}")
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
                    addr = info["kafka_bootstrap"] if name == "kafka" else f"mongodb://127.0.0.1:{p['port']}/"
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
