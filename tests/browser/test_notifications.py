"""The page's notifications (docs/notifications.md): the "Notify me" choice is sent with
Start, the settings are saved from the page, permission is asked on a click only, and a
run that ends while the tab is in the background shows a desktop notification."""

from __future__ import annotations

from typing import Any

from tests.conftest import wait_for

from .helpers import start_job, wait_js, wait_state

#: Records what the page does with the Notification API and passes it on to the real one.
OBSERVE_NOTIFICATIONS = """
window.__notifications = []; window.__permissionAsked = 0;
const Real = window.Notification;
class Observed extends Real {
  constructor(title, options) {
    super(title, options);
    window.__notifications.push({ title, body: options && options.body,
                                  tag: options && options.tag,
                                  focused: document.hasFocus() });
  }
}
Object.defineProperty(Observed, "permission", { get: () => Real.permission });
Observed.requestPermission = (...args) => {
  window.__permissionAsked += 1;
  return Real.requestPermission(...args);
};
window.Notification = Observed;
"""


def run_record(page: Any, live_server: Any, run_id: str) -> dict[str, Any]:
    return page.context.request.get(f"{live_server.url}/api/runs/{run_id}").json()  # type: ignore[no-any-return]


def test_the_notify_choice_is_sent_with_start(open_page: Any, live_server: Any) -> None:
    page = open_page()
    page.select_option("#notify-select", "failure")
    chosen = start_job(page, "ui_numbers", n=1)
    assert run_record(page, live_server, chosen)["notify"] == "failure"
    page.select_option("#notify-select", "")
    default = start_job(page, "ui_numbers", n=1)
    assert run_record(page, live_server, default)["notify"] == "off"  # the default's


def test_settings_are_saved_from_the_page(open_page: Any, live_server: Any) -> None:
    page = open_page()
    page.click("#notify-panel summary")
    page.select_option("#notify-default", "failure")
    page.fill("#notify-webhook", "http://127.0.0.1:9/hook")
    page.fill("#notify-secret", "a-secret-for-the-page-test")
    page.click("#notify-save")
    wait_js(page, "document.getElementById('notify-message').textContent.length > 0")
    assert "loopback" in page.text_content("#notify-message")  # refused: SSRF
    page.fill("#notify-webhook", "")
    page.click("#notify-save")
    wait_js(page, "document.getElementById('notify-message').textContent === 'Saved.'")
    prefs = page.context.request.get(f"{live_server.url}/api/preferences").json()
    assert prefs["notify"] == "failure" and prefs["webhook_url"] is None
    page.reload()
    page.wait_for_selector("#conn.conn-connected")
    wait_js(page, "document.getElementById('notify-default').value === 'failure'")


def open_observed(page: Any, live_server: Any) -> Any:
    page.add_init_script(OBSERVE_NOTIFICATIONS)
    page.goto(live_server.url + "/")
    page.wait_for_selector("#conn.conn-connected")
    page.wait_for_selector("#job-select option", state="attached")
    return page


def test_permission_is_asked_on_a_click_never_on_load(page: Any, live_server: Any) -> None:
    open_observed(page, live_server)
    page.evaluate("window.flaskRealtime.socket.connected")
    assert page.evaluate("window.__permissionAsked") == 0
    page.click("#notify-panel summary")
    page.click("#notify-desktop")
    wait_js(page, "window.__permissionAsked === 1")


def test_a_run_ending_in_a_background_tab_shows_a_desktop_notification(
        page: Any, live_server: Any) -> None:
    page.context.grant_permissions(["notifications"], origin=live_server.url)
    open_observed(page, live_server)
    assert page.evaluate("window.__permissionAsked") == 0  # not on load
    page.select_option("#notify-select", "finish")
    run_id = start_job(page, "ui_numbers", n=1_000_000, delay=0.05)
    wait_state(page, "running")
    # Playwright makes every page look focused; without that, the tab brought to the
    # front has the focus and this one is in the background, as in a headed browser.
    page.context.new_cdp_session(page).send("Emulation.setFocusEmulationEnabled",
                                            {"enabled": False})
    other = page.context.new_page()
    other.goto("about:blank")
    other.bring_to_front()
    wait_for(lambda: not page.evaluate("document.hasFocus()"), timeout=10)
    token = page.evaluate("document.body.dataset.csrfToken")
    stopped = page.context.request.post(f"{live_server.url}/api/runs/{run_id}/stop",
                                        headers={"X-CSRF-Token": token})
    assert stopped.ok
    shown = wait_js(page, "window.__notifications.length && window.__notifications")
    assert shown == [{"title": "Numbers was stopped", "body": "", "tag": f"run-{run_id}",
                      "focused": False}]
    # a run that ends while the page is looked at shows none
    page.bring_to_front()
    wait_for(lambda: page.evaluate("document.hasFocus()"), timeout=10)
    start_job(page, "ui_numbers", n=1)
    wait_state(page, "succeeded")
    assert len(page.evaluate("window.__notifications")) == 1
    other.close()


def test_the_run_shows_how_telling_its_owner_went(open_page: Any, live_server: Any) -> None:
    page = open_page()
    token = page.evaluate("document.body.dataset.csrfToken")
    saved = page.context.request.put(
        f"{live_server.url}/api/preferences", headers={"X-CSRF-Token": token},
        data={"notify": "finish", "webex": True})
    assert saved.ok, saved.text()
    start_job(page, "ui_numbers", n=1)
    wait_state(page, "succeeded")
    # this server has no bot and the user picked no space: the page says it failed, and why
    wait_js(page, "document.getElementById('run-notified').textContent.includes('failed')")
    text = page.text_content("#run-notified")
    assert text.startswith("Telling you: Webex failed (") and not page.is_hidden("#run-notified")
