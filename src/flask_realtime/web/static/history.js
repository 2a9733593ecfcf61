// The run list: the user's runs, newest first, filtered by job and state, kept
// current by `state` events (which every tab of the user receives).

import { getJSON } from "./api.js";
import { setVisibleText, visibleText } from "./invisible.js";

const ACTIVE = new Set(["queued", "running", "stopping"]);
// How far along a state is: a run never moves to a lower rank.
export const RANK = { queued: 0, running: 1, stopping: 2, succeeded: 3, failed: 3, stopped: 3 };

function newestFirst(a, b) {
  return a.created_at < b.created_at ? 1 : a.created_at > b.created_at ? -1 : 0;
}

export function isActive(record) {
  return ACTIVE.has(record.state);
}

// A file parameter as a run's record has it: {filename, size} (shown by its name).
function isUpload(v) {
  return v !== null && typeof v === "object" && typeof v.filename === "string"
    && typeof v.size === "number" && Object.keys(v).length === 2;
}

export function paramsText(params) {
  return Object.entries(params || {})
    .map(([k, v]) => `${k}=${typeof v === "string" ? v : isUpload(v) ? v.filename
      : JSON.stringify(v)}`)
    .join(", ");
}

export function formatStart(iso) {
  if (!iso) return "";
  const d = new Date(iso);
  const today = new Date().toDateString() === d.toDateString();
  const time = d.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: "2-digit" });
  return today ? time : `${d.toLocaleDateString()} ${time}`;
}

export function formatDuration(record) {
  if (!record.started_at) return "";
  const end = record.ended_at ? Date.parse(record.ended_at) : Date.now();
  const s = Math.max(0, (end - Date.parse(record.started_at)) / 1000);
  if (s < 10) return `${s.toFixed(1)} s`;
  if (s < 60) return `${Math.round(s)} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min ${String(Math.round(s % 60)).padStart(2, "0")} s`;
  return `${Math.floor(m / 60)} h ${String(m % 60).padStart(2, "0")} min`;
}

export function stateBadge(state) {
  const badge = document.createElement("span");
  badge.className = `badge state-${state}`;
  badge.textContent = state;
  return badge;
}

export class RunHistory {
  constructor({ body, jobFilter, stateFilter, message, onOpen }) {
    this.body = body;
    this.jobFilter = jobFilter;
    this.stateFilter = stateFilter;
    this.message = message;
    this.onOpen = onOpen;
    this.runs = []; // records shown, newest first
    this.currentId = null;
    this.loads = 0; // load() calls made: only the latest one's answer is shown
    this.pushed = null; // records from `state` events while a load is on its way
    this.error = ""; // why the list could not be read, shown instead of the list
    jobFilter.addEventListener("change", () => this.load());
    stateFilter.addEventListener("change", () => this.load());
  }

  setJobs(jobs) {
    const keep = this.jobFilter.value;
    this.jobFilter.replaceChildren(new Option("All jobs", ""),
      ...jobs.map((j) => new Option(j.title, j.name)));
    this.jobFilter.value = keep;
  }

  async load() {
    const q = new URLSearchParams({ limit: "100" });
    if (this.jobFilter.value) q.set("job", this.jobFilter.value);
    if (this.stateFilter.value) q.set("state", this.stateFilter.value);
    const load = ++this.loads;
    this.pushed = new Map();
    try {
      const { runs } = await getJSON(`/api/runs?${q}`);
      if (load !== this.loads) return; // a newer load (other filters) answers instead
      // The answer may predate a `state` event that arrived meanwhile (a run started
      // just after the list was read): keep whichever record is further along.
      const merged = new Map(runs.map((r) => [r.id, r]));
      for (const record of this.pushed.values()) {
        const listed = merged.get(record.id);
        if (!listed || RANK[record.state] >= RANK[listed.state]) merged.set(record.id, record);
      }
      this.runs = [...merged.values()].filter((r) => this.matches(r)).sort(newestFirst);
      this.error = "";
    } catch (err) {
      if (load !== this.loads) return;
      this.error = `Could not load the run list: ${err.message}`;
    }
    this.pushed = null;
    this.render();
  }

  matches(record) {
    return (!this.jobFilter.value || record.job === this.jobFilter.value)
      && (!this.stateFilter.value || record.state === this.stateFilter.value);
  }

  upsert(record) {
    if (this.pushed) this.pushed.set(record.id, record);
    const i = this.runs.findIndex((r) => r.id === record.id);
    if (!this.matches(record)) {
      if (i >= 0) this.runs.splice(i, 1);
    } else if (i >= 0) {
      this.runs[i] = record;
    } else {
      this.runs.push(record);
      this.runs.sort(newestFirst);
    }
    this.render();
  }

  get(id) {
    return this.runs.find((r) => r.id === id) || null;
  }

  setCurrent(id) {
    this.currentId = id;
    for (const tr of this.body.children) tr.classList.toggle("current", tr.dataset.runId === id);
  }

  render() {
    this.body.replaceChildren(...this.runs.map((r) => this.row(r)));
    const filtered = Boolean(this.jobFilter.value || this.stateFilter.value);
    this.message.textContent = this.error || (this.runs.length ? ""
      : filtered ? "No runs match these filters." : "No runs yet: pick a job and press Start.");
  }

  row(record) {
    const tr = document.createElement("tr");
    tr.dataset.runId = record.id;
    if (record.id === this.currentId) tr.className = "current";
    const open = document.createElement("button");
    open.type = "button";
    open.className = "link";
    setVisibleText(open, record.title || record.job);
    open.title = `Open run ${record.id}`;
    open.addEventListener("click", () => this.onOpen(record.id));
    // The whole row opens the run, not only its title: a tap need not hit the link.
    tr.addEventListener("click", (e) => {
      if (e.target.closest("button") || String(getSelection())) return;
      this.onOpen(record.id);
    });
    const params = document.createElement("div");
    params.className = "params";
    const text = paramsText(record.params);
    setVisibleText(params, text);
    params.title = visibleText(text);
    const made = [open, params];
    if (record.schedule_name) { // a run a schedule started says which one
      const by = document.createElement("div");
      by.className = "params run-schedule";
      by.textContent = `Scheduled: ${record.schedule_name}`;
      made.push(by);
    }
    const cells = [
      made,
      [stateBadge(record.state)],
      [formatStart(record.started_at || record.created_at)],
      [formatDuration(record)],
    ];
    for (const content of cells) {
      const td = document.createElement("td");
      td.append(...content);
      tr.appendChild(td);
    }
    tr.cells[0].className = "run-cell";
    tr.cells[3].className = "duration";
    return tr;
  }

  // Running rows' durations grow every second.
  tick() {
    for (const tr of this.body.children) {
      const record = this.get(tr.dataset.runId);
      if (record && isActive(record)) {
        tr.querySelector(".duration").textContent = formatDuration(record);
      }
    }
  }
}
