"""Bulk import from the command line (HR onboarding).

    python -m profile_service.bulk_import FILE --url http://127.0.0.1:8001 --token "$ADMIN_TOKEN"

Streams FILE (.csv, or .jsonl/.ndjson for JSON Lines) to POST /profiles/import, prints progress
to stderr and the rejected and held rows to stdout (or --report FILE) as JSON Lines. Exit status:
0 all rows accepted, 2 some rows rejected or held, 1 the import failed. The token may also come from
PROFILE_IMPORT_TOKEN (e.g. `python -m mentorship_kit.devtoken hr-bot admin`).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

import httpx

CONTENT_TYPES = {"csv": "text/csv", "jsonl": "application/x-ndjson"}


def detect_format(path: Path, given: str | None) -> str:
    if given:
        return given
    return "jsonl" if path.suffix.lower() in (".jsonl", ".ndjson") else "csv"


def run(
    path: Path, *, url: str, token: str, fmt: str, report_to: Any, progress_to: Any = sys.stderr, timeout: float = 600.0
) -> int:
    headers = {"authorization": f"Bearer {token}", "content-type": CONTENT_TYPES[fmt]}
    summary: dict[str, Any] | None = None
    with (
        path.open("rb") as body,
        httpx.Client(timeout=timeout) as http,
        http.stream("POST", f"{url.rstrip('/')}/profiles/import", content=body, headers=headers) as resp,
    ):
        if resp.status_code != 200:
            resp.read()
            print(f"import refused ({resp.status_code}): {resp.text}", file=progress_to)
            return 1
        for line in resp.iter_lines():
            if not line.strip():
                continue
            message = json.loads(line)
            kind = message.get("type")
            if kind == "progress":
                print(
                    f"rows {message['rows']}: created {message['created']}, updated {message['updated']}, "
                    f"unchanged {message['unchanged']}, rejected {message['rejected']}",
                    file=progress_to,
                    flush=True,
                )
            elif kind in ("rejected", "held"):
                print(json.dumps({k: v for k, v in message.items() if k != "type"}), file=report_to, flush=True)
            elif kind == "error":
                print(f"import failed: {message.get('detail')}", file=progress_to)
                return 1
            elif kind == "summary":
                summary = message
    if summary is None:
        print("import ended without a summary (connection lost?)", file=progress_to)
        return 1
    print(
        f"done: {summary['rows']} rows, created {summary['created']}, updated {summary['updated']}, "
        f"unchanged {summary['unchanged']}, rejected {summary['rejected']}, held {summary.get('held', 0)}",
        file=progress_to,
    )
    return 2 if summary["rejected"] or summary.get("held") else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m profile_service.bulk_import",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("file", type=Path)
    parser.add_argument(
        "--url",
        default=os.environ.get("PROFILE_URL", "http://127.0.0.1:8001"),
        help="profile service base URL (default $PROFILE_URL or http://127.0.0.1:8001)",
    )
    parser.add_argument(
        "--token",
        default=os.environ.get("PROFILE_IMPORT_TOKEN"),
        help="admin bearer token (default $PROFILE_IMPORT_TOKEN)",
    )
    parser.add_argument("--format", choices=sorted(CONTENT_TYPES), help="default: from the file extension")
    parser.add_argument("--report", type=Path, help="write rejected rows here instead of stdout")
    args = parser.parse_args(argv)
    if not args.token:
        parser.error("an admin token is required (--token or PROFILE_IMPORT_TOKEN)")
    fmt = detect_format(args.file, args.format)
    try:
        if args.report:
            with args.report.open("w") as report:
                return run(args.file, url=args.url, token=args.token, fmt=fmt, report_to=report)
        return run(args.file, url=args.url, token=args.token, fmt=fmt, report_to=sys.stdout)
    except (OSError, httpx.HTTPError) as exc:
        print(f"import failed: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
