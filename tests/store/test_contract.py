"""Core's contract, three stores: what core/ports.py promises holds for SQLite, memory
and Redis (runs, stop requests, output, executor liveness). The web tier's part, sessions
and tokens, is tests/store/test_contract_web.py; the ``store`` fixture is in conftest.py."""

from __future__ import annotations

import contextlib
import threading

import pytest

from flask_realtime.core.output import Line
from flask_realtime.core.ports import ActiveLimitError, RunStore
from flask_realtime.core.runs import Run, RunState


def a_run(run_id: str = "r1", user: str = "alice", job: str = "countdown") -> Run:
    return Run(id=run_id, job=job, title=job, user=user, params={"n": 3})


def test_a_run_reads_back_as_stored(store: RunStore) -> None:
    run = a_run()
    store.create_run(run)
    assert store.get_run("r1") == run
    assert store.get_run("nope") is None


def test_the_same_request_key_creates_one_run(store: RunStore) -> None:
    first = store.create_run(a_run("r1"), "alice\x00req-1")
    again = store.create_run(a_run("r2"), "alice\x00req-1")
    assert again.id == first.id == "r1"
    assert store.get_run("r2") is None
    found = store.run_for_request("alice\x00req-1")
    assert found is not None and found.id == "r1"


def test_replace_is_compare_and_set(store: RunStore) -> None:
    run = store.create_run(a_run())
    running = run.moved_to(RunState.RUNNING)
    assert store.replace_run(running, RunState.QUEUED)
    assert not store.replace_run(run.moved_to(RunState.STOPPED), RunState.QUEUED)  # stale
    current = store.get_run("r1")
    assert current is not None and current.state is RunState.RUNNING


def test_only_one_of_many_concurrent_moves_wins(store: RunStore) -> None:
    run = store.create_run(a_run())
    wins: list[bool] = []
    barrier = threading.Barrier(8)

    def move() -> None:
        barrier.wait()
        wins.append(store.replace_run(run.moved_to(RunState.RUNNING), RunState.QUEUED))

    threads = [threading.Thread(target=move) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert wins.count(True) == 1


def test_list_filters_by_user_job_and_state_newest_first(store: RunStore) -> None:
    for i, (user, job) in enumerate([("alice", "a"), ("bob", "a"), ("alice", "b"),
                                     ("alice", "a")]):
        store.create_run(a_run(f"r{i}", user, job))
    finished = store.get_run("r3")
    assert finished is not None
    store.replace_run(finished.moved_to(RunState.RUNNING), RunState.QUEUED)
    assert [r.id for r in store.list_runs("alice")] == ["r3", "r2", "r0"]
    assert [r.id for r in store.list_runs("alice", job="a")] == ["r3", "r0"]
    assert [r.id for r in store.list_runs(states=[RunState.RUNNING])] == ["r3"]
    assert [r.id for r in store.list_runs(states=[RunState.QUEUED, RunState.RUNNING])][
        :2] == ["r3", "r2"]
    assert len(store.list_runs(limit=2)) == 2


def test_old_finished_runs_are_forgotten_with_their_output(store: RunStore) -> None:
    for i in range(1, 7):
        store.create_run(a_run(f"r{i}"))
    store.create_run(a_run("b1", user="bob"))
    for run_id in ("r1", "r2", "r4", "r5", "r6", "b1"):
        run = store.get_run(run_id)
        assert run is not None
        store.replace_run(run.moved_to(RunState.STOPPED), RunState.QUEUED)
    store.append_output("r1", [("stdout", "old", "\n")], 0)
    store.request_stop("r1")

    # r3 is not finished: kept whatever its age; bob's runs are his own
    assert sorted(store.forget_old_runs("alice", keep=3)) == ["r1", "r2"]
    assert [r.id for r in store.list_runs("alice")] == ["r6", "r5", "r4", "r3"]
    assert [r.id for r in store.list_runs()] == ["b1", "r6", "r5", "r4", "r3"]
    assert store.get_run("r1") is None
    assert store.output_end("r1") == 0
    assert store.read_output("r1", 0).lines == []
    assert not store.stop_requested("r1")
    assert store.forget_old_runs("alice", keep=3) == []
    assert store.forget_old_runs("bob", keep=1) == []


def test_stop_requests_are_recorded_and_idempotent(store: RunStore) -> None:
    store.create_run(a_run())
    assert not store.stop_requested("r1")
    store.request_stop("r1")
    store.request_stop("r1")
    assert store.stop_requested("r1")


def test_output_is_numbered_from_one_and_resumes_by_seq(store: RunStore) -> None:
    store.create_run(a_run())
    assert store.output_end("r1") == 0
    end = store.append_output("r1", [("stdout", "one", "\n"), ("stderr", "two", "")], 1000)
    assert end == 2
    assert store.append_output("r1", [("log", "three", "\r")], 2000) == 3
    whole = store.read_output("r1", 0)
    assert (whole.first_seq, whole.end_seq, whole.skipped) == (1, 3, 0)
    assert whole.lines == [("stdout", "one", "\n"), ("stderr", "two", ""), ("log", "three", "\r")]
    assert whole.times == [(0, 1000), (2, 2000)]
    rest = store.read_output("r1", 2)
    assert (rest.first_seq, rest.lines) == (3, [("log", "three", "\r")])
    assert store.read_output("r1", 3).lines == []


def test_text_survives_exactly(store: RunStore) -> None:
    store.create_run(a_run())
    texts = ["", "tab\there", "nul\x00inside", "émoji 🚀", "<script>x</script>", "\x1b[31mred",
             "separators \x1e\x1f inside", "\x1f", "\x1e\x1e"]
    store.append_output("r1", [("stdout", t, "\n") for t in texts], 1)
    assert [line[1] for line in store.read_output("r1", 0).lines] == texts


def test_reads_respect_line_and_character_limits(store: RunStore) -> None:
    store.create_run(a_run())
    store.append_output("r1", [("stdout", "x" * 10, "\n")] * 50, 1)
    assert len(store.read_output("r1", 0, max_lines=7).lines) == 7
    assert len(store.read_output("r1", 0, max_chars=35).lines) == 3
    assert len(store.read_output("r1", 0, max_chars=1).lines) == 1  # never zero


def test_retention_keeps_the_newest_and_says_how_many_were_dropped(store: RunStore) -> None:
    store.create_run(a_run())
    for start in range(0, 250, 50):
        store.append_output("r1", [("stdout", str(i), "\n") for i in range(start + 1,
                                                                           start + 51)], 1)
    assert store.output_end("r1") == 250
    piece = store.read_output("r1", 0, max_lines=1000)
    assert piece.skipped == 150 and piece.first_seq == 151
    assert [line[1] for line in piece.lines] == [str(i) for i in range(151, 251)]
    assert store.read_output("r1", 200).first_seq == 201  # nothing skipped from there


def numbered(first: int, last: int) -> list[Line]:
    return [("stdout", str(i), "\n") for i in range(first, last + 1)]


def test_a_batch_sent_again_by_its_writer_is_stored_once(store: RunStore) -> None:
    """What a writer does when a reply is lost: it sends the batch again, with the lines
    printed since after it. The store skips what it already holds from that writer."""
    store.create_run(a_run())
    assert store.append_output("r1", numbered(1, 10), 1, writer="w", offset=0) == 10
    assert store.append_output("r1", numbered(1, 10), 1, writer="w", offset=0) == 10
    assert store.append_output("r1", numbered(1, 15), 2, writer="w", offset=0) == 15
    assert store.append_output("r1", numbered(16, 20), 3, writer="w", offset=15) == 20
    assert [line[1] for line in store.read_output("r1", 0).lines] == [
        str(i) for i in range(1, 21)]


def test_writers_are_counted_apart_and_may_skip_numbers(store: RunStore) -> None:
    store.create_run(a_run())
    store.append_output("r1", numbered(1, 3), 1, writer="a", offset=0)
    store.append_output("r1", [("system", "b", "\n")], 1, writer="b", offset=0)  # not a repeat
    store.append_output("r1", numbered(10, 12), 1, writer="a", offset=9)  # 4-9 were dropped
    store.append_output("r1", [("system", "c", "\n")], 1)  # no writer: never skipped
    store.append_output("r1", [("system", "c", "\n")], 1)
    assert [line[1] for line in store.read_output("r1", 0).lines] == [
        "1", "2", "3", "b", "10", "11", "12", "c", "c"]


def test_a_big_batch_sent_again_is_stored_once(store: RunStore) -> None:
    """Batches above one script call's size go in parts; a repeat skips across them."""
    store.create_run(a_run())
    lines = numbered(1, 120_000)
    store.append_output("r1", lines[:70_000], 1, writer="w", offset=0)
    assert store.append_output("r1", lines, 1, writer="w", offset=0) == 120_000
    assert store.read_output("r1", 119_990).lines == lines[-10:]


def test_appending_signals_output_changed(store: RunStore) -> None:
    store.create_run(a_run())
    store.output_changed.clear()
    store.append_output("r1", [("stdout", "x", "\n")], 1)
    assert store.output_changed.wait(2)


def test_a_create_past_the_users_active_limit_is_refused(store: RunStore) -> None:
    store.create_run(a_run("r1"), per_user=2, total=10)
    store.create_run(a_run("r2"), per_user=2, total=10)
    store.create_run(a_run("b1", user="bob"), per_user=2, total=10)  # counted apart
    with pytest.raises(ActiveLimitError) as refused:
        store.create_run(a_run("r3"), per_user=2, total=10)
    assert refused.value.scope == "user"
    assert store.get_run("r3") is None


def test_a_finished_run_frees_its_place(store: RunStore) -> None:
    first = store.create_run(a_run("r1"), per_user=1)
    assert store.replace_run(first.moved_to(RunState.STOPPED), RunState.QUEUED)
    assert store.create_run(a_run("r2"), per_user=1).id == "r2"


def test_a_create_past_the_total_active_limit_is_refused(store: RunStore) -> None:
    store.create_run(a_run("a1"), total=2)
    store.create_run(a_run("b1", user="bob"), total=2)
    with pytest.raises(ActiveLimitError) as refused:
        store.create_run(a_run("c1", user="carol"), per_user=5, total=2)
    assert refused.value.scope == "total"
    assert store.get_run("c1") is None


def test_a_retried_create_returns_its_run_even_at_the_limit(store: RunStore) -> None:
    store.create_run(a_run("r1"), "alice\x00req-1", per_user=1)
    assert store.create_run(a_run("r2"), "alice\x00req-1", per_user=1).id == "r1"
    with pytest.raises(ActiveLimitError):  # a refused create keeps no request key
        store.create_run(a_run("r3"), "alice\x00req-2", per_user=1)
    assert store.run_for_request("alice\x00req-2") is None


def test_concurrent_creates_never_pass_the_limit(store: RunStore) -> None:
    barrier = threading.Barrier(16)
    made: list[str] = []

    def create(i: int) -> None:
        barrier.wait()
        with contextlib.suppress(ActiveLimitError):
            made.append(store.create_run(a_run(f"r{i}"), per_user=5, total=50).id)

    threads = [threading.Thread(target=create, args=(i,)) for i in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(made) == 5
    assert len(store.list_runs(states=[RunState.QUEUED])) == 5


def test_healthy(store: RunStore) -> None:
    assert store.healthy()


def test_a_big_append_is_numbered_and_trimmed_like_small_ones(store: RunStore) -> None:
    store.create_run(a_run())
    assert store.append_output("r1", [("stdout", str(i), "\n") for i in range(1, 2501)],
                               5) == 2500
    piece = store.read_output("r1", 0, max_lines=1000)
    assert (piece.first_seq, piece.skipped, piece.end_seq) == (2401, 2400, 2500)
    assert [line[1] for line in piece.lines] == [str(i) for i in range(2401, 2501)]
    assert piece.times == [(0, 5)]
    middle = store.read_output("r1", 2450, max_lines=10)
    assert (middle.first_seq, middle.skipped) == (2451, 0)
    assert [line[1] for line in middle.lines] == [str(i) for i in range(2451, 2461)]


def test_an_unknown_run_has_no_output(store: RunStore) -> None:
    assert store.output_end("nope") == 0
    piece = store.read_output("nope", 0)
    assert (piece.lines, piece.end_seq) == ([], 0)
    assert not store.stop_requested("nope")


def test_a_beating_executor_is_alive(store: RunStore) -> None:
    store.beat("r1", ttl=60)
    store.beat_many(["r2", "r3"], ttl=60)
    assert store.executor_alive("r1") and store.executor_alive("r2")
    assert store.executor_alive("r3")


def test_a_redis_heartbeat_ends_with_its_ttl(redis_url: str) -> None:
    """Shared stores only: a killed executor stops beating, and then it is not alive."""
    from flask_realtime.store.redis import RedisStore

    store = RedisStore(redis_url, listen=False)
    try:
        assert not store.executor_alive("r1")
        store.beat("r1", ttl=0.2)
        assert store.executor_alive("r1")
        from tests.conftest import wait_for

        wait_for(lambda: not store.executor_alive("r1"), timeout=5)
        store.beat_many(["r2", "r3"], ttl=60)  # a batch's first beats, one request
        assert store.executor_alive("r2") and store.executor_alive("r3")
        assert not store.executor_alive("r4")
    finally:
        store.close()
