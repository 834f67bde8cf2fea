"""Middleware jobs: a job method returns an id at once; `core.get_jobs` reports its progress.

A job's outcome is decided when it is submitted, but it reports `RUNNING` until its finish
time (`job_seconds` after submission), then `SUCCESS` or `FAILED` with `result`, `error`,
`exception` and `exc_info` as the middleware records them. Arguments are stored redacted
the way the middleware redacts private fields (`custom_compose_config*`, `values`).
"""

from __future__ import annotations

import copy
import time

from .errors import MiddlewareError
from .timing import job_seconds

SECRET_FIELDS = ("custom_compose_config", "custom_compose_config_string", "values")
REDACTED = "********"
KEEP_JOBS = 200


def _date(ts: float | None):
    return None if ts is None else {"$date": int(ts * 1000)}


def redact(arguments: list) -> list:
    out = copy.deepcopy(arguments)
    for arg in out:
        if isinstance(arg, dict):
            for key in SECRET_FIELDS:
                if key in arg:
                    arg[key] = REDACTED
    return out


def submit(state, method: str, arguments: list, outcome, description: str) -> int:
    """Record a finished-in-the-future job; `outcome` is a result or a MiddlewareError."""
    now = time.time()
    job_id = max((j["id"] for j in state.jobs), default=0) + 1
    job = {
        "id": job_id, "method": method, "arguments": redact(arguments), "transient": False,
        "description": None, "abortable": False, "logs_path": None, "logs_excerpt": None,
        "progress": {"percent": 100, "description": description, "extra": None},
        "result": None, "error": None, "exception": None, "exc_info": None,
        "state": "SUCCESS", "time_started": _date(now), "finish_at": now + job_seconds(),
    }
    if isinstance(outcome, MiddlewareError):
        job.update(state="FAILED", error=outcome.job_text(), exception=outcome.traceback(),
                   exc_info=outcome.exc_info())
        job["progress"]["description"] = f"{description} failed"
    else:
        job["result"] = outcome
    state.jobs.append(job)
    del state.jobs[:-KEEP_JOBS]
    return job_id


def view(job: dict, now: float | None = None) -> dict:
    """The job as `core.get_jobs` shows it at time `now`."""
    now = time.time() if now is None else now
    out = {k: v for k, v in job.items() if k != "finish_at"}
    if now < job["finish_at"]:
        out.update(state="RUNNING", result=None, error=None, exception=None, exc_info=None,
                   time_finished=None, progress={"percent": 50, "description": "In progress",
                                                 "extra": None})
    else:
        out["time_finished"] = _date(job["finish_at"])
    return out
