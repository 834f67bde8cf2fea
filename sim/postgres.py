"""A throwaway PostgreSQL server on loopback, for Pulumi's DIY `postgres://` backend.

    with running_postgres() as pg:
        env["PULUMI_BACKEND_URL"] = pg.url()        # postgres://homefleet:…@127.0.0.1:PORT/pulumi
        pg.stop(); pg.start()                        # the same cluster, stopped and started again
        pg.sql("SELECT key FROM pulumi_state")       # rows, via psql

Uses Debian's `postgresql` package (tools/system-deps.sh installs it): `initdb` makes a cluster
in a fresh temp folder, `pg_ctl` runs it listening on 127.0.0.1 only (no Unix socket), with
password (SCRAM) authentication over TLS only (pg_hba `hostssl`): a throwaway CA (`pg.ca`) signs the server's certificate
for IP 127.0.0.1, so clients can use `sslmode=verify-full`. PostgreSQL refuses to run as root, so as root the cluster
belongs to, and runs as, the unprivileged `postgres` (or `nobody`) user. The folder is removed
when the block ends, however it ends.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import secrets
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path
from typing import Iterator
from urllib.parse import quote

USER = "homefleet"
DATABASE = "pulumi"


def bin_dir() -> Path:
    """The newest PostgreSQL server binaries: Debian keeps them out of PATH, per major version."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"),
                   key=lambda p: int(Path(p).parent.parent.name) if Path(p).parent.parent.name.isdigit() else 0)
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    if initdb:
        return Path(initdb).parent
    raise RuntimeError("no PostgreSQL server found (initdb); run tools/system-deps.sh to install Debian's "
                       "`postgresql` package")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _run_as() -> dict:
    """subprocess keyword arguments that drop root to an unprivileged user (PostgreSQL demands it)."""
    if os.geteuid() != 0:
        return {}
    for name in ("postgres", "nobody"):
        try:
            user = pwd.getpwnam(name)
        except KeyError:
            continue
        return {"user": user.pw_uid, "group": user.pw_gid, "extra_groups": []}
    raise RuntimeError("running as root and no unprivileged user (postgres, nobody) to run PostgreSQL as")


class Postgres:
    def __init__(self, base: Path):
        self.base = base
        self.data = base / "data"
        self.log = base / "postgres.log"
        self.port = _free_port()
        self.password = secrets.token_urlsafe(18)
        self.bin = bin_dir()
        self.as_user = _run_as()

    def _tool(self, name: str, *args: str, check: bool = True, env: dict | None = None,
              input: str | None = None) -> subprocess.CompletedProcess:
        proc = subprocess.run([str(self.bin / name), *args], capture_output=True, text=True, cwd=self.base,
                              env={**os.environ, "HOME": str(self.base), **(env or {})}, input=input, timeout=120, **self.as_user)
        if check and proc.returncode != 0:
            raise RuntimeError(f"{name} {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}"
                               f"\n{self.log.read_text() if self.log.exists() else ''}")
        return proc

    @property
    def ca(self) -> Path:
        return self.base / "ca.crt"

    def _certificates(self) -> None:
        """A CA and a server certificate for 127.0.0.1 (openssl), the key readable by the server only."""
        def openssl(*args: str) -> None:
            subprocess.run(["openssl", *args], cwd=self.base, check=True, capture_output=True, timeout=60)
        ec = ("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes")
        openssl("req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.crt", "-subj", "/CN=homefleet test CA",
                "-days", "2")
        openssl("req", *ec, "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=127.0.0.1")
        (self.base / "san.ext").write_text("subjectAltName=IP:127.0.0.1\n")
        openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
                "-out", "server.crt", "-days", "2", "-extfile", "san.ext")
        key = self.base / "server.key"
        key.chmod(0o600)
        if self.as_user:
            os.chown(key, self.as_user["user"], self.as_user["group"])

    def init(self) -> None:
        self._certificates()
        pwfile = self.base / "pwfile"
        pwfile.write_text(self.password + "\n")
        if self.as_user:
            for path in (self.base, pwfile):
                os.chown(path, self.as_user["user"], self.as_user["group"])
        self._tool("initdb", "-D", str(self.data), "-U", USER, f"--pwfile={pwfile}", "--auth=scram-sha-256",
                   "-E", "UTF8", "--no-instructions")
        pwfile.unlink()
        # TCP with TLS only, as a server on a network should be: a client that did not use TLS fails.
        (self.data / "pg_hba.conf").write_text("hostssl all all 127.0.0.1/32 scram-sha-256\n")

    def start(self) -> None:
        options = (f"-c listen_addresses=127.0.0.1 -p {self.port} -c unix_socket_directories='' -c ssl=on"
                   f" -c ssl_cert_file={self.base / 'server.crt'} -c ssl_key_file={self.base / 'server.key'}")
        self._tool("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-o", options, "-w", "-t", "60", "start")

    def stop(self, mode: str = "fast") -> None:
        """`fast` ends open sessions; `immediate` is a crash as far as the clients can tell."""
        self._tool("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "-t", "60", "stop")

    @property
    def running(self) -> bool:
        return self._tool("pg_ctl", "-D", str(self.data), "status", check=False).returncode == 0

    def url(self, database: str = DATABASE, password: bool = True, **params: str) -> str:
        """The backend URL (TLS, server verified); with password=False the client must get the
        password from PGPASSWORD. `params` add to or replace the query (sslmode=None drops it)."""
        params = {"sslmode": "verify-full", "sslrootcert": str(self.ca), **params}
        query = "&".join(f"{k}={quote(v, safe='/')}" for k, v in params.items() if v is not None)
        auth = f"{USER}:{quote(self.password, safe='')}" if password else USER
        return f"postgres://{auth}@127.0.0.1:{self.port}/{database}?{query}"

    def sql(self, query: str, database: str = DATABASE) -> list:
        """Rows of a query (tab-separated fields), run with psql over TCP."""
        proc = self._tool("psql", "-h", "127.0.0.1", "-p", str(self.port), "-U", USER, "-d", database,
                          "-X", "-A", "-t", "-F", "\t", "-v", "ON_ERROR_STOP=1", "-c", query,
                          env={"PGPASSWORD": self.password, "PGCONNECT_TIMEOUT": "5", "PGSSLMODE": "verify-full",
                               "PGSSLROOTCERT": str(self.ca)})
        return [line.split("\t") for line in proc.stdout.splitlines() if line]


@contextlib.contextmanager
def running_postgres() -> Iterator[Postgres]:
    """A new cluster with an empty `pulumi` database, stopped and deleted when the block ends."""
    # Not under pytest's tmp_path: that is private to root, and the server runs as another user.
    base = Path(tempfile.mkdtemp(prefix="homefleet-pg-"))
    pg = Postgres(base)
    try:
        pg.init()
        pg.start()
        pg.sql(f"CREATE DATABASE {DATABASE}", database="postgres")
        yield pg
    finally:
        try:
            if pg.data.exists() and pg.running:
                pg.stop("immediate")
        finally:
            shutil.rmtree(base, ignore_errors=True)

