"""A sweep still running at its next tick skips that tick: counted per sweep, not warned about."""

from __future__ import annotations

import asyncio
import logging

import pytest
from telegram.ext import ApplicationBuilder, ContextTypes

from bot.ops.scheduler import count_overruns, overruns

SKIPPED = "maximum number of running instances reached"


async def test_a_sweep_that_overruns_is_counted_and_not_logged(caplog: pytest.LogCaptureFixture) -> None:
    """Another job's skipped tick still warns: only the sweeps the scheduler counts are quiet."""
    application = ApplicationBuilder().token("1:overruns").build()  # the job queue keeps only a weak reference
    queue = application.job_queue
    assert queue is not None

    released = asyncio.Event()

    async def slow(_: ContextTypes.DEFAULT_TYPE) -> None:
        await released.wait()

    for name in ("slow_sweep", "someone_elses_job"):
        queue.run_repeating(
            slow,
            interval=0.1,
            first=0,
            name=name,
            job_kwargs={"max_instances": 1, "coalesce": True, "misfire_grace_time": None},
        )
    count_overruns(queue.scheduler, ["slow_sweep"])
    before = overruns().get("slow_sweep", 0)
    with caplog.at_level(logging.WARNING, logger="apscheduler"):
        await queue.start()
        try:
            await asyncio.sleep(0.5)
        finally:
            released.set()
            await asyncio.sleep(0.05)
            await queue.stop()
    warned = [record.getMessage() for record in caplog.records if SKIPPED in record.getMessage()]
    assert overruns().get("slow_sweep", 0) - before >= 2, overruns()
    assert "someone_elses_job" not in overruns()
    assert not [line for line in warned if "slow_sweep" in line], warned
    assert [line for line in warned if "someone_elses_job" in line], "a job the scheduler does not count still warns"
