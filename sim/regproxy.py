"""Read-only stand-in for the real registries' hostnames, in front of the local registry.

registries.conf rewrites pulls to `127.0.0.1:PORT/<domain>/...`, but skopeo asks
some things of the *original* registry: `skopeo inspect` lists the repository's
tags at `registry-1.docker.io` whatever the mirrors say. Each host's /etc/hosts
sends the real registry hostnames to this proxy (a fleet-private loopback address,
port 80, reached by skopeo's plain-HTTP fallback for `insecure` registries), which
serves `/v2/<repo>/...` from the local registry's `/v2/<domain>/<repo>/...`.

Run as `python -m sim.regproxy --listen 127.A.B.C --upstream 127.0.0.1:PORT`.
"""

from __future__ import annotations

import argparse
import hashlib
import http.client
import socket
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

# Hostnames a client uses for a registry -> the domain its images are stored under.
HOST_ALIASES = {"registry-1.docker.io": "docker.io", "index.docker.io": "docker.io"}
FORWARDED_REQUEST_HEADERS = ("Accept", "Range", "If-None-Match")
HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length"}


def listen_address(seed: str, attempt: int = 0) -> str:
    """A fleet-private loopback address derived from `seed` (the sim DIR)."""
    h = hashlib.sha256(f"{seed}#{attempt}".encode()).digest()
    return f"127.{h[0] % 200 + 50}.{h[1] % 254 + 1}.{h[2] % 254 + 1}"


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    upstream = ""

    def log_message(self, *args) -> None:
        pass

    def _domain(self) -> str:
        host = (self.headers.get("Host") or "").rsplit(":", 1)[0].lower()
        return HOST_ALIASES.get(host, host)

    def _forward(self, with_body: bool) -> None:
        path = self.path
        if path.startswith("/v2/") and path not in ("/v2/", "/v2"):
            path = f"/v2/{self._domain()}/{path[len('/v2/'):]}"
        headers = {k: self.headers[k] for k in FORWARDED_REQUEST_HEADERS if k in self.headers}
        conn = http.client.HTTPConnection(self.upstream, timeout=30)
        try:
            conn.request(self.command, path, headers=headers)
            resp = conn.getresponse()
            body = resp.read()
            self.send_response(resp.status)
            for key, value in resp.getheaders():
                if key.lower() not in HOP_BY_HOP:
                    self.send_header(key, value)
            length = resp.getheader("Content-Length") if not with_body else str(len(body))
            if length is not None:
                self.send_header("Content-Length", length)
            self.end_headers()
            if with_body:
                self.wfile.write(body)
        except OSError:
            self.send_error(502)
        finally:
            conn.close()

    def do_GET(self) -> None:
        self._forward(with_body=True)

    def do_HEAD(self) -> None:
        self._forward(with_body=False)


def serve(listen: str, upstream: str, port: int = 80) -> None:
    Handler.upstream = upstream
    ThreadingHTTPServer.allow_reuse_address = True
    ThreadingHTTPServer.daemon_threads = True
    server = ThreadingHTTPServer((listen, port), Handler)
    server.serve_forever()


def main() -> None:
    ap = argparse.ArgumentParser(prog="sim.regproxy")
    ap.add_argument("--listen", required=True)
    ap.add_argument("--upstream", required=True)
    ap.add_argument("--port", type=int, default=80)
    args = ap.parse_args()
    try:
        serve(args.listen, args.upstream, args.port)
    except (OSError, socket.error) as exc:
        raise SystemExit(f"sim.regproxy: cannot listen on {args.listen}:{args.port}: {exc}")
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
