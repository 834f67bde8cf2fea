"""The pure parts of `bench --plot` (table, plot) and `bench.profile` (py-spy's raw stacks into
buckets, scaled to /proc CPU), on made-up figures: no fleet, no engine."""

from bench import profile, sweep
from bench.fleet import Size


def _entry(hosts, apps, scenario, hf, floor, ansible):
    return {"scenario": scenario, "hosts": hosts, "apps_per_host": apps,
            "homefleet": {"wall_s": hf, "cpu_s": 1.0}, "floor": {"wall_s": floor, "cpu_s": 0.5},
            "ansible": {"wall_s": ansible, "cpu_s": 2.0}, "ratio_ansible": {"wall_s": round(hf / ansible, 3)},
            "overhead": {"wall_s": round(hf - floor, 2), "cpu_s": 0.5}}


LINES = [("hosts", _entry(1, 3, "up", 6.0, 2.0, 12.0)), ("hosts", _entry(4, 3, "up", 8.0, 2.5, 14.0)),
         ("apps", _entry(1, 10, "up", 9.0, 2.5, 40.0)), ("apps", _entry(1, 10, "refresh", 1.0, 1.0, 2.0))]


def test_sweep_sizes_run_one_host_three_apps_once():
    sizes = sweep.sizes(Size(), (1, 4), (3, 10))
    assert [(axis, s.hosts, s.apps) for axis, s in sizes] == [("hosts", 1, 3), ("hosts", 4, 3), ("apps", 1, 10)]


def test_the_table_has_one_row_per_shown_scenario_and_size(tmp_path):
    text = sweep.table(LINES, ["homefleet", "floor", "ansible"])
    rows = [r for r in text.splitlines() if r.startswith("| hosts") or r.startswith("| apps")]
    assert len(rows) == 3, "refresh is not in the sweep's table"
    assert "| 4 x 3 | up | 8.00 (1.00) | 2.50 (0.50) | 14.00 (2.00) | 0.571 | +5.50 (+0.50) |" in text


def test_the_plot_is_written_as_svg(tmp_path):
    out = tmp_path / "growth.svg"
    sweep.plot(LINES, ["homefleet", "floor", "ansible"], out)
    head = out.read_text()[:200]
    assert "<svg" in out.read_text() and head.startswith("<?xml")


def test_profile_buckets_leave_waits_out_and_scale_to_proc_cpu(tmp_path):
    raw = tmp_path / "raw.txt"
    provider = 'process 1:"python -c x";process 2:"/v/bin/python -u -m pulumi.dynamic 127.0.0.1:1"'
    program = 'process 1:"python -c x";process 3:"/v/bin/python /t/pulumi-language-python-exec --monitor m"'
    raw.write_text("\n".join([
        f"{provider};<module> (x.py:1);_find_and_load (<frozen importlib._bootstrap>:1176) 30",
        f"{provider};run (providers/transport/run.py:160);Packetizer.read_message (paramiko/packet.py:400) 10",
        f"{program};run (pulumi/runtime/stack.py:80);_run_once (asyncio/base_events.py:1922) 20",
        f"{program};Condition.wait (threading.py:327) 500",          # a wait: left out
    ]) + "\n")
    samples = profile.classify(raw, 100)
    assert samples == {"provider process: imports": 0.3, "provider process: SSH transport and crypto": 0.1,
                       "program: gRPC, protobuf and the Pulumi SDK": 0.2}
    scaled = profile.scale(samples, {"provider process (Python)": 0.8, "program (Python)": 1.0})
    assert scaled["provider process: imports"] == 0.6 and scaled["provider process: SSH transport and crypto"] == 0.2
    assert scaled["program: gRPC, protobuf and the Pulumi SDK"] == 1.0
