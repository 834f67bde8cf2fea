"""The benchmark's slow link: every round trip through it costs the RTT, bytes arrive intact."""

import socket
import threading
import time

from bench.latency import LatencyProxy


def _echo_server() -> tuple:
    server = socket.create_server(("127.0.0.1", 0))

    def serve():
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            with conn:
                while data := conn.recv(65536):
                    conn.sendall(data)

    threading.Thread(target=serve, daemon=True).start()
    return server, server.getsockname()[1]


def _exchange(sock, payload: bytes) -> bytes:
    sock.sendall(payload)
    got = b""
    while len(got) < len(payload):
        got += sock.recv(65536)
    return got


def test_each_round_trip_costs_the_rtt_and_data_is_unchanged(tmp_path):
    server, port = _echo_server()
    proxy = LatencyProxy([port], 100, tmp_path / "latency.log")
    try:
        start = time.monotonic()
        sock = socket.create_connection(("127.0.0.1", proxy.ports[port]))
        payload = bytes(range(256)) * 1024
        assert _exchange(sock, b"hello") == b"hello"
        first = time.monotonic() - start
        start = time.monotonic()
        assert _exchange(sock, payload) == payload
        second = time.monotonic() - start
        sock.close()
    finally:
        proxy.stop()
        server.close()
    assert 0.19 <= first < 1.0, "the handshake and the first exchange: two round trips"
    assert 0.09 <= second < 1.0, "one round trip on an open connection"
    assert proxy.proc.returncode is not None, "stopped"
