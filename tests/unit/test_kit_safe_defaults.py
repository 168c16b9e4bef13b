"""Safe defaults of the shipped configuration: no usable secret, nothing published beyond loopback."""

from __future__ import annotations

import re
from pathlib import Path

from mentorship_kit.settings import DEV_JWT_SECRET, ServiceSettings
from notification_service.settings import Settings as NotificationSettings

COMPOSE = "\n".join(
    line.split(" #")[0]
    for line in (Path(__file__).parents[2] / "docker-compose.yml").read_text().splitlines()
    if not line.lstrip().startswith("#")
)  # what compose reads, without comments


def test_compose_has_no_default_jwt_secret():
    secret_lines = [line.strip() for line in COMPOSE.splitlines() if line.strip().startswith("JWT_SECRET:")]
    assert secret_lines and all(re.search(r"\$\{JWT_SECRET:\?", line) for line in secret_lines)
    assert DEV_JWT_SECRET not in COMPOSE
    assert "ALLOW_DEV_JWT_SECRET" not in COMPOSE


def test_compose_publishes_ports_on_loopback_only_and_not_the_mail_ui():
    published = re.findall(r"ports:\s*\[([^\]]*)\]", COMPOSE)
    mappings = [m.strip().strip("\"'") for group in published for m in group.split(",") if m.strip()]
    assert mappings, "the services publish their ports"
    assert all(m.startswith("127.0.0.1:") for m in mappings), mappings
    assert not any(m.split(":")[-1] == "8025" for m in mappings)
    assert not re.search(r"^\s*-\s*[\"']?\d+:\d+", COMPOSE, re.MULTILINE)  # no list-style port mappings either


def test_smtp_upgrades_with_starttls_by_default_and_jwt_rules_are_strict():
    assert NotificationSettings().smtp_starttls == "auto"
    assert ServiceSettings.model_fields["jwt_secret"].metadata[0].min_length == 32
    assert ServiceSettings().jwt_leeway_seconds == 30
