"""`curl` on a simulated PVE host: the addresses of its CTs and the rest of 198.18.0.0/15 are
answered by sim/pve/probe.py, anything else runs the machine's curl with the same arguments.

Exit codes and messages as curl 8 prints them (curl `include/curl/curl.h` CURLcode,
`src/tool_operate.c`; the messages are libcurl's `curl_easy_strerror` texts):
7 CURLE_COULDNT_CONNECT `Failed to connect to <ip> port <n> after <t> ms: Couldn't connect to
server` (refused, and a stopped CT's address: no route to host), 22 CURLE_HTTP_RETURNED_ERROR
with `-f` on a status >= 400 (`The requested URL returned error: <status>`), 2 for an option
this simulation does not know. `-s` silences the message, `-S` shows it again; `-w` knows
`%{http_code}` (000 without a response) and `%{num_connects}`; `-o FILE` writes the body.
"""

from __future__ import annotations

import os
import sys
from urllib.parse import urlsplit

from . import probe

REAL_CURL = "/usr/bin/curl"
WITH_VALUE = {"-o": "output", "--output": "output", "-w": "write", "--write-out": "write",
              "-m": "max", "--max-time": "max", "--connect-timeout": "connect", "-H": None,
              "--header": None, "-X": None, "--request": None, "-A": None, "--user-agent": None,
              "--retry": None, "--retry-delay": None}
FLAGS = {"-s": "silent", "--silent": "silent", "-S": "show", "--show-error": "show",
         "-f": "fail", "--fail": "fail", "-L": None, "--location": None, "-k": None,
         "--insecure": None, "-4": None, "-q": None, "--no-progress-meter": None}
SHORT_VALUE = {"o", "w", "m", "H", "X", "A"}


class Usage(Exception):
    pass


def parse(argv: list[str]) -> tuple[dict, list[str]]:
    opts: dict = {}
    urls: list[str] = []
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg in WITH_VALUE:
            if i + 1 >= len(argv):
                raise Usage(f"option {arg}: requires parameter")
            if WITH_VALUE[arg]:
                opts[WITH_VALUE[arg]] = argv[i + 1]
            i += 2
            continue
        if arg in FLAGS:
            if FLAGS[arg]:
                opts[FLAGS[arg]] = True
        elif arg.startswith("--"):
            raise Usage(f"option {arg}: is unknown")
        elif arg.startswith("-") and len(arg) > 1:
            j = 1
            while j < len(arg):
                ch = arg[j]
                if ch in SHORT_VALUE:
                    value = arg[j + 1:] or (argv[i + 1] if i + 1 < len(argv) else None)
                    if value is None:
                        raise Usage(f"option -{ch}: requires parameter")
                    if not arg[j + 1:]:
                        i += 1
                    if WITH_VALUE[f"-{ch}"]:
                        opts[WITH_VALUE[f"-{ch}"]] = value
                    break
                if f"-{ch}" not in FLAGS:
                    raise Usage(f"option -{ch}: is unknown")
                if FLAGS[f"-{ch}"]:
                    opts[FLAGS[f"-{ch}"]] = True
                j += 1
        else:
            urls.append(arg)
        i += 1
    return opts, urls


def _target(url: str) -> tuple[str, int, str] | None:
    parts = urlsplit(url if "://" in url else "http://" + url)
    if parts.scheme not in ("http", "telnet") or not parts.hostname:
        return None
    port = parts.port or 80
    return parts.hostname, port, parts.path or "/"


def _write_out(fmt: str, code: int, connects: int) -> str:
    out = fmt.replace("%{http_code}", f"{code:03d}").replace("%{response_code}", f"{code:03d}")
    out = out.replace("%{num_connects}", str(connects))
    return out.replace("\\n", "\n")


def fetch(argv: list[str], conf_for_host=None) -> int:
    """Run curl `argv`; `conf_for_host(host)` gives the CT that answers `host`, or None for a
    host this simulation leaves to the real curl (returns -1 then)."""
    try:
        opts, urls = parse(argv)
    except Usage as exc:
        sys.stderr.write(f"curl: {exc}\ncurl: try 'curl --help' for more information\n")
        return 2
    targets = [_target(u) for u in urls]
    if len(urls) != 1 or targets[0] is None:
        return -1
    host, port, path = targets[0]
    found, conf = conf_for_host(host)
    if not found:
        return -1
    quiet = opts.get("silent") and not opts.get("show")
    ans = probe.answer(conf, port, path)
    write = opts.get("write")
    if ans.kind != "http":
        if write:
            sys.stdout.write(_write_out(write, 0, 0))
        if not quiet:
            sys.stderr.write(f"curl: (7) Failed to connect to {host} port {port} after "
                             f"{0 if ans.kind == 'refused' else 3071} ms: Couldn't connect to server\n")
        return 7
    if opts.get("fail") and ans.status >= 400:
        if write:
            sys.stdout.write(_write_out(write, ans.status, 1))
        if not quiet:
            sys.stderr.write(f"curl: (22) The requested URL returned error: {ans.status}\n")
        return 22
    if opts.get("output") and opts["output"] != "-":
        with open(opts["output"], "w") as fh:
            fh.write(ans.body)
    else:
        sys.stdout.write(ans.body)
    if write:
        sys.stdout.write(_write_out(write, ans.status, 1))
    return 0


def _host_conf(host: str):
    """A CT of this host answers for its address (a static one may be anywhere: 192.0.2.x);
    the rest of 198.18.0.0/15 is simulated and unreachable; any other host is the real curl's."""
    try:
        import ipaddress
        ipaddress.ip_address(host)
    except ValueError:
        return False, None
    conf = probe.ct_at(host)
    if conf is not None or probe.simulated(host):
        return True, conf
    return False, None


def main(argv: list[str]) -> int:
    rc = fetch(argv, _host_conf)
    if rc >= 0:
        return rc
    sys.stdout.flush()
    os.execv(REAL_CURL, ["curl", *argv])
    return 127
