"""homefleet: deploy self-hosted apps to Proxmox VE and TrueNAS SCALE hosts."""
