"""Reusable string types with limits: every string an event or a request carries is bounded.

`SingleLine` refuses control characters (CR, LF, NUL, ... and the Unicode line separators):
such a value ends up in an email header, an iCalendar line or a log line, where a line break
splits it into something else. `Key` is for the keys of free-form maps, which become field
names in the store (`$` and `.` are not allowed there). The caps here are generous on purpose:
an event contract is read by every consumer, and a reader must accept what writers sent before.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import GetCoreSchemaHandler, GetJsonSchemaHandler, StringConstraints
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema, core_schema

# C0 and C1 controls, DEL, and the Unicode line/paragraph separators
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
# Same rule for JSON Schema readers (and request generators such as schemathesis)
SINGLE_LINE_PATTERN = r"^[^\x00-\x1f\x7f-\x9f\u2028\u2029]*$"
KEY_PATTERN = r"^[a-z0-9_-]{1,64}$"

ID_MAX = 128
NAME_MAX = 200
LINE_MAX = 500
TEXT_MAX = 8000
URL_MAX = 2000
IDS_MAX = 10_000  # ids in one event, e.g. the mentorships of a whole cohort


def single_line(value: str) -> str:
    """Refuse control characters and line breaks (a header, an .ics line, a log line stays one line)."""
    found = _CONTROL.search(value)
    if found:
        raise ValueError(
            f"must be a single line without control characters (found {found.group()!r} at position {found.start()})"
        )
    return value


class _SingleLineCheck:
    """Annotation metadata: `single_line` as a validator, and the same rule as a JSON Schema pattern.

    Put length constraints BEFORE it (`Annotated[str, StringConstraints(max_length=n), SINGLE_LINE]`)
    so a too-long value is refused by its length first, with the usual message.
    """

    def __get_pydantic_core_schema__(self, source: Any, handler: GetCoreSchemaHandler) -> CoreSchema:
        return core_schema.no_info_after_validator_function(single_line, handler(source))

    def __get_pydantic_json_schema__(self, schema: CoreSchema, handler: GetJsonSchemaHandler) -> JsonSchemaValue:
        out = handler(schema)
        out["pattern"] = SINGLE_LINE_PATTERN
        return out


SINGLE_LINE = _SingleLineCheck()

SingleLine = Annotated[str, SINGLE_LINE]
"""A one-line string without control characters (unbounded: prefer a sized alias below)."""

Id = Annotated[str, StringConstraints(max_length=ID_MAX), SINGLE_LINE]
"""An identifier (profile, mentorship, session, event ...)."""

Name = Annotated[str, StringConstraints(max_length=NAME_MAX), SINGLE_LINE]
"""A name, a title, a type or a channel."""

Line = Annotated[str, StringConstraints(max_length=LINE_MAX), SINGLE_LINE]
"""A one-line text such as a location or a short reason."""

Text = Annotated[str, StringConstraints(max_length=TEXT_MAX)]
"""Free text written by people (several lines allowed)."""

Key = Annotated[str, StringConstraints(pattern=KEY_PATTERN)]
"""A key of a free-form map: lowercase letters, digits, `_` and `-`, 1 to 64 characters."""
