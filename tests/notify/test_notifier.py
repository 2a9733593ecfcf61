"""The notifier (docs/notifications.md, "When" and "Delivery"): who is told when, off the
run's thread, recorded on the run, at least once, and closed with the System."""

from __future__ import annotations

import json
import threading
from dataclasses import replace

from cryptography.fernet import Fernet, MultiFernet

from flask_realtime.core.jobs import JobRegistry, Running, job
from flask_realtime.core.runs import Run, RunState
from flask_realtime.core.system import build
from flask_realtime.notify import install
from flask_realtime.notify.notifier import _Task
from flask_realtime.store.memory import MemoryStore
from tests.conftest import wait_for

from .conftest import USER, Notified
from .receiver import receiver

SECRET = "another-webhook-secret"


def test_nothing_is_sent_by_default(notified: Notified) -> None:
    run = notified.run("broken")
    notified.notifier.run_finished(run)  # asked again: still nothing to tell
    wait_for(notified.notifier.idle)
    assert notified.store.get_run(run.id).notifications == {}
    assert notified.simulator.messages_to(USER) == []


def test_a_run_without_a_choice_takes_the_owners_default_when_it_ends(
        notified: Notified) -> None:
    notified.prefer(notify="failure", webex=True)
    ok, failed = notified.run("report"), notified.run("broken")
    assert ok.notify is None and failed.notify is None
    notified.settled(failed.id, "webex")
    wait_for(notified.notifier.idle)
    assert notified.store.get_run(ok.id).notifications == {}
    assert len(notified.simulator.messages_to(USER)) == 1


def test_the_runs_own_choice_wins_over_the_default(notified: Notified) -> None:
    notified.prefer(notify="failure", webex=True)
    told = notified.run("report", notify="finish")
    quiet = notified.run("broken", notify="off")
    assert told.notify == "finish" and quiet.notify == "off"
    assert notified.settled(told.id, "webex").notifications["webex"]["status"] == "sent"
    wait_for(notified.notifier.idle)
    assert notified.store.get_run(quiet.id).notifications == {}
    [message] = notified.simulator.messages_to(USER)
    assert "succeeded" in (message["markdown"] or "")


def test_a_stopped_run_is_told_on_finish(notified: Notified) -> None:
    started = threading.Event()

    @job(registry=notified.system.registry, name="waits")
    def waits(running: Running) -> None:
        started.set()
        while running():
            started.wait(0.01)

    notified.prefer(notify="finish", webex=True)
    run = notified.system.service.start(USER, "waits", {})
    assert started.wait(5)
    notified.system.service.stop(USER, run.id)
    done = notified.settled(run.id, "webex")
    assert done.state is RunState.STOPPED
    assert "was stopped" in (notified.simulator.messages_to(USER)[0]["markdown"] or "")


def test_each_outcome_is_announced_as_a_state_change_is(notified: Notified) -> None:
    heard: list[Run] = []
    notified.system.service.subscribe(heard.append)
    notified.prefer(notify="finish", webex=True)
    run = notified.run("report")
    notified.settled(run.id, "webex")
    wait_for(lambda: any(r.notifications.get("webex", {}).get("status") == "sent"
                         for r in heard))
    mine = [r for r in heard if r.id == run.id]
    assert [r.state for r in mine][:3] == [RunState.QUEUED, RunState.RUNNING,
                                           RunState.SUCCEEDED]
    assert [r.notifications["webex"]["status"] for r in mine[3:]] == ["pending", "sent"]
    assert all(r.state is RunState.SUCCEEDED for r in mine[2:])


def test_the_queue_full_is_recorded_and_the_run_is_untouched(notified: Notified) -> None:
    notified.prefer(notify="finish", webex=True)
    notified.config["NOTIFY_QUEUE_SIZE"] = 0
    run = notified.run("report")
    done = wait_for(lambda: (r := notified.store.get_run(run.id)) and r.notifications and r)
    assert done.notifications["queue"]["status"] == "failed"
    assert "NOTIFY_QUEUE_SIZE" in done.notifications["queue"]["reason"]
    assert done.state is RunState.SUCCEEDED and done.result == 1


def test_pending_deliveries_left_by_a_stopped_process_are_sent_at_the_next_start(
        notified: Notified) -> None:
    """At least once: a notifier that stopped before it was done leaves ``pending``
    entries; the next one on the store sends them, once, and a ``sent`` one never again."""
    store = MemoryStore()
    fernet = MultiFernet([Fernet(Fernet.generate_key())])
    with receiver() as hook:
        store.save_preferences(USER, {"notify": "finish", "webex": True,
                                      "webhook_url": hook.url, "webhook_secret":
                                      fernet.encrypt(SECRET.encode()).decode()})
        finished = Run(id="left-behind", job="report", title="Left behind", user=USER,
                       created_at="2026-01-01T00:00:00.000Z")
        store.create_run(finished)
        ended = finished.moved_to(RunState.RUNNING).moved_to(RunState.SUCCEEDED)
        ended = replace(ended, notifications={
            "webhook": {"status": "pending", "reason": "The webhook answered 503.",
                        "attempts": 1, "at": "x", "key": "left-behind:webhook"},
            "webex": {"status": "sent", "reason": None, "attempts": 1, "at": "x",
                      "key": "left-behind:webex"}})
        assert store.replace_run(ended, RunState.QUEUED)
        system = build(notified.config, store=store, registry=JobRegistry())
        with system:
            install(system, notified.config, fernet=fernet)
            [request] = hook.wait_for(1)
            assert json.loads(request.body)["delivery"] == "left-behind:webhook"
            done = wait_for(lambda: (r := store.get_run("left-behind")) and r.notifications[
                "webhook"]["status"] == "sent" and r)
            assert done.notifications["webhook"]["attempts"] == 2
            assert system.notifier.recover() == 0  # type: ignore[attr-defined]
        assert notified.simulator.messages_to(USER) == []  # webex was sent already


def test_close_ends_the_notifiers_threads(notified: Notified) -> None:
    notified.prefer(notify="finish", webex=True)
    notified.settled(notified.run("report").id, "webex")
    threads = list(notified.notifier._threads)  # its own (other tests' apps have theirs)
    assert threads and all(t.is_alive() for t in threads)
    notified.system.close()
    assert not any(t.is_alive() for t in threads)


def test_a_notice_goes_to_the_users_channels(notified: Notified) -> None:
    with receiver() as hook:
        notified.prefer(webex=True, webhook_url=hook.url, webhook_secret=SECRET)
        notified.notifier.tell(USER, "Schedule paused", "Your Webex login expired: log in "
                               "again.", key="sched-1:paused")
        [request] = hook.wait_for(1)
        body = json.loads(request.body)
    assert body == {**body, "event": "notice", "delivery": "sched-1:paused", "user": USER,
                    "subject": "Schedule paused"}
    assert request.headers["x-flask-realtime-delivery"] == "sched-1:paused"
    [message] = wait_for(lambda: notified.simulator.messages_to(USER))
    assert (message["markdown"] or "").startswith("**Schedule paused**")


def test_the_webhook_secret_is_stored_encrypted(notified: Notified) -> None:
    notified.prefer(webhook_url="http://127.0.0.1:1/x", webhook_secret=SECRET)
    stored = notified.store.load_preferences(USER)
    assert stored is not None and SECRET not in json.dumps(stored)
    assert notified.fernet.decrypt(stored["webhook_secret"].encode()).decode() == SECRET


def test_a_worker_delivers_only_what_it_or_its_work_horse_planned(notified: Notified) -> None:
    """``deliver_pending`` (after a work-horse exited): another process's plan is that
    process's to deliver, so the worker does not send it a second time."""
    store, notifier = notified.store, notified.notifier
    wait_for(notifier.idle)  # its start-up recovery is done: it would take both
    for run_id, sender in (("theirs", "another-process"), ("ours", notifier.identity)):
        run = store.create_run(Run(id=run_id, job="report", title="t", user=USER))
        ended = run.moved_to(RunState.RUNNING).moved_to(RunState.SUCCEEDED)
        assert store.replace_run(replace(ended, notifications={"webex": {
            "status": "pending", "reason": None, "attempts": 0, "at": "x",
            "key": f"{run_id}:webex", "sender": sender}}), RunState.QUEUED)
    notified.prefer(webex=True)
    assert notifier.deliver_pending("theirs") == 0
    assert notifier.deliver_pending("ours") == 1
    done = notified.settled("ours", "webex")
    assert done.notifications["webex"]["status"] == "sent"
    assert done.notifications["webex"]["sender"] == notifier.identity
    assert store.get_run("theirs").notifications["webex"]["status"] == "pending"


def test_a_schedule_that_pauses_itself_tells_its_owner(notified: Notified) -> None:
    """docs/schedules.md: the owner's login is gone, so the schedule pauses and its
    owner is told through their channels (here the bot's Webex message), once."""
    from flask_realtime.core.system import build
    from flask_realtime.notify import install

    system = build({**notified.config, "SCHEDULE_MIN_INTERVAL_SECONDS": 1},
                   store=notified.store, registry=notified.system.registry, schedules=True)
    assert system.scheduler is not None
    install(system, notified.config, fernet=notified.fernet)
    notified.prefer(webex=True)
    system.scheduler.login_checks.append(lambda user, spec: "your Webex login has expired.")
    clock = [1_800_000_000.0]
    system.scheduler.clock = lambda: clock[0]
    with system:
        schedule = system.scheduler.create(USER, {"name": "nightly", "job": "report",
                                                  "interval": 60})
        clock[0] += 60
        system.scheduler.tick()
        clock[0] += 60
        system.scheduler.tick()  # paused: no second notice
        [message] = wait_for(lambda: notified.simulator.messages_to(USER))
        assert "nightly" in message["markdown"] and "expired" in message["markdown"]
        assert not system.store.get_schedule(schedule.id).enabled


def test_of_two_notifiers_taking_over_a_pending_delivery_one_sends_it(
        notified: Notified) -> None:
    """Several processes start on one store after a crash: each recovers, one claims."""
    store, first = notified.store, notified.notifier
    wait_for(first.idle)
    run = store.create_run(Run(id="orphan", job="report", title="t", user=USER))
    ended = run.moved_to(RunState.RUNNING).moved_to(RunState.SUCCEEDED)
    assert store.replace_run(replace(ended, notifications={"webex": {
        "status": "pending", "reason": None, "attempts": 1, "at": "x",
        "key": "orphan:webex", "sender": "a-process-that-died"}}), RunState.QUEUED)
    notified.prefer(webex=True)
    second = install(notified.system, notified.config, fernet=notified.fernet)
    wait_for(lambda: second.idle() and first.idle())
    first.recover()  # started a moment later: the delivery is the second's already
    wait_for(lambda: second.idle() and first.idle())
    done = notified.settled("orphan", "webex")
    assert done.notifications["webex"]["sender"] == second.identity
    assert len(notified.simulator.messages_to(USER)) == 1


def test_a_delivery_taken_over_is_given_up_by_its_old_sender(notified: Notified) -> None:
    store, old = notified.store, notified.notifier
    wait_for(old.idle)
    run = store.create_run(Run(id="stolen", job="report", title="t", user=USER))
    ended = run.moved_to(RunState.RUNNING).moved_to(RunState.SUCCEEDED)
    assert store.replace_run(replace(ended, notifications={"webex": {
        "status": "pending", "reason": None, "attempts": 1, "at": "x",
        "key": "stolen:webex", "sender": "someone-newer"}}), RunState.QUEUED)
    notified.prefer(webex=True)
    old._deliver(_Task(0.0, 0, "deliver", "stolen", "webex", 1))  # its retry comes due
    assert store.get_run("stolen").notifications["webex"]["status"] == "pending"
    assert notified.simulator.messages_to(USER) == []
