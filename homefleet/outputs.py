"""Outputs the plan alone determines, for the preview.

A Python dynamic provider does not preview updates: the engine hands back the new inputs as the
resource's outputs (pulumi pkg/resource/plugin/provider_plugin.go, Update with Preview and no
`supportsPreview`), and pulumi.dynamic's Diff drops `stables` (pulumi/dynamic/__main__.py). So in a
preview of any update, a CT's vmid, ip and urls are unknown and an app's outputs read `{host, notes}`,
as if they were removed. What the stack fixes (a pinned vmid, a static address) does not depend on
the change: the program shows those values instead.
"""

from typing import Optional


def static_ip(props: dict) -> Optional[str]:
    """The first network's address when the stack sets it (`ip: 192.0.2.10/24`), else None (DHCP)."""
    nets = props.get("nets") or []
    ip = nets[0].get("ip") if nets and isinstance(nets[0], dict) else None
    if isinstance(ip, str) and "/" in ip:
        return ip.split("/", 1)[0]
    return None


def urls_for(ports: list, ip: Optional[str]) -> list:
    """The same URLs the provider makes from the CT's address (providers/ct_outputs.py `urls_of`)."""
    if not ip:
        return []
    return [f"{p['scheme']}://{ip}:{p['port']}" for p in ports or [] if p.get("scheme")]


def known_ct_outputs(props: dict) -> dict:
    """{vmid, ip, urls}: those of them the plan fixes."""
    known = {}
    if isinstance(props.get("vmid"), int):
        known["vmid"] = props["vmid"]
    ip = static_ip(props)
    if ip:
        known["ip"] = ip
        known["urls"] = urls_for(props.get("ports") or [], ip)
    return known
