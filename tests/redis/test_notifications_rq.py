"""A run executed by an RQ worker tells its owner once, from the worker that ended it
(docs/notifications.md, "At least once, exactly one sender"), with two web processes on
the same Redis that do not send it again. The work-horse that ran the job plans the
delivery and exits; the worker delivers it."""

from __future__ import annotations

import json
import re
from collections.abc import Callable

import httpx

from flask_realtime.notify.webhook import verify
from tests.conftest import Watcher, wait_for
from tests.notify.receiver import receiver
from tests.redis.conftest import Process, WebProcess, finished, run_state

SECRET = "a-secret-shared-by-web-and-worker"


def told(url: str, run_id: str) -> dict[str, object]:
    return wait_for(lambda: (r := run_state(url, run_id)).get("notifications", {}).get(
        "webhook", {}).get("status") in ("sent", "failed") and r, timeout=30)


def test_a_run_on_a_worker_is_told_once_by_the_worker(
        web: Callable[..., WebProcess], worker: Callable[..., Process],
        client: Callable[[str], Watcher]) -> None:
    env = {"FLASK_REALTIME_RUNNER": "rq", "FLASK_REALTIME_PUBLIC_URL": "https://rt.example.com",
           "FLASK_REALTIME_NOTIFY_WEBHOOK_ALLOWED_NETWORKS": "127.0.0.0/8"}
    with receiver() as hook:
        a, b = web(**env), web(**env)
        w = worker(**env)
        with httpx.Client(base_url=a.url, timeout=10) as http:
            csrf = re.search(r'data-csrf-token="([^"]+)"', http.get("/").text)
            assert csrf is not None
            saved = http.put("/api/preferences", headers={"X-CSRF-Token": csrf.group(1)},
                             json={"notify": "finish", "webhook_url": hook.url,
                                   "webhook_secret": SECRET})
            assert saved.status_code == 200, saved.text
        browser = client(b.url)
        run_id = browser.call("start", {"job": "fail", "params": {}})["run_id"]
        assert finished(a.url, run_id)["state"] == "failed"
        record = told(a.url, run_id)
        # a second run, told after the first: had anyone sent the first again, it
        # would have arrived before this one
        second = browser.call("start", {"job": "countdown", "params": {"n": 0}})["run_id"]
        told(a.url, second)
        requests = hook.wait_for(2)
    assert [json.loads(r.body)["delivery"] for r in hook.received] == [
        f"{run_id}:webhook", f"{second}:webhook"]
    first = requests[0]
    assert verify(SECRET, first.headers["x-flask-realtime-timestamp"], first.body,
                  first.headers["x-flask-realtime-signature"])
    assert json.loads(first.body)["link"] == f"https://rt.example.com/#run={run_id}"
    assert record["notifications"]["webhook"]["attempts"] == 1  # type: ignore[index]
    sender = f"run {run_id}: its owner was told by webhook"
    assert sender in w.output() and sender not in a.output() + b.output()
    # the page heard the outcome, announced by the worker through Redis
    wait_for(lambda: any(s["id"] == run_id and s["notifications"].get("webhook", {}).get(
        "status") == "sent" for s in browser.states))
