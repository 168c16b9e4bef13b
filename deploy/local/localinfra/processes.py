"""Detached server processes: spawn, liveness (safe against pid reuse), stop, wait until ready."""

from __future__ import annotations

import contextlib
import os
import signal
import struct
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .common import InfraError, Log, log_stderr, tail
from .versions import STOP_TIMEOUT

# Processes started by this Python process (so terminate() can reap them and they
# never linger as zombies that still look "alive" to kill(pid, 0)).
_CHILDREN: dict[int, subprocess.Popen[bytes]] = {}


def _proc_start_time(pid: int) -> str | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[19]  # field 22: starttime


def alive(p: dict[str, Any]) -> bool:
    pid = int(p["pid"])
    child = _CHILDREN.get(pid)
    if child is not None:
        return child.poll() is None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return sys.platform != "linux"
    if stat.rsplit(")", 1)[1].split()[0] in ("Z", "X"):
        return False
    # guard against pid reuse
    return p.get("start_time") in (None, _proc_start_time(pid))


def spawn(name: str, cmd: list[str], cwd: Path, log_file: Path, env: dict[str, str] | None = None) -> dict[str, Any]:
    """Start cmd in its own session (a Ctrl-C in the caller's terminal does not reach it)."""
    log_file.parent.mkdir(parents=True, exist_ok=True)
    with open(log_file, "ab") as out:
        proc = subprocess.Popen(
            cmd,
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
            close_fds=True,
        )
    _CHILDREN[proc.pid] = proc
    return {"name": name, "pid": proc.pid, "start_time": _proc_start_time(proc.pid), "log": str(log_file), "cmd": cmd}


def terminate(procs: list[dict[str, Any]], timeout: float = STOP_TIMEOUT, log: Log = log_stderr) -> None:
    """SIGTERM each process group, SIGKILL what is still alive after timeout, reap our children."""
    live = [p for p in procs if alive(p)]
    for p in live:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(int(p["pid"]), signal.SIGTERM)  # start_new_session => pgid == pid
    deadline = time.monotonic() + timeout
    while live and time.monotonic() < deadline:
        time.sleep(0.1)
        live = [p for p in live if alive(p)]
    for p in live:
        log(f"[down] {p['name']} (pid {p['pid']}) ignored SIGTERM for {timeout:.0f}s: SIGKILL")
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(int(p["pid"]), signal.SIGKILL)
    for p in procs:
        child = _CHILDREN.pop(int(p["pid"]), None)
        if child is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                child.wait(5)
    deadline = time.monotonic() + 5
    while any(alive(p) for p in procs) and time.monotonic() < deadline:
        time.sleep(0.1)


def _logs(proc: dict[str, Any]) -> str:
    return tail(Path(proc["log"])) + (f"\n{tail(Path(proc['extra_log']))}" if proc.get("extra_log") else "")


def wait_ready(
    name: str,
    proc: dict[str, Any],
    probe: Callable[[], Any],
    timeout: float,
    extra_check: Callable[[], bool] | None = None,
) -> Any:
    """Poll probe() (and extra_check()) until they succeed; fail early if the process exits."""
    deadline = time.monotonic() + timeout
    last_err: Exception | None = None
    while time.monotonic() < deadline:
        if not alive(proc):
            raise InfraError(f"{name} exited during startup.\n{_logs(proc)}")
        try:
            res = probe()
            if extra_check is None or extra_check():
                return res
        except (OSError, ConnectionError, struct.error, ValueError, IndexError) as e:
            last_err = e
        time.sleep(0.2)
    raise InfraError(f"{name} not ready after {timeout:g}s (last probe error: {last_err!r}).\n{_logs(proc)}")
