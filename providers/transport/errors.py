"""The one exception type the transport raises."""


class TransportError(Exception):
    """A connection, authentication, host-key or timeout failure talking to one host.

    The message always starts with the host's name so a fleet run says where it failed.
    """

    def __init__(self, host: str, message: str):
        super().__init__(f"host {host}: {message}")
        self.host = host
        self.reason = message
