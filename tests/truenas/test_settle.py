"""providers/truenas_settle.py: when an app has settled, from app.query observations (pure)."""

from providers.truenas_settle import Settling, deadline_seconds, health_budget, restart_policy

LOOPING = {"services": {"db": {"image": "a:1", "restart": "always"}, "init": {"image": "b:1"}}}


def entry(state: str, *containers) -> dict:
    return {"state": state, "active_workloads": {"container_details": [
        {"service_name": name, "state": cstate} for name, cstate in containers]}}


def test_stable_running_settles_and_a_finished_one_shot_is_fine():
    s = Settling(LOOPING, stable=1.0, started=0.0)
    assert s.observe(entry("RUNNING", ("db", "running"), ("init", "exited")), 0.1) is None
    assert s.observe(entry("RUNNING", ("db", "running"), ("init", "exited")), 1.2) == "settled"


def test_a_crash_loop_flipping_running_and_stopped_is_caught():
    s = Settling(LOOPING, stable=1.0, started=0.0)
    verdicts = [s.observe(entry("RUNNING", ("db", "running")), 0.1), s.observe(entry("STOPPED"), 0.2),
                s.observe(entry("RUNNING", ("db", "exited"), ("init", "exited")), 0.3),
                s.observe(entry("RUNNING", ("db", "running")), 0.5), s.observe(entry("STOPPED"), 0.6),
                s.observe(entry("STOPPED"), 0.7)]
    assert verdicts == [None, None, None, None, None, "looping"]
    assert "the app keeps restarting: db" in s.explain("looping")


def test_a_healthcheck_that_never_passes_times_out_naming_the_service():
    config = {"services": {"web": {"image": "a:1", "healthcheck": {"test": ["CMD", "true"], "interval": "2s",
                                                                    "timeout": "1s", "retries": 2}}}}
    assert health_budget(config["services"]["web"]) == 6.0
    assert deadline_seconds(config, 1.0) == 11.0
    s = Settling(config, stable=1.0, started=0.0)
    assert s.observe(entry("DEPLOYING", ("web", "starting")), 10.0) is None
    assert s.observe(entry("DEPLOYING", ("web", "starting")), 11.0) == "timeout"
    assert s.explain("timeout").startswith("web did not become healthy within 11s")


def test_crashed_is_immediate_and_docker_defaults_apply():
    assert Settling(LOOPING, 1.0, 0.0).observe(entry("CRASHED", ("init", "crashed")), 0.1) == "crashed"
    assert health_budget({"healthcheck": {"test": "true"}}) == 180.0          # 3 x (30 s + 30 s)
    assert restart_policy({"deploy": {"restart_policy": {"condition": "any"}}}) == "always"
    assert restart_policy({"restart": "on-failure:3"}) == "on-failure"
