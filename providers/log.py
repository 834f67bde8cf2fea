"""Provider log lines: one prefixed line on stderr, which the Pulumi CLI shows as info.

Never pass a secret or a whole command line here; name the host, the app and the step.
"""

import sys


def info(host: str, subject: str, message: str) -> None:
    print(f"[homefleet {host}:{subject}] {message}", file=sys.stderr, flush=True)
