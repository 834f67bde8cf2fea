"""Looking at a simulated NAS directly (midclt over SSH), shared by the TrueNAS engine tests."""

from __future__ import annotations

import json
import time

from sim.testing import ssh_run


class NasCalls:
    def midclt(self, host, method: str, *args):
        argv = ["midclt", "call", method, *[a if isinstance(a, str) else json.dumps(a) for a in args]]
        rc, out, err = ssh_run(host, argv)
        assert rc == 0, err
        return json.loads(out) if out.strip()[:1] in "[{" else out.strip()

    def app(self, host, name: str):
        found = self.midclt(host, "app.query", [["name", "=", name]])
        return found[0] if found else None

    def wait_job(self, host, job_id) -> dict:
        for _ in range(100):
            job = self.midclt(host, "core.get_jobs", [["id", "=", int(job_id)]])[0]
            if job["state"] in ("SUCCESS", "FAILED"):
                return job
            time.sleep(0.1)
        raise AssertionError(f"job {job_id} never finished")
