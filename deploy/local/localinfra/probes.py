"""Readiness probes spoken directly on the wire (no client libraries: stdlib only).

Kafka: ApiVersions v0 then a non-flexible Metadata request that lists the live brokers.
MongoDB wire protocol: one OP_MSG command with a minimal BSON encoder and decoder.
"""

from __future__ import annotations

import socket
import struct
from typing import Any


def _recv_exact(sock: socket.socket, n: int) -> bytes:
    buf = bytearray()
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise ConnectionError("connection closed")
        buf += chunk
    return bytes(buf)


def _kafka_call(sock: socket.socket, api_key: int, api_version: int, corr: int, body: bytes) -> bytes:
    client_id = b"infra-probe"
    header = struct.pack(">hhih", api_key, api_version, corr, len(client_id)) + client_id
    msg = header + body
    sock.sendall(struct.pack(">i", len(msg)) + msg)
    (size,) = struct.unpack(">i", _recv_exact(sock, 4))
    resp = _recv_exact(sock, size)
    (rcorr,) = struct.unpack(">i", resp[:4])
    if rcorr != corr:
        raise ConnectionError("kafka correlation id mismatch")
    return resp[4:]  # response header v0 (ApiVersions and non-flexible Metadata)


def kafka_probe(host: str, port: int, timeout: float = 3.0) -> int:
    """ApiVersions + Metadata over the socket; returns the number of live brokers (>=1 means ready)."""
    with socket.create_connection((host, port), timeout=timeout) as s:
        s.settimeout(timeout)
        r = _kafka_call(s, 18, 0, 1, b"")  # ApiVersions v0
        err, n = struct.unpack(">hi", r[:6])
        if err != 0:
            raise ConnectionError(f"ApiVersions error {err}")
        versions: dict[int, tuple[int, int]] = {}
        for i in range(n):
            k, lo, hi = struct.unpack(">hhh", r[6 + 6 * i : 12 + 6 * i])
            versions[k] = (lo, hi)
        lo, hi = versions.get(3, (0, -1))
        v = min(hi, 8)  # v9+ are "flexible" (tagged fields); 1..8 are enough here
        if v < max(lo, 1):
            return 1  # cannot speak a Metadata version; ApiVersions answered
        body = struct.pack(">i", 0)  # topics: empty array -> no topics, just brokers
        if v >= 4:
            body += b"\x00"  # allow_auto_topic_creation
        if v >= 8:
            body += b"\x00\x00"  # include cluster/topic authorized operations
        r = _kafka_call(s, 3, v, 2, body)
        off = 4 if v >= 3 else 0  # throttle_time_ms
        brokers: int = struct.unpack(">i", r[off : off + 4])[0]
        return brokers


def _bson_encode(doc: dict[str, Any]) -> bytes:
    out = bytearray()
    for k, v in doc.items():
        key = k.encode() + b"\x00"
        if isinstance(v, bool):
            out += b"\x08" + key + (b"\x01" if v else b"\x00")
        elif isinstance(v, int):
            out += (
                (b"\x10" + key + struct.pack("<i", v))
                if -(2**31) <= v < 2**31
                else (b"\x12" + key + struct.pack("<q", v))
            )
        elif isinstance(v, float):
            out += b"\x01" + key + struct.pack("<d", v)
        elif isinstance(v, str):
            b = v.encode() + b"\x00"
            out += b"\x02" + key + struct.pack("<i", len(b)) + b
        elif isinstance(v, dict):
            out += b"\x03" + key + _bson_encode(v)
        else:
            raise TypeError(f"unsupported BSON value {v!r}")
    return struct.pack("<i", len(out) + 5) + bytes(out) + b"\x00"


def _bson_decode(data: bytes) -> dict[str, Any]:
    """Minimal decoder: top-level scalars we care about; stops at unknown types."""
    res: dict[str, Any] = {}
    i, end = 4, struct.unpack("<i", data[:4])[0] - 1
    while i < end:
        t = data[i]
        j = data.index(b"\x00", i + 1)
        key = data[i + 1 : j].decode()
        i = j + 1
        if t == 0x01:  # double
            res[key] = struct.unpack("<d", data[i : i + 8])[0]
            i += 8
        elif t == 0x02:  # string
            n = struct.unpack("<i", data[i : i + 4])[0]
            res[key] = data[i + 4 : i + 3 + n].decode("utf-8", "replace")
            i += 4 + n
        elif t in (0x03, 0x04):  # document, array (arrays are skipped)
            n = struct.unpack("<i", data[i : i + 4])[0]
            res[key] = _bson_decode(data[i : i + n]) if t == 0x03 else None
            i += n
        elif t == 0x05:  # binary: skipped
            n = struct.unpack("<i", data[i : i + 4])[0]
            i += 5 + n
        elif t == 0x07:  # ObjectId: skipped
            i += 12
        elif t == 0x08:  # boolean
            res[key] = data[i] == 1
            i += 1
        elif t in (0x09, 0x11, 0x12):  # datetime, timestamp, int64
            res[key] = struct.unpack("<q", data[i : i + 8])[0]
            i += 8
        elif t == 0x0A:  # null
            res[key] = None
        elif t == 0x10:  # int32
            res[key] = struct.unpack("<i", data[i : i + 4])[0]
            i += 4
        else:
            break
    return res


def mongo_command(host: str, port: int, cmd: dict[str, Any], timeout: float = 3.0) -> dict[str, Any]:
    """Send one OP_MSG command and return the (minimally) decoded reply."""
    body = struct.pack("<I", 0) + b"\x00" + _bson_encode(cmd)
    header = struct.pack("<iiii", 16 + len(body), 1, 0, 2013)
    with socket.create_connection((host, port), timeout=timeout) as s:
        s.settimeout(timeout)
        s.sendall(header + body)
        (length,) = struct.unpack("<i", _recv_exact(s, 4))
        resp = _recv_exact(s, length - 4)
    _req, _resp_to, opcode = struct.unpack("<iii", resp[:12])
    if opcode != 2013 or resp[16] != 0:
        raise ConnectionError(f"unexpected mongo reply opcode={opcode}")
    return _bson_decode(resp[17:])


def mongo_probe(host: str, port: int, timeout: float = 3.0) -> dict[str, Any]:
    """`hello` and `buildInfo`; returns the wire version and the versions the server reports."""
    reply = mongo_command(host, port, {"hello": 1, "$db": "admin"}, timeout)
    if reply.get("ok") != 1.0:
        raise ConnectionError(f"hello failed: {reply}")
    info = mongo_command(host, port, {"buildInfo": 1, "$db": "admin"}, timeout)
    return {
        "maxWireVersion": reply.get("maxWireVersion"),
        "version": info.get("version"),
        "ferretdbVersion": info.get("ferretdbVersion"),
    }
