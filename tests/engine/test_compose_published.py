"""Compose files written the way upstream projects publish them (issue 14), deployed unchanged by the
real Pulumi engine to a simulated Proxmox host:

- `command:` without `entrypoint:` runs behind the image's ENTRYPOINT, read from the image config
  during the template pull (an OciTemplate output), known in the preview once the template exists;
- a service reaches its peer by name from inside its CT (`pct exec ... getent hosts`), because
  homefleet writes every peer's names into each CT's /etc/hosts — and the same check fails without;
- a `127.0.0.1:` port is not published (no URL, no refusal); 8443 gets an https:// URL;
- relative bind mounts become folders under the host's appRoot, a named volume shared by two services
  one folder bind-mounted into both, and a config file beside the compose file (naming a peer) is
  uploaded and written into its CT; editing it updates and restarts only that CT;
- a single service on `network_mode: host` is its own CT on the bridge (its URL at the CT's address), its
  `working_dir:` the CT's lxc.init.cwd, its `user: name:group` the uid/gid from the image's /etc/passwd, an env
  name with dots a raw lxc.environment line, a file `secrets:` entry at /run/secrets/<name> (a read-only folder
  per service) and a `configs:` file at its target.
"""


import pytest

from sim import registry
from sim.engine import LocalProject
from sim.testing import running_fleet, ssh_run

from .helpers import hosts_config, ct_config, ct_list, tool_count, tools_since

pytestmark = pytest.mark.engine
STACK = "published"
UNKNOWN = "04da6b54-80e4-46f7-96ec-b56ff0331ba9"
NETWORK = {"cidr": "198.18.210.0/24", "gateway": "198.18.210.1", "range": "198.18.210.10-198.18.210.90"}

# n8n / searxng style: the app names its cache by service name, and both services give only `command:`.
NOTES = """\
services:
  app:
    image: ghcr.io/acme/notes:2.1
    command: ["start", "--tunnel=false"]
    restart: unless-stopped
    ports:
      - "127.0.0.1:5678:5678"
      - "8443:8443"
    environment:
      CACHE_URL: redis://cache:6379/0
      LOG_LEVEL: ${LOG_LEVEL:-info}
    depends_on:
      cache:
        condition: service_healthy
  cache:
    image: docker.io/valkey/valkey:8.1
    command: valkey-server --save 30 1 --loglevel warning
    restart: unless-stopped
    healthcheck:
      test: ["CMD-SHELL", "valkey-cli ping | grep PONG"]
"""

# immich style: server and worker share the upload folder; the database keeps a relative bind; an empty host IP.
PHOTOS = """\
name: photos
services:
  server:
    image: ghcr.io/acme/photos-server:1.4.2
    volumes:
      - ${UPLOAD_LOCATION:-./library}:/usr/src/app/upload
      - uploads:/cache
    ports:
      - "${BIND_IP:-}:2283:2283"
    environment:
      DB_HOSTNAME: database
    depends_on: [database]
  worker:
    image: ghcr.io/acme/photos-server:1.4.2
    command: ["start-worker.sh"]
    volumes:
      - uploads:/cache
    depends_on: [database]
  database:
    image: docker.io/library/postgres:17.6
    environment:
      POSTGRES_PASSWORD: postgres
    volumes:
      - ./postgres:/var/lib/postgresql/data
volumes:
  uploads:
"""

# a wiki behind nginx: the proxy's config file sits beside the compose file and names its peer.
WIKI = """\
services:
  proxy:
    image: docker.io/library/nginx:1.27
    ports: ["8080:80"]
    volumes:
      - ./nginx.conf:/etc/nginx/nginx.conf:ro
    depends_on: [wiki]
  wiki:
    image: ghcr.io/acme/wiki:3.0
    command: ["serve", "--port", "3000"]
    user: "472:0"
"""
NGINX_CONF = "events {}\nhttp { server { listen 80; location / { proxy_pass http://wiki:3000; } } }\n"

# jellyfin / homepage style: one service on the host's network, a working_dir, a file-based secret and a
# config file (the compose `secrets:` / `configs:` top-level keys), all from files beside the compose file.
MEDIA = """\
services:
  media:
    image: ghcr.io/acme/media:1.0
    network_mode: host
    working_dir: /srv/media
    user: media:video
    restart: unless-stopped
    ports: ["8096:8096"]
    volumes:
      - ./library:/srv/media/library
    environment:
      media.scan.interval: 30m
      MEDIA_LOG: info
    secrets: [api_token]
    configs:
      - source: media_conf
        target: /etc/media/media.conf
secrets:
  api_token:
    file: ./api_token.txt
configs:
  media_conf:
    file: ./media.conf
"""
MEDIA_CONF = "library = /media\nlog = info\n"
MEDIA_TOKEN = "tok-8d1f-not-a-real-token\n"

IMAGES = {
    "ghcr.io/acme/notes:2.1": {"Entrypoint": ["tini", "--", "/docker-entrypoint.sh"], "Cmd": ["serve"],
                               "ExposedPorts": {"5678/tcp": {}, "8443/tcp": {}}, "User": "", "WorkingDir": "/home/node"},
    "docker.io/valkey/valkey:8.1": {"Entrypoint": ["docker-entrypoint.sh"], "Cmd": ["valkey-server"],
                                    "ExposedPorts": {"6379/tcp": {}}},
    # the ports the compose files publish: the health gate's default check connects to the first
    "ghcr.io/acme/photos-server:1.4.2": {"Entrypoint": ["tini", "--", "/bin/sh"], "Cmd": ["start.sh"],
                                         "ExposedPorts": {"2283/tcp": {}}},
    "ghcr.io/acme/wiki:3.0": {"Entrypoint": ["/usr/bin/dumb-init", "--", "wiki"], "Cmd": ["serve"]},
}
PORTS = {"ghcr.io/acme/media:1.0": {"ExposedPorts": {"8096/tcp": {}}}}  # the health gate connects to it
FILES = {"docker.io/library/nginx:1.27": {"etc/nginx/nginx.conf": "# the image's default\n"},
         "ghcr.io/acme/media:1.0": {"etc/media/media.conf": "# the image's default\n", "srv/media/README": "media\n",
                                    "etc/passwd": "root:x:0:0:root:/root:/bin/sh\nmedia:x:840:840::/srv/media:/bin/sh\n",
                                    "etc/group": "root:x:0:\nvideo:x:44:media\nmedia:x:840:\n"}}


@pytest.fixture(scope="module")
def pve(tmp_path_factory):
    with running_fleet(tmp_path_factory.mktemp("fleet"), hosts=1) as fleet:
        for ref, config in IMAGES.items():
            registry.push_image(fleet.dir, ref, config)
        for ref, files in FILES.items():
            registry.push_image(fleet.dir, ref, PORTS.get(ref), files=files)
        yield fleet


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    project = LocalProject.create(tmp_path_factory.mktemp("project"))
    (project.workdir / "stacks" / "compose").mkdir(parents=True, exist_ok=True)
    (project.workdir / "stacks" / "compose" / "notes.yml").write_text(NOTES)
    (project.workdir / "stacks" / "compose" / "photos").mkdir()
    (project.workdir / "stacks" / "compose" / "photos" / "compose.yml").write_text(PHOTOS)
    (project.workdir / "stacks" / "compose" / "wiki").mkdir()
    (project.workdir / "stacks" / "compose" / "wiki" / "compose.yml").write_text(WIKI)
    (project.workdir / "stacks" / "compose" / "wiki" / "nginx.conf").write_text(NGINX_CONF)
    media = project.workdir / "stacks" / "compose" / "media"
    media.mkdir()
    (media / "compose.yml").write_text(MEDIA)
    (media / "media.conf").write_text(MEDIA_CONF)
    (media / "api_token.txt").write_text(MEDIA_TOKEN)
    return project


def write_stack(project, pve, env=None):
    hosts = hosts_config(pve)
    hosts["pve1"]["composeNetwork"] = NETWORK
    hosts["pve1"]["appRoot"] = app_root(pve)
    apps = {"notes": {"host": "pve1", "compose": "stacks/compose/notes.yml", "deleteData": True,
                      **({"env": env} if env else {})},
            "photos": {"host": "pve1", "compose": "stacks/compose/photos/compose.yml"},
            "wiki": {"host": "pve1", "compose": "stacks/compose/wiki/compose.yml", "deleteData": True},
            "media": {"host": "pve1", "compose": "stacks/compose/media/compose.yml", "deleteData": True}}
    project.write_stack(STACK, {"homefleet:hosts": hosts, "homefleet:apps": apps})


@pytest.fixture(scope="module")
def deployed(pve, project):
    write_stack(project, pve)
    preview = project.pulumi("preview", stack=STACK, check=True)
    preview_json = project.pulumi("preview", "--json", stack=STACK, check=True).json()
    up = project.pulumi("up", "--yes", stack=STACK, check=True)
    cts = {row["name"]: row for row in ct_list(pve["pve1"])}
    return {"preview": preview, "preview_json": preview_json, "up": up, "cts": cts}


def app_root(pve) -> str:
    return str(pve.dir / "pve1-apps")


def pct_exec(pve, vmid, *argv):
    return ssh_run(pve["pve1"], ["pct", "exec", str(vmid), "--", *argv])


def test_command_alone_runs_behind_the_image_entrypoint(pve, deployed):
    confs = {name: ct_config(pve["pve1"], row["vmid"]) for name, row in deployed["cts"].items()}
    assert confs["app"]["entrypoint"] == "tini -- /docker-entrypoint.sh start --tunnel=false"
    assert confs["cache"]["entrypoint"] == "docker-entrypoint.sh valkey-server --save 30 1 --loglevel warning"


def test_the_entrypoint_is_known_in_the_preview_once_the_template_exists(pve, project, deployed):
    first = [s for s in deployed["preview_json"]["steps"] if s["urn"].endswith("notes-app")]
    assert first[0]["op"] == "create" and first[0]["newState"]["inputs"].get("entrypoint") in (None, UNKNOWN), \
        "before the first pull the image's ENTRYPOINT is not known yet"
    write_stack(project, pve, env={"LOG_LEVEL": "debug"})
    try:
        preview = project.pulumi("preview", "--json", stack=STACK, check=True).json()
    finally:
        write_stack(project, pve)
    steps = [s for s in preview["steps"] if s["urn"].endswith("notes-app")]
    assert steps and steps[0]["op"] == "update", steps
    assert steps[0]["newState"]["inputs"]["entrypoint"] == "tini -- /docker-entrypoint.sh start --tunnel=false"


def test_a_service_resolves_its_peer_by_name_inside_its_ct(pve, deployed):
    app, cache = deployed["cts"]["app"], deployed["cts"]["cache"]
    cache_ip = ct_config(pve["pve1"], cache["vmid"])["net0"].split("ip=")[1].split("/")[0]
    rc, out, err = pct_exec(pve, app["vmid"], "getent", "hosts", "cache")
    assert (rc, out.split()[:2]) == (0, [cache_ip, "cache"]), (rc, out, err)
    rc, out, _ = pct_exec(pve, cache["vmid"], "getent", "hosts", "app")
    assert rc == 0, "every CT knows every peer"


def test_the_same_check_fails_without_host_entries(pve, deployed, tmp_path):
    """Put the image's own /etc/hosts back: the peer's name no longer resolves, so the check above
    depends on the entries homefleet writes; `pulumi up --refresh` is not needed to restore them:
    the next change of any peer's address rewrites them (and a recreate writes them anew)."""
    app = deployed["cts"]["app"]
    host = pve["pve1"]
    rc, _, err = ssh_run(host, ["sh", "-c", f"printf '127.0.0.1 localhost\\n' > /tmp/plain-hosts && "
                                            f"pct push {app['vmid']} /tmp/plain-hosts /etc/hosts"])
    assert rc == 0, err
    rc, _, _ = pct_exec(pve, app["vmid"], "getent", "hosts", "cache")
    assert rc == 2, "without host entries the peer's name does not resolve"


def test_loopback_ports_are_not_published_and_8443_is_https(project, deployed):
    outputs = project.pulumi("stack", "output", "--json", stack=STACK, check=True).json()
    app = outputs["apps"]["notes"]["services"]["app"]
    assert app["urls"] == [f"https://{app['ip']}:8443"], app
    server = outputs["apps"]["photos"]["services"]["server"]
    assert server["urls"] == [f"http://{server['ip']}:2283"], "an empty host IP publishes on every address"


def test_the_files_were_planned_unchanged(deployed):
    out = deployed["preview"].stdout + deployed["preview"].stderr
    assert "error" not in out.lower(), out


def test_each_warning_is_said_once_per_up(deployed):
    warning = "stacks/compose/notes.yml: services.cache.healthcheck: is run inside the CT with `pct exec`"
    assert (deployed["preview"].stdout + deployed["preview"].stderr).count(warning) >= 1
    up = deployed["up"].stdout + deployed["up"].stderr
    rows = [line for line in up.splitlines() if "homefleet-published  warning: " + warning in line]
    assert len(rows) == 1, up  # the progress display; Pulumi repeats it once in its "Diagnostics:" summary
    assert up.count(warning) == 2, up


def test_relative_binds_and_a_shared_volume_live_in_the_app_folder(pve, deployed):
    host, root = pve["pve1"], app_root(pve) + "/photos"
    confs = {name: ct_config(host, deployed["cts"][name]["vmid"]) for name in ("server", "worker", "database")}
    mounts = {name: sorted(v for k, v in conf.items() if k.startswith("mp")) for name, conf in confs.items()}
    assert mounts["server"] == [f"{root}/library,mp=/usr/src/app/upload", f"{root}/volumes/uploads,mp=/cache"]
    assert mounts["worker"] == [f"{root}/volumes/uploads,mp=/cache"], "one folder, mounted into both"
    assert mounts["database"] == [f"{root}/postgres,mp=/var/lib/postgresql/data"]
    rc, out, err = ssh_run(host, ["stat", "-c", "%u:%g %n", f"{root}/library", f"{root}/volumes/uploads",
                                  f"{root}/postgres"])
    assert rc == 0, err
    assert {line.split()[0] for line in out.splitlines()} == {"100000:100000"}, "owned by the CT's root"
    # a file written by one service is seen by the other (the same folder)
    rc, _, err = ssh_run(host, ["sh", "-c", f"echo thumb > {root}/volumes/uploads/a.jpg"])
    assert rc == 0, err
    rc, out, _ = pct_exec(pve, deployed["cts"]["worker"]["vmid"], "cat", "/cache/a.jpg")
    assert (rc, out) == (0, "thumb\n")


def test_a_numeric_user_is_the_cts_init_uid(pve, deployed):
    conf = ct_config(pve["pve1"], deployed["cts"]["wiki"]["vmid"])
    assert ("lxc.init.uid", "472") in conf["lxc"] and ("lxc.init.gid", "0") in conf["lxc"], conf["lxc"]
    assert deployed["cts"]["wiki"]["status"] == "running"


def test_a_config_file_beside_the_compose_file_reaches_its_ct_and_names_a_peer(pve, deployed):
    proxy = deployed["cts"]["proxy"]
    rc, out, _ = pct_exec(pve, proxy["vmid"], "cat", "/etc/nginx/nginx.conf")
    assert (rc, out) == (0, NGINX_CONF)
    wiki_ip = ct_config(pve["pve1"], deployed["cts"]["wiki"]["vmid"])["net0"].split("ip=")[1].split("/")[0]
    rc, out, _ = pct_exec(pve, proxy["vmid"], "getent", "hosts", "wiki")
    assert (rc, out.split()[0]) == (0, wiki_ip), "the name in the config file resolves inside the proxy's CT"


def test_editing_the_config_file_restarts_only_the_ct_that_mounts_it(pve, project, deployed):
    host = pve["pve1"]
    conf = project.workdir / "stacks" / "compose" / "wiki" / "nginx.conf"
    conf.write_text(NGINX_CONF.replace("listen 80;", "listen 80; client_max_body_size 50m;"))
    preview = project.pulumi("preview", "--json", stack=STACK, check=True).json()
    changed = sorted((s["op"], s["urn"].split("::")[-1]) for s in preview["steps"] if s["op"] != "same")
    assert changed == [("update", "wiki-files"), ("update", "wiki-proxy")], changed
    start = tool_count(host)
    project.pulumi("up", "--yes", stack=STACK, check=True)
    touched = {argv[2] for argv in tools_since(host, start)
               if argv[0] == "pct" and argv[1] in ("push", "shutdown", "start", "stop", "create", "destroy", "set")}
    assert touched == {str(deployed["cts"]["proxy"]["vmid"])}, touched
    rc, out, _ = pct_exec(pve, deployed["cts"]["proxy"]["vmid"], "cat", "/etc/nginx/nginx.conf")
    assert "client_max_body_size 50m" in out


def test_a_compose_file_cannot_read_outside_the_project_or_reach_the_host(pve, project, deployed, tmp_path):
    """Issue 18 items 3 and 5 through the engine: the preview refuses, naming each key and its opt-in,
    quotes no file content, and nothing runs on the host."""
    secret = tmp_path / "outside.env"
    secret.write_text("TOKEN=canary-Hq41-not-for-hosts\n")
    bad = project.workdir / "stacks" / "compose" / "bad.yml"
    bad.write_text(f"""\
services:
  web:
    image: docker.io/library/nginx:1.27
    env_file: [../../../../../../../..{secret}, {secret}]
    devices: [/dev/sda]
    volumes: ["/etc/pve:/pve"]
""")
    hosts = hosts_config(pve)
    hosts["pve1"]["composeNetwork"] = NETWORK
    project.write_stack("bad", {"homefleet:hosts": hosts,
                                "homefleet:apps": {"bad": {"host": "pve1", "compose": "stacks/compose/bad.yml"}}})
    start = tool_count(pve["pve1"])
    run = project.pulumi("preview", stack="bad")
    out = run.stdout + run.stderr
    assert not run.ok
    assert "canary-Hq41" not in out
    assert "services.web.env_file[0]: " in out and "leads outside the project folder" in out, out
    assert f"services.web.env_file[1]: '{secret}' is outside the project folder" in out
    assert "allowFilesOutsideProject: true on homefleet:apps.bad" in out
    assert "services.web.devices[0]: passes the host device /dev/sda" in out
    assert "services.web.volumes[0]: bind-mounts the host's /etc/pve, which reaches the host" in out
    assert "set allowSystemPaths: true on homefleet:apps.bad" in out
    assert tool_count(pve["pve1"]) == start, "nothing ran on the host"


def test_host_networking_alone_is_the_cts_own_address_on_the_bridge(pve, project, deployed):
    conf = ct_config(pve["pve1"], deployed["cts"]["media"]["vmid"])
    ip = conf["net0"].split("ip=")[1].split("/")[0]
    assert ip.startswith("198.18.210.") and "bridge=" in conf["net0"], conf["net0"]
    outputs = project.pulumi("stack", "output", "--json", stack=STACK, check=True).json()
    assert outputs["apps"]["media"]["services"]["media"]["urls"] == [f"http://{ip}:8096"]
    out = deployed["preview"].stdout + deployed["preview"].stderr
    assert "services.media.network_mode: is mapped: on Proxmox the service is its own CT" in out, out


def test_working_dir_is_the_cts_init_cwd_and_a_user_by_name_its_uid_from_the_images_passwd(pve, deployed):
    conf = ct_config(pve["pve1"], deployed["cts"]["media"]["vmid"])
    assert ("lxc.init.cwd", "/srv/media") in conf["lxc"], conf["lxc"]
    assert ("lxc.init.uid", "840") in conf["lxc"] and ("lxc.init.gid", "44") in conf["lxc"], conf["lxc"]
    assert deployed["cts"]["media"]["status"] == "running"
    rc, out, err = ssh_run(pve["pve1"], ["stat", "-c", "%u:%g", app_root(pve) + "/media/library"])
    assert (rc, out.strip()) == (0, "100840:100840"), "its folder belongs to the image's user media (uid 840)"


def test_a_user_the_image_does_not_have_fails_the_preview_naming_the_file_and_key(pve, project, deployed):
    compose = project.workdir / "stacks" / "compose" / "media" / "compose.yml"
    compose.write_text(MEDIA.replace("user: media:video", "user: jellyfin"))
    try:
        start = tool_count(pve["pve1"])
        run = project.pulumi("preview", stack=STACK)
    finally:
        compose.write_text(MEDIA)
    out = run.stdout + run.stderr
    assert not run.ok
    assert ("stacks/compose/media/compose.yml: services.media.user: the image ghcr.io/acme/media:1.0 has no user "
            "'jellyfin' in its /etc/passwd") in out, out
    assert "(media, root)" in out
    assert tool_count(pve["pve1"]) == start, "nothing ran on the host"


def test_a_file_secret_and_a_config_reach_the_ct_where_docker_puts_them(pve, deployed):
    vmid = deployed["cts"]["media"]["vmid"]
    rc, out, err = pct_exec(pve, vmid, "cat", "/run/secrets/api_token")
    assert (rc, out) == (0, MEDIA_TOKEN), (rc, out, err)
    rc, out, err = pct_exec(pve, vmid, "cat", "/etc/media/media.conf")
    assert (rc, out) == (0, MEDIA_CONF), (rc, out, err)
    conf = ct_config(pve["pve1"], vmid)
    secrets = [v for k, v in conf.items() if k.startswith("mp") and "mp=/run/secrets" in v]
    assert secrets == [f"{app_root(pve)}/media/secrets/media,mp=/run/secrets,ro=1"], conf
    state = project_state_text(deployed)
    assert "tok-8d1f" not in state, "the secret's content is not in the preview output"


def project_state_text(deployed) -> str:
    return deployed["preview"].stdout + deployed["preview"].stderr + deployed["up"].stdout + deployed["up"].stderr


def test_an_env_name_with_dots_reaches_the_app_and_pct_config_still_reads(pve, deployed):
    """PVE's env takes `\\w+` names and `pct config` checks its output against that, so a dotted name goes in a
    raw lxc.environment line, which LXC passes to the app like the rest of its env."""
    vmid = deployed["cts"]["media"]["vmid"]
    conf = ct_config(pve["pve1"], vmid)
    assert ("lxc.environment", "media.scan.interval=30m") in conf["lxc"], conf["lxc"]
    assert "media.scan.interval" not in (conf.get("env") or ""), "not in PVE's env: pct config would fail"
    rc, out, err = pct_exec(pve, vmid, "env")
    assert rc == 0 and "media.scan.interval=30m" in out.splitlines() and "MEDIA_LOG=info" in out.splitlines(), \
        (rc, out, err)
