"""`mentorship topics plan|apply`: the platform's topics, for a platform team that provisions them.

  mentorship topics plan [--partitions N] [--replication N] [--json]
      every topic (event streams, compacted state topics such as profile.state, and dead-letter
      topics) with partitions, replication, retention and cleanup policy, from the kit's topic table
      (the one services use when they create topics)
  mentorship topics apply [--partitions N] [--replication N]
      creates the missing ones; reports existing ones whose partitions, replication or configs
      differ from the plan (they are left as they are: changing them is the operator's decision)

Defaults: KAFKA_TOPIC_PARTITIONS [3], KAFKA_REPLICATION_FACTOR [1], KAFKA_TOPIC_PREFIX,
KAFKA_STATE_TOPIC_CONFIGS (overrides of the state topics' configs, as the services read it); the Kafka
client reads the same KAFKA_SECURITY_PROTOCOL / KAFKA_SASL_* / KAFKA_SSL_* variables as the services.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import dataclass
from typing import Any

from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from rich.console import Console
from rich.table import Table

from mentorship_kit.messaging import (
    TopicSpec,
    ensure_topics,
    kafka_client_options,
    parse_topic_configs,
    platform_topics,
)

from .connection import locate_kafka

console = Console(width=None if sys.stdout.isatty() else 160)  # piped: no wrapped topic names


@dataclass(frozen=True)
class Drift:
    topic: str
    setting: str
    actual: str
    planned: str


def plan(prefix: str, partitions: int, replication_factor: int) -> list[TopicSpec]:
    overrides = parse_topic_configs(os.environ.get("KAFKA_STATE_TOPIC_CONFIGS", ""))
    return platform_topics(prefix, partitions, replication_factor, overrides)


def _duration(ms: str) -> str:
    hours = int(ms) / 3_600_000
    return f"{hours / 24:g} days" if hours >= 24 else f"{hours:g} h"


def _days(ms: str) -> str:
    days = int(ms) / 86_400_000
    return f"{days:g} days" if int(ms) >= 0 else "forever"


async def describe(bootstrap: str, names: list[str], options: dict[str, Any]) -> dict[str, dict[str, str]]:
    """Partitions, replication and the table's configs of the existing topics among `names`."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, **options)
    await admin.start()
    try:
        existing = sorted(set(names) & set(await admin.list_topics()))
        if not existing:
            return {}
        out: dict[str, dict[str, str]] = {}
        for t in await admin.describe_topics(existing):
            if not t["error_code"]:
                parts = t["partitions"]
                out[t["topic"]] = {
                    "partitions": str(len(parts)),
                    "replication": str(max((len(p["replicas"]) for p in parts), default=0)),
                }
        responses = await admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, name) for name in existing])
        for response in responses:
            for error_code, _message, _type, name, entries in (r[:5] for r in response.resources):
                if not error_code and name in out:
                    out[name].update({e[0]: e[1] for e in entries})
        return out
    finally:
        await admin.close()


def drift(specs: list[TopicSpec], actual: dict[str, dict[str, str]]) -> list[Drift]:
    found: list[Drift] = []
    for spec in specs:
        have = actual.get(spec.name)
        if have is None:
            continue
        wanted = {"partitions": str(spec.partitions), "replication": str(spec.replication_factor), **spec.configs}
        for key, value in wanted.items():
            if have.get(key) != value:
                found.append(Drift(spec.name, key, have.get(key, "?"), value))
    return found


def _options(args: argparse.Namespace) -> tuple[str, int, int]:
    prefix = args.prefix if args.prefix is not None else os.environ.get("KAFKA_TOPIC_PREFIX", "")
    partitions = args.partitions or int(os.environ.get("KAFKA_TOPIC_PARTITIONS", "3"))
    replication = args.replication or int(os.environ.get("KAFKA_REPLICATION_FACTOR", "1"))
    return prefix, partitions, replication


def cmd_plan(args: argparse.Namespace) -> int:
    specs = plan(*_options(args))
    if args.json:
        print(
            json.dumps(
                [
                    {
                        "name": s.name,
                        "kind": s.kind,
                        "partitions": s.partitions,
                        "replication_factor": s.replication_factor,
                        "configs": s.configs,
                    }
                    for s in specs
                ],
                indent=2,
            )
        )
        return 0
    table = Table(title="Topics of the platform")
    for col in (
        "topic",
        "kind",
        "partitions",
        "replication",
        "retention",
        "cleanup.policy",
        "compaction (lag / tombstones kept)",
        "min.insync.replicas",
    ):
        table.add_column(col)
    for s in specs:
        table.add_row(
            s.name,
            s.kind,
            str(s.partitions),
            str(s.replication_factor),
            f"{_days(s.configs['retention.ms'])} (retention.ms={s.configs['retention.ms']})",
            s.configs["cleanup.policy"],
            (
                f"{_duration(s.configs['min.compaction.lag.ms'])} / {_duration(s.configs['delete.retention.ms'])}"
                if "min.compaction.lag.ms" in s.configs
                else "-"
            ),
            s.configs["min.insync.replicas"],
        )
    console.print(table)
    return 0


async def cmd_apply(args: argparse.Namespace) -> int:
    specs = plan(*_options(args))
    bootstrap = locate_kafka(args.kafka)
    options = kafka_client_options()
    created = await ensure_topics(bootstrap, specs, options=options)
    differences = drift(specs, await describe(bootstrap, [s.name for s in specs], options))
    for name in created:
        console.print(f"created {name}")
    kept = len(specs) - len(created)
    console.print(f"{len(created)} topic(s) created, {kept} already there")
    if differences:
        table = Table(title="Existing topics that differ from the plan (left unchanged)")
        for col in ("topic", "setting", "actual", "planned"):
            table.add_column(col)
        for d in differences:
            table.add_row(d.topic, d.setting, d.actual, d.planned)
        console.print(table)
    return 0


def register(sub: Any) -> None:
    """Adds `topics plan|apply` to the CLI's subcommands (each sets `func`)."""
    topics = sub.add_parser("topics", help="plan or create every topic (platform-owned Kafka)")
    commands = topics.add_subparsers(dest="topics_command", required=True)
    for name, fn, text in (
        ("plan", cmd_plan, "print every topic with its settings"),
        ("apply", cmd_apply, "create the missing topics, report differing ones"),
    ):
        cmd = commands.add_parser(name, help=text)
        cmd.add_argument("--partitions", type=int, help="partitions per topic [KAFKA_TOPIC_PARTITIONS or 3]")
        cmd.add_argument("--replication", type=int, help="replication factor [KAFKA_REPLICATION_FACTOR or 1]")
        if name == "plan":
            cmd.add_argument("--json", action="store_true", help="machine-readable output")
        cmd.set_defaults(func=fn)
