"""`mentorship demo`: plays the mentoring journey against the running platform (`make run`) and
shows, step by step, what happened, which events flowed and which notifications people got; it
ends with the program's health as the insights service reports it."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Any

import httpx
from rich.console import Console, Group, RenderableType
from rich.panel import Panel
from rich.progress import BarColumn, Progress, SpinnerColumn, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Table

from mentorship_kit.settings import ServiceSettings

from .connection import SERVICES, Platform
from .journey import Journey, JourneyError, StepRecord
from .support import SmtpSink, rich_table

console = Console()


class RichReporter:
    """Prints a panel per finished step; shows a progress bar while the journey waits for something."""

    def __init__(self, progress: Progress) -> None:
        self.progress = progress
        self.tasks: dict[str, TaskID] = {}

    def step_started(self, number: int, title: str) -> None:
        self.progress.console.print(f"[dim]▶ {number}. {title} …[/]")

    def waiting(self, label: str, done: float, total: float | None) -> None:
        if label not in self.tasks:
            self.tasks[label] = self.progress.add_task(label, total=total)
        self.progress.update(self.tasks[label], completed=done, total=total)

    def step_done(self, record: StepRecord) -> None:
        for task in self.tasks.values():
            self.progress.remove_task(task)
        self.tasks.clear()
        self.progress.console.print(step_panel(record))


def step_panel(record: StepRecord) -> Panel:
    facts = Table.grid(padding=(0, 2))
    facts.add_column(style="cyan")
    facts.add_column()
    for key, value in record.facts.items():
        facts.add_row(str(key), str(value))
    events = rich_table(
        "events on Kafka",
        ("event type", "count"),
        right=("count",),
        title_justify="left",
        show_edge=False,
        expand=False,
    )
    for name, count in sorted(record.events.items()):
        events.add_row(name, str(count))
    if not record.events:
        events.add_row("[dim]none[/]", "")
    parts: list[RenderableType] = [f"[italic]{record.story}[/]", facts, events]
    if record.notices:
        notices = rich_table(
            "notifications delivered", ("to", "channel", "subject", "because of"), title_justify="left", show_edge=False
        )
        for n in record.notices:
            notices.add_row(n.recipient, "📧 email" if n.channel == "email" else "🔔 in-app", n.subject, n.event)
        parts.append(notices)
    return Panel(
        Group(*parts),
        title=f"{record.number}. {record.title}",
        subtitle=f"{record.seconds:.1f} s",
        border_style="green",
    )


def summary_table(summary: dict[str, object]) -> Table:
    table = Table(title="Program summary", show_header=False, title_justify="left")
    table.add_column(style="cyan")
    table.add_column(justify="right")
    enrolled = summary["enrolled"]
    assert isinstance(enrolled, dict)
    rows = [
        ("people imported", summary["people"]),
        ("enrolled (mentees / mentors)", f"{enrolled.get('mentee', '?')} / {enrolled.get('mentor', '?')}"),
        ("mentorships (cohort + direct)", summary["mentorships"]),
        ("cohort matched / unmatched", f"{summary['matched']} / {summary['unmatched']}"),
        ("total score vs best bound", f"{summary['bound ratio']:.1%}"),
        ("mentees with a top-5 mentor", f"{summary['top-5 share']:.0%}"),
        ("10th-percentile pair score", f"{summary['p10 score']:.3f}"),
        ("sessions held (direct pair)", summary["sessions held"]),
        ("average session rating", summary["average rating"]),
        ("milestones reached", summary["milestones reached"]),
        ("emails in the SMTP sink", summary["emails"]),
        ("unread in-app notifications", summary["in-app unread"]),
        ("events seen on Kafka", summary["events"]),
        ("NotificationDelivered events", summary["notifications delivered (events)"]),
        ("platform clock moved", summary["clock moved"]),
        ("demo took", f"{summary['seconds']:.1f} s"),
    ]
    for key, value in rows:
        table.add_row(key, str(value))
    return table


# The health figures in the order a program manager reads them: label, and how to show a value.
HEALTH_FIGURES: tuple[tuple[str, str, str], ...] = (
    ("enrolled_mentees", "mentees enrolled", "n"),
    ("enrolled_mentors", "mentors enrolled", "n"),
    ("matched_mentees", "matched mentees", "n"),
    ("unmatched_mentees", "unmatched mentees", "n"),
    ("requests_pending", "requests pending", "n"),
    ("pending_oldest_hours", "oldest pending request (h)", "f1"),
    ("acceptance_rate", "acceptance rate", "%"),
    ("median_hours_to_accept", "median time to accept (h)", "f1"),
    ("active_pairs", "active pairs", "n"),
    ("completed_pairs", "completed pairs", "n"),
    ("ended_pairs", "ended pairs", "n"),
    ("sessions_held", "sessions held", "n"),
    ("sessions_per_pair_per_month", "sessions per pair per month", "f2"),
    ("planned_sessions_per_pair_per_month", "planned by the cadences", "f2"),
    ("cadence_attainment", "cadence attainment", "%"),
    ("pairs_overdue", "pairs overdue", "n"),
    ("pairs_inactive", "pairs inactive", "n"),
    ("average_session_rating", "average session rating", "f2"),
    ("milestones_reached", "milestones reached", "n"),
    ("notification_failures", "notification failures", "n"),
)


def _figure(value: Any, kind: str, missing: str = "–") -> str:
    if value is None:
        return missing
    if kind == "%":
        return f"{value:.0%}"
    if kind.startswith("f"):
        return f"{value:.{kind[1:]}f}"
    return str(value)


def health_panel(health: dict[str, Any], attention: dict[str, Any], name_of: Callable[[str], str]) -> Panel:
    """The program's health (each figure now and over the last weeks) and the pairs needing attention."""
    weeks = health.get("weeks", [])
    figures = rich_table(
        "", ("figure", "now", f"weekly, {weeks[0][5:] if weeks else ''} → this week"), right=("now",), show_edge=False
    )
    for key, label, kind in HEALTH_FIGURES:
        figure = health["figures"].get(key)
        if figure is None:
            continue
        series = " ".join(_figure(v, kind, missing="·") for v in figure["weekly"])
        figures.add_row(label, _figure(figure["value"], kind), f"[dim]{series}[/]")
    pairs = attention.get("pairs", [])
    parts: list[RenderableType] = [figures]
    if pairs:
        table = rich_table(
            f"pairs that need attention ({len(pairs)})",
            ("mentee", "mentor", "state", "why"),
            title_justify="left",
            show_edge=False,
        )
        for pair in pairs:
            why = "; ".join(r.get("detail") or r["code"] for r in pair["reasons"])
            table.add_row(name_of(pair["mentee_id"]), name_of(pair["mentor_id"]), pair["state"], why)
        parts.append(table)
    else:
        parts.append("[green]no pair needs attention[/]")
    return Panel(
        Group(*parts),
        title=f"Program health: {health.get('name') or health['program_id']}",
        subtitle=f"insights, as of {health['as_of'][:16]} (platform time)",
        border_style="magenta",
    )


async def _not_ready(platform: Platform) -> list[str]:
    missing = []
    async with httpx.AsyncClient(timeout=3) as http:
        for name in SERVICES:
            try:
                ok = (await http.get(f"{platform.urls[name]}/ready")).status_code == 200
            except httpx.HTTPError:
                ok = False
            if not ok:
                missing.append(f"{name} ({platform.urls[name]})")
    return missing


async def run_demo(platform: Platform, fast: bool = False) -> int:
    missing = await _not_ready(platform)
    if missing:
        console.print(
            f"[red]not ready: {', '.join(missing)}[/]\nstart the platform with `make run` in another "
            "terminal and wait for 'All services ready'."
        )
        return 1
    port = int(os.environ.get("SMTP_PORT", "2525"))
    try:
        sink = SmtpSink(port).start()
    except (OSError, RuntimeError) as exc:
        console.print(
            f"[red]cannot start the SMTP sink on 127.0.0.1:{port} ({exc}); is another demo running? "
            "Set SMTP_PORT to the port the notification service sends to.[/]"
        )
        return 1
    mentees, mentors = (8, 4) if fast else (24, 10)
    started = time.monotonic()
    with Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed:.0f}/{task.total:.0f}"),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    ) as progress:
        journey = Journey(
            urls=platform.urls,
            kafka=platform.kafka,
            prefix=platform.prefix,
            jwt_secret=platform.jwt_secret,
            jwt_issuer=ServiceSettings().jwt_issuer,
            sink=sink,
            mentees=mentees,
            mentors=mentors,
            reporter=RichReporter(progress),
        )
        console.print(
            Panel(
                f"run [bold]{journey.run_id}[/]: {mentees + 1} mentees, {mentors} mentors and a program manager; "
                f"emails go to the SMTP sink on 127.0.0.1:{port}; events are read from "
                f"'{platform.prefix}*.events' on {platform.kafka}",
                title="Mentoring journey",
            )
        )
        try:
            await journey.run()
            summary = await journey.summary()
        except JourneyError as exc:
            console.print(f"[red]the journey stopped: {exc}[/]")
            return 1
        finally:
            await journey.close()
            sink.stop()
    summary["seconds"] = time.monotonic() - started
    console.print(summary_table(summary))
    console.print(health_panel(journey.ids["health"], journey.ids["attention"], journey.name_of))
    return 0
