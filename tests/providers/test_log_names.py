"""Provider log lines in the stack file's words."""


def test_update_log_lines_use_the_stack_files_names():
    """issue 19.13: log lines showed PVE keys and Python reprs (`['mp0']`)."""
    from providers.ct_data import paths_text
    from providers.ct_outputs import stack_names

    news = {"mounts": [{"source": "/tank", "path": "/media"}], "volumes": [], "nets": [{"ip": "dhcp"}]}
    assert stack_names(["memory", "mp0", "net0", "rootfs", "disk", "secret_env", "status"], news) == \
        "disk, memory, mounts, networks, running, secrets, storage"
    assert paths_text({"mp1": "/data", "mp0": "/config", "unused0": None}) == "/config, /data, unused0"
