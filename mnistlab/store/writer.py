"""A run's writes to the tracking store, off the training thread, retried through outages.

Training hands each write (a closure over the store) to submit() and goes on: a metric
flush never waits on the store. One background thread runs the writes in order. A write
that fails as an outage does (connection refused, timeout, server error, a locked or
vanished file) is retried with backoff for at most RETRY_SECONDS from the outage's first
failure (MNISTLAB_STORE_RETRY_SECONDS, default 120). If the store is still away after
that, the writer goes offline and runs nothing more: the run's record in memory is
complete, and TrackedRun spools it at the end (spool.py). A write the store refuses as
invalid is not retried; the first such error is raised when the run ends.

Between writes, and at least every liveness.HEARTBEAT_SECONDS, the thread calls `beat`
(the run's heartbeat and contention check); a failed beat is simply tried at the next one.
"""

from __future__ import annotations

import contextlib
import os
import queue
import threading
import time
from collections.abc import Callable

RETRY_SECONDS = float(os.environ.get("MNISTLAB_STORE_RETRY_SECONDS", "120"))
_STOP = object()


class Writer:
    def __init__(
        self,
        is_outage: Callable[[BaseException], bool],
        beat: Callable[[], None],
        beat_seconds: float,
        retry_seconds: float | None = None,
        on_retry: Callable[[BaseException, float], None] | None = None,
    ) -> None:
        self.is_outage = is_outage
        self.on_retry = on_retry  # told (error, seconds waited) before each retry
        self.beat = beat
        self.beat_seconds = beat_seconds
        self.retry_seconds = RETRY_SECONDS if retry_seconds is None else retry_seconds
        self.offline = False  # the store stayed away past the retry window
        self.outage_error: BaseException | None = None
        self.refused: BaseException | None = None  # the first write the store rejected
        self._queue: queue.Queue = queue.Queue()
        self._last_beat = time.monotonic()
        self._thread = threading.Thread(target=self._loop, name="mnistlab-writer", daemon=True)
        self._thread.start()

    def submit(self, write: Callable[[], object]) -> None:
        """Queue a write; it runs after every write queued before it."""
        self._queue.put(write)

    def close(self) -> None:
        """Run what is queued, then stop the thread."""
        self._queue.put(_STOP)
        self._thread.join()

    def _loop(self) -> None:
        while True:
            try:
                write = self._queue.get(timeout=self.beat_seconds)
            except queue.Empty:
                self._beat()
                continue
            try:
                if write is _STOP:
                    return
                self._run(write)
                if time.monotonic() - self._last_beat >= self.beat_seconds:
                    self._beat()
            finally:
                self._queue.task_done()

    def _beat(self) -> None:
        self._last_beat = time.monotonic()
        if self.offline:
            return
        with contextlib.suppress(Exception):  # a missed beat is retried at the next one
            self.beat()

    def _run(self, write: Callable[[], object]) -> None:
        if self.offline:
            return
        deadline = None
        delay = 0.5
        while True:
            try:
                write()
                return
            except Exception as error:  # noqa: BLE001 - sorted into outage or refusal below
                if not self.is_outage(error):
                    self.refused = self.refused or error
                    return
                deadline = deadline or time.monotonic() + self.retry_seconds
                if time.monotonic() >= deadline:
                    self.offline, self.outage_error = True, error
                    return
                if self.on_retry is not None:
                    self.on_retry(error, self.retry_seconds - (deadline - time.monotonic()))
                time.sleep(min(delay, max(0.0, deadline - time.monotonic())))
                delay = min(delay * 2, 10.0)
