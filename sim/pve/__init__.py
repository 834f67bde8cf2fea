"""Fake Proxmox VE host tools for the simulated hosts: `python -m sim.pve <tool> args...`."""
