"""`mentorship` — the operator CLI.

  mentorship status                       readiness of each service, consumer lag per group and topic
  mentorship dlt list [--topic T]         dead-lettered records with their errors
  mentorship dlt redrive TOPIC [--offset N ...]   re-publish dead letters to their original topic
  mentorship replay SERVICE [--rebuild]   rewind a (stopped) service's consumer groups to offset zero
  mentorship token SUBJECT ROLE [ROLE ...]  a local development token
  mentorship docs [--out DIR]             event catalog: AsyncAPI, JSON Schemas, a page per event, OpenAPI
  mentorship demo                         plays the mentoring journey against a running platform
  mentorship topics plan|apply            every topic with its settings; create the missing ones

Connection: KAFKA_BOOTSTRAP_SERVERS, MONGODB_URI (<SERVICE>_MONGODB_URI: a service's own store),
KAFKA_TOPIC_PREFIX, <SERVICE>_URL (or the state file that `make run` writes in .run/infra/infra.json,
with one store per service).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import httpx
from rich.console import Console
from rich.progress import Progress

from mentorship_kit.auth import ROLES, issue_token

from . import kafka_ops, topics
from .connection import SERVICES, Platform, locate
from .support import rich_table

console = Console()


def _platform(args: argparse.Namespace) -> Platform:
    return locate(getattr(args, "kafka", None), getattr(args, "mongo", None), getattr(args, "prefix", None))


async def cmd_status(args: argparse.Namespace) -> int:
    p = _platform(args)
    table = rich_table("Services", ("service", "url", "ready", "checks"))
    all_ready = True
    async with httpx.AsyncClient(timeout=3) as http:
        for name in SERVICES:
            url = p.urls[name]
            try:
                r = await http.get(f"{url}/ready")
                body = r.json()
                ready = r.status_code == 200
                checks = ", ".join(f"{k}={v}" for k, v in body.get("checks", {}).items())
            except httpx.HTTPError as exc:
                ready, checks = False, f"unreachable ({type(exc).__name__})"
            all_ready &= ready
            table.add_row(name, url, "[green]yes[/]" if ready else "[red]no[/]", checks)
    console.print(table)
    lags = await kafka_ops.group_lags(p.kafka, p.prefix)
    lag_table = rich_table(
        "Consumer groups",
        ("group", "topic", "partition", "committed", "end", "lag"),
        right=("partition", "committed", "end", "lag"),
    )
    for g in lags:
        lag_table.add_row(
            g.group, g.topic, str(g.partition), str(g.committed), str(g.end), f"[yellow]{g.lag}[/]" if g.lag else "0"
        )
    console.print(lag_table)
    dead = await kafka_ops.list_dead_letters(p.kafka, p.prefix)
    waiting = [d for d in dead if not d.redriven]
    console.print(f"dead letters waiting: {len(waiting)} (of {len(dead)} ever)")
    return 0 if all_ready else 1


async def cmd_dlt_list(args: argparse.Namespace) -> int:
    p = _platform(args)
    letters = await kafka_ops.list_dead_letters(p.kafka, p.prefix, args.topic)
    table = rich_table(
        "Dead letters", ("topic", "partition", "offset", "key", "consumer group", "attempts", "error", "redriven")
    )
    for d in letters:
        table.add_row(
            d.topic,
            str(d.partition),
            str(d.offset),
            (d.key or b"").decode(errors="replace"),
            d.headers.get("dlt-consumer-group", b"").decode(),
            d.headers.get("dlt-attempts", b"").decode(),
            d.error[:120],
            "yes" if d.redriven else "no",
        )
    console.print(table)
    return 0


async def cmd_dlt_redrive(args: argparse.Namespace) -> int:
    p = _platform(args)
    with Progress(console=console, transient=True) as progress:
        task = progress.add_task("re-driving", total=None)
        sent = await kafka_ops.redrive(
            p.kafka,
            p.prefix,
            args.topic,
            set(args.offset) if args.offset else None,
            progress=lambda done, total: progress.update(task, completed=done, total=total),
        )
    console.print(f"re-drove {sent} record(s) from {args.topic}")
    return 0


async def cmd_replay(args: argparse.Namespace) -> int:
    from pymongo import AsyncMongoClient

    p = _platform(args)
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(p.store(args.service), tz_aware=True)
    try:
        db = client[args.database or p.database(args.service)]
        consumers = [c async for c in db["ops_consumers"].find({})]
        if not consumers:
            console.print(f"[red]no consumers recorded in {db.name}; has {args.service} ever started?[/]")
            return 1
        groups = [c["group_id"] for c in consumers]
        rewound = await kafka_ops.rewind_groups(p.kafka, groups)
        for c in consumers:
            if args.rebuild:
                for coll in c.get("read_models", []):
                    await db[coll].delete_many({})
                    console.print(f"cleared read model {coll}")
            if args.rebuild or args.forget_processed:
                res = await db["processed_events"].delete_many({"_id": {"$regex": f"^{c['_id']}:"}})
                console.print(f"forgot {res.deleted_count} processed-event marks of {c['_id']}")
        for g, n in rewound.items():
            console.print(f"rewound {g} on {n} partition(s) to offset 0")
        console.print(f"start {args.service} again: it replays its input topics from the beginning")
        return 0
    except RuntimeError as exc:
        console.print(f"[red]{exc}[/]")
        return 1
    finally:
        await client.close()


def cmd_token(args: argparse.Namespace) -> int:
    from mentorship_kit.settings import ServiceSettings

    s = ServiceSettings()
    print(issue_token(s.jwt_secret, args.subject, args.roles, issuer=s.jwt_issuer, ttl=timedelta(hours=args.hours)))
    return 0


def cmd_docs(args: argparse.Namespace) -> int:
    from .catalog import build_catalog

    written = build_catalog(args.out)
    console.print(f"wrote {len(written)} files under {args.out}")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from .demo import run_demo

    return asyncio.run(run_demo(_platform(args), fast=args.fast))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mentorship", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--kafka", help="Kafka bootstrap servers")
    parser.add_argument("--mongo", help="MongoDB URI")
    parser.add_argument("--prefix", help="topic and consumer-group prefix")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("status", help="readiness and consumer lag")
    dlt = sub.add_parser("dlt", help="dead-letter topics").add_subparsers(dest="dlt_command", required=True)
    lst = dlt.add_parser("list", help="list dead-lettered records")
    lst.add_argument("--topic")
    red = dlt.add_parser("redrive", help="re-publish dead letters to their original topic")
    red.add_argument("topic", help="the dead-letter topic, e.g. profile.events.dlt")
    red.add_argument("--offset", type=int, action="append", help="only these offsets (repeatable)")
    rep = sub.add_parser("replay", help="rewind a stopped service's consumer groups to the start")
    rep.add_argument("service", choices=SERVICES)
    rep.add_argument("--database", help="the service's database [mentorship_<service>]")
    rep.add_argument("--rebuild", action="store_true", help="also clear its read models and processed marks")
    rep.add_argument(
        "--forget-processed",
        action="store_true",
        help="clear processed-event marks so handlers run again (they stay idempotent)",
    )
    tok = sub.add_parser("token", help="issue a local development token")
    tok.add_argument("subject")
    tok.add_argument("roles", nargs="+", choices=ROLES)
    tok.add_argument("--hours", type=float, default=12)
    docs = sub.add_parser("docs", help="generate the event catalog")
    docs.add_argument("--out", default="docs/catalog")
    demo = sub.add_parser("demo", help="play the mentoring journey against the running platform")
    demo.add_argument("--fast", action="store_true", help="fewer people")
    topics.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    handlers: dict[str, Callable[[argparse.Namespace], Any]] = {
        "status": cmd_status,
        "replay": cmd_replay,
        "token": cmd_token,
        "docs": cmd_docs,
        "demo": cmd_demo,
    }
    fn: Callable[[argparse.Namespace], Any]
    if hasattr(args, "func"):
        fn = args.func
    elif args.command == "dlt":
        fn = cmd_dlt_list if args.dlt_command == "list" else cmd_dlt_redrive
    else:
        fn = handlers[args.command]
    result: Any = fn(args)
    if asyncio.iscoroutine(result):
        result = asyncio.run(result)
    return int(result)


if __name__ == "__main__":
    sys.exit(main())
