"""The provider server's pool is widened only from inside it, and then really runs more calls."""

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from providers import workers


def _all_at_once(pool: ThreadPoolExecutor, n: int) -> bool:
    """Whether `n` tasks submitted to `pool` can all be running at the same time."""
    barrier = threading.Barrier(n, timeout=2)

    def task():
        try:
            barrier.wait()
            return True
        except threading.BrokenBarrierError:
            return False

    return all(f.result() for f in [pool.submit(task) for _ in range(n)])


def test_widen_lets_the_calling_pool_run_more_calls(monkeypatch):
    monkeypatch.setattr(workers, "_in_provider_server", lambda: True)
    with ThreadPoolExecutor(max_workers=4) as pool:
        assert not _all_at_once(pool, 6), "the stock pool runs 4 at a time"
        assert pool.submit(workers.widen, 6).result() == 6
        assert _all_at_once(pool, 6)
        assert pool.submit(workers.widen, 2).result() == 6, "never lowered"


def test_widen_changes_nothing_outside_the_provider_server():
    with ThreadPoolExecutor(max_workers=3) as pool:
        assert pool.submit(workers.widen, 8).result() is None
        assert pool._max_workers == 3


def test_widen_changes_nothing_off_a_pool_thread(monkeypatch):
    monkeypatch.setattr(workers, "_in_provider_server", lambda: True)
    assert workers.widen(8) is None


@pytest.mark.parametrize("raw, want", [("", workers.DEFAULT), ("4", 4), ("32", 32)])
def test_the_size_comes_from_the_environment(monkeypatch, raw, want):
    monkeypatch.setenv(workers.ENV, raw)
    assert workers.wanted() == want


@pytest.mark.parametrize("raw", ["many", "0", "1000"])
def test_a_bad_size_is_refused_with_the_variable_named(monkeypatch, raw):
    monkeypatch.setenv(workers.ENV, raw)
    with pytest.raises(ValueError, match="HOMEFLEET_PROVIDER_WORKERS"):
        workers.wanted()
