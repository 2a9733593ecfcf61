// The Schedules view: the user's schedules (next run, last run and its state, pause or
// resume, edit, delete, run now), the form that makes or edits one with the next five
// due times shown before saving, and the banner of a schedule that paused itself.
// Everything shown is text (textContent), never HTML. docs/schedules.md.

import { getJSON } from "./api.js";
import { formatStart, stateBadge } from "./history.js";

const PREVIEW_DELAY_MS = 300;

function scheduleUrl(id = "", suffix = "") {
  return `/api/schedules${id ? `/${encodeURIComponent(id)}` : ""}${suffix}`;
}

function send(url, method, body) {
  const options = { method, headers: {} };
  if (body !== undefined) {
    options.headers["Content-Type"] = "application/json";
    options.body = JSON.stringify(body);
  }
  return getJSON(url, options);
}

function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

function button(text, title, onClick) {
  const b = el("button", "", text);
  b.type = "button";
  b.title = title;
  b.addEventListener("click", onClick);
  return b;
}

export function timingText(s) {
  const when = s.cron ? `cron ${s.cron}` : `every ${s.interval} s`;
  return `${when} · ${s.timezone}`;
}

export class Schedules {
  // form: the Start form (JobForm): a schedule runs its job with its parameters.
  constructor({ $, form, onOpenRun, announce }) {
    this.$ = $;
    this.jobForm = form;
    this.onOpenRun = onOpenRun;
    this.announce = announce;
    this.items = new Map(); // id -> schedule, as the API shows it
    this.editing = null; // the id of the schedule the form edits, or null for a new one
    this.previews = 0; // preview requests made: only the latest one's answer is shown
    this.timer = 0;
    this.error = "";
    this.form = $("schedule-form");
    this.list = $("schedule-list");
    this.message = $("schedules-message");
    this.banner = $("schedule-banner");
    $("schedule-timezone").value = Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC";
    $("schedule-new").addEventListener("click", () => (this.form.hidden ? this.open() : this.close()));
    $("schedule-cancel").addEventListener("click", () => this.close());
    this.form.addEventListener("submit", (e) => {
      e.preventDefault();
      this.save();
    });
    for (const radio of this.form.querySelectorAll('input[name="schedule-kind"]')) {
      radio.addEventListener("change", () => this.showKind());
    }
    this.form.addEventListener("input", () => this.schedulePreview());
    this.form.addEventListener("change", () => this.schedulePreview());
    // The job and its parameters are the Start form's: a change there changes the preview's
    // checks too (a parameter the job refuses is refused before saving).
    $("job-form").addEventListener("change", () => this.schedulePreview());
  }

  kind() {
    return this.form.querySelector('input[name="schedule-kind"]:checked').value;
  }

  showKind() {
    const cron = this.kind() === "cron";
    this.$("schedule-cron").hidden = !cron;
    this.$("schedule-interval").hidden = cron;
  }

  open(schedule = null) {
    this.editing = schedule ? schedule.id : null;
    const $ = this.$;
    $("schedule-name").value = schedule ? schedule.name : "";
    const kind = schedule && schedule.interval ? "interval" : "cron";
    this.form.querySelector(`input[name="schedule-kind"][value="${kind}"]`).checked = true;
    $("schedule-cron").value = schedule && schedule.cron ? schedule.cron : "";
    $("schedule-interval").value = schedule && schedule.interval ? String(schedule.interval) : "";
    if (schedule) $("schedule-timezone").value = schedule.timezone;
    $("schedule-end").value = schedule && schedule.end_at ? toLocalInput(schedule.end_at) : "";
    $("schedule-overlap").value = schedule ? schedule.overlap : "skip";
    $("schedule-missed").value = schedule ? schedule.missed : "skip";
    $("schedule-notify").value = schedule ? schedule.notify : "none";
    $("schedule-enabled").checked = schedule ? schedule.enabled : true;
    if (schedule && !this.jobForm.fill(schedule.job, schedule.params)) {
      this.setMessage(`The job ${schedule.job} is not offered any more: pick another above.`);
    } else {
      this.setMessage("");
    }
    $("schedule-save").textContent = schedule ? "Save changes" : "Save schedule";
    $("schedule-fires").replaceChildren();
    this.showKind();
    this.form.hidden = false;
    $("schedule-new").setAttribute("aria-expanded", "true");
    $("schedule-name").focus();
    this.schedulePreview();
  }

  close() {
    this.form.hidden = true;
    this.editing = null;
    this.$("schedule-new").setAttribute("aria-expanded", "false");
  }

  setMessage(text) {
    const box = this.$("schedule-message");
    box.textContent = text;
    box.hidden = !text;
  }

  // What the form describes, as the API takes it; null (with the fields marked) when the
  // Start form's parameters do not convert.
  body() {
    const $ = this.$;
    const job = this.jobForm.job();
    const { params, ok } = this.jobForm.read();
    if (!job || !ok) return null;
    const body = {
      name: $("schedule-name").value.trim() || job.title || job.name,
      job: job.name,
      params,
      timezone: $("schedule-timezone").value.trim() || "UTC",
      end_at: $("schedule-end").value ? new Date($("schedule-end").value).toISOString() : null,
      overlap: $("schedule-overlap").value,
      missed: $("schedule-missed").value,
      notify: $("schedule-notify").value,
      enabled: $("schedule-enabled").checked,
    };
    if (this.kind() === "cron") {
      body.cron = $("schedule-cron").value.trim();
      body.interval = null;
    } else {
      const seconds = Number($("schedule-interval").value);
      body.interval = Number.isFinite(seconds) && $("schedule-interval").value !== ""
        ? seconds : null;
      body.cron = null;
    }
    return body;
  }

  schedulePreview() {
    if (this.form.hidden) return;
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.preview(), PREVIEW_DELAY_MS);
  }

  async preview() {
    const body = this.body();
    const fires = this.$("schedule-fires");
    if (!body || (body.cron === "" && body.interval === null)) {
      fires.replaceChildren();
      return;
    }
    const mine = ++this.previews;
    try {
      const answer = await send(scheduleUrl("", "/preview"), "POST", body);
      if (mine !== this.previews) return;
      this.setMessage("");
      fires.replaceChildren(...answer.fires.map((f) => {
        const li = el("li", "", f.local);
        li.title = f.at;
        return li;
      }));
    } catch (err) {
      if (mine !== this.previews) return;
      fires.replaceChildren();
      this.setMessage(err.message);
    }
  }

  async save() {
    const body = this.body();
    if (!body) {
      this.setMessage("Check the job's fields marked under Start a job.");
      return;
    }
    const editing = this.editing;
    try {
      const saved = editing
        ? await send(scheduleUrl(editing), "PATCH", body)
        : await send(scheduleUrl(), "POST", body);
      this.upsert(saved);
      this.close();
      this.announce(`Schedule ${saved.name} saved.`);
    } catch (err) {
      this.setMessage(err.message);
    }
  }

  async load() {
    try {
      const { schedules } = await getJSON(scheduleUrl());
      this.items = new Map(schedules.map((s) => [s.id, s]));
      this.error = "";
    } catch (err) {
      this.error = `Could not load the schedules: ${err.message}`;
    }
    this.render();
  }

  // A `schedule` event, or an answer: the newest record wins (version), a deleted one goes.
  upsert(schedule) {
    if (!schedule || !schedule.id) return;
    const known = this.items.get(schedule.id);
    if (schedule.deleted) {
      this.items.delete(schedule.id);
    } else if (!known || schedule.version >= known.version) {
      // An event names its last run only ({id}): its state comes from the run's own
      // `state` events, so what is known of that run stays.
      const run = schedule.last_run;
      if (run && !run.state && known && known.last_run && known.last_run.id === run.id) {
        schedule.last_run = known.last_run;
      }
      this.items.set(schedule.id, schedule);
    }
    this.render();
  }

  // A run's `state` event: the schedule that made it shows its state as its last run.
  onRun(record) {
    const schedule = record && record.schedule_id && this.items.get(record.schedule_id);
    if (!schedule) return;
    if (schedule.last_run && schedule.last_run.id !== record.id
        && schedule.last_run.created_at > record.created_at) return;
    schedule.last_run = {
      id: record.id, state: record.state, created_at: record.created_at,
      started_at: record.started_at, ended_at: record.ended_at, error: record.error,
    };
    this.render();
  }

  async act(schedule, verb) {
    try {
      if (verb === "run") {
        const run = await send(scheduleUrl(schedule.id, "/run"), "POST");
        this.onOpenRun(run.id);
        return;
      }
      if (verb === "delete") {
        if (!confirm(`Delete the schedule ${schedule.name}? Its runs stay.`)) return;
        await send(scheduleUrl(schedule.id), "DELETE");
        this.upsert({ ...schedule, deleted: true });
        this.announce(`Schedule ${schedule.name} deleted.`);
        return;
      }
      this.upsert(await send(scheduleUrl(schedule.id, `/${verb}`), "POST"));
      this.announce(`Schedule ${schedule.name} ${verb === "pause" ? "paused" : "resumed"}.`);
    } catch (err) {
      this.error = err.message;
      this.render();
      this.error = "";
    }
  }

  render() {
    const items = [...this.items.values()];
    this.list.replaceChildren(...items.map((s) => this.item(s)));
    this.message.textContent = this.error || (items.length ? ""
      : "No schedules yet: choose a job under Start a job, then press New schedule.");
    const paused = items.filter((s) => s.paused_reason);
    const text = paused.map((s) => `Schedule ${s.name}: ${s.paused_reason}`).join(" ");
    this.banner.hidden = !paused.length;
    // An alert is read out when its text changes: only then, not at every re-render.
    if (this.banner.textContent !== text) this.banner.textContent = text;
  }

  item(s) {
    const li = el("li", "schedule-item");
    li.dataset.scheduleId = s.id;
    const head = el("div", "schedule-head");
    head.append(el("strong", "schedule-name", s.name),
      el("span", `badge ${s.enabled ? "state-running" : "state-stopped"}`,
        s.enabled ? "enabled" : "paused"));
    const timing = el("div", "params", `${s.job} · ${timingText(s)}`);
    const next = el("div", "schedule-next",
      s.enabled && s.next_fire_at ? `Next run: ${formatStart(s.next_fire_at)}`
        : s.enabled ? "No more runs: its end has passed." : "Paused: no next run.");
    const last = el("div", "schedule-last");
    if (s.last_run && !s.last_run.state) {
      last.textContent = "Last run: starting…";
    } else if (s.last_run) {
      const open = button(`Last run: ${formatStart(s.last_run.started_at || s.last_run.created_at)}`,
        `Open run ${s.last_run.id}`, () => this.onOpenRun(s.last_run.id));
      open.className = "link";
      last.append(open, " ", stateBadge(s.last_run.state));
    } else {
      last.textContent = "No run yet.";
    }
    li.append(head, timing, next, last);
    if (s.last_error) li.append(el("div", "schedule-error", s.last_error));
    const actions = el("div", "schedule-actions");
    actions.append(
      s.enabled
        ? button("Pause", "Stop firing until resumed", () => this.act(s, "pause"))
        : button("Resume", "Fire again from the next due time", () => this.act(s, "resume")),
      button("Edit", "Change this schedule (the job comes from Start a job)", () => this.open(s)),
      button("Run now", "Start its job now; the due times stay", () => this.act(s, "run")),
      button("Delete", "Delete this schedule (its runs stay)", () => this.act(s, "delete")),
    );
    actions.lastChild.classList.add("danger");
    li.append(actions);
    return li;
  }
}

// An ISO time as a datetime-local input's value, in the browser's time.
function toLocalInput(iso) {
  const d = new Date(iso);
  const pad = (n) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}`;
}
