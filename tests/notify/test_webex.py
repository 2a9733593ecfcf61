"""Webex messages (docs/notifications.md, "Webex"): the bot's direct message to the owner,
its text as Webex renders it, a space picked by the user, and the simulator failing them."""

from __future__ import annotations

import httpx
import pytest

from flask_realtime.core.runs import Run, RunState
from flask_realtime.notify.webex import duration, run_markdown
from flask_realtime.webex.simulator import SimulatorConfig, start_simulator

from .conftest import PUBLIC_URL, USER, Notified

BOT = "notifier@webex.bot"


def test_the_bot_tells_the_owner_that_a_run_failed(notified: Notified) -> None:
    notified.prefer(notify="failure", webex=True)
    run = notified.run("broken")
    done = notified.settled(run.id, "webex")
    [message] = notified.simulator.messages_to(USER)
    assert message["from"] == BOT and message["to"] == USER
    markdown = message["markdown"] or ""
    title, error, link = markdown.split("\n\n")
    assert title.startswith(r"**Broken \[job\]\(http://evil\.example\)** failed after ")
    assert error == (r"> RuntimeError: The disk \<b\>is\</b\> full: free some space\.")
    assert link == f"[Open the run]({PUBLIC_URL}/#run={run.id})"
    entry = done.notifications["webex"]
    assert entry == {**entry, "status": "sent", "attempts": 1, "key": f"{run.id}:webex"}
    # the bot's direct space with the user, as Webex makes it at the first message
    room = notified.simulator.dataset.rooms[message["roomId"] or ""]
    assert room.type == "direct" and set(room.members) == {
        notified.simulator.dataset.bot.id, notified.simulator.dataset.by_email[USER].id}


def test_on_failure_only_says_nothing_of_a_success(notified: Notified) -> None:
    notified.prefer(notify="failure", webex=True)
    ok = notified.run("report")
    failed = notified.run("broken")
    notified.settled(failed.id, "webex")
    assert [m["markdown"] for m in notified.simulator.messages_to(USER)] == [
        notified.simulator.messages_to(USER)[0]["markdown"]]
    assert "failed" in (notified.simulator.messages_to(USER)[0]["markdown"] or "")
    assert notified.store.get_run(ok.id).notifications == {}


def test_a_success_message_has_title_state_duration_and_link(notified: Notified) -> None:
    notified.prefer(notify="finish", webex=True)
    run = notified.run("report")
    notified.settled(run.id, "webex")
    [message] = notified.simulator.messages_to(USER)
    done = notified.store.get_run(run.id)
    assert message["markdown"] == (
        rf"**Nightly \*report\*** succeeded after {duration(done)}." "\n\n"
        f"[Open the run]({PUBLIC_URL}/#run={run.id})")


def test_a_failing_webex_is_recorded_and_the_run_keeps_its_state(notified: Notified) -> None:
    notified.simulator.config.fail_messages = True
    notified.simulator.config.retry_after = 0  # Webex's Retry-After is honoured: no wait
    notified.prefer(notify="finish", webex=True)
    run = notified.run("report")
    done = notified.settled(run.id, "webex")
    assert done.state is RunState.SUCCEEDED and done.error is None and done.result == 1
    entry = done.notifications["webex"]
    assert entry["status"] == "failed" and entry["attempts"] == 3
    assert entry["reason"].startswith("Webex answered 503")
    assert notified.simulator.messages_to(USER) == []


def test_webex_failing_once_is_tried_again(notified: Notified) -> None:
    notified.simulator.config.fail_messages = True
    notified.simulator.config.retry_after = 0
    notified.prefer(notify="finish", webex=True)
    run = notified.run("report")
    from tests.conftest import wait_for

    wait_for(lambda: notified.store.get_run(run.id).notifications.get("webex", {}).get(
        "attempts") == 1)
    notified.simulator.config.fail_messages = False
    done = notified.settled(run.id, "webex")
    assert done.notifications["webex"]["status"] == "sent"
    assert len(notified.simulator.messages_to(USER)) == 1


def test_without_a_bot_the_message_goes_into_the_users_space(notified: Notified) -> None:
    notified.config["WEBEX_BOT_TOKEN"] = None
    dataset = notified.simulator.dataset
    me = dataset.by_email[USER]
    room = next(r for r in dataset.rooms.values() if r.type == "group" and me.id in r.members)
    notified.prefer(notify="finish", webex=True, webex_room=room.id)
    run = notified.run("report")
    assert notified.settled(run.id, "webex").notifications["webex"]["status"] == "sent"
    sent = [m for m in notified.simulator.simulator.sent if m["roomId"] == room.id]
    assert [m["from"] for m in sent] == [USER]  # with the user's own login
    assert f"#run={run.id}" in (sent[0]["markdown"] or "")


def test_without_a_bot_or_a_space_the_reason_says_what_to_do(notified: Notified) -> None:
    notified.config["WEBEX_BOT_TOKEN"] = None
    notified.prefer(notify="finish", webex=True)
    done = notified.settled(notified.run("report").id, "webex")
    assert done.notifications["webex"]["reason"] == (
        "This server has no Webex bot, and you picked no space for your messages: pick "
        "one in your notification settings.")


def test_a_space_the_user_is_not_in_is_a_failure_with_a_sentence(notified: Notified) -> None:
    notified.config["WEBEX_BOT_TOKEN"] = None
    notified.prefer(notify="finish", webex=True, webex_room="Y2lzY29zcGFyazovL3VzL1JPT00vbm9uZQ")
    done = notified.settled(notified.run("report").id, "webex")
    assert done.notifications["webex"]["status"] == "failed"
    assert "Webex does not know the space you picked (404)" in done.notifications["webex"][
        "reason"]


def test_markdown_from_the_run_cannot_make_links_or_mentions() -> None:
    run = Run(id="r1", job="j", title="[x](https://evil) <@personEmail:boss@example.com>",
              user=USER, state=RunState.FAILED, error="*bold*\n# heading",
              created_at="2026-01-01T00:00:00.000Z", started_at="2026-01-01T00:00:00.000Z",
              ended_at="2026-01-01T00:03:05.000Z")
    text = run_markdown(run, None)
    assert r"\[x\]\(https://evil\) \<\@personEmail:boss\@example\.com\>" in text
    assert r"> \*bold\* \# heading" in text and "after 3 min 5 s" in text
    assert "Run `r1` on Flask-Realtime." in text


@pytest.mark.parametrize(("seconds", "words"), [(0.4, "0.4 s"), (12, "12 s"),
                                                 (185, "3 min 5 s"), (7380, "2 h 3 min")])
def test_durations_read_naturally(seconds: float, words: str) -> None:
    from datetime import UTC, datetime, timedelta

    start = datetime(2026, 1, 1, tzinfo=UTC)
    run = Run(id="r", job="j", title="t", user=USER, state=RunState.SUCCEEDED,
              started_at=start.isoformat(), ended_at=(start + timedelta(seconds=seconds))
              .isoformat())
    assert duration(run) == words


def test_the_simulator_shows_the_bots_messages_to_the_bots_token_only() -> None:
    with start_simulator(SimulatorConfig(spaces=2, messages=4)) as sim:
        base = sim.base_url.removesuffix("/v1")
        bot = {"Authorization": f"Bearer {sim.config.bot_token}"}
        me = httpx.get(f"{sim.base_url}/people/me", headers=bot).json()
        assert me["emails"] == [BOT] and me["type"] == "bot"
        sent = httpx.post(f"{sim.base_url}/messages", headers=bot, json={
            "toPersonEmail": "user2@example.com", "markdown": "**hi**"})
        assert sent.status_code == 200 and sent.json()["roomType"] == "direct"
        assert httpx.get(f"{base}/_sim/messages").status_code == 401
        user = {"Authorization": f"Bearer {sim.token_for()}"}
        assert httpx.get(f"{base}/_sim/messages", headers=user).status_code == 401
        items = httpx.get(f"{base}/_sim/messages", headers=bot,
                          params={"to": "user2@example.com"}).json()["items"]
        assert [(m["from"], m["to"], m["markdown"]) for m in items] == [
            (BOT, "user2@example.com", "**hi**")]
        assert httpx.post(f"{sim.base_url}/messages", headers=bot,
                          json={"markdown": "x"}).status_code == 400
        sim.config.fail_messages, sim.config.fail_messages_status = True, 500
        assert httpx.post(f"{sim.base_url}/messages", headers=bot, json={
            "toPersonEmail": "user2@example.com", "markdown": "x"}).status_code == 500


def test_the_bot_leaves_the_seeded_data_as_it_was() -> None:
    with start_simulator(SimulatorConfig(spaces=6, messages=60)) as with_bot, \
            start_simulator(SimulatorConfig(spaces=6, messages=60, bot_token="")) as without:
        assert with_bot.dataset.ground_truth(USER) == without.dataset.ground_truth(USER)
        assert without.dataset.bot is None


def test_webex_sim_has_the_bot_and_failure_options(monkeypatch: pytest.MonkeyPatch) -> None:
    from click.testing import CliRunner

    from flask_realtime.webex import cli

    started: list[SimulatorConfig] = []

    def start(config: SimulatorConfig, host: str, port: int) -> object:
        started.append(config)
        return start_simulator(config, host, 0)

    monkeypatch.setattr(cli, "start_simulator", start)
    monkeypatch.setattr(cli, "wait_for_interrupt", lambda: None)
    result = CliRunner().invoke(cli.webex_sim, ["--fail-messages", "--fail-messages-status",
                                                "429", "--bot-token", "tok-123"])
    assert result.exit_code == 0, result.output
    assert started[0].fail_messages and started[0].fail_messages_status == 429
    assert started[0].bot_token == "tok-123"
    assert "every POST /messages fails with 429" in result.output
