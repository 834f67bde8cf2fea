"""Where homefleet's CPU goes in `pulumi up` (a new fleet) and in a one-app update.

    python -m bench.profile [--hosts 2 --apps 3 --latency-ms 30 --create-ms 1500 --image-mb 16]

Two views of the same runs:
- /proc accounting: every process under the Pulumi CLI is sampled every 50 ms (utime + stime
  of /proc/PID/stat; a process's last < 50 ms are missed) and summed by kind: the CLI (Go: the
  engine, state, plan), the language host (Go), the program (Python), the dynamic provider
  processes (Python), and the rest (sh wrappers, pip checks). `total` is RUSAGE_CHILDREN, exact.
- py-spy (pinned in requirements.txt) samples the Python processes (`--subprocesses`, active
  threads only) and each sample is put in the first bucket whose frames it contains: imports
  (process start), unpickling the provider, SSH transport and crypto (paramiko, cryptography,
  PyNaCl), homefleet's per-call provider code, the program's own code, gRPC and the Pulumi SDK.

The engine's floor (bench/floor/, the same resource count) is profiled the same way beside
each, so homefleet's overhead can be split by process. Prints one JSON line per scenario and
tool; the work folder keeps the raw py-spy stacks.
"""

from __future__ import annotations

import argparse
import functools
import json
import linecache
import re
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path


from . import fleet as bench_fleet
from .floor_side import STACK as FLOOR, FloorRunner
from .homefleet_side import STACK, UPDATED_MEMORY, HomefleetRunner, children_cpu
from .latency import LatencyProxy

TICK = os.sysconf("SC_CLK_TCK")
# (bucket, substrings of a frame "function (file:line)"); the first bucket a sample's stack hits.
BUCKETS = (
    ("imports", ("_find_and_load", "_call_with_frames_removed")),
    ("unpickling the provider", ("(dill/", "cloudpickle", "(pickle.py", "_unpickle")),
    ("SSH transport and crypto", ("(paramiko/", "(cryptography/", "(nacl/", "(bcrypt/")),
    ("homefleet provider code", ("(providers/",)),
    ("homefleet program code", ("(homefleet/", " (__main__.py:")),
    ("pip", ("(pip/",)),
    ("gRPC, protobuf and the Pulumi SDK", ("(grpc/", "(pulumi/", "(google/")),
    ("asyncio event loop", ("(asyncio/", "(selectors.py")),
)
# A sample whose innermost Python line is a blocking call (a C function: poll, recv, a lock, a
# condition) is a thread waiting, not working: py-spy's own idle detection does not see through
# the simulator's pid namespaces, so the bench looks at the line itself.
BLOCKING = re.compile(r"\b(poll|recv|recv_into|select|wait|sleep|acquire|accept|readinto|_blocking|get)\(")
_ROOTS = [Path(p) for p in sys.path if p and Path(p).is_dir()] + [Path(__file__).resolve().parent.parent]


@functools.lru_cache(maxsize=None)
def _source(frame: str) -> str:
    """The source line of a py-spy frame "function (file:line)", or ""."""
    match = re.search(r"\((.+):(\d+)\)$", frame)
    if not match:
        return ""
    for root in _ROOTS:
        line = linecache.getline(str(root / match.group(1)), int(match.group(2)))
        if line:
            return line
    return ""


def idle(frames: list) -> bool:
    return bool(frames) and bool(BLOCKING.search(_source(frames[-1])))


def _kind(cmdline: str) -> str:
    if "-m pip " in cmdline:
        return "pip list (the language host's plugin scan)"
    if "pulumi.dynamic" in cmdline or "pulumi-resource-pulumi-python" in cmdline:
        return "provider process (Python)"
    if "pulumi-language-python-exec" in cmdline:
        return "program (Python)"
    if "pulumi-language-python" in cmdline:
        return "language host (Go)"
    if cmdline.split(" ")[0].endswith("pulumi"):
        return "Pulumi CLI and engine (Go)"
    return "other (sh, pip checks)"


class ProcCpu:
    """CPU seconds of every descendant of `root`, by kind, sampled from /proc."""

    def __init__(self, root: int):
        self.root = root
        self.last: dict = {}       # pid -> (kind, seconds)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()

    def _children(self) -> dict:
        parent = {}
        for pid in os.listdir("/proc"):
            if pid.isdigit():
                try:
                    stat = Path(f"/proc/{pid}/stat").read_text()
                    fields = stat[stat.rindex(")") + 2:].split()
                    parent[int(pid)] = (int(fields[1]), (int(fields[11]) + int(fields[12])) / TICK)
                except (OSError, ValueError, IndexError):
                    continue
        return parent

    def _loop(self) -> None:
        while not self._stop.is_set():
            procs = self._children()
            mine = {self.root}
            grew = True
            while grew:
                grew = False
                for pid, (ppid, _) in procs.items():
                    if ppid in mine and pid not in mine:
                        mine.add(pid)
                        grew = True
            for pid in mine - {self.root}:
                if pid in self.last:
                    self.last[pid] = (self.last[pid][0], procs[pid][1])
                    continue
                try:
                    cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
                except OSError:
                    continue
                self.last[pid] = (_kind(cmd), procs[pid][1])
            self._stop.wait(0.05)

    def stop(self) -> dict:
        self._stop.set()
        self._thread.join()
        out: dict = {}
        for kind, seconds in self.last.values():
            out[kind] = round(out.get(kind, 0) + seconds, 2)
        return out


def classify(raw: Path, rate: int) -> dict:
    """py-spy raw stacks -> {"process kind: bucket": seconds of active samples}."""
    buckets: dict = {}
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        seconds = int(count) / rate
        frames = [f for f in stack.split(";") if not f.startswith("process ")]
        processes = [f for f in stack.split(";") if f.startswith("process ")]
        if not frames or not processes or idle(frames):
            continue
        kind = _kind(processes[-1].split(":", 1)[1].strip('"'))
        if kind.startswith("other"):
            continue        # the wrapper, waiting for pulumi
        bucket = "other"
        for name, needles in BUCKETS:
            if any(n in f for f in frames for n in needles):
                bucket = name
                break
        key = f"{kind.split(' (')[0]}: {bucket}"
        buckets[key] = round(buckets.get(key, 0) + seconds, 2)
    return dict(sorted(buckets.items(), key=lambda kv: -kv[1]))


def profile(runner, args: tuple, out_dir: Path, name: str, rate: int, stack: str = STACK) -> dict:
    raw = out_dir / f"{name}.pyspy.txt"
    # py-spy needs a Python process at the root; no ";" in it (py-spy's raw format splits on it).
    wrapper = [sys.executable, "-c", "__import__('sys').exit(__import__('subprocess').call(__import__('sys').argv[1:]))",
               "pulumi", *args, "--yes", "--non-interactive", "--stack", stack]
    argv = [str(Path(sys.executable).parent / "py-spy"), "record", "--subprocesses", "--nonblocking", "--format", "raw",
            "--rate", str(rate), "-o", str(raw), "--", *wrapper]
    cpu = children_cpu()
    began = time.monotonic()
    proc = subprocess.Popen(argv, cwd=runner.project.workdir, env=runner.project.env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    sampler = ProcCpu(proc.pid)
    out, err = proc.communicate(timeout=1800)
    wall = time.monotonic() - began
    by_process = sampler.stop()
    total = children_cpu() - cpu
    if proc.returncode != 0:
        raise RuntimeError(f"pulumi {' '.join(args)} failed:\n{out[-3000:]}\n{err[-3000:]}")
    py_spy = by_process.pop("other (sh, pip checks)", 0)  # py-spy itself and the wrapper are not pulumi's
    return {"scenario": name, "wall_s": round(wall, 2), "cpu_s": round(sum(by_process.values()), 2),
            "cpu_by_process_s": by_process, "python_cpu_by_bucket_s": scale(classify(raw, rate), by_process)}


def scale(samples: dict, by_process: dict) -> dict:
    """py-spy counts a thread that is runnable but not running (a busy machine) as active, so
    its seconds are shares, not CPU: each process kind's shares times its /proc CPU."""
    out = {}
    for kind, cpu in by_process.items():
        short = kind.split(" (")[0]
        mine = {k: v for k, v in samples.items() if k.startswith(short + ": ")}
        total = sum(mine.values())
        for key, value in mine.items():
            out[key] = round(cpu * value / total, 2) if total else 0.0
    return dict(sorted(out.items(), key=lambda kv: -kv[1]))


def main(argv: list | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.profile", description=__doc__)
    parser.add_argument("--hosts", type=int, default=2)
    parser.add_argument("--apps", type=int, default=3)
    parser.add_argument("--latency-ms", type=float, default=30)
    parser.add_argument("--create-ms", type=float, default=1500)
    parser.add_argument("--image-mb", type=float, default=16)
    parser.add_argument("--rate", type=int, default=100, help="py-spy samples per second")
    parser.add_argument("--dir", type=Path)
    args = parser.parse_args(argv)
    size = bench_fleet.Size(args.hosts, args.apps, args.latency_ms, args.create_ms, args.image_mb)
    workdir = (args.dir or Path(tempfile.mkdtemp(prefix="homefleet-profile-"))).resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    sim = bench_fleet.start(workdir / "sim", size)
    proxy = None
    try:
        ports = {}
        if size.latency_ms > 0:
            proxy = LatencyProxy([h.port for h in sim.hosts], size.latency_ms, workdir / "latency.log")
            ports = {h.name: proxy.ports[h.port] for h in sim.hosts}
        runner = HomefleetRunner(workdir / "homefleet", sim, size, ports=ports)
        floor = FloorRunner(workdir / "floor", size)
        runner._write()
        floor._write()
        print(json.dumps({"tool": "homefleet", **profile(runner, ("up",), workdir, "up", args.rate)}), flush=True)
        print(json.dumps({"tool": "floor", **profile(floor, ("up",), workdir, "floor-up", args.rate, FLOOR)}),
              flush=True)
        first = runner.first_app()
        runner._write({first: UPDATED_MEMORY})
        floor._write({first: UPDATED_MEMORY})
        print(json.dumps({"tool": "homefleet", **profile(runner, ("up",), workdir, "update", args.rate)}), flush=True)
        print(json.dumps({"tool": "floor", **profile(floor, ("up",), workdir, "floor-update", args.rate, FLOOR)}),
              flush=True)
        runner.project.pulumi("destroy", "--yes", stack=STACK)
    finally:
        if proxy is not None:
            proxy.stop()
        bench_fleet.stop(workdir / "sim")
    print(f"raw py-spy stacks: {workdir}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
