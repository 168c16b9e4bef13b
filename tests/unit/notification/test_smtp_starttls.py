"""SMTP uses STARTTLS when the server offers it (SMTP_STARTTLS=auto), against a real aiosmtpd server."""

from __future__ import annotations

import shutil
import ssl
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller

from mentorship_ops.support import free_port
from notification_service.adapters.smtp import SendFailed, SmtpMailer, build_email
from notification_service.settings import Settings

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command")


class Recorder:
    def __init__(self) -> None:
        self.received: list[tuple[bool, bytes]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.received.append((session.ssl is not None, envelope.content))
        return "250 OK"


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=localhost",
            "-addext",
            "subjectAltName=DNS:localhost,IP:127.0.0.1",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


def smtp_server(certificate: tuple[Path, Path] | None) -> tuple[Controller, Recorder]:
    recorder = Recorder()
    context = None
    if certificate:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(str(certificate[0]), str(certificate[1]))
    controller = Controller(recorder, hostname="127.0.0.1", port=free_port(), tls_context=context)
    controller.start()
    return controller, recorder


def message() -> Any:
    return build_email(
        sender="Mentorship <no-reply@mentorship.local>",
        to_name="Ada",
        to_address="ada@example.org",
        subject="Hello",
        text="hi",
        html="<p>hi</p>",
        message_id="<1@mentorship.local>",
        date=datetime.now(UTC),
        delivery_id="d-1",
    )


def settings(port: int, mode: str | None, ca: Path | None) -> Settings:
    extra = {} if mode is None else {"smtp_starttls": mode}
    return Settings(
        smtp_host="127.0.0.1", smtp_port=port, smtp_ca_file=str(ca) if ca else None, smtp_timeout_seconds=5, **extra
    )


async def test_by_default_the_connection_is_upgraded_when_the_server_offers_starttls(certificate):
    controller, recorder = smtp_server(certificate)
    try:
        mailer = SmtpMailer(settings(controller.port, None, certificate[0]))
        await mailer.send(message(), "ada@example.org")
        await mailer.close()
        assert [tls for tls, _ in recorder.received] == [True]
    finally:
        controller.stop()


async def test_never_keeps_plain_text_and_auto_works_with_a_server_without_tls(certificate):
    controller, recorder = smtp_server(certificate)
    plain, plain_recorder = smtp_server(None)
    try:
        mailer = SmtpMailer(settings(controller.port, "never", None))
        await mailer.send(message(), "ada@example.org")
        await mailer.close()
        auto = SmtpMailer(settings(plain.port, "auto", None))
        await auto.send(message(), "ada@example.org")
        await auto.close()
        assert [tls for tls, _ in recorder.received] == [False]
        assert [tls for tls, _ in plain_recorder.received] == [False]
    finally:
        controller.stop()
        plain.stop()


async def test_always_refuses_a_server_without_starttls():
    plain, recorder = smtp_server(None)
    try:
        mailer = SmtpMailer(settings(plain.port, "always", None))
        with pytest.raises(SendFailed):
            await mailer.send(message(), "ada@example.org")
        assert recorder.received == []
    finally:
        plain.stop()


async def test_an_untrusted_certificate_is_not_accepted(certificate):
    controller, recorder = smtp_server(certificate)
    try:
        mailer = SmtpMailer(settings(controller.port, "auto", None))  # the test CA is not trusted
        with pytest.raises(SendFailed):
            await mailer.send(message(), "ada@example.org")
        assert recorder.received == []
    finally:
        controller.stop()
