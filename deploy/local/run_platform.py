"""`make run`: local Kafka + FerretDB + the five services as separate processes; Ctrl-C stops all.

Shaped like production: each service gets its own store, a FerretDB process of its own (its
MONGODB_URI); the default store (`mongodb_uri` in infra.json) is left for tools.

Service ports: profile 8001, matching 8002, scheduling 8003, notification 8004, insights 8005
(override with PROFILE_PORT ... INSIGHTS_PORT). Infrastructure state lives in $MENTORSHIP_RUN_DIR (.run).
Every other variable in the environment (see README) is passed to the services.
"""

from __future__ import annotations

import importlib.util
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SERVICES = {"profile": 8001, "matching": 8002, "scheduling": 8003, "notification": 8004, "insights": 8005}
# A local development platform: the demo moves the services' clocks, mails go to a local sink
# on SMTP_PORT (`make demo` starts one), webhooks may target this machine. Override any of them.
LOCAL_DEFAULTS = {
    "DEV_CLOCK_ENABLED": "true",
    "SMTP_HOST": "127.0.0.1",
    "SMTP_PORT": "2525",
    "WEBHOOK_ALLOW_LOOPBACK": "true",
}


def _launcher():  # noqa: ANN202
    spec = importlib.util.spec_from_file_location("mentorship_infra", Path(__file__).with_name("infra.py"))
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _ready(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/ready", timeout=2) as response:  # noqa: S310 (our own http URL)
            return response.status == 200
    except OSError:
        return False


def main() -> int:
    started_at = time.monotonic()
    run_dir = Path(os.environ.get("MENTORSHIP_RUN_DIR", ROOT / ".run")).resolve()
    infra_dir = run_dir / "infra"
    launcher = _launcher()
    # Reusing a Kafka + FerretDB that someone else started: leave them running when we stop.
    started_here = not launcher.status(infra_dir).get("healthy")
    info = launcher.start(
        infra_dir,
        kafka_port=int(os.environ["KAFKA_PORT"]) if os.environ.get("KAFKA_PORT") else None,
        mongo_port=int(os.environ["MONGO_PORT"]) if os.environ.get("MONGO_PORT") else None,
        reuse=True,
        stores=list(SERVICES),
    )
    procs: dict[str, subprocess.Popen[bytes]] = {}
    urls: dict[str, str] = {}
    logs = run_dir / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    stopping = False

    def say(text: str) -> None:
        try:
            print(text, flush=True)
        except OSError:  # the terminal or pipe is gone (Ctrl-C also hit `| tee`): keep stopping
            pass

    def stop_all(*_: object) -> None:
        nonlocal stopping
        if stopping:
            return
        stopping = True
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not strand services
        try:
            say("\nstopping services ...")
            for proc in procs.values():
                if proc.poll() is None:
                    proc.send_signal(signal.SIGTERM)
            for proc in procs.values():
                try:
                    proc.wait(30)
                except subprocess.TimeoutExpired:
                    proc.kill()
        finally:
            if started_here:
                say("stopping Kafka and FerretDB ...")
                launcher.stop(infra_dir, log=lambda _msg: None)
            say("stopped.")

    signal.signal(signal.SIGTERM, lambda *_: (stop_all(), sys.exit(0)))
    signal.signal(signal.SIGINT, signal.default_int_handler)  # Ctrl-C, even if started with it ignored
    try:
        for name, default_port in SERVICES.items():
            port = int(os.environ.get(f"{name.upper()}_PORT", default_port))
            env = {
                **LOCAL_DEFAULTS,
                **os.environ,
                "SERVICE_NAME": name,
                "KAFKA_BOOTSTRAP_SERVERS": info["kafka_bootstrap"],
                "MONGODB_URI": info["mongodb_uris"][name],
                "HTTP_PORT": str(port),
            }
            env.pop("MONGODB_DATABASE", None)
            env.pop(f"{name.upper()}_MONGODB_URI", None)  # this launcher's store, not an outer one
            log = (logs / f"{name}.log").open("ab")
            # Own session: Ctrl-C reaches only this launcher, which stops the services in order.
            procs[name] = subprocess.Popen(
                [sys.executable, "-m", f"{name}_service"],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
            urls[name] = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 120
        pending = set(urls)
        while pending and time.monotonic() < deadline:
            for name in sorted(pending):
                if procs[name].poll() is not None:
                    raise RuntimeError(f"{name} exited; see {logs / (name + '.log')}")
                if _ready(urls[name]):
                    pending.discard(name)
            time.sleep(0.3)
        if pending:
            raise RuntimeError(f"not ready after 120 s: {sorted(pending)}; logs in {logs}")
        print(f"\nAll services ready in {time.monotonic() - started_at:.1f} s:")
        for name, url in urls.items():
            print(f"  {name:<13} {url}   (docs {url}/docs)")
        print(f"  Kafka         {info['kafka_bootstrap']}")
        for name, uri in info["mongodb_uris"].items():
            print(f"  store of {name:<13} {uri}")
        print(f"  logs          {logs}")
        print("Press Ctrl-C to stop.", flush=True)
        while all(p.poll() is None for p in procs.values()):
            time.sleep(1)
        dead = [n for n, p in procs.items() if p.poll() is not None]
        print(f"service(s) exited: {dead}; see {logs}", flush=True)
        return 1
    except KeyboardInterrupt:
        return 0
    except Exception as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    finally:
        stop_all()


if __name__ == "__main__":
    raise SystemExit(main())
