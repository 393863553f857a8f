"""Which runs are alive, which run owns a config, and which runs shared the machine.

Decided from facts the store holds, wherever a run ran: its status, its host and pid tags,
and its heartbeat tag, which a training run refreshes every HEARTBEAT_SECONDS from a
background thread (tracked_run.TrackedRun), whatever training is doing.

- A RUNNING run is dead when, on this host, its process is gone; or, on any host, its
  heartbeat is older than STALE_AFTER_SECONDS (20 beats: a store outage shorter than the
  retry window does not kill a run). The next study invocation marks it FAILED.
- A config is trained at most once at a time: each run claims its config by being created
  RUNNING, then re-reads the config's runs; the earliest live claim (start time, then run
  id) wins and the others withdraw before training.
- A run is contended when its time overlapped another live run on the same host.

Pure functions over records.StoredRun: no store access here, so every rule is unit-tested.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable, Iterable

from mnistlab.names import CLAIM_TAG, HEARTBEAT_TAG, HOST_TAG, PID_TAG, ROLE_TAG, STUDY_ROLE
from mnistlab.store.records import StoredRun

HEARTBEAT_SECONDS = float(os.environ.get("MNISTLAB_HEARTBEAT_SECONDS", "15"))
STALE_AFTER_SECONDS = float(os.environ.get("MNISTLAB_STALE_AFTER_SECONDS", "300"))


def last_sign_of_life(run: StoredRun) -> int:
    """ms: the run's last heartbeat, or its start for a run that has none (older code)."""
    try:
        return int(run.tags[HEARTBEAT_TAG])
    except (KeyError, ValueError):
        return run.start_time


def death(
    run: StoredRun,
    now_ms: int,
    process_alive: Callable[[int], bool],
    host: str | None = None,
) -> str | None:
    """Why a RUNNING run is dead, or None while it may be alive."""
    if run.status != "RUNNING":
        return None
    host = host or socket.gethostname()
    pid = int(run.tags.get(PID_TAG, "0") or 0)
    if run.tags.get(HOST_TAG) == host and pid and pid != os.getpid() and not process_alive(pid):
        return "process died while running"
    silent = (now_ms - last_sign_of_life(run)) / 1000
    if silent > STALE_AFTER_SECONDS:
        return (
            f"no heartbeat for {silent:.0f} s (limit {STALE_AFTER_SECONDS:.0f} s) from host "
            f"{run.tags.get('host', '?')}: presumed dead"
        )
    return None


def claim_holder(runs: Iterable[StoredRun], ours: StoredRun, since_ms: int) -> StoredRun | None:
    """The run that owns ours's config instead of it, or None when ours may train.

    runs: the experiment's runs of the same config hash, ours among them, the dead already
    marked FAILED. A run finished after since_ms (when this invocation planned) was trained
    meanwhile by someone else; a RUNNING run that claimed earlier is training it now.
    Attempts of the same task (the claim tag) never compete with each other.
    """
    rivals = [
        r
        for r in runs
        if r.run_id != ours.run_id
        and (not ours.tags.get(CLAIM_TAG) or r.tags.get(CLAIM_TAG) != ours.tags.get(CLAIM_TAG))
    ]
    finished = [r for r in rivals if r.status == "FINISHED" and r.start_time >= since_ms]
    earlier = [
        r
        for r in rivals
        if r.status == "RUNNING" and (r.start_time, r.run_id) < (ours.start_time, ours.run_id)
    ]
    return min(finished + earlier, key=lambda r: (r.start_time, r.run_id), default=None)


def overlapping(runs: Iterable[StoredRun], ours: StoredRun, until_ms: int) -> list[StoredRun]:
    """Runs on ours's host whose time overlapped ours (its start until until_ms)."""
    host = ours.tags.get(HOST_TAG)
    return [
        r
        for r in runs
        if r.run_id != ours.run_id
        and r.tags.get(HOST_TAG) == host
        and r.tags.get(ROLE_TAG) != STUDY_ROLE
        and r.start_time < until_ms
        and (r.status == "RUNNING" or (r.end_time or 0) > ours.start_time)
    ]


def process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
