"""Tasks of every server process: a loop that does due work from the
database, and the base of such tasks."""

from __future__ import annotations

import asyncio
import contextlib
import logging

log = logging.getLogger("hulian.background")


class BackgroundTask:
    """One task of the process, started and stopped with the app: `_run`."""

    name = "hulian-task"

    def __init__(self) -> None:
        self._task: asyncio.Task[None] | None = None

    async def _run(self) -> None:
        raise NotImplementedError

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=self.name)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None


class PollingLoop(BackgroundTask):
    """Calls `run_pass` every `interval` seconds, and again at once while a
    pass reports a full batch (more is due). A failed pass (a lost
    connection) is logged and does not stop the loop."""

    name = "hulian-loop"

    def __init__(self, interval: float, batch: int) -> None:
        super().__init__()
        self._interval = interval
        self._batch = batch
        self.passes = 0  # passes completed, for tests and health checks

    async def run_pass(self) -> int:
        """One pass; how much work it did."""
        raise NotImplementedError

    async def _run(self) -> None:
        while True:
            try:
                done = await self.run_pass()
                self.passes += 1
                if done >= self._batch:
                    continue  # more is due: no pause
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("background pass failed", extra={"loop": self.name})
            await asyncio.sleep(self._interval)
