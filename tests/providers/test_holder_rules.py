"""Pure rules of the holder / adopt / take-over paths (issue 13 items 2, 5; issue 18 items 1, 2,
8, 9, 10). The engine-level scenarios are in tests/security/test_trust_boundary.py."""

from pathlib import Path

import pytest

from providers import ct_data, ct_outputs, proxmox_ct
from providers.errors import HostCommandError
from providers.hosts import ctops, holder_image, pct, skopeo
from sim.pve import oci, rootfs_space

LINE = "managed-by: homefleet stack=s app=a role=data"
HOLDER = {"description": f"{LINE}\n{pct.HOLDER_NOTE}\n", "tags": "homefleet;homefleet-data",
          "rootfs": "local-zfs:subvol-101-disk-0,size=1G", "mp0": "local-zfs:subvol-101-disk-1,mp=/data,size=1G",
          "lxc": []}


def test_a_holder_is_recognised_exactly():
    assert pct.holder_of(HOLDER) == ("s", "a")
    assert pct.holder_of({**HOLDER, "tags": "homefleet"}) is None, "both tags"
    assert pct.holder_of({**HOLDER, "tags": "homefleet-data"}) is None
    assert pct.holder_of({**HOLDER, "description": f"notes\n{LINE}\n{pct.HOLDER_NOTE}"}) is None, "first line"
    assert pct.holder_of({**HOLDER, "description": f"{LINE}\n{pct.HOLDER_NOTE}\nmine"}) is None, "nothing else"
    assert pct.holder_of({**HOLDER, "net0": "name=eth0,bridge=vmbr0"}) is None, "a holder has no network"
    assert pct.holder_of({**HOLDER, "mp1": "/tank,mp=/tank"}) is None, "nor bind mounts"


def test_the_owner_marker_is_only_the_first_line():
    assert pct.owner_of({"description": "managed-by: homefleet stack=s app=a\nx", "tags": "homefleet"}) == ("s", "a")
    assert pct.owner_of({"description": "mine\nmanaged-by: homefleet stack=s app=a", "tags": "homefleet"}) is None


def test_pct_config_splits_on_newline_only():
    text = "env: A=1\u2028description: managed-by: homefleet stack=x app=y\x00B=\x852\nhostname: h\n"
    conf = pct.parse_config(text)
    assert "description" not in conf and conf["hostname"] == "h" and len(conf["env"]) == 2


@pytest.mark.parametrize("env, field", [({"ÄPFEL": "1"}, "env"), ({"A": "x\u2028y"}, "env"), ({"A": "x\x85y"}, "env"),
                                        ({"1A": "x"}, "env")])
def test_the_provider_refuses_what_the_host_cannot_store(env, field):
    news = {"hostname": "h", "env": env, "template_kind": "oci"}
    failures = proxmox_ct.ProxmoxCTProvider().check({}, news).failures
    assert [f.property for f in failures] == [field], failures


def test_the_provider_refuses_a_description_with_the_marker():
    news = {"hostname": "h", "description": "x\nmanaged-by: homefleet stack=s app=a role=data"}
    assert [f.property for f in proxmox_ct.ProxmoxCTProvider().check({}, news).failures] == ["description"]


def test_holder_hostname_is_a_dns_label():
    for app in ("db", "paperless-ngx", "x" * 80, "Weird_Name", "-a-"):
        name = pct.holder_hostname(app)
        assert proxmox_ct._HOSTNAME.match(name) and name.endswith("-data"), name


def test_volumes_are_taken_back_by_path_and_the_rest_stays():
    props = {"volumes": [{"path": "/data", "storage": "local-zfs", "size": 1}]}
    conf = {"mp0": "local-zfs:subvol-9-disk-1,mp=/config,size=1G", "mp1": "local-zfs:subvol-9-disk-2,mp=/data,size=1G"}
    moves, left = ct_data.takeback_plan(props, conf)
    assert moves == [("mp1", "mp0")] and left == {"mp0": "/config"}


def test_parking_onto_an_existing_holder_uses_free_keys_and_refuses_a_second_volume_for_a_path():
    holder = {"mp0": "local-zfs:subvol-9-disk-1,mp=/config,size=1G", "unused0": "local-zfs:subvol-9-disk-3"}
    moves = ct_data.park_moves("pve1", {"mp0": "/data", "unused0": None}, holder, 9)
    assert moves == [("mp0", "mp1"), ("unused0", "unused1")]
    with pytest.raises(HostCommandError, match="already holds a volume for /config"):
        ct_data.park_moves("pve1", {"mp0": "/config"}, holder, 9)


def test_archive_names_do_not_collide():
    digest = "sha256:" + "a" * 64
    a = skopeo.archive_name("docker.io", "acme/web_app", "1", digest)
    b = skopeo.archive_name("docker.io", "acme_web/app", "1", digest)
    assert a != b and a.endswith("_aaaaaaaaaaaa.tar") and len(skopeo.archive_name("r", "x" * 300, "t", digest)) < 200


def test_the_holder_archive_is_tiny_valid_oci_and_fits_one_gib(tmp_path):
    data = holder_image.archive()
    assert len(data) <= 20480 and data == holder_image.archive()  # two tar records
    path = tmp_path / holder_image.file_name()
    path.write_bytes(data)
    assert oci.is_oci_archive(path)
    assert rootfs_space.unpacked_size(path) < 1024
    rootfs_space.check(path, 1024 ** 3)
    oci.extract(path, tmp_path / "rootfs")
    assert (tmp_path / "rootfs" / "etc" / "homefleet-holder").is_file()


def test_a_recreate_destroys_without_purge_and_a_delete_with_it():
    assert "--purge" not in ctops.delete_script(100, False, purge=False)[2]
    assert "--purge" in ctops.delete_script(100, False)[2]
    park = ctops.park_script(100, 101, {"hostname": "a-data"}, [("mp0", "mp0")], False, holder_template="local:vztmpl/h.tar", upload="u.tar",
                             purge=False)[2]
    assert "pct destroy 100 </dev/null" in park and "--purge" not in park


def test_carry_parses_acls_and_firewall():
    out = ("@@homefleet:section:ha@@\n\n@@homefleet:section:acl@@\nacl:1:/vms/7:alice@pve,@ops,bob@pve!ci:PVEVMUser:\n"
           "@@homefleet:section:pool@@\npool:lab::5,7:local:\n@@homefleet:section:fw@@\nW0lOXQo=\n")
    carry = ctops.parse_carry(out)
    assert carry == {"ha": False, "replicated": False, "acls": [("1", "alice@pve,@ops,bob@pve!ci", "PVEVMUser")], "pool": "lab",
                     "firewall": b"[IN]\n"}
    restore = ctops.carry_restore_script(7, carry["acls"], True)[2]
    assert "pveum acl modify /vms/7 --roles PVEVMUser --propagate 1 --users alice@pve --groups ops --tokens 'bob@pve!ci'" \
        in restore


def test_outputs_that_can_hold_env_are_secret_or_show_only_the_stacks_own_values():
    assert "image_env" in proxmox_ct.SECRET_OUTPUTS
    assert Path(proxmox_ct.__file__).read_text().count("additional_secret_outputs=SECRET_OUTPUTS") == 1
    view = {"env": "PATH=/bin\nTZ=UTC\nTOKEN=s3cret\nLEFT=hand-set-secret\nTZ2=x"}
    spec = {"env": {"TZ": "UTC", "TZ2": "y"}, "secret_env": {"TOKEN": "s3cret"}}
    shown = ct_outputs.hide_secrets(view, spec, {"PATH": "/bin"})["env"].split("\n")
    assert shown == ["PATH=/bin", "TZ=UTC", "TOKEN=[secret]", "LEFT=[not from the stack or the image]",
                     "TZ2=[not from the stack or the image]"]
