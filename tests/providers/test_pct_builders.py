"""Golden tests for the pct builders and parsers (pure: no host)."""

from providers.hosts import ctops, ctview, pct, propstring, script
from providers.transport.quoting import to_command_line

SPEC = {
    "stack": "demo", "app": "jellyfin", "hostname": "jellyfin", "cores": 2, "memory": 2048, "swap": 512,
    "rootfs_storage": "local-zfs", "rootfs_size": 8, "template": "local:vztmpl/x.tar",
    "nets": [{"bridge": "vmbr0", "ip": "dhcp"}],
    "volumes": [{"path": "/config", "size": 4, "storage": "local-zfs"}],
    "mounts": [{"source": "/tank/media", "path": "/media", "read_only": True}],
    "devices": [{"path": "/dev/dri/renderD128", "gid": 104}],
    "features": {"nesting": True, "fuse": False},
    "tags": ["Media", "media"], "onboot": True, "env": {"TZ": "Europe/Berlin"},
}


def test_spec_options_are_what_pve_stores():
    opts = pct.spec_options(SPEC)
    assert opts["net0"] == "name=eth0,bridge=vmbr0,host-managed=1,ip=dhcp"
    assert opts["mp0"] == "local-zfs:4,mp=/config,backup=1", "a data volume is in vzdump backups"
    assert opts["mp1"] == "/tank/media,mp=/media,ro=1"
    assert opts["dev0"] == "/dev/dri/renderD128,gid=104"
    assert opts["features"] == "nesting=1"
    assert opts["tags"] == "homefleet;media"
    assert opts["ostype"] == "unmanaged"
    assert opts["rootfs"] == "local-zfs:8"
    assert opts["description"].splitlines() == ["managed-by: homefleet stack=demo app=jellyfin",
                                                "template: local:vztmpl/x.tar"]


def test_create_argv_has_no_env_and_no_start():
    argv = pct.create_argv(200, "local:vztmpl/x.tar", pct.spec_options(SPEC))
    assert argv[:4] == ["pct", "create", "200", "local:vztmpl/x.tar"]
    assert "--env" not in argv and "--start" not in argv


def test_parse_config_splits_env_on_nul_and_decodes_description():
    text = ("arch: amd64\ndescription: managed-by%3A homefleet stack=demo app=x%0Aline two%0A\n"
            "env: PATH=/usr/bin\x00TZ=UTC\nmemory: 512\ntags: homefleet;media\nlxc.init.cwd: /\n")
    conf = pct.parse_config(text)
    assert conf["env"] == ["PATH=/usr/bin", "TZ=UTC"]
    assert conf["description"] == "managed-by: homefleet stack=demo app=x\nline two\n"
    assert conf["lxc"] == [("lxc.init.cwd", "/")]
    assert pct.owner_of(conf) == ("demo", "x")


def test_owner_requires_tag_and_exact_marker():
    assert pct.owner_of({"description": "managed-by: homefleet stack=a app=b", "tags": "other"}) is None
    assert pct.owner_of({"description": "managed-by: homefleet stack=a app=b role=data", "tags": "homefleet"}) is None


def test_encode_text_matches_pve():
    assert pct.encode_text("template: local:vztmpl/a b%.tar\n") == "template%3A local%3Avztmpl/a b%25.tar%0A"


def test_parse_list_and_status_and_pending():
    listing = ("VMID       Status     Lock         Name                \n"
               "200        running                 jellyfin            \n"
               "201        stopped    create       web                 \n")
    assert pct.parse_list(listing) == [
        {"vmid": 200, "status": "running", "lock": "", "name": "jellyfin"},
        {"vmid": 201, "status": "stopped", "lock": "create", "name": "web"},
    ]
    assert pct.parse_status("status: running\n") == "running"
    pending = pct.parse_pending("cur memory: 512\nnew memory: 1024\ncur cores: 1\ndel mp1: /a,mp=/b\n")
    assert pct.pending_changes(pending) == ["memory", "mp1"]


def test_propstring_roundtrip():
    assert propstring.parse("local-zfs:subvol-1-disk-0,mp=/x,size=8G", "volume") == {
        "volume": "local-zfs:subvol-1-disk-0", "mp": "/x", "size": "8G"}
    assert propstring.join({"volume": "a:1", "mp": "/x"}, first_bare="volume") == "a:1,mp=/x"


def test_views_of_spec_and_config_agree():
    conf = pct.parse_config(
        "cores: 2\ndescription: " + pct.encode_text(pct.description_text(SPEC)) + "%0A\n"
        "dev0: /dev/dri/renderD128,gid=104\nenv: PATH=/bin\x00TZ=Europe/Berlin\nfeatures: nesting=1\n"
        "hostname: jellyfin\nmemory: 2048\nmp0: local-zfs:subvol-200-disk-1,mp=/config,size=4G\n"
        "mp1: /tank/media,mp=/media,ro=1\n"
        "net0: name=eth0,bridge=vmbr0,host-managed=1,hwaddr=BC:24:11:00:00:01,ip=dhcp,type=veth\n"
        "onboot: 1\nostype: unmanaged\nrootfs: local-zfs:subvol-200-disk-0,size=8G\nswap: 512\n"
        "tags: homefleet;media\nunprivileged: 1\n")
    observed = ctview.from_config(conf, "running", SPEC)
    desired = ctview.from_spec(SPEC, {"PATH": "/bin"})
    assert ctview.changed_keys(observed, desired) == []
    desired_more = ctview.from_spec({**SPEC, "memory": 4096}, {"PATH": "/bin"})
    assert ctview.changed_keys(observed, desired_more) == ["memory"]


def test_size_gib():
    assert ctview.size_gib("8G") == "8" and ctview.size_gib("512M") == "0.5" and ctview.size_gib("1T") == "1024"


def test_create_script_is_one_sh_with_rollback():
    argv = ctops.create_script(200, "local:vztmpl/x.tar", pct.spec_options(SPEC), oci=True, has_env=True, start=True)
    assert argv[:2] == ["sh", "-c"]
    body = argv[2]
    assert body.index("pct create 200") < body.index("perl -e") < body.index("pct start 200")
    # rollback without --purge: a recreate at the same vmid must not drop it from its backup jobs
    assert "pct destroy 200 --force 1" in body and "--purge" not in body
    # the whole thing survives one more round of quoting intact
    assert to_command_line(argv).startswith("sh -c ")


def test_split_sections():
    out = "noise\n" + script.SECTION.format("config") + "\na: 1\n" + script.SECTION.format("status") + "\nstatus: running\n"
    sections = script.split_sections(out)
    assert sections["config"].strip() == "a: 1" and sections["status"].strip() == "status: running"


def test_env_writer_has_no_single_quote_so_it_quotes_once():
    from providers.hosts import ctenv
    program = ctenv.write_argv(200, "merge")[2]
    assert "'" not in program
    assert ctenv.ENV_MARKER.replace("@", "\\@") in program


def test_new_volumes_get_keepattrs_only_where_pve_container_has_it(tmp_path):
    """pve-container 6.1.2 added `keepattrs` (older ones refuse the key); the script picks."""
    import subprocess

    options = pct.spec_options(SPEC)
    keep = pct.with_keepattrs(options, SPEC)
    volume_keys = [k for k, kind, _ in pct.mount_slots(SPEC) if kind == "volume"]
    assert volume_keys and all(keep[k].endswith(",keepattrs=1") for k in volume_keys)
    assert all(keep[k] == v for k, v in options.items() if k not in volume_keys)
    body = ctops.create_script(200, "local:vztmpl/x.tar", options, oci=True, has_env=False, start=False,
                               keep_options=keep)[2]
    probe = body[:body.index("pct create")]
    probe = probe[:probe.rindex("if [")]
    for version, expected in (("6.1.10", "1"), ("6.1.2", "1"), ("7.0.0", "1"), ("6.1.1", "0"),
                              ("6.0.19", "0"), ("", "0")):
        fake = tmp_path / "pveversion"
        fake.write_text("#!/bin/sh\n" + (f"echo 'pve-container: {version}'\n" if version else "")
                        + "echo 'lxc-pve: 6.0.5-3'\n")
        fake.chmod(0o755)
        out = subprocess.run(["sh", "-c", probe + '\necho "$hf_keepattrs"'], capture_output=True, text=True,
                             env={"PATH": f"{tmp_path}:/usr/bin:/bin"})
        assert out.stdout.strip() == expected, (version, out.stderr)


def test_a_volume_added_later_also_gets_keepattrs_where_the_host_has_it():
    options = {"mp1": "local-zfs:2,mp=/data"}
    keep = pct.with_keepattrs(options, {"volumes": [{"path": "/config", "size": 1, "storage": "x"},
                                                    {"path": "/data", "size": 2, "storage": "local-zfs"}]})
    assert keep == {"mp1": "local-zfs:2,mp=/data,keepattrs=1"}
    body = ctops.update_script(200, options, [], None, True, True, keep_options=keep)[2]
    assert 'if [ "$hf_keepattrs" = 1 ]; then\n  pct set 200 --mp1 local-zfs:2,mp=/data,keepattrs=1' in body
    assert "else\n  pct set 200 --mp1 local-zfs:2,mp=/data </dev/null\nfi" in body
    plain = ctops.update_script(200, {"memory": "512"}, [], None, True, True, keep_options={"memory": "512"})[2]
    assert "hf_keepattrs" not in plain


def test_the_registry_auth_file_is_removed_when_the_storage_lookup_fails(tmp_path):
    """issue 18.7: the cleanup trap was set after `pvesm path`, so a failing lookup (an unknown
    storage, a PVE cluster filesystem hiccup) left the 0600 credentials file behind."""
    import subprocess

    from providers.hosts import skopeo

    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "pvesm").write_text("#!/bin/sh\necho \"storage 'nope' does not exist\" >&2\nexit 255\n")
    (bin_dir / "pvesm").chmod(0o755)
    authfile = tmp_path / ".homefleet-auth-0123456789abcdef.json"
    authfile.write_text('{"auths": {}}')
    argv = skopeo.pull_script("docker.io/library/nginx@sha256:" + "0" * 64, "nope:vztmpl/x.tar", str(authfile))
    done = subprocess.run(argv, env={"PATH": f"{bin_dir}:/usr/bin:/bin"}, capture_output=True, text=True, timeout=30)
    assert done.returncode != 0 and "does not exist" in done.stderr
    assert not authfile.exists()
