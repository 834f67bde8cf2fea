"""Compose files: the loader (interpolation, syntaxes, located errors) and the Proxmox conversion
(every refused feature with its message, warnings, names -> addresses, addresses, the plan)."""

import textwrap

import pytest

from homefleet.compose import proxmox as cp
from homefleet.compose import SERVICE_KEYS, SecretText, load_compose, load_compose_text, start_order
from homefleet.compose.addresses import allocate, pool
from homefleet.compose.names import rewrite_value
from homefleet.compose.variables import InterpolationError, Interpolator, SecretRef, parse_dotenv
from homefleet.config import load
from homefleet.errors import ConfigError
from homefleet.plan import make_plan
from homefleet.stack import Host

FILE = "compose/t.yml"
NET = {"cidr": "198.18.0.0/24", "gateway": "198.18.0.1", "range": "198.18.0.10-198.18.0.250"}
HOST = Host(kind="proxmox", address="127.0.0.1", storage="local-zfs", composeNetwork=NET)


def compose(text: str, **kw):
    return load_compose_text(textwrap.dedent(text), FILE, **kw)


def problems_of(text: str, **kw) -> list:
    with pytest.raises(ConfigError) as exc:
        compose(text, **kw)
    return exc.value.problems


def convert(text: str, **kw):
    loaded = compose(text, **kw)
    addresses = {name: f"198.18.0.{10 + i}" for i, name in enumerate(loaded.services)}
    return cp.convert("s", "app", loaded, "pve1", HOST, addresses=addresses)


def one_service(lines: str, extra: str = "") -> str:
    body = textwrap.indent(textwrap.dedent(lines), "    ")
    return f"services:\n  web:\n    image: docker.io/library/nginx:1.27\n{body}\n{extra}"


# ---------------------------------------------------------------- interpolation

def interp(text, values=None, secrets=()):
    values = values or {}
    return Interpolator(lambda n: SecretRef(n) if n in secrets else values.get(n)).value(text, "k")


@pytest.mark.parametrize("text,values,expected", [
    ("${A}", {"A": "x"}, "x"),
    ("$A-$A", {"A": "x"}, "x-x"),
    ("${A}", {}, ""),
    ("${A:-d}", {}, "d"),
    ("${A:-d}", {"A": ""}, "d"),
    ("${A-d}", {"A": ""}, ""),
    ("${A-d}", {}, "d"),
    ("${A:+alt}", {"A": "x"}, "alt"),
    ("${A:+alt}", {"A": ""}, ""),
    ("${A+alt}", {"A": ""}, "alt"),
    ("${A:-${B:-deep}}", {}, "deep"),
    ("$${A}", {"A": "x"}, "${A}"),
    ("cost: $$5", {}, "cost: $5"),
    ("${A:?must}", {"A": "ok"}, "ok"),
    # `$` before a digit, punctuation, a space or the end stays literal, as docker compose leaves it
    ("$5 $! a$ $-x $%{", {}, "$5 $! a$ $-x $%{"),
    ("pa$$w0rd$1", {}, "pa$w0rd$1"),
])
def test_interpolation(text, values, expected):
    assert interp(text, values) == expected


@pytest.mark.parametrize("text,message", [
    ("${A:?set A please}", "required variable A is missing a value: set A please"),
    ("${A?}", "required variable A is missing a value"),
    ("${A:?}", "required variable A is missing a value"),
    ("${}", "invalid interpolation format in '${}'; write $$ for a literal $"),
    ("${A", "invalid interpolation format in '${A'; write $$ for a literal $"),
    ("${A B}", "invalid interpolation format in '${A B}'; write $$ for a literal $"),
])
def test_interpolation_errors(text, message):
    with pytest.raises(InterpolationError) as exc:
        interp(text, {"A": ""} if "?" in text and ":?" in text else {})
    assert str(exc.value) == message


def test_a_secret_stays_a_placeholder_until_rendered():
    value = interp("postgres://u:${PW}@db/x?cost=$$1", secrets={"PW"})
    assert value == SecretText("postgres://u:${PW}@db/x?cost=$$1", ("PW",))
    assert value.render({"PW": "p@ss$"}) == "postgres://u:p@ss$@db/x?cost=$1"
    assert value.render({}) == "postgres://u:@db/x?cost=$1"


def test_dotenv_file():
    text = textwrap.dedent("""\
        # comment
        export A=1
        B = two words  # trailing comment
        C='literal ${A} $$'
        D="line\\nnext ${A}"
        E=${A}-${MISSING:-d}
        F=
        """)
    values = parse_dotenv(text, lambda n: None, ".env")
    assert values == {"A": "1", "B": "two words", "C": "literal ${A} $$", "D": "line\nnext 1", "E": "1-d", "F": ""}
    with pytest.raises(ValueError, match=r"^\.env: line 1 is not NAME=value \(a name is letters, digits and _\)$"):
        parse_dotenv("BAD KEY=1\n", lambda n: None, ".env")
    with pytest.raises(ValueError, match=r"^\.env: line 1: unterminated \" quote; close it$"):
        parse_dotenv('A="open\n', lambda n: None, ".env")


def test_variables_come_from_secrets_then_stack_env_then_dotenv(tmp_path):
    (tmp_path / ".env").write_text("TAG=1.27\nTZ=Europe/Berlin\nPW=from-file\n")
    path = tmp_path / "c.yml"
    path.write_text("services:\n  web:\n    image: nginx:${TAG}\n    environment: {TZ: $TZ, PW: $PW, X: $X}\n")
    loaded = load_compose(path, variables={"TZ": "UTC"}, secrets={"PW"})
    web = loaded.services["web"]
    assert web.image == "nginx:1.27"
    assert web.environment == {"TZ": "UTC", "PW": SecretText("${PW}", ("PW",)), "X": ""}
    assert loaded.secrets == ("PW",)
    assert loaded.warnings == [f"{path}: services.web.environment.X: variable X is not set; using a blank string. "
                               "Set it in the .env file beside the compose file, or in the app's env: in the stack"]


def test_required_variable_is_a_located_error():
    assert problems_of(one_service("environment: {A: '${NEED:?set NEED in .env}'}")) == [
        f"{FILE}: services.web.environment.A: required variable NEED is missing a value: set NEED in .env. "
        "Set the variable in the .env file beside the compose file, or in the app's env: in the stack"]


def test_a_secret_outside_environment_is_refused():
    assert problems_of(one_service("command: [run, '${PW}']"), secrets={"PW"}) == [
        f"{FILE}: services.web.command: uses the secret PW; secrets can only be used in environment values. "
        "Pass the secret through environment: and refer to it there"]


# ---------------------------------------------------------------- syntaxes

def test_environment_forms_and_env_file(tmp_path):
    (tmp_path / "app.env").write_text("FROM_FILE=1\nOVERRIDDEN=file\n")
    path = tmp_path / "c.yml"
    path.write_text(textwrap.dedent("""\
        services:
          a:
            image: nginx:1.27
            env_file: [app.env, {path: missing.env, required: false}]
            environment: [OVERRIDDEN=list, "EMPTY=", FROM_VARS, UNSET_NAME, "EQ=a=b"]
          b:
            image: nginx:1.27
            environment: {N: 5, F: 1.5, T: true, NULL_FROM_VARS: null, S: "x"}
        """))
    loaded = load_compose(path, variables={"FROM_VARS": "v", "NULL_FROM_VARS": "w"})
    assert loaded.services["a"].environment == {"FROM_FILE": "1", "OVERRIDDEN": "list", "EMPTY": "",
                                                "FROM_VARS": "v", "EQ": "a=b"}
    assert loaded.services["b"].environment == {"N": "5", "F": "1.5", "T": "true", "NULL_FROM_VARS": "w", "S": "x"}


def test_volume_syntaxes():
    loaded = compose("""\
        services:
          a:
            image: nginx:1.27
            volumes:
              - data:/data
              - /srv/media:/media:ro
              - ./conf:/etc/app:rw,z
              - ~/x:/x
              - /anonymous
              - type: volume
                source: data2
                target: /d2
                read_only: true
              - {type: bind, source: /srv/b, target: /b, bind: {propagation: rslave}}
              - {type: tmpfs, target: /run, tmpfs: {size: 1000}}
        volumes: {data: {}, data2: null}
        """)
    got = [(m.type, m.source, m.target, m.read_only, m.relative) for m in loaded.services["a"].volumes]
    assert got == [
        ("volume", "data", "/data", False, False),
        ("bind", "/srv/media", "/media", True, False),
        ("bind", "./conf", "/etc/app", False, True),
        ("bind", "~/x", "/x", False, True),
        ("volume", None, "/anonymous", False, False),
        ("volume", "data2", "/d2", True, False),
        ("bind", "/srv/b", "/b", False, False),
        ("tmpfs", None, "/run", False, False),
    ]
    assert loaded.services["a"].volumes[2].options == {"z": True}


def test_volume_errors():
    assert problems_of(one_service("volumes: [nope:/x, 'a:b:c:d', {type: bind, target: /y}, rel:data, /x:/y:rx]")) == [
        f"{FILE}: services.web.volumes[0]: refers to the volume 'nope', which is not declared under the top-level "
        "volumes:. Add `nope:` under volumes:, or write a host path (starting with / or ./) for a bind mount",
        f"{FILE}: services.web.volumes[1]: 'a:b:c:d' is not SOURCE:TARGET[:MODE]. "
        "Write e.g. data:/var/lib/data or /srv/x:/x:ro",
        f"{FILE}: services.web.volumes[2].source: is required for a bind mount. "
        "Write the host path, e.g. source: /srv/data",
        f"{FILE}: services.web.volumes[3]: the container path 'data' must be absolute. Start it with '/'",
        f"{FILE}: services.web.volumes[4]: unknown mode 'rx'. Use ro or rw (and z, Z, nocopy, ...)",
    ]


def test_ports_devices_commands_and_yaml_1_2():
    loaded = compose("""\
        services:
          a:
            image: nginx:1.27
            ports: [80, 8080:80, "127.0.0.1:53:53/udp", "9000-9001:9000-9001",
                    {target: 443, published: "8443", app_protocol: https}]
            devices: [/dev/ttyUSB0, "/dev/dri:/dev/dri:rw", {source: /dev/sda, target: /dev/xvda, permissions: r}]
            command: redis-server --save "60 1"
            entrypoint: [/init, 5]
            restart: no
        """)
    a = loaded.services["a"]
    assert [(p.target, p.published, p.protocol, p.host_ip) for p in a.ports] == [
        (80, None, "tcp", None), (80, 8080, "tcp", None), (53, 53, "udp", "127.0.0.1"),
        (9000, 9000, "tcp", None), (9001, 9001, "tcp", None), (443, 8443, "tcp", None)]
    assert [(d.source, d.target, d.permissions) for d in a.devices] == [
        ("/dev/ttyUSB0", "/dev/ttyUSB0", "rwm"), ("/dev/dri", "/dev/dri", "rw"), ("/dev/sda", "/dev/xvda", "r")]
    assert a.command == ["redis-server", "--save", "60 1"] and a.entrypoint == ["/init", "5"]
    assert a.restart == "no", "YAML 1.2: `no` is a string, and 8080:80 is not a base-60 number"


def test_loader_refusals_are_located():
    problems = problems_of("""\
        include: [other.yml]
        servces: {}
        services:
          web:
            image: nginx:1.27
            build: .
            extends: {service: base}
            enviroment: {A: 1}
            depends_on: [ghost]
          noimage:
            command: x
          bad:
            image: "Not An Image!"
            restart: sometimes
        """)
    assert problems == [
        f"{FILE}: servces: is not a top-level key of a compose file. Did you mean 'services'? allowed: configs, "
        "include, models, name, networks, secrets, services, version, volumes and x-* extensions",
        f"{FILE}: include: is not supported: homefleet deploys one compose file per app. "
        "Copy the included services into this file",
        f"{FILE}: services.web.enviroment: is not a key of the Compose spec. Did you mean 'environment'? ",
        f"{FILE}: services.web.build: is not supported: homefleet deploys published images and builds nothing. "
        "Build and push the image, then write image: <registry>/<name>:<tag>",
        f"{FILE}: services.web.extends: is not supported. Copy the keys of the extended service into this one",
        f"{FILE}: services.noimage.image: is required. Add e.g. image: docker.io/library/nginx:1.27",
        f"{FILE}: services.bad.image: is not a valid image reference: " + problems[6].split("reference: ", 1)[1],
        f"{FILE}: services.bad.restart: must be no, always, unless-stopped or on-failure[:N] (got 'sometimes')",
    ], "ghost may be defined in the included file: include: is reported once, without a cascade"


def test_dependency_cycles_duplicates_and_profiles():
    assert problems_of("""\
        services:
          a: {image: nginx:1.27, depends_on: [b]}
          b: {image: nginx:1.27, depends_on: [a]}
        """) == [f"{FILE}: services.a.depends_on: services depend on each other in a cycle: a -> b -> a. "
                 "Remove one of these dependencies"]
    assert problems_of("services:\n  a: {image: nginx:1.27}\n  a: {image: nginx:1.27}\n")[0].startswith(
        f"{FILE}: (file): is not valid YAML: duplicate key 'a' at line 3")
    loaded = compose("""\
        services:
          a: {image: nginx:1.27}
          debug: {image: nginx:1.27, profiles: [debug]}
        """)
    assert list(loaded.services) == ["a"]
    assert loaded.warnings == [f"{FILE}: services.debug.profiles: service debug is not deployed: it belongs to profiles "
                               "debug and homefleet deploys only services without profiles. Remove profiles: to deploy it"]


def test_start_order_and_anchors():
    loaded = compose("""\
        x-base: &base {restart: always, environment: {TZ: UTC}}
        services:
          web: {<<: *base, image: nginx:1.27, depends_on: {api: {condition: service_healthy}}}
          api: {<<: *base, image: nginx:1.27, depends_on: [db, cache]}
          db: {<<: *base, image: postgres:17.6}
          cache: {<<: *base, image: redis:8.2.1}
        """)
    assert start_order(loaded.services) == ["cache", "db", "api", "web"]
    assert loaded.services["web"].restart == "always" and loaded.services["db"].environment == {"TZ": "UTC"}
    assert loaded.services["web"].depends_on["api"].condition == "service_healthy"
    assert loaded.extensions == {"x-base": {"restart": "always", "environment": {"TZ": "UTC"}}}


# ---------------------------------------------------------------- Proxmox: every refusal with its message

IGNORE = "Remove it, or add `x-homefleet: {{ignore: [{key}]}}` to the service to deploy the service without it"

REFUSED = [
    ("privileged: true", "services.web.privileged: privileged containers cannot run OCI images on Proxmox (PVE refuses "
     "to create them: `unable to create CT - Invalid argument`). Remove privileged:; list the devices the app needs "
     "under devices:"),
    ("cap_add: [SYS_ADMIN]", "services.web.cap_add: adds the capabilities SYS_ADMIN, which homefleet cannot grant to a "
     "Proxmox CT. " + IGNORE.format(key="cap_add")),
    ("network_mode: 'service:db'", "services.web.network_mode: shares the network of another container, which a Proxmox "
     "CT cannot do. Remove network_mode:; every service gets its own address and reaches the others by name"),
    ("ipc: host", "services.web.ipc: shares an IPC namespace (ipc: host), which separate Proxmox CTs cannot do. "
     "Remove ipc:, or run these processes in one service"),
    ("pid: 'service:db'", "services.web.pid: shares a PID namespace (pid: service:db), which separate Proxmox CTs cannot "
     "do. Remove pid:, or run these processes in one service"),
    ("user: 'unit:root:x'", "services.web.user: is unit:root:x, which is not user[:group] (a name or number each, as "
     "Docker reads it). " + IGNORE.format(key="user")),
    ("working_dir: app", "services.web.working_dir: 'app' is not an absolute path on one line, which PVE's "
     "lxc.init.cwd needs. Write an absolute path, e.g. /app"),
    ("volumes_from: [db]", "services.web.volumes_from: mounts another container's volumes, which a Proxmox CT cannot do. "
     "Bind-mount the same absolute host path in both services"),
    ("links: [ghost]", "services.web.links: links to 'ghost', which is not a service of this file. Remove it; services "
     "of this file reach each other by name"),
    ("secrets: [token]", "services.web.secrets[0]: names the secret 'token', which the file does not declare. Add it "
     "under the top-level secrets: with file: ./token"),
    ("configs: [conf]", "services.web.configs[0]: names the config 'conf', which the file does not declare. Add it "
     "under the top-level configs: with file: ./conf"),
    ("gpus: all", "services.web.gpus: GPU reservations are Docker-specific. List the GPU device nodes under devices: "
     "(e.g. /dev/dri/renderD128 or /dev/nvidia0)"),
    ("scale: 3", "services.web.scale: runs 3 copies; a Proxmox CT is one copy. Remove scale: or set it to 1"),
    ("deploy: {replicas: 2}", "services.web.deploy.replicas: runs 2 copies; a Proxmox CT is one copy. "
     "Remove replicas: or set it to 1"),
    ("volumes: ['./data:/data']", "services.web.volumes[0]: needs a folder for the app on the host, and the host "
     "has no appRoot. Set appRoot: /tank/apps (a folder on the host's data storage) on homefleet:hosts.pve1 "
     "(docs/compose.md)"),
    ("ports: ['192.0.2.5:80:80']", "services.web.ports[0]: is bound to 192.0.2.5 on Docker; on Proxmox the port would be "
     "reachable by everyone on the network at the CT's address. Remove the address, or add "
     "`x-homefleet: {ignore: [ports]}` to accept that"),
    ("devices: ['/dev/ttyUSB0:/dev/ttyACM0']", "services.web.devices[0]: maps /dev/ttyUSB0 to /dev/ttyACM0; PVE passes a "
     "device at its host path. Use the same path on both sides, or add `x-homefleet: {ignore: [devices]}` to pass it at "
     "its host path"),
    ("x-homefleet: {ignore: [privileged]}", "services.web.x-homefleet.ignore: 'privileged' cannot be ignored. Only these "
     "can: cap_add, command, devices, group_add, platform, ports, post_start, pre_stop, user, working_dir"),
    ("x-homefleet: {memry: 1}", "services.web.x-homefleet.memry: unknown key. allowed: cores, disk, ignore, ip, memory, "
     "swap, vmid"),
    ("x-homefleet: {vmid: 5}", "services.web.x-homefleet.vmid: must be a number from 100 to 999999999 (got 5)"),
    ("mem_limit: lots", "services.web.mem_limit: is not a memory size (got 'lots'). Write e.g. 512m or 2g"),
]


@pytest.mark.parametrize("lines,message", REFUSED, ids=[f"{r[0].split(':')[0]}-{i}" for i, r in enumerate(REFUSED)])
def test_every_refused_feature_has_its_message(lines, message):
    plan = convert(one_service(lines) + "  db:\n    image: postgres:17.6\n")
    assert plan.problems == [f"{FILE}: {message}"]


@pytest.mark.parametrize("key", sorted(cp.HARD))
def test_every_hard_refusal_is_reported_at_its_key(key):
    value = {"privileged": "true", "use_api_socket": "true"}.get(key, "x")
    plan = convert(one_service(f"{key}: {value}"))
    message, fix = cp.HARD[key]
    assert plan.problems == [f"{FILE}: services.web.{key}: {message}. {fix.replace('{app}', 'app')}"]


@pytest.mark.parametrize("key", sorted(set(cp.SOFT) - {"tmpfs"}))
def test_every_soft_refusal_can_be_waived_and_then_warns(key):
    value = {"read_only": "true", "init": "true", "oom_kill_disable": "true", "platform": "linux/arm64",
             "user": "'a:b:c'"}.get(key, "x")
    refused = convert(one_service(f"{key}: {value}"))
    assert len(refused.problems) == 1 and refused.problems[0].startswith(f"{FILE}: services.web.{key}: ")
    assert refused.problems[0].endswith(IGNORE.format(key=key))
    waived = convert(one_service(f"{key}: {value}\nx-homefleet: {{ignore: [{key}]}}"))
    assert waived.problems == []
    assert f"{FILE}: services.web.{key}: is ignored (x-homefleet.ignore)" in waived.warnings


def test_every_compose_key_is_classified():
    parsed = {"image", "environment", "env_file", "command", "entrypoint", "volumes", "ports", "devices", "depends_on",
              "healthcheck", "restart", "networks", "hostname", "container_name", "user", "working_dir", "build",
              "extends", "profiles"}
    classified = parsed | set(cp.HARD) | set(cp.SOFT) | set(cp.WARN) | cp.NO_EFFECT | cp.BY_VALUE
    assert SERVICE_KEYS - classified == set()


def test_volume_refusals():
    plan = convert("""\
        services:
          a: {image: nginx:1.27, volumes: [shared:/s, ext:/e, nfs:/n]}
          b: {image: nginx:1.27, volumes: [shared:/s, hostdir:/h]}
        volumes:
          shared: {}
          ext: {external: true}
          nfs: {driver: rexray}
          hostdir: {driver_opts: {type: none, o: bind, device: /tank/h}}
        """)
    assert plan.problems == [
        f"{FILE}: volumes.shared: needs a folder for the app on the host, and the host has no appRoot. Set appRoot: "
        "/tank/apps (a folder on the host's data storage) on homefleet:hosts.pve1 (docs/compose.md)",
        f"{FILE}: volumes.ext: is an external volume (created outside this file); Proxmox has no Docker volumes. Remove "
        "external: so homefleet creates the volume, or bind-mount an absolute host path",
        f"{FILE}: volumes.nfs.driver: the volume driver 'rexray' is not available on Proxmox. Remove driver:, or "
        "bind-mount a host path where the host mounts that storage",
    ]
    b = next(ct for ct in plan.cts if ct.service == "b")
    assert b.spec["mounts"] == [{"source": "/tank/h", "path": "/h", "read_only": False}]


# ---------------------------------------------------------------- Proxmox: warnings

def test_warnings_are_grouped_and_located():
    plan = convert("""\
        services:
          web:
            image: nginx:1.27
            depends_on: {db: {condition: service_healthy, restart: true}}
            ports: ["8080:80"]
            restart: always
            shm_size: 1g
            networks: {front: {ipv4_address: 172.30.0.5}, back: {}}
          db:
            image: postgres:17.6
            healthcheck: {test: [CMD, pg_isready]}
            restart: unless-stopped
            command: [/bin/sh, -c, "exec postgres"]
            networks: [back]
        networks: {front: {}, back: {internal: true}}
        """)
    assert plan.problems == []
    assert plan.warnings == [
        f"{FILE}: services.db.healthcheck: is run inside the CT with `pct exec` after each create, start and "
        "upgrade; the `up` fails when it does not pass within the app's healthTimeout. Make sure its commands exist "
        "in the image",
        f"{FILE}: services.db.restart, services.web.restart: Proxmox starts the CT when the host boots (onboot) but does "
        "not restart the app if it exits",
        f"{FILE}: services.db.networks, services.web.networks: all services of the app share the host's composeNetwork; "
        "the separation between the file's networks is lost",
        f"{FILE}: services.web.shm_size: is ignored: PVE gives an app container a /dev/shm of its default size",
        f"{FILE}: services.web.ports[0]: is published as 8080 on Docker; on Proxmox the service has its own address and "
        "is reached on its container port 80",
        f"{FILE}: services.web.depends_on.db.restart: is ignored: homefleet does not restart a CT when db restarts",
        f"{FILE}: services.web.networks.front.ipv4_address: is ignored: the address comes from the host's composeNetwork. "
        "Pin one with x-homefleet: {ip: ...}",
        f"{FILE}: networks.back.internal: is ignored: every service is on the host's bridge with an address from "
        "composeNetwork",
    ]
    db = next(ct for ct in plan.cts if ct.service == "db")
    assert "entrypoint" not in db.spec and db.command == ["/bin/sh", "-c", "exec postgres"], \
        "command: alone runs behind the image's ENTRYPOINT, joined at deploy time from the template's image_config"


# ---------------------------------------------------------------- Proxmox: the CT specs

def test_specs_of_a_four_service_app():
    plan = convert("""\
        services:
          web:
            image: nginx:1.27
            depends_on: [api]
            environment: {UPSTREAM: "api:8080", CACHE_PROVIDER: cache}
            ports: ["80:80", "5432"]
          api:
            image: ghcr.io/homefleet/test-app:1.0
            depends_on: [db, cache]
            environment:
              DB_HOSTNAME: db
              DATABASE_URL: postgres://u:${PW}@db:5432/app
              REDIS_HOSTS: "cache, db"
              DB_KIND: db
            volumes: [data:/data, /tank/media:/media:ro]
            devices: [/dev/dri]
            cpus: 1.5
            mem_limit: 1g
            memswap_limit: 1536m
            x-homefleet: {disk: 6}
          db:
            image: postgres:17.6
            entrypoint: docker-entrypoint.sh
            command: postgres -c max_connections=50 -c cluster_name=db -c x=redis://cache:6379
            volumes: [pgdata:/var/lib/postgresql/data]
            restart: "no"
          cache: {image: redis:8.2.1, hostname: kv, x-homefleet: {memory: 128, vmid: 321}}
        volumes:
          data: {x-homefleet: {size: 20, storage: tank, backup: false}}
          pgdata:
        """, secrets={"PW"})
    assert plan.problems == []
    cts = {ct.service: ct for ct in plan.cts}
    assert [ct.service for ct in plan.cts] == ["cache", "db", "api", "web"]
    api, db, cache, web = cts["api"].spec, cts["db"].spec, cts["cache"].spec, cts["web"].spec
    assert cts["api"].name == "app-api" and api["app"] == "app-api" and api["hostname"] == "api"
    assert cts["api"].depends_on == ["app-db", "app-cache"] and cts["web"].depends_on == ["app-api"]
    assert api["env"] == {"DB_HOSTNAME": "198.18.0.12", "REDIS_HOSTS": "198.18.0.13, 198.18.0.12", "DB_KIND": "db"}
    assert cts["api"].secret_env == {"DATABASE_URL": SecretText("postgres://u:${PW}@198.18.0.12:5432/app", ("PW",))}
    assert web["env"] == {"UPSTREAM": "198.18.0.11:8080", "CACHE_PROVIDER": "cache"}
    assert api["volumes"] == [{"path": "/data", "size": 20, "storage": "tank", "backup": False}]
    assert api["mounts"] == [{"source": "/tank/media", "path": "/media", "read_only": True}]
    assert api["devices"] == [{"path": "/dev/dri/card0", "gid": 44}, {"path": "/dev/dri/renderD128", "gid": 104}]
    assert (api["cores"], api["memory"], api["swap"], api["rootfs_size"]) == (2, 1024, 512, 6)
    assert api["nets"] == [{"bridge": "vmbr0", "ip": "198.18.0.11/24", "gw": "198.18.0.1"}]
    assert db["volumes"] == [{"path": "/var/lib/postgresql/data", "size": 8, "storage": "local-zfs"}]
    assert db["entrypoint"] == ("docker-entrypoint.sh postgres -c max_connections=50 -c cluster_name=db "
                                "-c x=redis://198.18.0.13:6379"), "only URLs and name:port in a command line"
    assert db["onboot"] is False and api["onboot"] is False, "no restart policy: not started at boot, as on Docker"
    assert (db["startup"], api["startup"], web["startup"]) == ("order=1", "order=2", "order=3")
    assert cache["hostname"] == "kv" and cache["vmid"] == 321 and cache["memory"] == 128
    assert web["ports"] == [{"port": 80, "protocol": "tcp", "scheme": "http"}, {"port": 5432, "protocol": "tcp"}]
    assert all(spec["unprivileged"] and spec["template_kind"] == "oci" for spec in (api, db, cache, web))


@pytest.mark.parametrize("key,value,expected", [
    ("DB_HOSTNAME", "database", "198.18.0.7"),
    ("PAPERLESS_DBHOST", "database", "198.18.0.7"),
    ("CACHE_PROVIDER", "database", "database"),
    ("DB_TYPE", "postgres://database", "postgres://198.18.0.7"),
    ("URL", "postgres://database-replica:5432", "postgres://database-replica:5432"),
    ("X", "mysql://u:p@database/db", "mysql://u:p@198.18.0.7/db"),
    ("X", "database:5432", "198.18.0.7:5432"),
    ("X", "mydatabase:5432", "mydatabase:5432"),
    ("X", "database.example.com:5432", "database.example.com:5432"),
    ("X", "postgres://database.example.com", "postgres://database.example.com"),
    ("SERVER_LIST", "database,other", "198.18.0.7,other"),
])
def test_service_names_become_addresses_only_where_they_are_hosts(key, value, expected):
    assert rewrite_value(value, {"database": "198.18.0.7"}, key)[0] == expected


# ---------------------------------------------------------------- addresses

def test_addresses_are_deterministic_pinned_and_collisions_move_the_later_one():
    addresses = pool("198.18.0.0/24", "198.18.0.1", "198.18.0.10", "198.18.0.12")
    assert [str(a) for a in addresses] == ["198.18.0.10", "198.18.0.11", "198.18.0.12"]
    wanted = [("a", "x", None), ("a", "y", None), ("b", "z", "198.18.0.11")]
    first, second = allocate(addresses, wanted), allocate(addresses, list(reversed(wanted)))
    assert first.addresses == second.addresses and first.addresses[("b", "z")] == "198.18.0.11"
    assert len(set(first.addresses.values())) == 3
    full = allocate(addresses, wanted + [("c", "w", None)])
    assert full.problems == [("c", "w", "the host's composeNetwork pool (3 addresses) is full",
                              "Make composeNetwork's range larger")]
    bad = allocate(addresses, [("a", "x", "198.18.0.1"), ("a", "y", "198.18.0.10"), ("b", "y", "198.18.0.10")])
    assert [p[2] for p in bad.problems] == [
        "the pinned address 198.18.0.1 is not in the host's composeNetwork pool",
        "the pinned address 198.18.0.10 is also pinned by a.y"]


def test_a_collision_warns_with_the_fix():
    addresses = pool("198.18.0.0/29", None)
    names = [("app", f"s{i}", None) for i in range(6)]
    result = allocate(addresses, names)
    assert sorted(result.addresses.values()) == [str(a) for a in addresses]
    assert result.warnings and all("Pin it: x-homefleet: {ip: " in w[3] for w in result.warnings)


# ---------------------------------------------------------------- the plan

def stack_raw(apps, network=True):
    host = {"kind": "proxmox", "address": "127.0.0.1", "storage": "local-zfs"}
    if network:
        host["composeNetwork"] = NET
    return {"hosts": {"pve1": host}, "apps": apps}


def test_the_immich_package_plans_four_cts_in_start_order():
    stack, catalog = load("t", stack_raw({"immich": {"host": "pve1", "package": "immich", "env": {"TZ": "Europe/Paris"}}}))
    plan = make_plan("t", stack, catalog, secret_names={"immich": ["DB_PASSWORD"]})
    names = [ct.name for ct in plan.cts]
    assert names.index("immich-immich-server") > max(names.index("immich-database"), names.index("immich-redis"))
    server = next(ct for ct in plan.cts if ct.service == "immich-server")
    db = next(ct for ct in plan.cts if ct.service == "database")
    assert server.depends_on == ["immich-redis", "immich-database"]
    db_ip = db.props["nets"][0]["ip"].split("/")[0]
    assert server.props["env"]["DB_HOSTNAME"] == db_ip and server.props["env"]["TZ"] == "Europe/Paris"
    assert server.secret_env == {"DB_PASSWORD": SecretText("${DB_PASSWORD}", ("DB_PASSWORD",))}
    assert db.secret_env == {"POSTGRES_PASSWORD": SecretText("${DB_PASSWORD}", ("DB_PASSWORD",))}
    assert db.props["volumes"] == [{"path": "/var/lib/postgresql/data", "size": 10, "storage": "local-zfs"}]
    assert server.props["memory"] == 2048 and server.props["ports"] == [
        {"port": 2283, "protocol": "tcp", "name": "web", "scheme": "http"}]
    assert server.template in plan.templates and db.template.startswith("pve1-ghcr.io-immich-app-postgres-14-vectorchord")
    assert any("healthcheck" in w and "is run inside the CT with `pct exec`" in w for w in plan.warnings)
    assert "notes" not in server.props and server.notes.startswith("Needs at least 6 GiB")


def test_plan_problems_are_located():
    with pytest.raises(ConfigError) as exc:
        stack, catalog = load("t", stack_raw({"immich": {"host": "pve1", "package": "immich", "vmid": 300}},
                                             network=False))
        make_plan("t", stack, catalog)
    assert exc.value.problems == [
        "stacks/Pulumi.t.yaml: homefleet:apps.immich.vmid: is not used by a compose app: each service becomes its own CT. "
        "Set it per service in the compose file (x-homefleet: {vmid, cores, memory, disk}, volumes:, devices:, ports:) "
        "and remove it here",
        "stacks/Pulumi.t.yaml: homefleet:hosts.pve1.composeNetwork: is not set, and the compose app immich has 4 services "
        "that must reach each other. Add composeNetwork: {cidr: <the bridge's subnet>, gateway: <router>, range: "
        "<FIRST-LAST, outside your DHCP range>} to the host (docs/compose.md)",
    ]


def test_stack_compose_path_and_name_clash(tmp_path):
    (tmp_path / "c.yml").write_text("services:\n  redis: {image: redis:8.2.1}\n  db: {image: postgres:17.6}\n")
    stack, catalog = load("t", stack_raw({"shop": {"host": "pve1", "compose": "c.yml"},
                                         "shop-db": {"host": "pve1", "image": "nginx:1.27"}}))
    with pytest.raises(ConfigError) as exc:
        make_plan("t", stack, catalog, project_dir=tmp_path)
    assert exc.value.problems == ["stacks/Pulumi.t.yaml: homefleet:apps.shop-db: has the same name as service db of the "
                                  "compose app shop (shop-db). Rename one of them"]
    stack, catalog = load("t", stack_raw({"shop": {"host": "pve1", "compose": "missing.yml"}}))
    with pytest.raises(ConfigError) as exc:
        make_plan("t", stack, catalog, project_dir=tmp_path)
    assert exc.value.problems == ["stacks/Pulumi.t.yaml: homefleet:apps.shop.compose: file 'missing.yml' not found. "
                                  "Write the path relative to the project folder (where Pulumi.yaml is), "
                                  "e.g. stacks/compose/<app>.yml"], "the error names the app and the key (issue 19.2)"


def test_the_compose_network_is_validated():
    with pytest.raises(ConfigError) as exc:
        load("t", {"hosts": {"pve1": {"kind": "proxmox", "address": "h", "composeNetwork": {
            "cidr": "198.18.0.0/24", "gateway": "198.19.0.1"}}}})
    assert exc.value.problems == ["stacks/Pulumi.t.yaml: homefleet:hosts.pve1.composeNetwork: gateway: 198.19.0.1 is "
                                  "outside cidr 198.18.0.0/24"]


def test_a_volume_where_postgres_needs_an_empty_directory_warns_with_the_fix():
    text = """\
        services:
          db:
            image: docker.io/library/postgres:17.6
            {env}
            volumes: [pgdata:/var/lib/postgresql/data]
        volumes: {{pgdata: {{}}}}
        """
    plan = convert(text.format(env=""))
    assert plan.problems == []
    assert [w for w in plan.warnings if "lost+found" in w] == [
        f"{FILE}: services.db.volumes: /var/lib/postgresql/data is the top of a storage volume, which holds "
        "lost+found on every Proxmox storage but ZFS, and initdb refuses a directory that is not empty. Set PGDATA "
        "to a subdirectory, e.g. PGDATA: /var/lib/postgresql/data/pgdata"]
    moved = convert(text.format(env="environment: {PGDATA: /var/lib/postgresql/data/pgdata}"))
    assert not [w for w in moved.warnings if "lost+found" in w]


# ---------------------------------------------------------------- healthcheck -> the CT's health input

def test_healthcheck_becomes_the_ct_health_check():
    plan = convert("""\
        services:
          db:
            image: postgres:17.6
            healthcheck: {test: [CMD, pg_isready, -U, app], interval: 1m30s, timeout: 500ms, retries: 5}
          cache:
            image: redis:8.2.1
            healthcheck: {test: "redis-cli ping | grep PONG", start_period: 10s}
          web:
            image: nginx:1.27
            healthcheck: {disable: true}
          api:
            image: nginx:1.27
        """)
    health = {ct.service: ct.spec.get("health") for ct in plan.cts}
    assert health == {
        "db": {"kind": "exec", "test": ["pg_isready", "-U", "app"], "interval": 90, "timeout": 1, "retries": 5,
               "start_period": 0},
        "cache": {"kind": "exec", "test": ["/bin/sh", "-c", "redis-cli ping | grep PONG"], "interval": 30,
                  "timeout": 30, "retries": 3, "start_period": 10},
        "web": {"kind": "none"},
        "api": None,
    }


def test_a_bad_healthcheck_duration_is_a_located_error():
    plan = convert(one_service("healthcheck: {test: [CMD, 'true'], interval: soon}"))
    assert plan.problems == [f"{FILE}: services.web.healthcheck.interval: 'soon' is not a duration; write e.g. 30s, "
                             "1m30s or 500ms"]
