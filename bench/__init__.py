"""The benchmark: homefleet and a naive baseline against the same simulated fleet.

`python -m bench [--hosts H --apps A ...]` prints one JSON line per scenario; see
docs/performance.md for what it measures and the figures.
"""
