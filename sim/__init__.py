"""Simulated Proxmox VE and TrueNAS hosts for the demo and the tests (docs/dev/simulator.md)."""
