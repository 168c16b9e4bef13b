"""A local webhook receiver: answers 200 to every POST and keeps the delivery id, event id and
arrival time of each (what a receiver dedupes on)."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from ..support import free_port


@dataclass(frozen=True)
class WebhookCall:
    path: str
    delivery_id: str
    event_id: str
    event_type: str
    at: float


class WebhookReceiver:
    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self.calls: list[WebhookCall] = []
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> WebhookReceiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                self.rfile.read(length)
                call = WebhookCall(
                    self.path,
                    self.headers.get("Mentorship-Delivery-Id", ""),
                    self.headers.get("Mentorship-Event-Id", ""),
                    self.headers.get("Mentorship-Event-Type", ""),
                    time.time(),
                )
                with receiver._lock:
                    receiver.calls.append(call)
                self.send_response(200)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True, name="webhook-receiver").start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def snapshot(self) -> list[WebhookCall]:
        with self._lock:
            return list(self.calls)
