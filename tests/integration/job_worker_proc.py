"""A job worker that dies mid-job, for the kill -9 test in test_jobs.py.

It claims one `kill_test` job with a short lease, writes the job's effect inside a transaction
it never commits, prints `CLAIMED <job id>` and then blocks until it is killed. The database URL
comes from FLOWPILOT_KILL_TEST_DB_URL; the lease from FLOWPILOT_KILL_TEST_LEASE (seconds)."""
from __future__ import annotations

import asyncio
import os
import sys

from sqlalchemy import text

from storage import jobs
from storage.db import Database

WORKER = "doomed-worker"


async def main() -> int:
    db = Database.connect(os.environ["FLOWPILOT_KILL_TEST_DB_URL"], pool_size=1)
    lease = float(os.environ.get("FLOWPILOT_KILL_TEST_LEASE", "1"))
    async with db.no_tenant() as conn:
        claimed = await jobs.claim(conn, WORKER, lease, kinds=["kill_test"])
    if not claimed:
        print("NOTHING", flush=True)
        return 1
    job = claimed[0]
    async with db.no_tenant() as conn:
        await conn.execute(text("INSERT INTO test_job_effects (job_id, worker) VALUES (:j, :w)"),
                           dict(j=job.id, w=WORKER))
        print(f"CLAIMED {job.id}", flush=True)
        await asyncio.Event().wait()  # mid-job, transaction open: only SIGKILL ends this
        await jobs.complete_in(conn, job)
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
