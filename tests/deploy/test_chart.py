"""The Helm chart, alert rules and dashboard, validated here without a cluster.

helm, kubeconform and promtool are built from the Go module proxy on first use and cached by
version (deploy/tools/install.py); nothing here is skipped.
"""

from __future__ import annotations

import importlib.util
import json
import re
import subprocess
import sys
import time
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "deploy" / "helm" / "mentorship"
ALL_OPTIONS = CHART / "ci" / "all-options.yaml"
RULES = CHART / "files" / "alerts.rules.yaml"
RULE_TESTS = ROOT / "deploy" / "observability" / "alerts.test.yaml"
DASHBOARD = CHART / "files" / "dashboard.json"
KUBERNETES_VERSION = "1.35.0"
SERVICES = ("profile", "matching", "scheduling", "notification")
# Custom resources have no schema in the Kubernetes set: kubeconform skips them, and the
# tests below check what matters in them.
CUSTOM_KINDS = ("ScaledObject", "TriggerAuthentication", "ServiceMonitor", "PrometheusRule", "KafkaTopic")

# The first test builds helm, kubeconform and promtool (minutes, once per machine): past the suite's
# 300 s per-test default, which counts fixture set-up.
pytestmark = pytest.mark.timeout(3600)

VARIANTS: dict[str, list[str]] = {
    "defaults": [],
    "all-options": ["-f", str(ALL_OPTIONS)],
    "all-options-strimzi": ["-f", str(ALL_OPTIONS), "--set", "topics.provisioner=strimzi"],
}


def _installer() -> ModuleType:
    spec = importlib.util.spec_from_file_location("mentorship_deploy_tools", ROOT / "deploy" / "tools" / "install.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses resolve their module by name
    spec.loader.exec_module(module)
    return module


INSTALLER = _installer()


@pytest.fixture(scope="session")
def tools() -> dict[str, Path]:
    started = time.monotonic()
    paths: dict[str, Path] = INSTALLER.install()
    print(f"\n[tools] ready in {time.monotonic() - started:.1f}s: {', '.join(str(p) for p in paths.values())}")
    return paths


def run(cmd: list[str | Path], *, stdin: str | None = None, cwd: Path = ROOT) -> str:
    proc = subprocess.run(
        [str(c) for c in cmd], input=stdin, capture_output=True, text=True, cwd=cwd, timeout=300, check=False
    )
    assert proc.returncode == 0, f"{' '.join(map(str, cmd))} exited {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout + proc.stderr


def render(tools: dict[str, Path], variant: str) -> str:
    return run(
        [
            tools["helm"],
            "template",
            "rel",
            CHART,
            "--namespace",
            "mentorship",
            "--kube-version",
            KUBERNETES_VERSION,
            *VARIANTS[variant],
        ]
    )


def documents(manifest: str) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(manifest) if doc]


def of_kind(docs: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [d for d in docs if d["kind"] == kind]


# --- tools -----------------------------------------------------------------------------------------


def test_cached_tools_are_found_fast(tools: dict[str, Path]) -> None:
    started = time.monotonic()
    again = INSTALLER.install()
    assert again == tools
    assert time.monotonic() - started < 2.0
    assert "v3." in run([tools["helm"], "version", "--short"])


# --- chart -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("variant", ["defaults", "all-options"])
def test_helm_lint_strict(tools: dict[str, Path], variant: str) -> None:
    out = run([tools["helm"], "lint", "--strict", CHART, *VARIANTS[variant]])
    assert "0 chart(s) failed" in out


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_rendered_manifests_pass_kubeconform_strict(tools: dict[str, Path], variant: str) -> None:
    manifest = render(tools, variant)
    out = run(
        [
            tools["kubeconform"],
            "-strict",
            "-summary",
            "-output",
            "json",
            "-kubernetes-version",
            KUBERNETES_VERSION,
            "-schema-location",
            INSTALLER.schema_location(),
            "-skip",
            ",".join(CUSTOM_KINDS),
            "-",
        ],
        stdin=manifest,
    )
    report = json.loads(out)
    summary = report["summary"]
    assert summary["invalid"] == 0 and summary["errors"] == 0, json.dumps(report, indent=2)
    kinds = {d["kind"] for d in documents(manifest)}
    assert summary["valid"] + summary["skipped"] == len(documents(manifest))
    assert summary["skipped"] == sum(1 for d in documents(manifest) if d["kind"] in CUSTOM_KINDS)
    assert {"Deployment", "Service", "PodDisruptionBudget", "ConfigMap"} <= kinds


def test_every_deployment_runs_locked_down_with_probes_and_a_long_enough_drain(tools: dict[str, Path]) -> None:
    docs = documents(render(tools, "defaults"))
    deployments = {d["metadata"]["labels"]["app.kubernetes.io/component"]: d for d in of_kind(docs, "Deployment")}
    assert set(deployments) == set(SERVICES)
    for name, deployment in deployments.items():
        pod = deployment["spec"]["template"]["spec"]
        (container,) = pod["containers"]
        assert container["image"] == f"ghcr.io/example/mentorship-{name}:0.1.0"
        assert pod["securityContext"]["runAsNonRoot"] is True and pod["securityContext"]["runAsUser"] == 10001
        sc = container["securityContext"]
        assert sc["readOnlyRootFilesystem"] is True and sc["allowPrivilegeEscalation"] is False
        assert sc["capabilities"]["drop"] == ["ALL"]
        assert {"name": "tmp", "mountPath": "/tmp"} in container["volumeMounts"]
        assert pod["terminationGracePeriodSeconds"] > 20 + 5  # the service's drain plus the preStop pause
        assert container["livenessProbe"]["httpGet"]["path"] == "/health"
        assert container["readinessProbe"]["httpGet"]["path"] == "/ready"
        assert container["startupProbe"]["httpGet"]["path"] == "/health"
        secrets = {e["name"]: e["valueFrom"]["secretKeyRef"] for e in container["env"]}
        assert secrets["JWT_SECRET"] == {"name": "mentorship-identity", "key": "jwt-secret"}
        assert secrets["MONGODB_URI"] == {"name": "mentorship-mongodb", "key": "uri"}
        assert deployment["spec"]["replicas"] == 2
    settings = {
        c["metadata"]["name"]: c["data"] for c in of_kind(docs, "ConfigMap") if "dashboard" not in c["metadata"]["name"]
    }
    notification = settings["rel-mentorship-notification"]
    assert notification["SERVICE_NAME"] == "notification" and notification["SMTP_HOST"] == "smtp.example.com"
    assert notification["HTTP_HOST"] == "0.0.0.0" and notification["KAFKA_TOPIC_PARTITIONS"] == "6"
    assert "SMTP_HOST" not in settings["rel-mentorship-profile"]
    (job,) = of_kind(docs, "Job")
    assert job["metadata"]["annotations"]["helm.sh/hook"] == "pre-install,pre-upgrade"
    script = job["spec"]["template"]["spec"]["containers"][0]["args"][0]
    for topic in ("profile.events", "matching.events", "scheduling.events", "notification.events"):
        assert f'create "{topic}" "-1"' in script and f'create "{topic}.dlt" "2592000000"' in script
    assert of_kind(docs, "NetworkPolicy") == [] and of_kind(docs, "ScaledObject") == []


def test_all_options_scale_on_lag_capped_by_partitions_and_fence_the_network(tools: dict[str, Path]) -> None:
    docs = documents(render(tools, "all-options"))
    scaled = {d["metadata"]["name"]: d for d in of_kind(docs, "ScaledObject")}
    assert set(scaled) == {f"rel-mentorship-{s}" for s in ("matching", "scheduling", "notification")}
    notification = scaled["rel-mentorship-notification"]["spec"]
    assert notification["maxReplicaCount"] == 4  # kafka.partitions, below keda.maxReplicas (10)
    triggers = {t["metadata"]["consumerGroup"]: t for t in notification["triggers"]}
    assert set(triggers) == {
        "prod.notification.contacts",
        "prod.notification.matching-events",
        "prod.notification.scheduling-events",
    }
    assert triggers["prod.notification.contacts"]["metadata"]["topic"] == "prod.profile.events"
    assert triggers["prod.notification.contacts"]["metadata"]["sasl"] == "scram_sha512"
    assert triggers["prod.notification.contacts"]["authenticationRef"]["name"] == "rel-mentorship-kafka"
    (hpa,) = of_kind(docs, "HorizontalPodAutoscaler")  # profile consumes nothing: CPU-based
    assert hpa["spec"]["scaleTargetRef"]["name"] == "rel-mentorship-profile"
    for deployment in of_kind(docs, "Deployment"):
        assert "replicas" not in deployment["spec"]  # the autoscaler owns it
    policies = {d["metadata"]["name"]: d["spec"] for d in of_kind(docs, "NetworkPolicy")}
    assert len(policies) == 4
    profile_ports = {p["port"] for rule in policies["rel-mentorship-profile"]["egress"] for p in rule["ports"]}
    notification_ports = {
        p["port"] for rule in policies["rel-mentorship-notification"]["egress"] for p in rule["ports"]
    }
    assert profile_ports == {53, 9093, 27017, 4317}
    assert notification_ports == {53, 9093, 27017, 587, 443, 4317}
    (monitor,) = of_kind(docs, "ServiceMonitor")
    assert monitor["spec"]["jobLabel"] == "mentorship.io/job"
    for service in of_kind(docs, "Service"):
        assert service["metadata"]["labels"]["mentorship.io/job"].startswith("mentorship-")
    (rule,) = of_kind(docs, "PrometheusRule")
    assert rule["spec"] == yaml.safe_load(RULES.read_text())
    dashboard = next(c for c in of_kind(docs, "ConfigMap") if c["metadata"]["name"].endswith("-dashboard"))
    assert dashboard["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert json.loads(dashboard["data"]["mentorship.json"]) == json.loads(DASHBOARD.read_text())
    notification_env = next(d for d in of_kind(docs, "Deployment") if d["metadata"]["name"].endswith("notification"))
    env_names = {e["name"] for e in notification_env["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert {"KAFKA_SASL_USERNAME", "KAFKA_SASL_PASSWORD", "SMTP_USERNAME", "SMTP_PASSWORD"} <= env_names


def test_strimzi_topics_instead_of_the_job(tools: dict[str, Path]) -> None:
    docs = documents(render(tools, "all-options-strimzi"))
    assert of_kind(docs, "Job") == []
    topics = {d["spec"]["topicName"]: d for d in of_kind(docs, "KafkaTopic")}
    assert len(topics) == 8 and "prod.matching.events.dlt" in topics
    spec = topics["prod.matching.events"]["spec"]
    assert spec["partitions"] == 4 and spec["replicas"] == 3 and spec["config"]["retention.ms"] == -1
    assert topics["prod.matching.events"]["metadata"]["labels"]["strimzi.io/cluster"] == "kafka"


# --- alert rules -----------------------------------------------------------------------------------


def test_promtool_check_rules(tools: dict[str, Path]) -> None:
    out = run([tools["promtool"], "check", "rules", RULES])
    assert "SUCCESS" in out


def test_promtool_unit_tests_of_every_alert(tools: dict[str, Path]) -> None:
    out = run([tools["promtool"], "test", "rules", RULE_TESTS])
    assert "SUCCESS" in out
    alerts = {r["alert"] for g in yaml.safe_load(RULES.read_text())["groups"] for r in g["rules"] if "alert" in r}
    tested = {
        t["alertname"]
        for case in yaml.safe_load(RULE_TESTS.read_text())["tests"]
        for t in case.get("alert_rule_test", [])
    }
    assert alerts == tested
    fired = {
        t["alertname"]
        for case in yaml.safe_load(RULE_TESTS.read_text())["tests"]
        for t in case.get("alert_rule_test", [])
        if t.get("exp_alerts")
    }
    assert alerts == fired  # each one is shown firing, not only staying quiet


# --- dashboard -------------------------------------------------------------------------------------


def dashboard_metrics() -> set[str]:
    dashboard = json.loads(DASHBOARD.read_text())
    exprs = [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]
    assert exprs
    names: set[str] = set()
    for expr in exprs:
        found = set(re.findall(r"([a-zA-Z_:][a-zA-Z0-9_:]*)\{", expr))
        assert found, f"no metric with a label selector in {expr!r}"
        names |= found
    return names


def exposed_samples() -> set[str]:
    """Every sample name the services' /metrics can show: they all serve the kit's registry."""
    from prometheus_client import generate_latest
    from prometheus_client.parser import text_string_to_metric_families

    import matching_service.entrypoints.app  # noqa: F401  (each service's metrics register on import)
    import notification_service.entrypoints.app  # noqa: F401
    import profile_service.entrypoints.app  # noqa: F401
    import scheduling_service.entrypoints.app  # noqa: F401
    from mentorship_kit.metrics import REGISTRY

    names: set[str] = set()
    for family in text_string_to_metric_families(generate_latest(REGISTRY).decode()):
        suffixes = {"histogram": ("_bucket", "_count", "_sum"), "counter": ("_total",)}.get(family.type, ("",))
        names |= {family.name + s for s in suffixes}
    return names


def test_dashboard_is_generated_and_has_a_panel_per_metric() -> None:
    run([sys.executable, ROOT / "deploy" / "observability" / "dashboard.py", "--check"])
    dashboard = json.loads(DASHBOARD.read_text())
    (row,) = [p for p in dashboard["panels"] if p["type"] == "row"]
    assert row["repeat"] == "service"  # one row of panels per service
    metrics = dashboard_metrics()
    for wanted in (
        "mentorship_http_request_duration_seconds_bucket",
        "mentorship_consumer_lag",
        "mentorship_outbox_oldest_unpublished_age_seconds",
        "mentorship_timers_due",
        "mentorship_timers_oldest_lateness_seconds",
        "mentorship_dead_letters_written_total",
        "mentorship_deliveries_failed_total",
    ):
        assert wanted in metrics


def test_every_metric_the_dashboard_queries_is_exposed() -> None:
    missing = dashboard_metrics() - exposed_samples()
    assert not missing, f"dashboard queries metrics no service exposes: {sorted(missing)}"


def test_every_metric_the_alerts_use_is_exposed_or_from_prometheus() -> None:
    rules = yaml.safe_load(RULES.read_text())
    exprs = [r["expr"] for g in rules["groups"] for r in g["rules"]]
    used: set[str] = set()
    for expr in exprs:
        used |= {
            m
            for m in re.findall(r"\b([a-z_][a-z0-9_]*)(?=\{|\[|\s*(?:==|>|<|\)|$))", expr)
            if m.startswith(("mentorship_", "service_"))
        }
    assert used and not used - exposed_samples(), sorted(used - exposed_samples())


@pytest.mark.parametrize("bad", ["topics.provisioner=kafka", "kafka.partitions=0", "mongodb.existingSecret="])
def test_values_schema_refuses_a_wrong_value(tools: dict[str, Path], bad: str) -> None:
    proc = subprocess.run(
        [str(tools["helm"]), "template", "rel", str(CHART), "--set", bad],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode != 0 and bad.split("=")[0].replace(".", "/") in proc.stderr, proc.stderr
