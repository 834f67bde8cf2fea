"""A simulated TrueNAS SCALE host's `midclt` (custom compose apps), see docs/dev/simulator.md."""
