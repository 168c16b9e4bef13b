#!/usr/bin/env python3
"""Deployment tools, installed by pinned version and cached like Kafka and FerretDB.

Stdlib only (Python 3.11+), runs with plain ``python3`` before any venv exists.

    python3 deploy/tools/install.py                 # install (or reuse) every tool, print their paths as JSON
    python3 deploy/tools/install.py helm promtool   # only these
    python3 deploy/tools/install.py --path helm     # print the path of one tool (installing it first)

Layout under ``${MENTORSHIP_CACHE_DIR:-~/.cache/mentorship}/tools``::

    helm-v3.22.0/helm                    go install helm.sh/helm/v3/cmd/helm@v3.22.0
    kubeconform-v0.7.0/kubeconform       go install github.com/yannh/kubeconform/cmd/kubeconform@v0.7.0
    promtool-v0.316.0/promtool           go install -tags=remove_all_sd \
                                             github.com/prometheus/prometheus/cmd/promtool@v0.316.0
    kubernetes-schemas-1.37.0/<version>-standalone-strict/*.json
                                         Kubernetes JSON schemas from the kubernetes-validate wheel (PyPI),
                                         so kubeconform validates offline

Go tools are built from the Go module proxy (``go install``, GOBIN pointed into a temporary
directory, with the version ``-X`` settings their release builds make; a change of tags or
ldflags rebuilds); every entry is renamed into place only after a ``.complete`` marker is written, so an
interrupted install is never mistaken for a finished one. Concurrent installers wait on a lock.

Importable: ``install(names) -> dict[name, Path]`` and ``tool_path(name) -> Path``.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

MARKER = ".complete"
# Used only if the local Go is older than a module needs (the one toolchain the proxy is known to serve).
FALLBACK_GOTOOLCHAIN = os.environ.get("INFRA_GOTOOLCHAIN", "go1.27.3")


@dataclass(frozen=True)
class GoTool:
    name: str
    package: str
    version: str
    version_args: tuple[str, ...]
    tags: tuple[str, ...] = ()
    # -X settings a release build makes (version strings, defaults); part of the cache key
    ldflags: tuple[str, ...] = ()

    @property
    def key(self) -> str:
        return f"{self.name}-{self.version}"


GO_TOOLS: dict[str, GoTool] = {
    tool.name: tool
    for tool in (
        # As helm's Makefile does: without these, `helm template` assumes Kubernetes 1.20.
        GoTool(
            "helm",
            "helm.sh/helm/v3/cmd/helm",
            "v3.22.0",
            ("version", "--short"),
            ldflags=(
                "-X helm.sh/helm/v3/internal/version.version=v3.22.0",
                "-X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMajor=1",
                "-X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMinor=37",
                "-X helm.sh/helm/v3/pkg/chartutil.k8sVersionMajor=1",
                "-X helm.sh/helm/v3/pkg/chartutil.k8sVersionMinor=37",
            ),
        ),
        GoTool("kubeconform", "github.com/yannh/kubeconform/cmd/kubeconform", "v0.7.0", ("-v",)),
        # Prometheus tags its Go module v0.<major*100+minor>.<patch>: v0.316.0 is Prometheus 3.16.0.
        # remove_all_sd leaves out the cloud service-discovery plugins (AWS, Azure, GCE, ...): rule
        # checks and tests need none of them, and they are most of the build.
        GoTool(
            "promtool",
            "github.com/prometheus/prometheus/cmd/promtool",
            "v0.316.0",
            ("--version",),
            tags=("remove_all_sd",),
            ldflags=("-X github.com/prometheus/common/version.Version=3.16.0",),
        ),
    )
}

SCHEMAS_PACKAGE = "kubernetes-validate"
SCHEMAS_VERSION = "1.37.0"
SCHEMAS_NAME = "kubernetes-schemas"
SCHEMAS_LAYOUT = 3  # bump when the unpacking changes: older cache entries are rebuilt
ALL_NAMES = (*GO_TOOLS, SCHEMAS_NAME)

Log = Callable[[str], None]


class ToolError(RuntimeError):
    """An install failed; the message says which command and shows its output."""


def _log_stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def cache_dir() -> Path:
    return Path(os.environ.get("MENTORSHIP_CACHE_DIR") or "~/.cache/mentorship").expanduser().resolve() / "tools"


def home(name: str) -> Path:
    if name == SCHEMAS_NAME:
        return cache_dir() / f"{SCHEMAS_NAME}-{SCHEMAS_VERSION}"
    return cache_dir() / GO_TOOLS[name].key


def tool_path(name: str) -> Path:
    """Where the tool is (the binary, or the schema directory for kubernetes-schemas)."""
    if name == SCHEMAS_NAME:
        return home(name)
    return home(name) / name


def installed(name: str) -> bool:
    marker = home(name) / MARKER
    if not (marker.is_file() and tool_path(name).exists()):
        return False
    recorded = json.loads(marker.read_text())
    if name == SCHEMAS_NAME:
        return bool(recorded.get("layout") == SCHEMAS_LAYOUT)
    tool = GO_TOOLS[name]
    return bool(recorded.get("tags", []) == list(tool.tags) and recorded.get("ldflags", []) == list(tool.ldflags))


def _run(cmd: list[str], *, env: dict[str, str] | None = None, cwd: Path | None = None, timeout: float = 3600) -> str:
    try:
        proc = subprocess.run(
            cmd,
            env=env,
            cwd=cwd,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            timeout=timeout,
            check=False,
        )
    except FileNotFoundError as e:
        raise ToolError(f"command not found: {cmd[0]}") from e
    except subprocess.TimeoutExpired as e:
        raise ToolError(f"timed out after {timeout:.0f}s: {' '.join(cmd)}") from e
    if proc.returncode != 0:
        tail = "\n".join(proc.stdout.splitlines()[-40:])
        raise ToolError(f"failed ({proc.returncode}): {' '.join(cmd)}\n{tail}")
    return proc.stdout


@contextlib.contextmanager
def _lock(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _go_env(log: Log) -> tuple[str, dict[str, str]]:
    go = shutil.which("go")
    if not go:
        raise ToolError("go not found: needed once to build helm, kubeconform and promtool")
    env = dict(os.environ)
    env["CGO_ENABLED"] = "0"
    env["GOFLAGS"] = "-buildvcs=false"
    if not env.get("GOTOOLCHAIN"):
        # "auto" switches to a newer toolchain if a module's go.mod asks for one (from the proxy).
        env["GOTOOLCHAIN"] = "auto"
        local = _run([go, "env", "GOVERSION"], env={**env, "GOTOOLCHAIN": "local"}).strip()
        if not re.match(r"go1\.(2[5-9]|[3-9]\d)", local):
            env["GOTOOLCHAIN"] = FALLBACK_GOTOOLCHAIN
            log(f"[tools] local {local} is old: using GOTOOLCHAIN={FALLBACK_GOTOOLCHAIN}")
    return go, env


def _publish(tmp: Path, target: Path, marker: dict[str, object]) -> None:
    (tmp / MARKER).write_text(json.dumps({**marker, "installed_at": time.time()}, sort_keys=True))
    if target.exists():
        shutil.rmtree(target)
    os.replace(tmp, target)


def _install_go_tool(tool: GoTool, log: Log) -> None:
    go, env = _go_env(log)
    tmp = Path(tempfile.mkdtemp(prefix=f".{tool.key}.tmp-", dir=cache_dir()))
    try:
        env["GOBIN"] = str(tmp)
        log(
            f"[tools] {tool.name} {tool.version}: go install {tool.package}@{tool.version} (minutes the first time) ..."
        )
        tags = [f"-tags={','.join(tool.tags)}"] if tool.tags else []
        ldflags = " ".join(("-s", "-w", *tool.ldflags))
        _run(
            [go, "install", "-trimpath", f"-ldflags={ldflags}", *tags, f"{tool.package}@{tool.version}"],
            env=env,
            cwd=tmp,
        )
        reported = _run([str(tmp / tool.name), *tool.version_args]).strip()
        _publish(
            tmp,
            home(tool.name),
            {
                "package": tool.package,
                "version": tool.version,
                "tags": list(tool.tags),
                "ldflags": list(tool.ldflags),
                "reports": reported,
            },
        )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _install_schemas(log: Log) -> None:
    """The kubernetes-validate wheel bundles the Kubernetes JSON schemas; unpack only those."""
    tmp = Path(tempfile.mkdtemp(prefix=f".{SCHEMAS_NAME}.tmp-", dir=cache_dir()))
    try:
        log(f"[tools] {SCHEMAS_PACKAGE} {SCHEMAS_VERSION}: pip download (schemas only) ...")
        _run(
            [
                sys.executable,
                "-m",
                "pip",
                "download",
                "--quiet",
                "--disable-pip-version-check",
                "--no-deps",
                "--only-binary=:all:",
                "--dest",
                str(tmp / "wheel"),
                f"{SCHEMAS_PACKAGE}=={SCHEMAS_VERSION}",
            ]
        )
        wheel = next((tmp / "wheel").glob("*.whl"))
        prefix = "kubernetes_validate/kubernetes-json-schema/"
        out = tmp / "schemas"
        with zipfile.ZipFile(wheel) as archive:
            for member in archive.namelist():
                if member.startswith(prefix) and member.endswith(".json"):
                    relative = member[len(prefix) :]
                    dest = out / relative
                    dest.parent.mkdir(parents=True, exist_ok=True)
                    dest.write_text(json.dumps(_standalone(json.loads(archive.read(member)))))
        versions = sorted(p.name for p in out.iterdir() if p.is_dir())
        if not versions:
            raise ToolError(f"no schemas under {prefix} in {wheel.name}")
        shutil.rmtree(tmp / "wheel")
        _publish(
            out,
            home(SCHEMAS_NAME),
            {
                "package": SCHEMAS_PACKAGE,
                "version": SCHEMAS_VERSION,
                "layout": SCHEMAS_LAYOUT,
                "kubernetes_versions": versions,
            },
        )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _standalone(schema: dict[str, object]) -> dict[str, object]:
    """The package's schemas carry `$id: https://kubernetes.io/api/<kind>` and refer to
    `/api/_definitions.json`, which its own resolver serves. kubeconform resolves references
    relative to the file instead: drop the ids and point at the sibling definitions file."""
    schema.pop("$id", None)

    def fix(node: object) -> None:
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and ref.startswith("/api/_definitions.json#"):
                node["$ref"] = ref[len("/api/") :]
            for value in node.values():
                fix(value)
        elif isinstance(node, list):
            for value in node:
                fix(value)

    fix(schema)
    return schema


def install(names: tuple[str, ...] | list[str] = ALL_NAMES, log: Log = _log_stderr) -> dict[str, Path]:
    """Install (or reuse) the named tools; returns each one's path."""
    unknown = [n for n in names if n not in ALL_NAMES]
    if unknown:
        raise ToolError(f"unknown tool(s) {unknown}; known: {list(ALL_NAMES)}")
    cache_dir().mkdir(parents=True, exist_ok=True)
    for name in names:
        if installed(name):
            continue
        with _lock(cache_dir() / ".install.lock"):  # concurrent installers wait for each other
            if installed(name):
                continue
            started = time.monotonic()
            if name == SCHEMAS_NAME:
                _install_schemas(log)
            else:
                _install_go_tool(GO_TOOLS[name], log)
            log(f"[tools] {name}: installed at {tool_path(name)} in {time.monotonic() - started:.1f}s")
    return {name: tool_path(name) for name in names}


def schema_location() -> str:
    """kubeconform's -schema-location template for the cached schemas (use with -kubernetes-version)."""
    return (
        str(home(SCHEMAS_NAME)) + "/{{ .NormalizedKubernetesVersion }}-local{{ .StrictSuffix }}/"
        "{{ .ResourceKind }}{{ .KindSuffix }}.json"
    )


def kubernetes_versions() -> list[str]:
    marker = json.loads((home(SCHEMAS_NAME) / MARKER).read_text())
    return list(marker["kubernetes_versions"])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("names", nargs="*", help=f"tools to install (default: all of {', '.join(ALL_NAMES)})")
    parser.add_argument("--path", metavar="NAME", help="print only this tool's path")
    args = parser.parse_args(argv)
    try:
        if args.path:
            print(install([args.path])[args.path])
            return 0
        started = time.monotonic()
        paths = install(args.names or ALL_NAMES)
        _log_stderr(f"[tools] ready in {time.monotonic() - started:.1f}s")
        print(json.dumps({k: str(v) for k, v in paths.items()}, indent=2))
    except ToolError as e:
        _log_stderr(f"[tools] {e}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
