"""Email over SMTP (aiosmtplib): a small pool of reused connections, errors classified.

A 5xx answer (recipient refused, message rejected) is permanent; 4xx answers, timeouts and
dropped connections are transient and retried later by a durable timer, never by sleeping here.
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import datetime
from email.message import EmailMessage
from email.utils import format_datetime, formataddr, parseaddr
from typing import Any

import aiosmtplib
from opentelemetry.trace import SpanKind

from mentorship_kit.tracing import record_failure, tracer

from ..settings import Settings


class SendFailed(Exception):
    def __init__(self, reason: str, *, permanent: bool) -> None:
        super().__init__(reason)
        self.reason = reason
        self.permanent = permanent


def build_email(
    *,
    sender: str,
    to_name: str,
    to_address: str,
    subject: str,
    text: str,
    html: str,
    message_id: str,
    date: datetime,
    delivery_id: str,
    ics: str | None = None,
    ics_method: str | None = None,
) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = formataddr((to_name, to_address))
    msg["Subject"] = subject
    msg["Message-ID"] = message_id  # stable per delivery: receivers drop a crash-recovery re-send
    msg["Date"] = format_datetime(date)
    msg["X-Mentorship-Delivery"] = delivery_id
    msg.set_content(text)
    msg.add_alternative(html, subtype="html")
    if ics:
        msg.add_attachment(
            ics.encode(),
            maintype="text",
            subtype="calendar",
            filename="invite.ics",
            params={"method": ics_method or "REQUEST", "charset": "utf-8"},
        )
    return msg


def starttls_mode(settings: Settings) -> bool | None:
    """aiosmtplib's `start_tls`: None upgrades when the server offers STARTTLS (auto), True requires it."""
    if settings.smtp_implicit_tls:
        return False  # already TLS from the first byte
    return {"auto": None, "always": True, "never": False}[settings.smtp_starttls]


class SmtpMailer:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.sender_address = parseaddr(settings.smtp_from)[1]
        self._idle: list[aiosmtplib.SMTP] = []
        self._slots = asyncio.Semaphore(settings.smtp_pool_size)

    async def _connect(self) -> aiosmtplib.SMTP:
        s = self.settings
        client = aiosmtplib.SMTP(
            hostname=s.smtp_host,
            port=s.smtp_port,
            timeout=s.smtp_timeout_seconds,
            use_tls=s.smtp_implicit_tls,
            start_tls=starttls_mode(s),
            cert_bundle=s.smtp_ca_file,
        )
        await client.connect()
        if s.smtp_username:
            password = s.smtp_password.get_secret_value() if s.smtp_password else ""
            await client.login(s.smtp_username, password)
        return client

    async def send(self, message: EmailMessage, recipient: str) -> None:
        with tracer().start_as_current_span(
            "smtp send",
            kind=SpanKind.CLIENT,
            attributes={
                "server.address": self.settings.smtp_host,
                "server.port": self.settings.smtp_port,
                "mentorship.delivery_id": str(message.get("X-Mentorship-Delivery", "")),
            },
        ) as span:
            try:
                await self._send(message, recipient)
            except SendFailed as exc:
                record_failure(span, exc)
                span.set_attribute("mentorship.permanent", exc.permanent)
                raise

    async def _send(self, message: EmailMessage, recipient: str) -> None:
        async with self._slots:
            reused = bool(self._idle)
            client = self._idle.pop() if reused else None
            try:
                if client is None:
                    client = await self._connect()
                try:
                    await client.send_message(message, sender=self.sender_address, recipients=[recipient])
                except aiosmtplib.SMTPServerDisconnected:
                    if not reused:
                        raise
                    # A pooled connection the server had closed while idle: one fresh try.
                    client = await self._connect()
                    await client.send_message(message, sender=self.sender_address, recipients=[recipient])
            except aiosmtplib.SMTPRecipientsRefused as exc:
                self._idle.append(client)  # type: ignore[arg-type]
                code = exc.recipients[0].code if exc.recipients else 550
                raise SendFailed(f"SMTP refused the recipient ({code})", permanent=code >= 500) from exc
            except aiosmtplib.SMTPResponseException as exc:
                await self._discard(client)
                raise SendFailed(f"SMTP answered {exc.code}: {exc.message[:200]}", permanent=exc.code >= 500) from exc
            except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
                await self._discard(client)
                raise SendFailed(f"SMTP unavailable: {type(exc).__name__}: {str(exc)[:200]}", permanent=False) from exc
            else:
                self._idle.append(client)

    async def _discard(self, client: Any) -> None:
        if client is not None:
            with contextlib.suppress(Exception):  # a broken pooled connection: dropping it is the point
                client.close()

    async def close(self) -> None:
        while self._idle:
            client = self._idle.pop()
            try:
                await asyncio.wait_for(client.quit(), 2)
            except Exception:
                client.close()
