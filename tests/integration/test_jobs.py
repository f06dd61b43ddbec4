"""The durable job queue (storage/jobs.py) and the worker runtime on real Postgres: exactly-once
effects under concurrency, per-lane order, retries with backoff, visible failures, lease
recovery, lost leases and a worker process killed with SIGKILL mid-job.

A job's effect is a row in a test-only table, written in the same transaction as `complete_in`."""
from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from bot.workers import Ctx, JobHandler, Runtime
from core.errors import InvalidInput, Retryable
from storage import jobs as jobq

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
async def effects(db):
    """A test-only effects table the app role may write (dropped afterwards)."""
    async with db.admin.begin() as conn:
        await conn.execute(text("DROP TABLE IF EXISTS test_job_effects"))
        await conn.execute(text(
            "CREATE TABLE test_job_effects (seq bigserial PRIMARY KEY, job_id bigint NOT NULL, lane_key text, "
            "worker text NOT NULL, open_predecessors int NOT NULL DEFAULT 0, at timestamptz DEFAULT clock_timestamp())"))
        await conn.execute(text("GRANT SELECT, INSERT ON test_job_effects TO flowpilot_app"))
        await conn.execute(text("GRANT USAGE ON SEQUENCE test_job_effects_seq_seq TO flowpilot_app"))
    yield
    async with db.admin.begin() as conn:
        await conn.execute(text("DROP TABLE test_job_effects"))


async def write_effect(conn, job: jobq.Job, worker: str) -> None:
    """The job's effect; also records how many earlier jobs of its lane were not done yet."""
    await conn.execute(text(
        "INSERT INTO test_job_effects (job_id, lane_key, worker, open_predecessors) VALUES (:j, :l, :w, "
        "(SELECT count(*) FROM jobs WHERE lane_key = :l AND id < :j AND status <> 'done'))"),
        dict(j=job.id, l=job.lane_key, w=worker))


async def effect_rows(db) -> list[dict[str, Any]]:
    async with db.admin.connect() as conn:
        return [dict(r._mapping) for r in (await conn.execute(text("SELECT * FROM test_job_effects ORDER BY seq")))]


async def job_row(db, job_id: int) -> dict[str, Any]:
    async with db.admin.connect() as conn:
        return dict((await conn.execute(text("SELECT * FROM jobs WHERE id = :i"), dict(i=job_id))).one()._mapping)


async def enqueue(db, kind: str, n: int = 1, lane_key: str | None = None, **kw) -> list[int]:
    async with db.admin.begin() as conn:
        return [await jobq.enqueue(conn, kind, {"n": i}, account_id=None, lane_key=lane_key, **kw) for i in range(n)]


async def eventually(check: Callable[[], Awaitable[Any]], timeout: float = 10.0, what: str = "condition") -> Any:
    """Poll `check` until it returns something truthy, with a deadline (time-based behaviour only)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        value = await check()
        if value:
            return value
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


class Progress:
    """Completed-job counter that idle workers wait on (no polling between workers)."""

    def __init__(self) -> None:
        self.count = 0
        self._cond = asyncio.Condition()

    async def bump(self) -> None:
        async with self._cond:
            self.count += 1
            self._cond.notify_all()

    async def wait_past(self, seen: int) -> None:
        async with self._cond:
            await asyncio.wait_for(self._cond.wait_for(lambda: self.count != seen), timeout=10)


# ----------------------------------------------------------------------------- exactly once, in lane order
async def test_eight_workers_run_a_thousand_jobs_exactly_once_and_lanes_in_order(db, effects):
    lanes = [f"turn:{n}" for n in range(25)]
    async with db.admin.begin() as conn:  # lanes interleaved with lane-less jobs, in one commit
        for i in range(1000):
            lane = lanes[(i // 5) % 25] if i % 5 else None
            await jobq.enqueue(conn, "work", {"i": i}, account_id=None, lane_key=lane)
    progress = Progress()

    async def worker(name: str) -> None:
        while True:
            seen = progress.count
            async with db.no_tenant() as conn:
                claimed = await jobq.claim(conn, name, lease_s=60, limit=2, kinds=["work"])
            if not claimed:
                async with db.no_tenant() as conn:
                    left = (await conn.execute(text(
                        "SELECT count(*) FROM jobs WHERE status IN ('pending', 'running')"))).scalar_one()
                if left == 0:
                    return
                await progress.wait_past(seen)  # a lane head is still running elsewhere
                continue
            for job in claimed:
                async with db.no_tenant() as conn:
                    await write_effect(conn, job, name)
                    await jobq.complete_in(conn, job)
                await progress.bump()

    await asyncio.wait_for(asyncio.gather(*(worker(f"w{i}") for i in range(8))), timeout=60)

    rows = await effect_rows(db)
    per_job: dict[int, int] = {}
    for r in rows:
        per_job[r["job_id"]] = per_job.get(r["job_id"], 0) + 1
    assert len(per_job) == 1000 and set(per_job.values()) == {1}
    assert len({r["worker"] for r in rows}) > 1  # the work really was shared
    assert all(r["open_predecessors"] == 0 for r in rows)  # no job ran before its lane's earlier jobs
    for lane in lanes:
        order = [r["job_id"] for r in rows if r["lane_key"] == lane]
        assert len(order) == 32 and order == sorted(order), lane
    async with db.admin.connect() as conn:
        statuses = (await conn.execute(text("SELECT status, attempts, count(*) FROM jobs GROUP BY 1, 2"))).all()
    assert [tuple(s) for s in statuses] == [("done", 1, 1000)]


async def test_a_lane_waits_for_its_head_even_when_later_jobs_are_due(db, effects):
    first, second = await enqueue(db, "work", 2, lane_key="turn:a")
    async with db.no_tenant() as conn:
        [head] = await jobq.claim(conn, "w1", lease_s=30, limit=5)
    async with db.no_tenant() as conn:
        assert await jobq.claim(conn, "w2", lease_s=30, limit=5) == []  # second waits behind the running head
    async with db.no_tenant() as conn:  # the head fails and is retried later: the lane still waits
        await jobq.fail(conn, head, "Retryable: busy", retry=True, base=30, cap=60)
    async with db.no_tenant() as conn:
        assert await jobq.claim(conn, "w2", lease_s=30, limit=5) == []
    assert (await job_row(db, second))["status"] == "pending" and head.id == first


# ----------------------------------------------------------------------------- retries and failures (Runtime)
@pytest.fixture
async def runtime_for(store):
    started: list[Runtime] = []

    async def make(handlers: dict[str, JobHandler]) -> Runtime:
        rt = Runtime(store=store, handlers=handlers, senders={}, lease_s=30, poll_s=0.1, backoff_base=0.05,
                     backoff_cap=1.0, job_workers=2, outbox_workers=0)
        await rt.start()
        started.append(rt)
        return rt

    yield make
    for rt in started:
        await rt.stop(grace_s=5)


async def account(store):
    return await store.ensure_workspace("console", "ws-jobs", "Jobs Inc")


async def enqueue_for(store, kind: str, **kw) -> int:
    async with store.unit(await account(store)) as uow:
        return await jobq.enqueue(uow.conn, kind, {"what": "x"}, account_id=uow.account_id, **kw)


async def test_a_transient_failure_is_retried_after_the_backoff_then_done_once(db, store, effects, runtime_for):
    loop = asyncio.get_running_loop()
    attempts: list[float] = []

    async def flaky(ctx: Ctx) -> None:
        attempts.append(loop.time())
        if len(attempts) == 1:
            raise Retryable("model overloaded (529)", retry_after=0.4)
        async with ctx.unit() as uow:
            await write_effect(uow.conn, ctx.job, "runtime")
            await ctx.complete(uow)

    await runtime_for({"flaky": JobHandler(run=flaky)})
    job_id = await enqueue_for(store, "flaky")
    row = await eventually(lambda: _with_status(db, job_id, "done"), what="job done")
    assert row["attempts"] == 2 and "model overloaded" in row["last_error"]
    assert attempts[1] - attempts[0] >= 0.4  # the Retry-After hint was honoured
    assert [r["job_id"] for r in await effect_rows(db)] == [job_id]


async def test_a_job_failing_past_max_attempts_ends_failed_and_visible(db, store, effects, runtime_for):
    calls: list[int] = []
    gave_up: list[Exception] = []

    async def broken(ctx: Ctx) -> None:
        calls.append(ctx.attempts)
        async with ctx.unit() as uow:
            await write_effect(uow.conn, ctx.job, "runtime")
            raise RuntimeError("ConnectWise answered 503")  # the effect rolls back with it

    async def give_up(ctx: Ctx, exc: Exception) -> None:
        gave_up.append(exc)

    await runtime_for({"broken": JobHandler(run=broken, give_up=give_up)})
    job_id = await enqueue_for(store, "broken", max_attempts=3)
    row = await eventually(lambda: _with_status(db, job_id, "failed"), what="job failed")
    assert calls == [1, 2, 3] and row["attempts"] == 3
    assert row["last_error"] == "RuntimeError: ConnectWise answered 503" and row["finished_at"] is not None
    assert len(gave_up) == 1 and "503" in str(gave_up[0])
    async with db.no_tenant() as conn:
        assert (await jobq.stats(conn))["failed"]["count"] == 1  # visible to metrics
    assert await effect_rows(db) == []  # no failed attempt left an effect behind


async def test_a_user_error_is_not_retried(db, store, effects, runtime_for):
    calls: list[int] = []

    async def refuses(ctx: Ctx) -> None:
        calls.append(ctx.attempts)
        raise InvalidInput("That ticket number is not valid.")

    await runtime_for({"refuses": JobHandler(run=refuses)})
    job_id = await enqueue_for(store, "refuses")
    row = await eventually(lambda: _with_status(db, job_id, "failed"), what="job failed")
    assert calls == [1] and row["last_error"] == "InvalidInput: That ticket number is not valid."


async def test_an_error_after_the_job_committed_does_not_run_it_again(db, store, effects):
    """The effect and the completion committed; a later error (say, a follow-up call) must not
    put the finished job back in the queue, or its effect would happen twice."""
    gave_up: list[Exception] = []

    async def completes_then_raises(ctx: Ctx) -> None:
        async with ctx.unit() as uow:
            await write_effect(uow.conn, ctx.job, "runtime")
            await ctx.complete(uow)
        raise RuntimeError("follow-up failed")

    async def give_up(ctx: Ctx, exc: Exception) -> None:
        gave_up.append(exc)

    rt = Runtime(store=store, handlers={"once": JobHandler(run=completes_then_raises, give_up=give_up)}, senders={},
                 backoff_base=0.01, backoff_cap=0.01)
    job_id = await enqueue_for(store, "once", max_attempts=1)
    async with db.no_tenant() as conn:
        [job] = await jobq.claim(conn, "w1", lease_s=30)
    await rt.run_job(job)
    row = await job_row(db, job_id)
    assert (row["status"], row["attempts"]) == ("done", 1)
    assert gave_up == []  # nobody is told a finished job failed
    async with db.no_tenant() as conn:
        assert await jobq.claim(conn, "w2", lease_s=30) == []
    assert [r["job_id"] for r in await effect_rows(db)] == [job_id]

    retry_id = await enqueue_for(store, "once", max_attempts=5)  # the retry branch must not reopen it either
    async with db.no_tenant() as conn:
        [job] = await jobq.claim(conn, "w1", lease_s=30)
    await rt.run_job(job)
    assert (await job_row(db, retry_id))["status"] == "done"
    async with db.no_tenant() as conn:
        assert await jobq.claim(conn, "w2", lease_s=30) == []


async def _with_status(db, job_id: int, status: str) -> dict[str, Any] | None:
    row = await job_row(db, job_id)
    return row if row["status"] == status else None


# ----------------------------------------------------------------------------- leases
async def _recovered(db) -> int:
    async with db.no_tenant() as conn:
        return await jobq.recover_expired(conn)


async def test_an_expired_lease_is_recovered_and_the_job_runs_once(db, effects):
    [job_id] = await enqueue(db, "work")
    async with db.no_tenant() as conn:
        [lost] = await jobq.claim(conn, "vanished", lease_s=0.2)
    assert await _recovered(db) == 0  # the lease is still valid
    await eventually(lambda: _recovered(db), what="lease expiry")
    row = await job_row(db, job_id)
    assert (row["status"], row["locked_by"], row["lease_until"]) == ("pending", None, None)
    assert "[lease expired]" in row["last_error"]
    async with db.no_tenant() as conn:
        [job] = await jobq.claim(conn, "rescuer", lease_s=30)
    assert job.id == lost.id and job.attempts == 2
    async with db.no_tenant() as conn:
        await write_effect(conn, job, "rescuer")
        await jobq.complete_in(conn, job)
    assert [r["worker"] for r in await effect_rows(db)] == ["rescuer"]
    assert (await job_row(db, job_id))["status"] == "done"


async def test_an_expired_lease_out_of_attempts_ends_failed(db, effects):
    [job_id] = await enqueue(db, "work", max_attempts=1)
    async with db.no_tenant() as conn:
        await jobq.claim(conn, "vanished", lease_s=0.1)
    await eventually(lambda: _recovered(db), what="lease expiry")
    row = await job_row(db, job_id)
    assert row["status"] == "failed" and row["finished_at"] is not None and "[lease expired]" in row["last_error"]


async def test_a_worker_that_lost_its_lease_rolls_its_effect_back(db, store, effects):
    [job_id] = await enqueue(db, "work")
    async with db.no_tenant() as conn:
        [stale] = await jobq.claim(conn, "slow-worker", lease_s=0.2)
    await eventually(lambda: _recovered(db), what="lease expiry")
    async with db.no_tenant() as conn:
        [fresh] = await jobq.claim(conn, "fresh-worker", lease_s=30)

    with pytest.raises(jobq.LeaseLost):  # directly: the transaction with the effect rolls back
        async with db.no_tenant() as conn:
            await write_effect(conn, stale, "slow-worker")
            await jobq.complete_in(conn, stale)

    async def handler(ctx: Ctx) -> None:
        async with ctx.unit() as uow:
            await write_effect(uow.conn, ctx.job, "slow-worker")
            await ctx.complete(uow)

    # through the runtime: LeaseLost is absorbed, nothing is marked failed or retried
    rt = Runtime(store=store, handlers={"work": JobHandler(run=handler)}, senders={})
    stale.account_id = await account(store)
    await rt.run_job(stale)
    row = await job_row(db, job_id)
    assert (row["status"], row["locked_by"], row["attempts"]) == ("running", "fresh-worker", 2)
    assert await effect_rows(db) == []

    async with db.no_tenant() as conn:
        await write_effect(conn, fresh, "fresh-worker")
        await jobq.complete_in(conn, fresh)
    assert [r["worker"] for r in await effect_rows(db)] == ["fresh-worker"]


async def test_a_worker_killed_mid_job_is_recovered_and_the_job_finishes_once(db, database_url, effects):
    [job_id] = await enqueue(db, "kill_test")
    env = {**os.environ, "FLOWPILOT_KILL_TEST_DB_URL": database_url, "FLOWPILOT_KILL_TEST_LEASE": "1"}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tests.integration.job_worker_proc", cwd=str(REPO), env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    try:
        line = await asyncio.wait_for(proc.stdout.readline(), timeout=30)
        if not line.startswith(b"CLAIMED"):
            err = await proc.stderr.read()
            raise AssertionError(f"worker did not claim: {line!r} {err.decode()[-2000:]}")
        assert int(line.split()[1]) == job_id
        row = await job_row(db, job_id)
        assert (row["status"], row["locked_by"]) == ("running", "doomed-worker")
        assert await effect_rows(db) == []  # its effect is not committed
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGKILL)
        await asyncio.wait_for(proc.wait(), timeout=10)
    assert proc.returncode == -signal.SIGKILL

    await eventually(lambda: _recovered(db), timeout=15, what="the dead worker's lease to expire")
    async with db.no_tenant() as conn:
        [job] = await jobq.claim(conn, "rescuer", lease_s=30, kinds=["kill_test"])
    async with db.no_tenant() as conn:
        await write_effect(conn, job, "rescuer")
        await jobq.complete_in(conn, job)
    assert [(r["job_id"], r["worker"]) for r in await effect_rows(db)] == [(job_id, "rescuer")]
    row = await job_row(db, job_id)
    assert (row["status"], row["attempts"]) == ("done", 2) and "[lease expired]" in row["last_error"]
