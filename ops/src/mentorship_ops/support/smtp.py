"""A local SMTP server (aiosmtpd) that keeps every message it accepts: where the demo, the tests and
the benchmarks send the platform's emails."""

from __future__ import annotations

import email
import email.policy
import threading
import time
from email.message import EmailMessage
from types import TracebackType
from typing import Any

from .ports import free_port


class SmtpSink:
    """Accepts every message except to the addresses in `refuse` (answered 550).

    Messages are kept as received and parsed when first read, so that a benchmark's sending rate does
    not pay for parsing. Each parsed message carries `X-Sink-Received-At` (time.time() of arrival).
    """

    def __init__(self, port: int | None = None, host: str = "127.0.0.1") -> None:
        self.host, self.port = host, port or free_port()
        self.refuse: set[str] = set()
        self._received: list[tuple[bytes, float]] = []
        self._parsed: list[EmailMessage] = []
        self._lock = threading.Lock()  # aiosmtpd serves from its own event loop in a thread
        self._controller: Any = None

    # --- aiosmtpd hooks ---------------------------------------------------------------------------
    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, options: Any) -> str:
        if address in self.refuse:
            return "550 5.1.1 mailbox unavailable"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        with self._lock:
            self._received.append((envelope.original_content, time.time()))
        return "250 Message accepted"

    # --- lifecycle ----------------------------------------------------------------------------------
    def start(self) -> SmtpSink:
        from aiosmtpd.controller import Controller

        self._controller = Controller(self, hostname=self.host, port=self.port)
        self._controller.start()
        return self

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def __enter__(self) -> SmtpSink:
        return self.start()

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.stop()

    # --- what arrived -------------------------------------------------------------------------------
    @property
    def count(self) -> int:
        """Messages accepted so far (without parsing them)."""
        with self._lock:
            return len(self._received)

    @property
    def messages(self) -> list[EmailMessage]:
        """Every accepted message so far, oldest first (a copy)."""
        with self._lock:
            for raw, at in self._received[len(self._parsed) :]:
                message = email.message_from_bytes(raw, policy=email.policy.default)
                message["X-Sink-Received-At"] = repr(at)
                self._parsed.append(message)
            return list(self._parsed)

    def to(self, address: str) -> list[EmailMessage]:
        return [m for m in self.messages if address in str(m["To"])]

    def for_event(self, event_id: str) -> list[EmailMessage]:
        """Messages caused by one event (delivery ids are `<event id>:<recipient>:<channel>`)."""
        return [m for m in self.messages if str(m["X-Mentorship-Delivery"]).startswith(f"{event_id}:")]

    def by_delivery(self, delivery_id: str) -> list[EmailMessage]:
        return [m for m in self.messages if str(m.get("X-Mentorship-Delivery", "")).strip() == delivery_id]
