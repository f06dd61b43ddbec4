"""Shared benchmark plumbing: a fresh database on the embedded Postgres, the in-process FlowPilot
from tests/harness.py, JSON output to stdout and bench/results/<name>.json."""
from __future__ import annotations

import contextlib
import json
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from storage import migrate
from storage.embedded import drop_and_create, drop_database

RESULTS = Path(__file__).resolve().parent / "results"
BENCH_PG = Path(tempfile.gettempdir()) / f"flowpilot-bench-pg-{os.getuid()}"


@contextlib.asynccontextmanager
async def fresh_database(name: str):
    import asyncio

    db = f"flowpilot_bench_{name}_{os.getpid()}"
    url = await asyncio.to_thread(drop_and_create, BENCH_PG, db)
    await migrate.upgrade(url)
    try:
        yield url
    finally:
        await asyncio.to_thread(drop_database, BENCH_PG, db)


def percentiles(values: list[float]) -> dict[str, float]:
    if not values:
        return {"p50": 0.0, "p90": 0.0, "p99": 0.0, "n": 0}
    ordered = sorted(values)

    def pick(q: float) -> float:
        return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000, 3)

    return {"p50_ms": pick(0.5), "p90_ms": pick(0.9), "p99_ms": pick(0.99),
            "mean_ms": round(statistics.fmean(ordered) * 1000, 3), "n": len(ordered)}


def emit(name: str, result: dict[str, Any]) -> dict[str, Any]:
    result = {"benchmark": name, "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), **result}
    text = json.dumps(result, indent=2, sort_keys=True)
    print(text)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{name}.json").write_text(text + "\n")
    return result
