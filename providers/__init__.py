"""Pulumi dynamic resources for homefleet and the host-tool and transport layers below them.

Nothing here creates a resource or opens a connection at import time: the provider
classes are pickled into the Pulumi state by reference and re-imported by the
dynamic provider process.
"""
