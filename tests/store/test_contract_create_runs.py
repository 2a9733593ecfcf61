"""``RunRecords.create_runs`` (core/ports.py), three stores: a batch of creates keeps every
promise ``create_run`` makes (request keys, per-user and total limits, atomic against
other creates), each result in its create's place. The scheduler starts a round's fires
with it (core/scheduler.py)."""

from __future__ import annotations

import threading

from flask_realtime.core.ports import ActiveLimitError, RunStore
from flask_realtime.core.runs import Run, RunState


def a_run(run_id: str, user: str = "alice") -> Run:
    return Run(id=run_id, job="countdown", title="countdown", user=user, params={"n": 3})


def test_a_batch_stores_every_run_in_order(store: RunStore) -> None:
    runs = [a_run("r1"), a_run("b1", "bob")]
    made = store.create_runs([(runs[0], None), (runs[1], "bob\x00k")])
    assert made == runs
    assert [store.get_run("r1"), store.get_run("b1")] == runs
    assert {r.id for r in store.list_runs("bob")} == {"b1"}
    found = store.run_for_request("bob\x00k")
    assert found is not None and found.id == "b1"
    assert store.create_runs([]) == []


def test_a_batch_counts_its_own_creates_against_the_limits(store: RunStore) -> None:
    first = store.create_run(a_run("r0"), per_user=2, total=4)
    made = store.create_runs(
        [(a_run("r1"), None), (a_run("r2"), None), (a_run("b1", "bob"), None),
         (a_run("c1", "carol"), None), (a_run("d1", "dave"), None)], per_user=2, total=4)
    assert [m.id if isinstance(m, Run) else m.scope for m in made] == [
        "r1", "user", "b1", "c1", "total"]
    assert store.get_run("r2") is None and store.get_run("d1") is None
    # finished runs do not count: a place freed is taken by the next batch
    assert store.replace_run(first.moved_to(RunState.STOPPED), RunState.QUEUED)
    again = store.create_runs([(a_run("r3"), None)], per_user=2, total=4)
    assert [m.id for m in again if isinstance(m, Run)] == ["r3"]


def test_a_repeated_request_key_returns_the_first_run(store: RunStore) -> None:
    first = store.create_run(a_run("r1"), "alice\x00req-1", per_user=1)
    made = store.create_runs([(a_run("r2"), "alice\x00req-1"), (a_run("b1", "bob"), "bob\x00x"),
                              (a_run("b2", "bob"), "bob\x00x")], per_user=1)
    assert [m.id if isinstance(m, Run) else m for m in made] == [first.id, "b1", "b1"]
    assert store.get_run("r2") is None and store.get_run("b2") is None
    refused = store.create_runs([(a_run("r3"), "alice\x00req-2")], per_user=1)
    assert isinstance(refused[0], ActiveLimitError) and refused[0].scope == "user"
    assert store.run_for_request("alice\x00req-2") is None  # a refusal keeps no key


def test_concurrent_batches_never_pass_the_limit(store: RunStore) -> None:
    barrier = threading.Barrier(6)
    made: list[str] = []

    def create(i: int) -> None:
        barrier.wait()
        creates: list[tuple[Run, str | None]] = [(a_run(f"r{i}-{j}"), None) for j in range(4)]
        creates.append((a_run(f"u{i}", f"user{i}"), None))
        batch = store.create_runs(creates, per_user=5, total=10)
        made.extend(m.id for m in batch if isinstance(m, Run))

    threads = [threading.Thread(target=create, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    # alice's fifth place and the tenth in all are taken once each, whatever the order
    assert len(made) == 10
    assert sum(1 for run_id in made if run_id.startswith("r")) == 5
    assert len(store.list_runs(states=[RunState.QUEUED], limit=100)) == 10
