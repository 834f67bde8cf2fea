"""Golden tests for the midclt builders and parsers (pure: no host)."""

import json
import shlex

import pytest
import yaml

from providers.hosts import midclt, script
from providers.transport.quoting import to_command_line

COMPOSE = {"services": {"web": {"image": "nginx:1.27.3", "ports": ["8080:80"]}}}

VALIDATION_STDERR = (
    "[EINVAL] app_create.app_name: String should match pattern '^[a-z]([-a-z0-9]*[a-z0-9])?$'\n"
    "Traceback (most recent call last):\n"
    '  File "/usr/lib/python3/dist-packages/middlewared/main.py", line 211, in call_method\n'
    "middlewared.service_exception.ValidationErrors: [EINVAL] app_create.app_name: String should match\n"
    "[['app_create.app_name', \"String should match pattern '^[a-z]([-a-z0-9]*[a-z0-9])?$'\", 22]]\n")


@pytest.mark.parametrize("name, ok", [
    ("web", True), ("a", True), ("my-app2", True), ("a" * 40, True),
    ("", False), ("a" * 41, False), ("Web", False), ("2web", False), ("web-", False), ("we_b", False),
    ("-web", False), ("web app", False),
])
def test_app_name_rule_is_truenas_regex_and_length(name, ok):
    assert (midclt.app_name_problem(name) is None) is ok


def test_call_argv_is_one_json_element_per_argument_and_never_uses_j():
    argv = midclt.call_argv("app.create", midclt.create_payload("web", COMPOSE))
    assert argv[:3] == ["midclt", "call", "app.create"] and len(argv) == 4
    assert "-j" not in argv
    payload = json.loads(argv[3])
    assert payload["app_name"] == "web" and payload["custom_app"] is True
    assert yaml.safe_load(payload["custom_compose_config_string"]) == COMPOSE
    assert set(payload) == {"app_name", "custom_app", "custom_compose_config_string"}


def test_sudo_prefixes_every_call_with_non_interactive_sudo():
    assert midclt.call_argv("app.query", [], sudo=True)[:4] == ["sudo", "-n", "midclt", "call"]
    assert midclt.lifecycle_argv(True)[:3] == ["sudo", "-n", "tail"]


def test_stdin_mode_replaces_the_payload_with_a_dash():
    payload = midclt.update_payload(COMPOSE)
    argv = midclt.call_argv("app.update", "web", payload, stdin=True)
    assert argv == ["midclt", "call", "app.update", '"web"', "-"]
    assert json.loads(midclt.stdin_payload("web", payload)) == payload


def test_a_hostile_value_stays_one_argument_through_the_transport_quoting():
    evil = {"services": {"x": {"image": "a:1", "command": "'; rm -rf / #$(id)`id`"}}}
    argv = midclt.call_argv("app.update", "web", midclt.update_payload(evil))
    assert shlex.split(to_command_line(argv)) == argv


def test_marker_and_owner_round_trip():
    config = midclt.with_marker(COMPOSE, "fleet", "web")
    assert config["x-homefleet"] == {"stack": "fleet", "app": "web"}
    assert midclt.owner_of(config) == ("fleet", "web")
    assert midclt.owner_of(COMPOSE) is None
    assert midclt.owner_of({"x-homefleet": "fleet/web"}) is None
    assert midclt.owner_of(None) is None


def test_digest_ignores_key_order_but_not_values():
    a = {"services": {"web": {"image": "nginx:1", "ports": ["80:80"]}}}
    b = {"services": {"web": {"ports": ["80:80"], "image": "nginx:1"}}}
    assert midclt.digest(a) == midclt.digest(b)
    assert midclt.digest(a) != midclt.digest({"services": {"web": {"image": "nginx:2", "ports": ["80:80"]}}})


def test_delete_options_keep_ix_volumes_unless_data_deletion_was_asked():
    assert midclt.delete_options(False) == {"remove_images": True, "remove_ix_volumes": False}
    assert midclt.delete_options(True) == {"remove_images": True, "remove_ix_volumes": True}


def test_parse_output_json_raw_and_ints():
    assert midclt.parse_output('[{"name": "web"}]\n', "", 0) == [{"name": "web"}]
    assert midclt.parse_output("42\n", "", 0) == 42
    assert midclt.parse_output("25.04.2\n", "", 0) == "25.04.2"
    assert midclt.parse_output("null\n", "", 0) is None


def test_login_failure_exits_0_with_the_reason_on_stdout_and_is_still_an_error():
    with pytest.raises(midclt.MidcltError, match="could not log in.*Invalid username or password"):
        midclt.parse_output("Failed to login:  Invalid username or password\n", "", 0)


def test_validation_error_is_parsed_from_stderr_without_the_traceback():
    with pytest.raises(midclt.MidcltError) as err:
        midclt.parse_output("", VALIDATION_STDERR, 1)
    assert err.value.errors == [("EINVAL", "app_create.app_name",
                                 "String should match pattern '^[a-z]([-a-z0-9]*[a-z0-9])?$'")]
    assert "Traceback" not in err.value.message
    assert err.value.errno_name == "EINVAL"


@pytest.mark.parametrize("stderr, expect", [
    ("[ENOENT] ALL: App web does not exist\n", [("ENOENT", None, "App web does not exist")]),
    ("[EFAULT] Failed 'up' action for 'web' app. Please check /var/log/app_lifecycle.log for more details\n",
     [("EFAULT", None, "Failed 'up' action for 'web' app. Please check /var/log/app_lifecycle.log for more details")]),
    ("[EEXIST] Application with name web already exists\n",
     [("EEXIST", None, "Application with name web already exists")]),
])
def test_errno_lines(stderr, expect):
    assert midclt.parse_errors(stderr) == expect


def test_daemon_down_and_sudo_password_are_explained():
    with pytest.raises(midclt.MidcltError, match="middleware is not running"):
        midclt.parse_output("", "Failed to run middleware call. Daemon not running?\n", 1)
    with pytest.raises(midclt.MidcltError, match="NOPASSWD"):
        midclt.parse_output("", "sudo: a password is required\n", 1)


@pytest.mark.parametrize("text, version", [
    ("24.10.2.4", (24, 10, 2, 4)), ("TrueNAS-SCALE-24.10.2.4", (24, 10, 2, 4)),
    ("25.04.0", (25, 4, 0)), ("TrueNAS-25.10.0", (25, 10, 0)), ("26.0.0-BETA.1", (26, 0, 0)),
])
def test_parse_version(text, version):
    assert midclt.parse_version(text) == version


def test_version_text_keeps_the_month_two_digits():
    assert midclt.version_text((25, 4, 2)) == "25.04.2"
    assert midclt.version_text((24, 10, 2, 4)) == "24.10.2.4"


def test_job_failure_keeps_validation_attributes_from_exc_info():
    job = {"id": 7, "state": "FAILED",
           "error": "[EINVAL] app_create.custom_compose_config_string: Invalid YAML provided",
           "exc_info": {"type": "VALIDATION", "errno": 22,
                        "extra": [["app_create.custom_compose_config_string", "Invalid YAML provided", 22]]}}
    err = midclt.job_failure(job)
    assert err.errors == [("EINVAL", "app_create.custom_compose_config_string", "Invalid YAML provided")]
    call_error = midclt.job_failure({"id": 8, "state": "FAILED", "error": "[EEXIST] Application with name web "
                                     "already exists", "exc_info": {"type": "CALL", "errno": 17, "extra": None}})
    assert call_error.errno_name == "EEXIST"


def test_parse_job_id_refuses_anything_but_an_int():
    assert midclt.parse_job_id(12) == 12 and midclt.parse_job_id("12") == 12
    for bad in (True, "Failed", [1], None):
        with pytest.raises(midclt.MidcltError):
            midclt.parse_job_id(bad)


def test_published_ports_and_container_states_from_an_app_entry():
    entry = {"active_workloads": {
        "used_ports": [{"container_port": 80, "protocol": "tcp",
                        "host_ports": [{"host_port": 8080, "host_ip": "0.0.0.0"},
                                       {"host_port": 8080, "host_ip": "0.0.0.0"}]},
                       {"container_port": 53, "protocol": "udp", "host_ports": [{"host_port": 53, "host_ip": "::"}]}],
        "container_details": [{"service_name": "web", "state": "crashed", "image": "x:1"}]}}
    assert midclt.published_ports(entry) == [{"port": 53, "protocol": "udp", "host_ip": "::"},
                                             {"port": 8080, "protocol": "tcp", "host_ip": "0.0.0.0"}]
    assert midclt.container_states(entry) == ["web: crashed (x:1)"]


def test_lifecycle_tail_keeps_only_lines_about_the_app():
    log = ("[2025/01/01 10:00:00] (ERROR) app_lifecycle.compose_action():56 - Failed 'up' action for 'other' app: x\n"
           "[2025/01/01 10:00:01] (ERROR) app_lifecycle.compose_action():56 - Failed 'up' action for 'web' app: boom\n"
           "[2025/01/01 10:00:02] (ERROR) app_lifecycle.compose_action():60 - Container ix-web-web-1 exited\n"
           "[2025/01/01 10:00:03] (ERROR) app_lifecycle.compose_action():60 - Container ix-webber-web-1 exited\n")
    tail = midclt.lifecycle_tail(log, "web")
    assert len(tail) == 2 and "boom" in tail[0] and "ix-web-web-1" in tail[1]


@pytest.mark.parametrize("sudo", [False, True])
def test_a_payload_never_reaches_the_command_line(sudo):
    small = midclt.create_payload("web", COMPOSE)
    big = midclt.create_payload("web", {"services": {"web": {"image": "a:1", "environment": {"S": "x" * 300000}}}})
    for version in ((24, 10, 2, 4), (25, 4, 2), (25, 10, 0)):
        argv, stdin = midclt.payload_call("app.create", small, sudo=sudo, version=version)
        assert argv == midclt.payload_call("app.create", big, sudo=sudo, version=version)[0]
        assert argv == (["sudo", "-n"] if sudo else []) + ["python3", "-c", midclt.HELPER, "app.create"]
        words = json.loads(stdin)
        assert words[0] == "app.create" and json.loads(words[1]) == small
    argv, stdin = midclt.payload_call("app.update", "web", small, sudo=sudo, version=(26, 0))
    assert argv[-4:] == ["call", "app.update", '"web"', "-"] and json.loads(stdin) == small


def test_the_compose_text_quotes_every_string():
    text = midclt.compose_text({"services": {"w": {"image": "a:1", "environment": {"A": "1e3", "B": "0o17"},
                                                   "command": ["x", "8E1"], "init": True, "stop_grace_period": 3}}})
    assert '"A": "1e3"' in text and '- "8E1"' in text and '"init": true' in text and '"stop_grace_period": 3' in text
    assert yaml.safe_load(text)["services"]["w"]["environment"] == {"A": "1e3", "B": "0o17"}


def test_a_job_error_names_no_attribute_as_none():
    # the middleware's own str(ValidationErrors) (service_exception.py) writes `None`
    assert midclt.parse_errors("[ENOENT] None: App web does not exist\n") == [
        ("ENOENT", None, "App web does not exist")]
    failure = midclt.job_failure({"id": 3, "state": "FAILED", "error": "[ENOENT] None: App web does not exist\n",
                                  "exc_info": {"type": "VALIDATION", "extra": [[None, "App web does not exist", 2]]}})
    assert failure.errno_name == "ENOENT" and failure.errors[0][1] is None


def test_a_port_docker_lists_for_both_families_is_published_once():
    entry = {"active_workloads": {"used_ports": [
        {"container_port": 80, "protocol": "tcp", "host_ports": [{"host_port": 8080, "host_ip": "0.0.0.0"},
                                                                 {"host_port": 8080, "host_ip": "::"}]},
        {"container_port": 53, "protocol": "udp", "host_ports": [{"host_port": 5353, "host_ip": "::"}]}]}}
    assert midclt.published_ports(entry) == [{"port": 5353, "protocol": "udp", "host_ip": "::"},
                                             {"port": 8080, "protocol": "tcp", "host_ip": "0.0.0.0"}]


def test_changed_paths_name_compose_keys():
    want = {"services": {"web": {"image": "a:1", "environment": {"A": "1", "B": "2"}}}}
    have = {"services": {"web": {"image": "a:2", "environment": {"A": "1", "C": "3"}}}}
    assert midclt.changed_paths(want, have) == ["services.web.image", "services.web.environment.B",
                                                "services.web.environment.C"]


def _sections(**parts):
    out = []
    for name, text in parts.items():
        out += [script.SECTION.format(name.replace("_", "-")), text]
    return "\n".join(out) + "\n"


def test_parse_read_app_present():
    entry = {"name": "web", "state": "RUNNING"}
    out = midclt.parse_read(_sections(query=json.dumps([entry]), query_rc="0",
                                      config=json.dumps(COMPOSE), config_rc="0"), "")
    assert out["entry"] == entry and out["config"] == COMPOSE and out["docker"] is None


def test_parse_read_preflight_sections_keep_their_own_errors():
    out = midclt.parse_read(_sections(query="[]", query_rc="0",
                                      docker="[EACCES] Not authorized\nTraceback (most recent call last):\n x",
                                      docker_rc="1", pool='[{"name": "tank"}, {"name": "b"}]', pool_rc="0"), "")
    assert out["docker"] is None and out["docker_error"] == "[EACCES] Not authorized"
    assert out["pools"] == ["b", "tank"] and out["pool_error"] is None


def test_parse_read_app_absent_carries_the_docker_status():
    out = midclt.parse_read(_sections(query="[]", query_rc="0",
                                      docker='{"status": "STOPPED", "description": ""}', docker_rc="0"), "")
    assert out["entry"] is None and out["docker"]["status"] == "STOPPED"


def test_parse_read_failures_are_errors_not_absence():
    with pytest.raises(midclt.MidcltError, match="EINVAL"):
        midclt.parse_read(_sections(query="", query_rc="1"), "[EINVAL] app.query: bad\n")
    with pytest.raises(midclt.MidcltError, match="log in"):
        midclt.parse_read(_sections(query="Failed to login:  nope", query_rc="0"), "")
    with pytest.raises(midclt.MidcltError):
        midclt.parse_read("", "sh: 1: midclt: not found\n")


def test_read_script_quotes_through_the_one_quoting_place():
    argv = midclt.read_script("web", sudo=True)
    assert argv[:2] == ["sh", "-c"]
    assert "sudo -n midclt call app.query '[[\"name\",\"=\",\"web\"]]'" in argv[2]
    assert "app.config" in argv[2] and "docker.status" in argv[2] and "pool.query" not in argv[2]
    argv = midclt.read_script("web", sudo=False, preflight=True, pool="tank")
    assert "midclt call pool.query '[]' '{\"select\":[\"name\"]}'" in argv[2]


# ---------------------------------------------------------------- image digests (issue 13 item 7)

DIGEST_A, DIGEST_B = "sha256:" + "a" * 64, "sha256:" + "b" * 64
ENTRIES = [  # app.image.query entries: Docker's familiar names
    {"repo_tags": ["nginx:1.27.3"], "repo_digests": ["nginx@" + DIGEST_A]},
    {"repo_tags": ["ghcr.io/x/y:2"], "repo_digests": ["ghcr.io/x/other@" + DIGEST_A, "ghcr.io/x/y@" + DIGEST_B]},
    {"repo_tags": ["<none>:<none>"], "repo_digests": ["nginx@" + DIGEST_B]},
]


def test_a_tag_is_pinned_to_the_digest_of_the_local_image_carrying_it():
    assert midclt.pinned_ref("docker.io/library/nginx:1.27.3", ENTRIES) == \
        "docker.io/library/nginx:1.27.3@" + DIGEST_A
    assert midclt.pinned_ref("ghcr.io/x/y:2", ENTRIES) == "ghcr.io/x/y:2@" + DIGEST_B   # same repository only
    assert midclt.pinned_ref("nginx:1.28", ENTRIES) is None


def test_pins_are_taken_off_the_stored_compose_before_comparing():
    wanted = {"services": {"web": {"image": "nginx:1.27.3"}, "fixed": {"image": "pg:1@" + DIGEST_B}}}
    assert midclt.unpinned_images(wanted) == {"web": "nginx:1.27.3"}
    stored = midclt.with_images(wanted, {"web": "nginx:1.27.3@" + DIGEST_A})
    assert midclt.stored_pins(stored, wanted) == {"web": "nginx:1.27.3@" + DIGEST_A}
    assert midclt.unpinned(stored, wanted) == wanted
    edited = midclt.with_images(wanted, {"web": "nginx:1.28@" + DIGEST_A})          # changed in the UI
    assert midclt.stored_pins(edited, wanted) == {} and midclt.unpinned(edited, wanted) == edited
