"""A slow link in front of each simulated host: a TCP proxy that delays every byte by half a
round trip in each direction, and the TCP handshake by a whole one.

The simulator can sleep once per command (`latency_ms`), which leaves connecting free: on
loopback a new SSH connection (TCP, key exchange, authentication, channel) costs no waiting
at all, which flatters any tool that reconnects for every command. Through this proxy each
round trip costs `--rtt-ms`, whoever makes it, as it would on a real network.

    python -m bench.latency --rtt-ms 30 PORT [PORT ...]

prints one JSON line {"PORT": proxy port, ...} once listening, then serves until SIGTERM.
Data is forwarded in order and as fast as it comes; only its arrival is delayed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import subprocess
import sys
from pathlib import Path

CHUNK = 65536


async def _pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, delay: float) -> None:
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue = asyncio.Queue()

    async def receive() -> None:
        while True:
            try:
                data = await reader.read(CHUNK)
            except (ConnectionError, OSError):
                data = b""
            await queue.put((loop.time() + delay, data))
            if not data:
                return

    async def deliver() -> None:
        while True:
            due, data = await queue.get()
            wait = due - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
            try:
                if not data:
                    if writer.can_write_eof():
                        writer.write_eof()
                    return
                writer.write(data)
                await writer.drain()
            except (ConnectionError, OSError):
                return

    await asyncio.gather(receive(), deliver())


async def _serve_one(client_r, client_w, upstream_port: int, rtt: float) -> None:
    try:
        await asyncio.sleep(rtt)  # SYN, SYN-ACK
        server_r, server_w = await asyncio.open_connection("127.0.0.1", upstream_port)
    except OSError:
        client_w.close()
        return
    try:
        await asyncio.gather(_pump(client_r, server_w, rtt / 2), _pump(server_r, client_w, rtt / 2))
    finally:
        for w in (client_w, server_w):
            w.close()


async def _main(upstreams: list, rtt: float) -> None:
    ports = {}
    for upstream in upstreams:
        server = await asyncio.start_server(
            lambda r, w, up=upstream: _serve_one(r, w, up, rtt), "127.0.0.1", 0)
        ports[str(upstream)] = server.sockets[0].getsockname()[1]
    print(json.dumps(ports), flush=True)
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    await stop.wait()


class LatencyProxy:
    """The proxy as a child process: `ports[upstream]` is where to connect instead."""

    def __init__(self, upstreams: list, rtt_ms: float, log: Path):
        self.log = open(log, "ab")
        repo = Path(__file__).resolve().parent.parent
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "bench.latency", "--rtt-ms", str(rtt_ms), *map(str, upstreams)],
            cwd=repo, stdout=subprocess.PIPE, stderr=self.log, stdin=subprocess.DEVNULL, text=True)
        line = self.proc.stdout.readline()
        if not line:
            self.stop()
            raise RuntimeError(f"the latency proxy did not start; see {log}")
        self.ports = {int(k): v for k, v in json.loads(line).items()}

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


def main(argv: list | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.latency", description=__doc__)
    parser.add_argument("--rtt-ms", type=float, required=True)
    parser.add_argument("ports", type=int, nargs="+", help="upstream ports on 127.0.0.1")
    args = parser.parse_args(argv)
    asyncio.run(_main(args.ports, args.rtt_ms / 1000))
    return 0


if __name__ == "__main__":
    sys.exit(main())
