"""providers/diffdetail.py: drift keys reach the DiffResponse built next on the same thread, once."""

import sys
import threading
import types

from pulumi.runtime import proto

from providers import diffdetail


def test_the_wrapped_response_carries_the_offered_keys_once(monkeypatch):
    fake_proto = types.SimpleNamespace(DiffResponse=proto.DiffResponse, PropertyDiff=proto.PropertyDiff)
    server = types.ModuleType("__main__")
    server.__spec__ = types.SimpleNamespace(name=diffdetail.SERVER_MODULE)
    server.proto = fake_proto
    monkeypatch.setitem(sys.modules, "__main__", server)
    assert diffdetail.install() and diffdetail.install()  # idempotent
    response = fake_proto.DiffResponse
    assert response.DIFF_SOME == proto.DiffResponse.DIFF_SOME  # constants pass through

    diffdetail.offer(["memory", "mounts"])
    other = []
    thread = threading.Thread(target=lambda: other.append(response(changes=response.DIFF_SOME)))
    thread.start()
    thread.join()
    assert not other[0].hasDetailedDiff  # another call's thread does not take this call's keys
    got = response(changes=response.DIFF_SOME, replaces=[])
    assert list(got.diffs) == ["memory", "mounts"] and got.hasDetailedDiff
    assert got.detailedDiff["memory"].kind == proto.PropertyDiff.UPDATE and not got.detailedDiff["memory"].inputDiff
    again = response(changes=response.DIFF_SOME)
    assert not again.hasDetailedDiff and not list(again.diffs)  # used once
    diffdetail.offer(["memory"])
    none = response(changes=response.DIFF_NONE)
    assert not none.hasDetailedDiff  # only a change is detailed


def test_outside_the_provider_server_nothing_is_wrapped():
    assert diffdetail.install() is False

