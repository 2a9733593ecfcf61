"""Webhooks (docs/notifications.md, "Webhook"): signed, retried with backoff against a real
HTTP server, and never sent to an internal address (SSRF) nor redirected to one."""

from __future__ import annotations

import ipaddress
import json
import logging
import re
import socket
import time
from pathlib import Path
from typing import Any

import pytest

from flask_realtime.notify.preferences import PreferenceError
from flask_realtime.notify.webhook import (
    WebhookURLError,
    check_url,
    networks,
    refused,
    sign,
    verify,
)
from tests.conftest import wait_for

from .conftest import PUBLIC_URL, USER, Notified
from .receiver import receiver

SECRET = "a-webhook-secret-of-some-length"
DOCS = Path(__file__).parents[2] / "docs" / "notifications.md"


def receiver_headers(headers: dict[str, str]) -> dict[str, str]:
    """The headers as a receiving framework names them."""
    names = {"x-flask-realtime-signature": "X-Flask-Realtime-Signature",
             "x-flask-realtime-timestamp": "X-Flask-Realtime-Timestamp",
             "x-flask-realtime-delivery": "X-Flask-Realtime-Delivery"}
    return {names.get(k, k): v for k, v in headers.items()}


def docs_verify() -> Any:
    """The receiver's check as docs/notifications.md gives it, run as it is written."""
    text = DOCS.read_text()
    section = text[text.index("## Verifying a webhook"):]
    code = re.search(r"```python\n(.*?)```", section, re.S)
    assert code, "docs/notifications.md has no Python snippet under 'Verifying a webhook'"
    scope: dict[str, Any] = {}
    exec(compile(code.group(1), str(DOCS), "exec"), scope)
    return scope["verify"]


def test_a_finished_run_is_posted_signed_with_its_record_and_link(notified: Notified) -> None:
    with receiver() as hook:
        notified.prefer(notify="finish", webhook_url=hook.url, webhook_secret=SECRET)
        run = notified.run("broken")
        [request] = hook.wait_for(1)
        done = notified.settled(run.id, "webhook")
    body = json.loads(request.body)
    assert body["event"] == "run.finished" and body["delivery"] == f"{run.id}:webhook"
    assert body["run"]["id"] == run.id and body["run"]["state"] == "failed"
    assert body["run"]["error"] == "RuntimeError: The disk <b>is</b> full: free some space."
    assert body["link"] == f"{PUBLIC_URL}/#run={run.id}"
    assert request.headers["x-flask-realtime-delivery"] == f"{run.id}:webhook"
    assert request.headers["host"] == hook.url.split("/")[2]
    headers = receiver_headers(request.headers)
    assert verify(SECRET, headers["X-Flask-Realtime-Timestamp"], request.body,
                  headers["X-Flask-Realtime-Signature"])
    check = docs_verify()  # the snippet the docs give receivers accepts it, and only it
    assert check(SECRET, headers, request.body) is True
    assert check(SECRET, headers, request.body + b" ") is False
    assert check("another-secret-entirely", headers, request.body) is False
    entry = done.notifications["webhook"]
    assert entry["status"] == "sent" and entry["attempts"] == 1 and entry["reason"] is None


def test_the_webhook_url_never_reaches_the_log(notified: Notified,
                                               caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    with receiver(statuses=[503]) as hook:
        notified.prefer(notify="finish", webhook_url=hook.url + "?token=receivers-s3cret",
                        webhook_secret=SECRET)
        notified.settled(notified.run("report").id, "webhook")
        assert hook.received[0].path == "/hook?token=receivers-s3cret"
    assert "receivers-s3cret" not in caplog.text and SECRET not in caplog.text


def test_the_signature_covers_the_timestamp_and_refuses_old_ones() -> None:
    body, now = b'{"a":1}', time.time()
    signature = sign(SECRET, str(int(now)), body)
    assert re.fullmatch(r"sha256=[0-9a-f]{64}", signature)
    assert verify(SECRET, str(int(now)), body, signature, now=now)
    assert not verify(SECRET, str(int(now) + 1), body, signature, now=now)
    assert not verify(SECRET, str(int(now)), body, signature, now=now + 301)
    assert not verify(SECRET, "not a number", body, signature, now=now)


def test_a_failing_webhook_is_tried_again_with_backoff_then_sent(notified: Notified) -> None:
    with receiver(statuses=[503, 500]) as hook:
        notified.prefer(notify="finish", webhook_url=hook.url, webhook_secret=SECRET)
        run = notified.run("report")
        requests = hook.wait_for(3)
        done = notified.settled(run.id, "webhook")
    assert {r.headers["x-flask-realtime-delivery"] for r in requests} == {f"{run.id}:webhook"}
    for r in requests:  # every try is signed anew
        assert verify(SECRET, r.headers["x-flask-realtime-timestamp"], r.body,
                      r.headers["x-flask-realtime-signature"])
    entry = done.notifications["webhook"]
    assert entry["status"] == "sent" and entry["attempts"] == 3
    assert done.state.value == "succeeded"


def test_a_webhook_that_keeps_failing_is_recorded_failed_and_the_run_is_not(
        notified: Notified) -> None:
    with receiver(statuses=[500, 502, 503, 504]) as hook:
        notified.prefer(notify="finish", webhook_url=hook.url, webhook_secret=SECRET,
                        webex=True)
        run = notified.run("report")
        done = notified.settled(run.id, "webhook", "webex")
        assert len(hook.received) == 3  # NOTIFY_ATTEMPTS, then no more
    assert done.state.value == "succeeded" and done.error is None
    assert done.notifications["webhook"] == {**done.notifications["webhook"],
                                             "status": "failed", "attempts": 3,
                                             "reason": "The webhook answered 503."}
    assert done.notifications["webex"]["status"] == "sent"  # the other channel went


def test_a_client_error_is_not_tried_again(notified: Notified) -> None:
    with receiver(statuses=[404]) as hook:
        notified.prefer(notify="finish", webhook_url=hook.url, webhook_secret=SECRET)
        done = notified.settled(notified.run("report").id, "webhook")
        assert len(hook.received) == 1
    assert done.notifications["webhook"]["reason"] == "The webhook answered 404."


@pytest.mark.parametrize("status", [302, 307])
def test_a_redirect_is_not_followed(notified: Notified, status: int) -> None:
    with receiver() as inside, receiver(statuses=[status]) as hook:
        hook.location = inside.url  # an "internal" address the public one points to
        notified.prefer(notify="finish", webhook_url=hook.url, webhook_secret=SECRET)
        done = notified.settled(notified.run("report").id, "webhook")
        assert len(hook.received) == 1 and inside.received == []
    entry = done.notifications["webhook"]
    assert entry["status"] == "failed" and "redirect, which is not followed" in entry["reason"]


def test_a_slow_webhook_blocks_neither_the_run_nor_other_notifications(
        notified: Notified) -> None:
    import threading

    hold = threading.Event()
    with receiver(hold=hold) as hook:
        notified.prefer(notify="finish", webhook_url=hook.url, webhook_secret=SECRET,
                        webex=True)
        run = notified.run("report")  # ended although its webhook has not answered
        hook.wait_for(1)
        assert notified.settled(run.id, "webex").notifications["webex"]["status"] == "sent"
        assert notified.store.get_run(run.id).notifications["webhook"]["status"] == "pending"
        hold.set()
        assert notified.settled(run.id, "webhook").notifications["webhook"]["status"] == "sent"


# -- SSRF ----------------------------------------------------------------------------------

@pytest.mark.parametrize("url", [
    "http://127.0.0.1/hook", "http://127.1.2.3:8080/", "http://10.0.0.5/hook",
    "http://172.16.9.1/", "http://192.168.1.1/", "http://169.254.169.254/latest/meta-data/",
    "http://[::1]:9000/", "http://[fe80::1]/", "http://[fd00::1]/", "http://0.0.0.0/",
    "http://[::ffff:127.0.0.1]/", "http://224.0.0.1/", "http://100.64.0.1/",
    "http://localhost:5000/",  # a host name that resolves to 127.0.0.1
])
def test_internal_addresses_are_refused(url: str) -> None:
    with pytest.raises(WebhookURLError, match="private, loopback, link-local"):
        check_url(url)


def test_a_name_resolving_to_loopback_is_refused_whatever_it_is_called(
        monkeypatch: pytest.MonkeyPatch) -> None:
    real = socket.getaddrinfo

    def resolve(host: str, *args: Any, **kwargs: Any) -> Any:
        if host == "hooks.example.com":  # the attacker's DNS: a public name, 127.0.0.1
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", 443))]
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", resolve)
    with pytest.raises(WebhookURLError, match=r"'hooks\.example\.com' is a private, loopback"):
        check_url("https://hooks.example.com/hook")


@pytest.mark.parametrize(("url", "sentence"), [
    ("ftp://example.com/x", "must start with http:// or https://"),
    ("file:///etc/passwd", "must start with http:// or https://"),
    ("https://user:pw@example.com/", "must not hold a user name or password"),
    ("https://exa mple.com/", "without spaces"),
    ("", "must be an http:// or https:// URL"),
    ("https://no-such-host.invalid/", "cannot be found"),
])
def test_bad_urls_get_one_sentence(url: str, sentence: str) -> None:
    with pytest.raises(WebhookURLError, match=re.escape(sentence)):
        check_url(url)


def test_the_operator_may_allow_a_network_and_only_that_one() -> None:
    allowed = networks(["10.1.0.0/16"])
    assert not refused(ipaddress.ip_address("10.1.2.3"), allowed)
    assert refused(ipaddress.ip_address("10.2.0.1"), allowed)
    assert refused(ipaddress.ip_address("127.0.0.1"), allowed)
    assert not refused(ipaddress.ip_address("93.184.215.14"))
    assert check_url("http://10.1.2.3:81/x", allowed).pinned_url == "http://10.1.2.3:81/x"


def test_saving_an_internal_webhook_is_refused_and_saves_nothing(notified: Notified) -> None:
    notified.config["NOTIFY_WEBHOOK_ALLOWED_NETWORKS"] = []
    with pytest.raises(WebhookURLError):
        notified.prefer(webhook_url="http://169.254.169.254/", webhook_secret=SECRET)
    with pytest.raises(PreferenceError, match="needs a \"webhook_secret\""):
        notified.prefer(webhook_url="https://93.184.215.14/")
    assert notified.store.load_preferences(USER) is None


def test_an_address_refused_at_delivery_is_recorded_and_not_contacted(
        notified: Notified) -> None:
    with receiver() as hook:
        notified.prefer(notify="finish", webhook_url=hook.url, webhook_secret=SECRET)
        notified.config["NOTIFY_WEBHOOK_ALLOWED_NETWORKS"] = []  # the operator changed it
        done = notified.settled(notified.run("report").id, "webhook")
        assert hook.received == []
    entry = done.notifications["webhook"]
    assert entry["status"] == "failed" and "loopback" in entry["reason"]


def test_delivery_connects_to_the_address_that_was_checked(
        notified: Notified, monkeypatch: pytest.MonkeyPatch) -> None:
    """DNS rebinding: the name is resolved once, checked, and that address is used."""
    with receiver() as hook:
        port = int(hook.url.split(":")[2].split("/")[0])
        calls: list[str] = []
        real = socket.getaddrinfo

        def resolve(host: str, *args: Any, **kwargs: Any) -> Any:
            calls.append(host)
            if host == "hooks.test":
                return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", port))]
            return real(host, *args, **kwargs)

        monkeypatch.setattr(socket, "getaddrinfo", resolve)
        notified.prefer(notify="finish", webhook_url=f"http://hooks.test:{port}/hook",
                        webhook_secret=SECRET)
        calls.clear()
        notified.run("report")
        [request] = hook.wait_for(1)
        assert request.headers["host"] == f"hooks.test:{port}"
        assert calls.count("hooks.test") == 1  # the check's; the connection used its answer
    wait_for(notified.notifier.idle)
