// Notifications (docs/notifications.md): the "Notify me" choice at Start, the user's
// preferences (GET/PUT /api/preferences), and a desktop notification when one of the
// user's runs ends while this tab is in the background.
//
// Permission for desktop notifications is asked only when the user presses the
// button, never on load. A notification says the job's title and how it ended, as
// text (the Notification API renders no HTML); its tag is the run id.

import { getJSON } from "./api.js";

const ACTIVE = new Set(["queued", "running", "stopping"]);
const ENDED = { succeeded: "succeeded", failed: "failed", stopped: "was stopped" };
const $ = (id) => document.getElementById(id);

const CHANNEL = { webex: "Webex", webhook: "webhook", queue: "queue" };
const STATUS = { pending: "sending", sent: "sent", failed: "failed" };

// The run's `notifications` as one line of text under its header: "Told you: Webex sent;
// webhook failed (The webhook answered 503.)". Hidden when there are none.
export function showNotified(element, run) {
  const entries = Object.entries((run && run.notifications) || {});
  element.hidden = entries.length === 0;
  element.textContent = entries.length === 0 ? "" : `Telling you: ${entries.map(([name, e]) => {
    const what = `${CHANNEL[name] || name} ${STATUS[e.status] || e.status}`;
    return e.reason && e.status !== "sent" ? `${what} (${e.reason})` : what;
  }).join("; ")}`;
}

export class Notifications {
  constructor({ onOpen }) {
    this.onOpen = onOpen;
    this.prefs = null;
    this.going = new Set(); // runs this page saw not finished: their end is news
    $("notify-form").addEventListener("submit", (e) => { e.preventDefault(); this.save(); });
    $("notify-rooms-btn").addEventListener("click", () => this.loadRooms());
    $("notify-desktop").addEventListener("click", () => this.askPermission());
    this.showPermission();
  }

  // The Start choice: "" is the user's default (the server reads it).
  startChoice() {
    return $("notify-select").value || undefined;
  }

  say(text) {
    $("notify-message").textContent = text;
  }

  async load() {
    try {
      this.show(await getJSON("/api/preferences"));
    } catch (err) {
      this.say(`Could not load your notification settings: ${err.message}`);
    }
  }

  show(prefs) {
    this.prefs = prefs;
    $("notify-default").value = prefs.notify;
    $("notify-webex").checked = prefs.webex;
    $("notify-webhook").value = prefs.webhook_url || "";
    $("notify-secret").value = "";
    $("notify-secret").placeholder = prefs.webhook_secret_set ? "set (type to replace)" : "";
    $("notify-room-field").hidden = prefs.webex_bot;
    $("notify-webex-help").textContent = prefs.webex_bot
      ? "A direct message from this server's bot."
      : "This server has no bot: pick a space of yours for the messages.";
    const room = $("notify-room");
    if (prefs.webex_room && ![...room.options].some((o) => o.value === prefs.webex_room)) {
      room.append(new Option(prefs.webex_room, prefs.webex_room));
    }
    room.value = prefs.webex_room || "";
  }

  async save() {
    const change = {
      notify: $("notify-default").value,
      webex: $("notify-webex").checked,
      webhook_url: $("notify-webhook").value.trim(),
    };
    if (!this.prefs || !this.prefs.webex_bot) change.webex_room = $("notify-room").value;
    if ($("notify-secret").value) change.webhook_secret = $("notify-secret").value;
    if (!change.webhook_url) change.webhook_secret = "";
    try {
      this.show(await getJSON("/api/preferences", {
        method: "PUT",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify(change),
      }));
      this.say("Saved.");
    } catch (err) {
      this.say(err.message);
    }
  }

  async loadRooms() {
    try {
      const { rooms } = await getJSON("/api/preferences/rooms");
      const room = $("notify-room");
      const chosen = room.value;
      room.replaceChildren(new Option("none picked", ""),
        ...rooms.map((r) => new Option(r.title, r.id)));
      room.value = chosen;
      this.say(rooms.length ? "" : "You have no group spaces.");
    } catch (err) {
      this.say(err.message);
    }
  }

  showPermission() {
    const button = $("notify-desktop");
    if (!("Notification" in window)) {
      button.disabled = true;
      button.title = "This browser has no desktop notifications.";
      return;
    }
    const state = Notification.permission;
    button.textContent = state === "granted" ? "Desktop notifications: on"
      : state === "denied" ? "Desktop notifications: blocked" : "Desktop notifications";
    button.setAttribute("aria-pressed", String(state === "granted"));
  }

  async askPermission() {
    if (!("Notification" in window)) return;
    const answer = await Notification.requestPermission();
    this.showPermission();
    this.say(answer === "granted" ? "Desktop notifications are on for this browser."
      : answer === "denied" ? "The browser blocks desktop notifications for this site: allow "
        + "them in its site settings." : "");
  }

  // Every run record the page hears (the state events, the run list).
  onRecord(r) {
    if (!r || !r.id) return;
    if (ACTIVE.has(r.state)) {
      this.going.add(r.id);
      return;
    }
    if (!this.going.delete(r.id)) return; // ended before this page knew it, or told already
    const when = r.notify || (this.prefs && this.prefs.notify) || "off";
    if (!(when === "finish" || (when === "failure" && r.state === "failed"))) return;
    if (!document.hidden && document.hasFocus()) return; // the user is looking at the page
    if (!("Notification" in window) || Notification.permission !== "granted") return;
    const body = r.state === "failed" && r.error ? String(r.error).slice(0, 300) : "";
    const shown = new Notification(`${r.title || r.job} ${ENDED[r.state] || r.state}`,
      { body, tag: `run-${r.id}` });
    shown.onclick = () => {
      window.focus();
      this.onOpen(r.id);
      shown.close();
    };
  }
}
