"""The chaos run's own Kafka and store (never the suite's shared pair): started through the local
launcher (deploy/local/infra.py) in a state directory of the run's own, then killed with SIGKILL
and restarted on the same ports and the same data, as a crashed broker or database node is."""

from __future__ import annotations

import importlib.util
import os
import signal
import sys
import time
from pathlib import Path
from types import ModuleType
from typing import Any


def repo_root() -> Path:
    """The repository this package runs from (deploy/local/infra.py is looked up from here)."""
    for parent in Path(__file__).resolve().parents:
        if (parent / "deploy" / "local" / "infra.py").is_file():
            return parent
    raise RuntimeError("cannot find deploy/local/infra.py above this package")


def launcher() -> ModuleType:
    if "mentorship_infra" in sys.modules:
        return sys.modules["mentorship_infra"]
    spec = importlib.util.spec_from_file_location("mentorship_infra", repo_root() / "deploy/local/infra.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules["mentorship_infra"] = module
    spec.loader.exec_module(module)
    return module


class OwnInfra:
    """Kafka + FerretDB of this run. `kill(name)` SIGKILLs one's process group; `restart(name)`
    starts the same command again on the same data and port and waits until it answers."""

    NAMES = ("kafka", "ferretdb")

    def __init__(self, state_dir: Path, partitions: int = 2) -> None:
        self.state_dir = state_dir
        self.partitions = partitions
        self.info: dict[str, Any] = {}

    @property
    def kafka(self) -> str:
        return str(self.info["kafka_bootstrap"])

    @property
    def mongo(self) -> str:
        return str(self.info["mongodb_uri"])

    def start(self) -> OwnInfra:
        self.info = launcher().start(self.state_dir, partitions=self.partitions)
        return self

    def stop(self) -> None:
        launcher().stop(self.state_dir)

    def _record(self, name: str) -> dict[str, Any]:
        record: dict[str, Any] = self.info["processes"][name]
        return record

    def alive(self, name: str) -> bool:
        from localinfra.processes import alive  # loaded by launcher()

        return bool(alive(self._record(name)))

    def kill(self, name: str) -> None:
        from localinfra.processes import _CHILDREN

        pid = int(self._record(name)["pid"])
        try:
            os.killpg(pid, signal.SIGKILL)  # the launcher starts each in its own session: pgid == pid
        except ProcessLookupError:
            pass
        child = _CHILDREN.pop(pid, None)
        if child is not None:
            child.wait(10)

    def restart(self, name: str, timeout: float = 120.0) -> float:
        """Start it again (same command, data and port); returns the seconds until it answered."""
        from localinfra.common import write_json_atomic
        from localinfra.processes import spawn

        mod = launcher()
        old = self._record(name)
        started = time.monotonic()
        proc = spawn(name, list(old["cmd"]), Path(old["log"]).parent, Path(old["log"]))
        proc.update({k: v for k, v in old.items() if k not in proc})
        self.info["processes"][name] = proc
        self.info["pids"][name] = proc["pid"]
        write_json_atomic(self.state_dir / "infra.json", self.info)  # `down` stops the new process
        port = int(proc["port"])
        deadline = time.monotonic() + timeout
        last = ""
        while True:
            if not self.alive(name):
                raise RuntimeError(f"{name} exited while restarting; see {proc['log']}")
            try:
                if name == "kafka":
                    if mod.kafka_probe("127.0.0.1", port) >= 1:
                        break
                else:
                    mod.mongo_probe("127.0.0.1", port)
                    break
            except Exception as exc:  # the probes raise many kinds while the server starts
                last = repr(exc)
            if time.monotonic() > deadline:
                raise RuntimeError(f"{name} did not answer within {timeout:.0f} s of its restart: {last}")
            time.sleep(0.2)
        return time.monotonic() - started
