"""``watch`` stops at its count even when more messages arrive in the same burst.

A real broker sends a burst only sometimes; this scripted one always does: it answers
CONNECT and SUBSCRIBE, then writes three PUBLISH packets at once.
"""

from __future__ import annotations

import socket
import threading

from broker.messages import Status, encode
from broker.monitor import watch

TIMEOUT_S = 10.0


def packet(first: int, body: bytes) -> bytes:
    assert len(body) < 128  # a one-byte remaining length
    return bytes([first, len(body)]) + body


def publish(topic: str, payload: bytes) -> bytes:
    name = topic.encode()
    return packet(0x30, len(name).to_bytes(2, "big") + name + payload)


def read_packet(conn: socket.socket) -> tuple[int, bytes]:
    head = conn.recv(1)
    if not head:
        return 0, b""
    length, shift = 0, 0
    while True:
        byte = conn.recv(1)[0]
        length |= (byte & 0x7F) << shift
        shift += 7
        if byte < 0x80:
            break
    body = b""
    while len(body) < length:
        body += conn.recv(length - len(body))
    return head[0] & 0xF0, body


def serve_burst(server: socket.socket, burst: bytes, done: threading.Event) -> None:
    conn, _ = server.accept()
    with conn:
        conn.settimeout(TIMEOUT_S)
        assert read_packet(conn)[0] == 0x10  # CONNECT
        conn.sendall(b"\x20\x02\x00\x00")  # CONNACK, accepted
        kind, body = read_packet(conn)
        assert kind == 0x80  # SUBSCRIBE
        conn.sendall(packet(0x90, body[:2] + b"\x01") + burst)  # SUBACK, then the burst
        while read_packet(conn)[0] not in (0, 0xE0):  # until DISCONNECT or EOF
            pass
    done.set()


def test_watch_prints_exactly_count_lines_from_a_burst() -> None:
    devices = ("h001", "h002", "h003")
    burst = b"".join(publish(f"gm/v1/demo/dev/{d}/status", encode(Status(d, "online", 1)))
                     for d in devices)
    lines: list[str] = []
    done = threading.Event()
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        server.settimeout(TIMEOUT_S)
        host, port = server.getsockname()
        thread = threading.Thread(target=serve_burst, args=(server, burst, done), daemon=True)
        thread.start()
        seen = watch(host, port, "gm/v1/demo/#", 1, emit=lines.append)
        assert done.wait(TIMEOUT_S)
        thread.join(TIMEOUT_S)
    assert seen == 1
    assert len(lines) == 1 and lines[0].endswith("demo/dev/h001/status status h001 online")
