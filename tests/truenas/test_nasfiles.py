"""providers/hosts/nasfiles.py: the midclt arguments for an app's folder on TrueNAS (pure)."""

from providers.hosts import midclt, nasfiles


def test_folders_from_below_the_pool_down_to_the_app():
    assert nasfiles.parents_to_make("/mnt/tank/apps/web") == ["/mnt/tank/apps", "/mnt/tank/apps/web"]
    assert nasfiles.parents_to_make("/mnt/tank/a/b/web")[0] == "/mnt/tank/a"


def test_arguments_as_the_middleware_takes_them():
    assert nasfiles.mkdir_args("/mnt/tank/apps/web") == {"path": "/mnt/tank/apps/web", "options": {"mode": "755"}}
    assert nasfiles.chown_args("/mnt/x", 568, 568) == {"path": "/mnt/x", "uid": 568, "gid": 568}
    assert nasfiles.receive_args("/mnt/x/a.conf", "aGk=", "0644", 568, 568) == [
        "/mnt/x/a.conf", "aGk=", {"mode": 0o644, "uid": 568, "gid": 568}]


def test_a_folder_replaced_by_a_symlink_is_refused():
    path = "/mnt/tank/apps/web/config"
    assert nasfiles.escapes({"type": "DIRECTORY", "realpath": path}, path) is None
    assert "is not a folder of the app's own" in nasfiles.escapes({"type": "DIRECTORY", "realpath": "/etc"}, path)
    assert nasfiles.escapes({"type": "SYMLINK", "realpath": path}, path)


def test_the_file_content_travels_on_stdin_not_in_the_command_line():
    args = nasfiles.receive_args("/mnt/x/a.conf", "c2VjcmV0", "0600", 568, 568)
    argv, stdin = nasfiles.receive_call(args, sudo=True)
    assert "c2VjcmV0" not in " ".join(argv) and b"c2VjcmV0" in stdin
    # 26.0's `-` replaces only the last argument, which here is the options, not the content
    argv, _ = midclt.payload_call("filesystem.file_receive", *args, sudo=True, version=(26, 0))
    assert "c2VjcmV0" in " ".join(argv)
