"""``RunRecords.replace_runs`` (core/ports.py), three stores: a batch of compare-and-sets,
each saved only when its run is still in its expected state, each result in its place,
atomic against other writers. The run service moves a round of scheduled runs queued ->
running with it (core/service.py, ``RunService.begin_runs``)."""

from __future__ import annotations

import threading

from flask_realtime.core.ports import RunStore
from flask_realtime.core.runs import Run, RunState


def a_run(run_id: str, user: str = "alice") -> Run:
    return Run(id=run_id, job="countdown", title="countdown", user=user, params={"n": 3})


def test_a_batch_saves_only_the_runs_still_in_their_expected_state(store: RunStore) -> None:
    runs = [store.create_run(a_run(f"r{n}")) for n in range(3)]
    assert store.replace_run(runs[1].moved_to(RunState.STOPPED), RunState.QUEUED)
    moved = [run.moved_to(RunState.RUNNING) for run in runs]
    assert store.replace_runs([(run, RunState.QUEUED) for run in moved]) == [True, False, True]
    assert store.get_run("r0") == moved[0] and store.get_run("r2") == moved[2]
    stored = store.get_run("r1")
    assert stored is not None and stored.state is RunState.STOPPED  # not overwritten
    assert store.replace_runs([]) == []
    assert store.replace_runs([(a_run("gone").moved_to(RunState.RUNNING),
                                RunState.QUEUED)]) == [False]
    assert store.get_run("gone") is None


def test_a_batch_that_finishes_runs_takes_them_off_the_active_ones(store: RunStore) -> None:
    runs = [store.create_run(a_run(f"r{n}")) for n in range(2)]
    assert store.replace_runs([(runs[0].moved_to(RunState.STOPPED), RunState.QUEUED),
                               (runs[1].moved_to(RunState.RUNNING), RunState.QUEUED)]) == [
        True, True]
    active = {r.id for r in store.list_runs(states=(RunState.QUEUED, RunState.RUNNING))}
    assert active == {"r1"}
    # the finished run no longer counts against a limit of one active run
    assert store.create_run(a_run("b1", "bob"), per_user=1, total=2).id == "b1"


def test_a_batch_and_a_concurrent_move_never_both_win(store: RunStore) -> None:
    runs = [store.create_run(a_run(f"r{n}")) for n in range(50)]
    won_by_stop: list[bool] = []

    def stop_all() -> None:
        won_by_stop.extend(store.replace_run(run.moved_to(RunState.STOPPED), RunState.QUEUED)
                           for run in runs)

    stopper = threading.Thread(target=stop_all)
    stopper.start()
    won_by_batch = store.replace_runs([(run.moved_to(RunState.RUNNING), RunState.QUEUED)
                                       for run in runs])
    stopper.join(30)
    assert [a != b for a, b in zip(won_by_stop, won_by_batch, strict=True)] == [True] * 50
    for run, batch in zip(runs, won_by_batch, strict=True):
        stored = store.get_run(run.id)
        assert stored is not None
        assert stored.state is (RunState.RUNNING if batch else RunState.STOPPED)
