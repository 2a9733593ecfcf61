// The admins' page of every user's runs (templates/admin.html, web/admin.py): a filtered
// list from GET /api/admin/runs, kept up to date by `admin_state(s)` events, and one run's
// live output watched with `admin_watch` (read-only), with Stop (`admin_stop`). Output is
// text: every line goes in with textContent, never as HTML.
import { getJSON } from "./api.js";

const $ = (id) => document.getElementById(id);
const MAX_SHOWN_BATCHES = 500; // older output: in the run's log download
const socket = io({ transports: ["websocket", "polling"], tryAllTransports: true });
let watching = null; // {id, lastSeq}
let runs = new Map(); // run id -> record, as listed

function say(text) {
  $("admin-message").textContent = text || "";
  $("admin-message").hidden = !text;
}

function filters() {
  const q = new URLSearchParams();
  for (const name of ["user", "job", "state"]) {
    const value = $(`filter-${name}`).value.trim();
    if (value) q.set(name, value);
  }
  return q;
}

function matches(record) {
  const q = filters();
  return (!q.get("user") || record.user === q.get("user").toLowerCase())
    && (!q.get("job") || record.job === q.get("job"))
    && (!q.get("state") || record.state === q.get("state"));
}

function cell(text) {
  const td = document.createElement("td");
  td.textContent = text == null ? "" : String(text);
  return td;
}

function button(text, className, action) {
  const b = document.createElement("button");
  b.type = "button";
  b.textContent = text;
  if (className) b.className = className;
  b.addEventListener("click", action);
  return b;
}

function row(record) {
  const tr = document.createElement("tr");
  tr.dataset.runId = record.id;
  tr.append(cell(record.user), cell(record.job), cell(record.state),
    cell(record.started_at || record.created_at || ""), cell(record.id));
  const actions = document.createElement("td");
  actions.append(button("Watch", "", () => watch(record.id)));
  if (!["succeeded", "failed", "stopped"].includes(record.state)) {
    actions.append(" ", button("Stop", "danger", () => stop(record.id)));
  }
  tr.append(actions);
  if (watching && watching.id === record.id) tr.classList.add("current");
  return tr;
}

function render() {
  const body = $("admin-runs").tBodies[0];
  body.replaceChildren(...[...runs.values()].map(row));
}

async function load() {
  try {
    const { runs: found } = await getJSON(`/api/admin/runs?${filters()}`);
    runs = new Map(found.map((r) => [r.id, r]));
    render();
    say("");
  } catch (err) {
    say(err.message);
  }
}

function showState(record) {
  if (!watching || record.id !== watching.id) return;
  $("admin-watch-state").textContent = record.state;
  $("admin-stop").hidden = ["succeeded", "failed", "stopped"].includes(record.state);
}

function watch(runId) {
  if (watching && watching.id !== runId) socket.emit("unwatch", { run_id: watching.id });
  watching = { id: runId, lastSeq: 0 };
  $("admin-output").replaceChildren();
  $("admin-watch").hidden = false;
  subscribe();
  render();
}

function subscribe() {
  if (!watching) return;
  const run = watching;
  socket.emit("admin_watch", { run_id: run.id, after: run.lastSeq }, (ack) => {
    if (!ack || ack.error) return say(ack ? ack.error : "No answer from the server.");
    const record = ack.run;
    $("admin-watch-title").textContent = `${record.job} · ${record.user} · ${record.id}`;
    showState(record);
  });
}

function stop(runId) {
  socket.emit("admin_stop", { run_id: runId }, (ack) => {
    if (!ack || ack.error) say(ack ? ack.error : "No answer from the server.");
  });
}

socket.on("connect", () => {
  $("conn").className = "conn conn-connected";
  $("conn-text").textContent = "connected";
  subscribe(); // again after a reconnect, from the last line shown
});
socket.on("disconnect", () => {
  $("conn").className = "conn conn-connecting";
  $("conn-text").textContent = "reconnecting…";
});
socket.on("connect_error", (err) => say(err.message));

socket.on("output", (batch) => {
  if (!watching || batch.run_id !== watching.id) return;
  const out = $("admin-output");
  const fresh = batch.lines.slice(Math.max(0, watching.lastSeq + 1 - batch.first_seq));
  if (!fresh.length) return; // seen already (a resend after a reconnect)
  if (batch.skipped) {
    out.append(document.createTextNode(
      `[${batch.skipped} earlier lines are no longer kept: the retention limit]\n`));
  }
  watching.lastSeq = batch.first_seq + batch.lines.length - 1;
  const text = fresh.map((l) => l.text + (l.end === undefined ? "\n" : l.end)).join("");
  out.append(document.createTextNode(text));
  while (out.childNodes.length > MAX_SHOWN_BATCHES) out.firstChild.remove();
  out.scrollTop = out.scrollHeight;
});

// Whether the list changed: the record is listed (or now matches the filter).
function upsert(record) {
  const known = runs.has(record.id);
  const listed = known || matches(record);
  if (listed) {
    runs.set(record.id, { ...(runs.get(record.id) || {}), ...record });
    if (!known) runs = new Map([[record.id, runs.get(record.id)], ...[...runs].filter(([id]) => id !== record.id)]);
  }
  showState(record);
  return listed;
}

socket.on("admin_state", (record) => { if (upsert(record)) render(); });
// Several changes sent together (docs/protocol.md): each in turn, one render.
socket.on("admin_states", (records) => {
  if (!Array.isArray(records)) return;
  let changed = false;
  for (const record of records) changed = upsert(record) || changed;
  if (changed) render();
});

$("admin-filter").addEventListener("submit", (event) => {
  event.preventDefault();
  load();
});
$("admin-stop").addEventListener("click", () => watching && stop(watching.id));
load();
