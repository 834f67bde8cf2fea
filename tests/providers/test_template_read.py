"""Reading an image template (what `pulumi refresh` does for each OciTemplate) is one command:
the archive's `stat` and, for a tag, the registry check run in one SSH exec. Against a
simulated host over real SSH."""


from providers.oci_template import OciTemplateProvider
from sim.testing import commands, ssh_run

IMAGE = "docker.io/library/alpine:3.20"


def _props(host, image=IMAGE):
    return {"host": {"name": host.name, "address": host.address, "port": host.port, "user": host.user,
                     "host_key": host.host_key, "key_file": host.client_key},
            "image": image, "pull_ref": image, "storage": "local"}


def _read(host, outs):
    before = len(commands(host))
    result = OciTemplateProvider().read("id", dict(outs))
    return result, [c["command"] for c in commands(host)[before:]]


def test_a_tag_is_read_in_one_command_archive_and_registry_together(sim_hosts):
    host = sim_hosts["pve1"]
    provider = OciTemplateProvider()
    outs = provider.create(_props(host)).outs
    try:
        result, sent = _read(host, outs)
        assert len(sent) == 1, sent
        assert "stat -c" in sent[0] and "skopeo inspect" in sent[0]
        assert result.id == "id"
        assert result.outs["size"] == outs["size"] and result.outs["latest_digest"] == outs["digest"]
    finally:
        provider.delete("", outs)


def test_an_archive_removed_by_hand_is_dropped_without_asking_the_registry(sim_hosts):
    host = sim_hosts["pve1"]
    provider = OciTemplateProvider()
    outs = provider.create(_props(host)).outs
    rc, _, err = ssh_run(host, ["rm", "-f", outs["path"]])
    assert rc == 0, err
    result, sent = _read(host, outs)
    assert result.id == "" and result.outs == {}
    assert len(sent) == 1


def test_a_pinned_digest_is_read_without_the_registry(sim_hosts):
    host = sim_hosts["pve1"]
    provider = OciTemplateProvider()
    digest = provider.create(_props(host)).outs["digest"]
    pinned = provider.create(_props(host, f"{IMAGE}@{digest}")).outs
    try:
        result, sent = _read(host, pinned)
        assert len(sent) == 1 and "skopeo inspect" not in sent[0], sent
        assert result.outs["latest_digest"] == digest
    finally:
        provider.delete("", pinned)
