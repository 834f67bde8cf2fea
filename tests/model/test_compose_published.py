"""Compose files as upstream projects publish them (issue 14): what docker compose accepts, homefleet reads
the same way — interpolation, booleans, ports, `command:` alone, errors in one round."""

import textwrap

import pytest

from homefleet.compose import load_compose_text
from homefleet.compose import proxmox as cp
from homefleet.errors import ConfigError
from homefleet.stack import Host

FILE = "compose/t.yml"
NET = {"cidr": "198.18.0.0/24", "gateway": "198.18.0.1", "range": "198.18.0.10-198.18.0.250"}
HOST = Host(kind="proxmox", address="127.0.0.1", storage="local-zfs", composeNetwork=NET)


def load(text: str, **kw):
    return load_compose_text(textwrap.dedent(text), FILE, **kw)


def problems_of(text: str, **kw) -> list:
    with pytest.raises(ConfigError) as exc:
        load(text, **kw)
    return exc.value.problems


def convert(text: str, **kw):
    loaded = load(text, **kw)
    addresses = {name: f"198.18.0.{10 + i}" for i, name in enumerate(loaded.services)}
    return cp.convert("s", "app", loaded, "pve1", HOST, addresses=addresses)


# ---------------------------------------------------------------- (6) interpolation and values

def test_a_dollar_before_punctuation_or_a_digit_stays_literal():
    app = load("""\
        services:
          web:
            image: nginx:1.27
            environment:
              SECRET_KEY: "a$1b$!c$-d$"
              PRICE: $5
        """)
    assert app.services["web"].environment == {"SECRET_KEY": "a$1b$!c$-d$", "PRICE": "$5"}


def test_dotenv_values_with_a_literal_dollar():
    app = load("""\
        services:
          web: {image: nginx:1.27, environment: [KEY]}
        """, dotenv="KEY=x$%y$1\n")
    assert app.services["web"].environment == {"KEY": "x$%y$1"}


@pytest.mark.parametrize("text,expected", [("false", False), ("true", True), ("False", False), ("yes", True)])
def test_booleans_after_interpolation(text, expected):
    plan = convert(f"""\
        services:
          web:
            image: nginx:1.27
            read_only: ${{RO:-{text}}}
            init: ${{INIT:-false}}
            privileged: ${{PRIV:-false}}
            volumes: [{{type: bind, source: /srv/x, target: /x, read_only: "${{RO:-{text}}}"}}]
        """)
    assert plan.problems == []
    said = any("services.web.read_only: is not applied" in w for w in plan.warnings)
    assert said is expected, plan.warnings
    assert not any("services.web.init" in w for w in plan.warnings), "init: false says nothing"
    assert plan.cts[0].spec["mounts"][0]["read_only"] is expected


def test_privileged_as_text_true_is_refused_not_ignored():
    plan = convert("""\
        services:
          web: {image: nginx:1.27, privileged: "${P:-true}"}
        """)
    assert len(plan.problems) == 1 and "services.web.privileged: privileged containers" in plan.problems[0]


def test_a_boolean_that_is_not_one_is_located():
    assert problems_of("""\
        services:
          web: {image: nginx:1.27, read_only: "${RO:-maybe}"}
        """) == [f"{FILE}: services.web.read_only: must be true or false (got 'maybe'). Write true or false"]


def test_an_unset_variable_that_empties_a_path_is_named():
    problems = problems_of("""\
        services:
          web:
            image: nginx:1.27
            volumes:
              - ${UPLOAD_LOCATION}:/data
              - {type: bind, source: "${CONFIG_DIR}", target: /config}
        """)
    assert problems == [
        f"{FILE}: services.web.volumes[0]: ':/data' has an empty path because the variable UPLOAD_LOCATION is not "
        "set. Set it in the .env file beside the compose file, or in the app's env: in the stack",
        f"{FILE}: services.web.volumes[1].source: is empty because the variable CONFIG_DIR is not set. Set it in the "
        ".env file beside the compose file, or in the app's env: in the stack",
    ]


# ---------------------------------------------------------------- (5) ports

def test_ports_loopback_is_not_published_empty_host_ip_is_valid_and_https_ports():
    plan = convert("""\
        services:
          web:
            image: nginx:1.27
            ports:
              - "127.0.0.1:8080:80"
              - "${IP:-}:2283:2283"
              - "8443:8443"
              - "9443:9443"
              - "443:443"
              - {target: 8000, name: https}
              - "[::1]:9000:9000"
        """)
    assert plan.problems == [], plan.problems
    ports = plan.cts[0].spec["ports"]
    assert ports == [
        {"port": 2283, "protocol": "tcp", "scheme": "http"},
        {"port": 8443, "protocol": "tcp", "scheme": "https"},
        {"port": 9443, "protocol": "tcp", "scheme": "https"},
        {"port": 443, "protocol": "tcp", "scheme": "https"},
        {"port": 8000, "protocol": "tcp", "name": "https", "scheme": "https"},
    ], "127.0.0.1 and ::1 ports are not published: no URL, no refusal"


# ---------------------------------------------------------------- (1) command: alone

@pytest.mark.parametrize("lines,entrypoint,command", [
    ("command: [redis-server, --save, '60']", None, ["redis-server", "--save", "60"]),
    ("command: /usr/bin/gotenberg --api-port=3000", None, ["/usr/bin/gotenberg", "--api-port=3000"]),
    ("entrypoint: [/bin/sh, -c]\ncommand: [echo hi]", "/bin/sh -c 'echo hi'", None),
    ("entrypoint: ''\ncommand: [run]", "run", None),
])
def test_command_alone_runs_behind_the_image_entrypoint(lines, entrypoint, command):
    body = textwrap.indent(lines, "    ")
    plan = convert(f"services:\n  web:\n    image: redis:7.4\n{body}\n")
    assert plan.problems == []
    ct = plan.cts[0]
    assert ct.spec.get("entrypoint") == entrypoint and ct.command == command


# ---------------------------------------------------------------- (7) every problem in one report

def plan_problems(tmp_path, text: str) -> list:
    from homefleet.config import load
    from homefleet.plan import make_plan
    (tmp_path / "compose").mkdir(exist_ok=True)
    (tmp_path / "compose" / "t.yml").write_text(textwrap.dedent(text))
    stack, catalog = load("s", {"hosts": {"pve1": {"kind": "proxmox", "address": "127.0.0.1",
                                                   "storage": "local-zfs", "composeNetwork": NET}},
                                "apps": {"app": {"host": "pve1", "compose": "compose/t.yml"}}})
    with pytest.raises(ConfigError) as exc:
        make_plan("s", stack, catalog, project_dir=str(tmp_path))
    return exc.value.problems


def test_a_build_does_not_hide_the_rest_of_the_file(tmp_path):
    problems = plan_problems(tmp_path, """\
        services:
          app:
            build: .
            restart: sometimes
            depends_on: [db]
          worker:
            image: ghcr.io/acme/worker:1.0
            depends_on: [app]
            volumes: [/var/run/docker.sock:/var/run/docker.sock]
            network_mode: "service:db"
          db:
            image: postgres:17.6
        """)
    text = "\n".join(problems)
    assert "services.app.build: is not supported" in text
    assert "services.app.restart: must be no, always" in text, "the rest of the built service is checked"
    assert ("services.worker.depends_on.app: service app is not deployed: it is built from source (build:) and has "
            "no image:") in text, "the dependency says why that service is refused"
    assert "it has profiles" not in text
    assert "services.worker.network_mode: shares the network of another container" in text, \
        "Proxmox problems in the same report"


def test_include_is_reported_once(tmp_path):
    problems = plan_problems(tmp_path, """\
        include: [db.yml]
        services:
          web:
            image: nginx:1.27
            depends_on: [db]
        """)
    assert problems == [f"{FILE}: include: is not supported: homefleet deploys one compose file per app. Copy the "
                        "included services into this file"]


def test_a_dependency_on_a_service_in_a_profile_names_the_profile():
    problems = problems_of("""\
        services:
          web: {image: nginx:1.27, depends_on: [debug]}
          debug: {image: busybox:1.36, profiles: [dev]}
        """)
    assert problems == [f"{FILE}: services.web.depends_on.debug: service debug is not deployed: it belongs to "
                        "profiles dev. Remove the dependency, or profiles: from that service"]


# ---------------------------------------------------------------- issue 19.2: the missing file names app and key

@pytest.mark.parametrize("kind", ["proxmox", "truenas"])
def test_a_missing_compose_file_names_the_app_and_the_key(tmp_path, kind):
    from homefleet.config import load
    from homefleet.plan import make_plan
    from homefleet.plan_truenas import plan_truenas
    host = {"kind": kind, "address": "127.0.0.1", **({"storage": "local-zfs"} if kind == "proxmox" else {})}
    stack, catalog = load("s", {"hosts": {"h": host}, "apps": {"shop": {"host": "h", "compose": "compose/shop.yml"}}})
    with pytest.raises(ConfigError) as exc:
        if kind == "proxmox":
            make_plan("s", stack, catalog, project_dir=str(tmp_path))
        else:
            plan_truenas("s", stack, {"h": {"name": "h"}}, project_dir=str(tmp_path))
    assert exc.value.problems == [
        "stacks/Pulumi.s.yaml: homefleet:apps.shop.compose: file 'compose/shop.yml' not found. Write the path relative "
        "to the project folder (where Pulumi.yaml is), e.g. stacks/compose/<app>.yml"]


# ---------------------------------------------------------------- issue 19.14: acknowledging warnings

def test_acknowledged_warnings_are_not_shown_and_stale_acknowledgements_are(tmp_path):
    from homefleet.config import load
    from homefleet.plan import make_plan
    (tmp_path / "stacks").mkdir()
    (tmp_path / "stacks" / "app.yml").write_text(textwrap.dedent("""\
        services:
          web: {image: nginx:1.27, restart: always, healthcheck: {test: [CMD, "true"]}, depends_on: [db]}
          db: {image: postgres:17.6, restart: always, healthcheck: {test: [CMD, pg_isready]}}
        """))

    def warnings(ack):
        stack, catalog = load("s", {"hosts": {"h": {"kind": "proxmox", "address": "127.0.0.1", "storage": "local-zfs",
                                                    "composeNetwork": NET}},
                                    "apps": {"app": {"host": "h", "compose": "stacks/app.yml", "acknowledge": ack}}})
        return make_plan("s", stack, catalog, project_dir=str(tmp_path)).warnings

    before = warnings([])
    assert any("services.db.healthcheck, services.web.healthcheck: is run inside the CT" in w for w in before)
    assert any(w.startswith("stacks/app.yml: services.db.restart, services.web.restart: ") for w in before)
    after = warnings(["services.*.healthcheck", "services.web.restart", "services.nope"])
    assert not any("healthcheck: is run" in w for w in after)
    assert any(w.startswith("stacks/app.yml: services.db.restart: Proxmox starts the CT") for w in after), \
        "a grouped warning keeps the keys not acknowledged"
    assert "stacks/Pulumi.s.yaml: homefleet:apps.app.acknowledge: 'services.nope' matches no warning of " \
           "stacks/app.yml; remove it" in after


# ---------------------------------------------------------------- names, links, extra_hosts, the clock

def test_links_aliases_and_extra_hosts_become_host_entries():
    plan = convert("""\
        services:
          app:
            image: nextcloud:30.0.4
            links: ["db:mysql"]
            extra_hosts: ["printer.lan:192.0.2.9", "host.docker.internal:host-gateway"]
            volumes: ["/etc/localtime:/etc/localtime:ro"]
          db:
            image: mariadb:11.4
            networks: {default: {aliases: [database]}}
            container_name: nextcloud-db
        """)
    assert plan.problems == [], plan.problems
    cts = {ct.service: ct for ct in plan.cts}
    hosts = cts["app"].spec["hosts"]
    assert ["198.18.0.11", "db", "nextcloud-db", "database", "mysql"] in hosts
    assert ["198.18.0.10", "app"] in hosts
    assert ["192.0.2.9", "printer.lan"] in hosts and ["198.18.0.1", "host.docker.internal"] in hosts
    assert ["192.0.2.9", "printer.lan"] not in cts["db"].spec["hosts"], "extra_hosts is the service's own"
    assert cts["app"].spec["mounts"] == [], "PVE binds folders only: /etc/localtime is left out, with a note"
    assert any("services.app.volumes[0]: is left out" in w for w in plan.warnings)


@pytest.mark.parametrize("user,expected", [("1000:1000", {"uid": 1000, "gid": 1000}), ("472", {"uid": 472, "gid": 0}),
                                           ("root", {"uid": 0, "gid": 0}), ("0:0", {"uid": 0, "gid": 0})])
def test_a_numeric_user_becomes_the_init_uid(user, expected):
    plan = convert(f"services:\n  web:\n    image: grafana/grafana-oss:12.0.2\n    user: '{user}'\n")
    assert plan.problems == []
    assert plan.cts[0].spec["init_user"] == expected


def test_docs_list_every_compose_key_for_both_kinds_of_host():
    from pathlib import Path
    from homefleet.compose import SERVICE_KEYS
    docs = (Path(__file__).resolve().parents[2] / "docs" / "compose.md").read_text()
    rows = {line.split("|")[1].strip().strip("`") for line in docs.splitlines()
            if line.startswith("| `") and line.count("|") == 4}
    assert SERVICE_KEYS - rows == set()
