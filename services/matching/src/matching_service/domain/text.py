"""Limits on text people send (pure): single-line fields refuse every control character, free
text keeps line breaks and tabs but refuses the other control characters."""

from __future__ import annotations

import re

_ANY_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_CONTROL_BUT_LINE_BREAKS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def single_line(value: str) -> str:
    if _ANY_CONTROL.search(value):
        raise ValueError("control characters (line breaks included) are not allowed here")
    return value


def free_text(value: str) -> str:
    if _CONTROL_BUT_LINE_BREAKS.search(value):
        raise ValueError("control characters other than line breaks and tabs are not allowed")
    return value
