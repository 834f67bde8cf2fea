"""The simulated host's `truenas_api_client`: `main()` is the simulated `midclt`, run in
this process with `sys.argv` (as `/usr/bin/midclt`, the package's console script, runs the
real one). Logged to tools.log as the tool `truenas_api_client` (no process is started)."""

import sys


def main():
    from sim import toollog
    from sim.truenas import paths
    from sim.truenas.midclt import main as midclt_main

    toollog.log_invocation(paths.tools_log(), "truenas_api_client", sys.argv[1:])
    code = midclt_main(sys.argv[1:])
    sys.stdout.flush()
    sys.exit(code)
