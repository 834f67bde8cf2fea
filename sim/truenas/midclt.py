"""`midclt`: the TrueNAS middleware client, with the option grammar of each generation.

* 24.10: `-q` is global; `call -j` takes a value (`type=bool`), so `call -j app.create X`
  swallows `app.create` as the flag's value and calls `X` as the method.
* 25.04: `-q` global; `call -j` is a plain flag.
* 25.10: `-q` moved to `call`.
* 26.0+: a final argument `-` reads one JSON payload from stdin (api_client PR #56).

A job method called without `-j` prints its job id and exits 0, whatever the job's fate.
With `-j` it waits for the job and fails (exit 1) when the job fails. Results that are an
int or a str are printed raw, anything else as one line of JSON. Errors go to stderr (exit 1).
A login with `-U/-P` or `-K` always fails here, printing `Failed to login:  <reason>` on
stdout and exiting 0, as midclt does.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

from . import apps, paths, store
from .errors import ClientError, MiddlewareError


def parser(version: tuple) -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="midclt")
    ap.add_argument("-u", "--uri")
    ap.add_argument("-U", "--username")
    ap.add_argument("-P", "--password")
    ap.add_argument("-K", "--api-key")
    ap.add_argument("-t", "--timeout", type=int)
    if version < (25, 10):
        ap.add_argument("-q", "--quiet", action="store_true")
    sub = ap.add_subparsers(dest="name")
    call = sub.add_parser("call")
    if version >= (25, 10):
        call.add_argument("-q", "--quiet", action="store_true")
    if version >= (25, 4):
        call.add_argument("-j", "--job", action="store_true")
    else:
        call.add_argument("-j", "--job", type=bool, default=False)
    call.add_argument("-jp", "--job-print", type=str, choices=("progressbar", "description"),
                      default="progressbar")
    call.add_argument("method", nargs="+")
    sub.add_parser("ping")
    subscribe = sub.add_parser("subscribe")
    subscribe.add_argument("event")
    subscribe.add_argument("-n", "--number", type=int)
    return ap


def _params(raw: list[str], version: tuple) -> list:
    out, stdin_text = [], None
    for item in raw:
        if item == "-" and version >= (26,):
            if stdin_text is None:
                stdin_text = sys.stdin.read()
            item = stdin_text
        try:
            out.append(json.loads(item))
        except ValueError:
            out.append(item)
    return out


def _print_result(value) -> None:
    if isinstance(value, (int, str)):
        print(value)
    else:
        print(json.dumps(value))


def _call(method: str, params: list, version: tuple, job: bool):
    if (paths.middleware_dir() / "middleware_down").exists():
        raise ConnectionRefusedError
    func = apps.METHODS.get(method)
    if func is None:
        raise ClientError("Method does not exist")
    with store.locked() as state:
        ctx = apps.Context(state, version)
        if method in apps.ROLES:
            ctx.authorize(apps.ROLES[method])
        result = func(ctx, params)
    if not (job and method in apps.JOB_METHODS):
        return result
    with store.locked() as state:
        finish_at = next(j for j in state.jobs if j["id"] == result)["finish_at"]
    if finish_at > time.time():
        time.sleep(finish_at - time.time())          # -j waits without limit, lock released
    with store.locked() as state:
        view = next(apps.jobs.view(j) for j in state.jobs if j["id"] == result)
    if view["state"] != "SUCCESS":
        raise JobFailed(view)
    return view["result"]


class JobFailed(MiddlewareError):
    def __init__(self, job: dict):
        super().__init__(job.get("error"))
        self.job = job

    def text(self) -> str:
        return (self.job.get("error") or "").rstrip("\n")

    def traceback(self) -> str:
        return self.job.get("exception") or ""

    def extra(self):
        return (self.job.get("exc_info") or {}).get("extra")


def main(argv: list[str]) -> int:
    version = paths.version_tuple()
    args = parser(version).parse_args(argv)        # usage errors exit 2, as argparse does
    if args.name == "ping":
        print("pong")
        return 0
    if args.name != "call":
        parser(version).print_help()
        return 0
    if (args.username and args.password) or args.api_key or (args.username and not args.password):
        print("Failed to login: ", "Invalid username or password")
        return 0
    try:
        result = _call(args.method[0], _params(args.method[1:], version), version, bool(args.job))
    except (FileNotFoundError, ConnectionRefusedError):
        print("Failed to run middleware call. Daemon not running?", file=sys.stderr)
        return 1
    except MiddlewareError as exc:
        if not args.quiet:
            sys.stderr.write(exc.render())
        return 1
    _print_result(result)
    return 0
