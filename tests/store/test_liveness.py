"""Liveness rules, by hand: dead runs, the live claim that owns a config, overlapping runs."""

from __future__ import annotations

import socket

from mnistlab.store.liveness import STALE_AFTER_SECONDS, claim_holder, death, overlapping
from mnistlab.store.records import StoredRun

NOW = 10_000_000


def stored(run_id="r", status="RUNNING", start=NOW - 1000, end=None, **tags) -> StoredRun:
    return StoredRun(run_id, run_id, status, start, {k: str(v) for k, v in tags.items()}, {}, end)


def test_a_run_is_dead_when_its_local_process_is_gone_or_its_heartbeat_is_stale():
    here = socket.gethostname()
    gone, alive = (lambda pid: False), (lambda pid: True)
    assert "process died" in death(stored(host=here, pid=999999), NOW, gone)
    assert death(stored(host=here, pid=999999), NOW, alive) is None
    stale = NOW - int(STALE_AFTER_SECONDS * 1000) - 1
    assert "no heartbeat" in death(stored(host="elsewhere", heartbeat=stale), NOW, alive)
    assert death(stored(host="elsewhere", heartbeat=NOW - 1000), NOW, alive) is None
    # A run from before heartbeats: its start counts as its last sign of life.
    assert death(stored(host="elsewhere", start=stale), NOW, alive) is not None
    assert death(stored(status="FINISHED", host="elsewhere", start=stale), NOW, alive) is None


def test_the_earliest_live_claim_owns_a_config_and_attempts_of_one_task_do_not_compete():
    ours = stored("b", start=NOW)
    earlier = stored("a", start=NOW - 5)
    assert claim_holder([ours, earlier], ours, since_ms=NOW - 100) == earlier
    assert claim_holder([ours, earlier], earlier, since_ms=NOW - 100) is None
    tie = stored("c", start=NOW)  # same millisecond: the run id decides, the same way for both
    assert (
        claim_holder([ours, tie], ours, NOW) is None and claim_holder([ours, tie], tie, NOW) == ours
    )
    finished_since = stored("f", status="FINISHED", start=NOW - 50, end=NOW - 10)
    assert claim_holder([ours, finished_since], ours, since_ms=NOW - 100) == finished_since
    assert claim_holder([ours, finished_since], ours, since_ms=NOW - 20) is None  # --force
    retry, first_attempt = stored("d", start=NOW, claim="t"), stored("e", start=NOW - 9, claim="t")
    assert claim_holder([retry, first_attempt], retry, NOW - 100) is None


def test_runs_overlap_on_one_host_only_while_both_ran():
    ours = stored("o", start=NOW - 100, host="h")
    runs = [
        stored("running", start=NOW - 500, host="h"),
        stored("ended-during", status="FINISHED", start=NOW - 500, end=NOW - 50, host="h"),
        stored("ended-before", status="FINISHED", start=NOW - 500, end=NOW - 200, host="h"),
        stored("other-host", start=NOW - 50, host="g"),
        stored("started-after", start=NOW + 10, host="h"),
    ]
    found = {r.run_id for r in overlapping(runs, ours, until_ms=NOW)}
    assert found == {"running", "ended-during"}
