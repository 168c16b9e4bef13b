"""Message templates (Jinja2): per rule a subject, plain text and HTML for email, and in-app text.

Context: `me` (recipient's display name), `names` (profile id -> display name of everyone the
event mentions; unknown people show as "a member"), `e` (the event payload), `audience` (what
the recipient is to the event: mentee, mentor, contact, introducer, admins), `app_url` (the web
app). Messages never quote what people wrote (request messages, reasons, agendas, goals, notes,
introductions): the events do not carry it (version 2); a message says that there is text and
links to the app, where the owning service shows it to those allowed. The `local` filter
shows a UTC time in the recipient's own time zone. Undefined names fail the render, and the
delivery is recorded as failed instead of sending a half-filled message.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from jinja2 import DictLoader, Environment, StrictUndefined, Template, TemplateError, pass_context
from jinja2.runtime import Context

from .domain import person_ref

PARTS = ("subject", "text", "html", "in_app")

_HTML_FRAME = (
    '<html><body style="font-family:sans-serif"><p>Hello {{ me }},</p>{body}'
    '<p style="color:#666">You receive this because of your notification settings.</p></body></html>'
)


def _t(subject: str, text: str, html_body: str, in_app: str) -> dict[str, str]:
    return {
        "subject": subject,
        "text": "Hello {{ me }},\n\n" + text + "\n\n-- The mentorship platform\n",
        "html": _HTML_FRAME.replace("{body}", html_body),
        "in_app": in_app,
    }


TEMPLATES: dict[str, dict[str, str]] = {
    "request_received": _t(
        "{{ names[e.mentee_id] }} asked you to be their mentor",
        "{{ names[e.mentee_id] }} sent you a mentorship request.{% if e.has_message %} They wrote you a message."
        "{% endif %}\n\nRead and answer it by {{ e.expires_at | local }}:\n"
        "{{ app_url }}/mentorships/{{ e.mentorship_id }}",
        "<p><b>{{ names[e.mentee_id] }}</b> sent you a mentorship request.{% if e.has_message %} They wrote you a "
        'message.{% endif %}</p><p><a href="{{ app_url }}/mentorships/{{ e.mentorship_id }}">Read and answer it</a> '
        "by {{ e.expires_at | local }}.</p>",
        "{{ names[e.mentee_id] }} asked you to be their mentor (answer by {{ e.expires_at | local }})",
    ),
    "request_accepted": _t(
        "{{ names[e.mentor_id] }} accepted your mentorship request",
        "Good news: {{ names[e.mentor_id] }} accepted your request."
        "{% if e.awaiting_admin_approval %} A program admin still has to approve it.{% endif %}",
        "<p>Good news: <b>{{ names[e.mentor_id] }}</b> accepted your request."
        "{% if e.awaiting_admin_approval %} A program admin still has to approve it.{% endif %}</p>",
        "{{ names[e.mentor_id] }} accepted your mentorship request",
    ),
    "request_declined": _t(
        "Your mentorship request to {{ names[e.mentor_id] }} was declined",
        "{{ names[e.mentor_id] }} cannot mentor you right now."
        "{% if e.automatic %} (Their mentoring capacity is full.){% endif %}"
        "{% if e.reason_code == 'participant_left' %} (They left the platform.){% endif %}"
        "{% if e.has_reason %}\n\nThey gave a reason: {{ app_url }}/mentorships/{{ e.mentorship_id }}{% endif %}"
        "\n\nHave a look at your other suggestions.",
        "<p><b>{{ names[e.mentor_id] }}</b> cannot mentor you right now."
        "{% if e.automatic %} (Their mentoring capacity is full.){% endif %}</p>"
        '{% if e.has_reason %}<p><a href="{{ app_url }}/mentorships/{{ e.mentorship_id }}">They gave a reason</a>'
        "</p>{% endif %}<p>Have a look at your other suggestions.</p>",
        "Your request to {{ names[e.mentor_id] }} was declined",
    ),
    "request_expired": _t(
        "A mentorship request expired",
        "{% if audience == 'mentee' %}Your request to {{ names[e.mentor_id] }} expired without an answer. "
        "You can ask another mentor.{% else %}The request from {{ names[e.mentee_id] }} expired "
        "without an answer.{% endif %}",
        "<p>{% if audience == 'mentee' %}Your request to <b>{{ names[e.mentor_id] }}</b> expired without an "
        "answer. You can ask another mentor.{% else %}The request from <b>{{ names[e.mentee_id] }}</b> "
        "expired without an answer.{% endif %}</p>",
        "{% if audience == 'mentee' %}Your request to {{ names[e.mentor_id] }}{% else %}The request from "
        "{{ names[e.mentee_id] }}{% endif %} expired",
    ),
    "mentorship_started": _t(
        "Your mentorship with {{ names[e.mentor_id] if audience == 'mentee' else names[e.mentee_id] }} has started",
        "Your mentorship with {{ names[e.mentor_id] if audience == 'mentee' else names[e.mentee_id] }} "
        "started on {{ e.started_at | local }}. Cadence: {{ e.agreement.cadence }}."
        "{% if e.agreement.goal_count %}\nYou agreed on {{ e.agreement.goal_count }} "
        "goal{{ 's' if e.agreement.goal_count != 1 }}: {{ app_url }}/mentorships/{{ e.mentorship_id }}{% endif %}",
        "<p>Your mentorship with <b>{{ names[e.mentor_id] if audience == 'mentee' else names[e.mentee_id] }}"
        "</b> started on {{ e.started_at | local }}. Cadence: {{ e.agreement.cadence }}.</p>"
        '{% if e.agreement.goal_count %}<p>You agreed on <a href="{{ app_url }}/mentorships/{{ e.mentorship_id }}">'
        "{{ e.agreement.goal_count }} goal{{ 's' if e.agreement.goal_count != 1 }}</a>.</p>{% endif %}",
        "Your mentorship with {{ names[e.mentor_id] if audience == 'mentee' else names[e.mentee_id] }} has started",
    ),
    "agreement_revised": _t(
        "{{ names[e.accepted_by] }} accepted your revised agreement",
        "{{ names[e.accepted_by] }} accepted the revised agreement you proposed. From now on: cadence "
        "{{ e.agreement.cadence }}{% if e.agreement.planned_end %}, planned end {{ e.agreement.planned_end }}"
        "{% endif %}.",
        "<p><b>{{ names[e.accepted_by] }}</b> accepted the revised agreement you proposed. From now on: cadence "
        "{{ e.agreement.cadence }}{% if e.agreement.planned_end %}, planned end {{ e.agreement.planned_end }}"
        "{% endif %}.</p>",
        "{{ names[e.accepted_by] }} accepted your revised agreement (cadence {{ e.agreement.cadence }})",
    ),
    "mentorship_completed": _t(
        "Your mentorship is complete",
        "Your mentorship with {{ names[e.mentor_id] if audience == 'mentee' else names[e.mentee_id] }} "
        "was completed on {{ e.completed_at | local }}. Congratulations!"
        "{% if audience == 'mentee' %} Maybe it is time to pay it forward and mentor someone.{% endif %}",
        "<p>Your mentorship with <b>{{ names[e.mentor_id] if audience == 'mentee' else names[e.mentee_id] }}"
        "</b> was completed on {{ e.completed_at | local }}. Congratulations!</p>",
        "Mentorship complete: congratulations!",
    ),
    "session_scheduled": _t(
        "Session with {{ names[e.mentor_id] if audience == 'mentee' else names[e.mentee_id] }} on "
        "{{ e.start | local }}",
        "A session is booked for {{ e.start | local }} ({{ e.duration_minutes }} minutes)."
        "{% if e.location %}\nWhere: {{ e.location }}{% endif %}{% if e.has_agenda %}\nIt has an agenda: "
        "{{ app_url }}/sessions/{{ e.session_id }}{% endif %}\n\nThe calendar invite is attached.",
        "<p>A session is booked for <b>{{ e.start | local }}</b> ({{ e.duration_minutes }} minutes).</p>"
        "{% if e.location %}<p>Where: {{ e.location }}</p>{% endif %}"
        '{% if e.has_agenda %}<p>It has an <a href="{{ app_url }}/sessions/{{ e.session_id }}">agenda</a>.</p>'
        "{% endif %}<p>The calendar invite is attached.</p>",
        "Session on {{ e.start | local }}",
    ),
    "session_rescheduled": _t(
        "Session moved to {{ e.start | local }}",
        "Your session planned for {{ e.previous_start | local }} moved to {{ e.start | local }} "
        "({{ e.duration_minutes }} minutes).\n\nThe updated calendar invite is attached.",
        "<p>Your session planned for {{ e.previous_start | local }} moved to <b>{{ e.start | local }}</b> "
        "({{ e.duration_minutes }} minutes).</p><p>The updated calendar invite is attached.</p>",
        "Session moved to {{ e.start | local }}",
    ),
    "session_cancelled": _t(
        "Session on {{ e.start | local }} cancelled",
        "The session planned for {{ e.start | local }} is cancelled."
        "{% if e.reason_code == 'participant_left' %}\nReason: the other participant left the platform."
        "{% elif e.reason_code == 'mentorship_ended' %}\nReason: the mentorship ended."
        "{% elif e.has_reason %}\nA reason was given: {{ app_url }}/sessions/{{ e.session_id }}{% endif %}",
        "<p>The session planned for <b>{{ e.start | local }}</b> is cancelled.</p>"
        "{% if e.reason_code == 'participant_left' %}<p>Reason: the other participant left the platform.</p>"
        "{% elif e.reason_code == 'mentorship_ended' %}<p>Reason: the mentorship ended.</p>"
        '{% elif e.has_reason %}<p><a href="{{ app_url }}/sessions/{{ e.session_id }}">A reason was given</a>.</p>'
        "{% endif %}",
        "Session on {{ e.start | local }} cancelled",
    ),
    "session_reminder": _t(
        "Reminder: session at {{ e.start | local }}",
        "Your session with {{ names[e.mentor_id] if audience == 'mentee' else names[e.mentee_id] }} starts "
        "at {{ e.start | local }}.{% if e.location %}\nWhere: {{ e.location }}{% endif %}",
        "<p>Your session with <b>{{ names[e.mentor_id] if audience == 'mentee' else names[e.mentee_id] }}"
        "</b> starts at <b>{{ e.start | local }}</b>.</p>{% if e.location %}<p>Where: {{ e.location }}</p>"
        "{% endif %}",
        "Session starts at {{ e.start | local }}",
    ),
    "check_in_overdue": _t(
        "Time to check in",
        "{% if e.last_session_at %}Your last session was on {{ e.last_session_at | local }}.{% else %}"
        "You have not met yet.{% endif %} Your {{ e.cadence }} check-in is due: book a session with "
        "{{ names[e.mentor_id] if audience == 'mentee' else names[e.mentee_id] }}.",
        "<p>{% if e.last_session_at %}Your last session was on {{ e.last_session_at | local }}.{% else %}"
        "You have not met yet.{% endif %} Your {{ e.cadence }} check-in is due.</p>",
        "Your {{ e.cadence }} check-in is due",
    ),
    "mentorship_inactive": _t(
        "Is your mentorship still going?",
        "We have not seen a session {% if e.last_session_at %}since {{ e.last_session_at | local }}"
        "{% else %}yet{% endif %}. Book one, or tell us if the mentorship should end.",
        "<p>We have not seen a session {% if e.last_session_at %}since {{ e.last_session_at | local }}"
        "{% else %}yet{% endif %}. Book one, or tell us if the mentorship should end.</p>",
        "No session for a while: book one?",
    ),
    "milestone_reached": _t(
        "A milestone was reached",
        "Congratulations! A milestone of your mentorship was reached on {{ e.reached_at | local }}: "
        "{{ app_url }}/mentorships/{{ e.mentorship_id }}/progress",
        '<p>&#127881; Congratulations! A <a href="{{ app_url }}/mentorships/{{ e.mentorship_id }}/progress">'
        "milestone of your mentorship</a> was reached on {{ e.reached_at | local }}.</p>",
        "A milestone was reached",
    ),
    "introduction_made": _t(
        "{{ names[e.introduced_by] }} introduced you to "
        "{{ names[e.contact_id] if audience == 'mentee' else names[e.mentee_id] }}",
        "{{ names[e.introduced_by] }} thinks you and "
        "{{ names[e.contact_id] if audience == 'mentee' else names[e.mentee_id] }} should meet."
        "{% if e.has_message %} They wrote a note about it.{% endif %}\n\n{{ app_url }}/introductions/"
        "{{ e.introduction_id }}",
        "<p><b>{{ names[e.introduced_by] }}</b> thinks you and "
        "<b>{{ names[e.contact_id] if audience == 'mentee' else names[e.mentee_id] }}</b> should meet.</p>"
        '<p><a href="{{ app_url }}/introductions/{{ e.introduction_id }}">See the introduction'
        "{% if e.has_message %} and their note{% endif %}</a>.</p>",
        "New introduction: {{ names[e.contact_id] if audience == 'mentee' else names[e.mentee_id] }}",
    ),
    "cohort_match_published": _t(
        "Cohort matches published: {{ e.program_name }}",
        "The matches of {{ e.program_name }} are published: {{ e.quality.matched }} matched, "
        "{{ e.quality.unmatched }} unmatched, {{ e.mentorship_ids | length }} mentorships started.",
        "<p>The matches of <b>{{ e.program_name }}</b> are published: {{ e.quality.matched }} matched, "
        "{{ e.quality.unmatched }} unmatched, {{ e.mentorship_ids | length }} mentorships started.</p>",
        "{{ e.program_name }}: {{ e.quality.matched }} matches published",
    ),
}


class RenderError(Exception):
    """A template could not be rendered (the delivery fails, nothing half-filled is sent)."""


@dataclass(frozen=True)
class Rendered:
    subject: str
    text: str
    html: str
    in_app: str


class Names(dict[str, str]):
    """Unknown people show as "a member" instead of failing the message (erased ones are passed
    in as "a former member")."""

    def __missing__(self, key: str) -> str:
        return "a member"


class PersonRefs(dict[str, str]):
    """Every person as a reference (`domain.person_ref`), resolved to a name when read."""

    def __missing__(self, key: str) -> str:
        return person_ref(key)


@pass_context
def _local(context: Context, value: datetime, fmt: str = "%a %d %b %Y %H:%M %Z") -> str:
    """A UTC time shown in the recipient's zone (the zone travels in the render context)."""
    return value.astimezone(context["zone"]).strftime(fmt)


def _environment(autoescape: bool) -> Environment:
    # autoescape is on for HTML and off for plain-text bodies and subjects, where escaping would corrupt text
    env = Environment(
        loader=DictLoader({}),
        undefined=StrictUndefined,
        autoescape=autoescape,  # noqa: S701
        keep_trailing_newline=True,
    )
    env.filters["local"] = _local
    return env


DEFAULT_APP_URL = "http://localhost:8080"


class Renderer:
    def __init__(self, templates: dict[str, dict[str, str]] | None = None, *, app_url: str = DEFAULT_APP_URL) -> None:
        self.templates = templates if templates is not None else TEMPLATES
        self._text = _environment(False)
        self._html = _environment(True)
        for env in (self._text, self._html):
            env.globals["app_url"] = app_url.rstrip("/")
        self._cache: dict[tuple[str, str], Template] = {}

    def _compiled(self, template: str, part: str) -> Template:
        key = (template, part)
        if key not in self._cache:
            env = self._html if part == "html" else self._text
            self._cache[key] = env.from_string(self.templates[template][part])
        return self._cache[key]

    def render(
        self, template: str, *, me: str, time_zone: str, audience: str, event: Any, names: dict[str, str]
    ) -> Rendered:
        if template not in self.templates:
            raise RenderError(f"no template {template!r}")
        context = {"me": me, "e": event, "audience": audience, "names": Names(names), "zone": ZoneInfo(time_zone)}
        out: dict[str, str] = {}
        part = PARTS[0]
        try:
            for part in PARTS:
                out[part] = self._compiled(template, part).render(context)
        except (TemplateError, KeyError, AttributeError, TypeError, ValueError) as exc:
            raise RenderError(f"template {template}.{part} failed: {type(exc).__name__}: {exc}") from exc
        return Rendered(
            subject=" ".join(out["subject"].split()),
            text=out["text"],
            html=out["html"],
            in_app=" ".join(out["in_app"].split()),
        )

    def render_in_app(
        self, template: str, *, recipient_id: str, time_zone: str, audience: str, event: Any
    ) -> tuple[str, str]:
        """(title, text) of an in-app item with people as references, not names: the inbox shows
        each person's current name when it is read (an erased one as "a former member")."""
        if template not in self.templates:
            raise RenderError(f"no template {template!r}")
        context = {
            "me": person_ref(recipient_id),
            "e": event,
            "audience": audience,
            "names": PersonRefs(),
            "zone": ZoneInfo(time_zone),
        }
        try:
            title, text = (self._compiled(template, part).render(context) for part in ("subject", "in_app"))
        except (TemplateError, KeyError, AttributeError, TypeError, ValueError) as exc:
            raise RenderError(f"template {template} (in-app) failed: {type(exc).__name__}: {exc}") from exc
        return " ".join(title.split()), " ".join(text.split())
