// The page: wires the socket, the start form, the run list and the output pane.
//
// Query flags (for tests and bench/render.py): `?render=0` counts output lines
// without rendering them; `?cap=N` holds at most N lines in the page.
//
// The fragment names what is shown: `#run=<id>`, optionally `&line=120` or
// `&line=120-140` (seqs). Opening a run pushes a history entry, so Back and Forward
// move between runs; editing the fragment opens what it names. `#share=<token>` shows
// a run another user shared, read-only (no Stop, Re-run or Share).

import { getJSON, newRequestId, runUrl, sharedUrl } from "./api.js";
import { renderFiles } from "./files.js";
import { JobForm } from "./form.js";
import {
  RANK, RunHistory, formatDuration, formatStart, isActive, paramsText, stateBadge,
} from "./history.js";
import { setVisibleText, visibleText } from "./invisible.js";
import { Notifications, showNotified } from "./notify.js";
import { renderResult } from "./result.js";
import { Schedules } from "./schedules.js";
import { RunSession } from "./session.js";
import { Viewer } from "./viewer.js";

const $ = (id) => document.getElementById(id);
const data = document.body.dataset;
const flags = new URLSearchParams(location.search);
const RENDER = flags.get("render") !== "0";
// Lines held per run. At 20 px a row, 1.5M rows stay under Chromium's ~33M px element height.
const CAP = Math.min(1_500_000, Math.max(1000, Number(flags.get("cap")) || 200_000));
const STOP_CONFIRM_MS = 10_000;
const LINE_CONTEXT = 500; // lines fetched before a linked line, to scroll back into
const NARROW = matchMedia("(max-width: 800px)"); // the one-column layout of app.css

// For tests and bench/render.py; busyMs: main-thread time spent on output batches and drawing.
const stats = {
  lines: 0, firstAt: 0, lastAt: 0, renderedSeq: 0, renderedAt: 0, busyMs: 0, connects: 0,
};
const socket = io({ transports: ["websocket", "polling"], tryAllTransports: true });
const form = new JobForm($("job-form"));
const runList = new RunHistory({
  body: $("runs-body"), jobFilter: $("filter-job"), stateFilter: $("filter-state"),
  message: $("runs-message"), onOpen: (id) => openRun(id, { reveal: true }),
});
const schedules = new Schedules({
  $, form, onOpenRun: (id) => openRun(id, { reveal: true }), announce: (text) => announce(text),
});
const notifications = new Notifications({ onOpen: (id) => openRun(id, { reveal: true }) });
const viewer = new Viewer($("output"), {
  onFollowChange: () => showStatus(),
  onStatus: () => showStatus(),
  onLinePick: (seq, extend) => pickLine(seq, extend),
  onJumpToEnd: () => session && session.jumpToEnd(),
  onNearTop: () => session && session.fetchOlder(),
  onNearBottom: () => session && session.fetchNewer(),
  onDrawn: (ms) => {
    stats.busyMs += ms;
    if (session && viewer.follow) {
      stats.renderedSeq = session.heldEnd;
      stats.renderedAt = performance.now();
    }
  },
  onMatches: (m) => {
    $("search-count").textContent = m === null ? ""
      : m.count ? `${m.current + 1} of ${m.count}` : "no matches";
  },
});

let session = null; // the RunSession shown in the output pane
let current = null; // its latest RunRecord
let pendingStart = null; // a start not yet acknowledged: {job, params, request_id}
let offline = false; // the socket is down: the shown run's state is not known
let shared = null; // {token, owner}: the shown run is another user's, through a share link
const early = new Map(); // run_id -> output batches that came before the start's ack

function announce(text) {
  $("announcer").textContent = text;
}

// --- connection -----------------------------------------------------------------
function setConnection(state, text, message = "") {
  $("conn").className = `conn conn-${state}`;
  $("conn-text").textContent = text;
  $("conn-message").textContent = message;
  $("conn-message").hidden = !message;
  const wasOffline = offline;
  offline = state !== "connected";
  $("output-panel").classList.toggle("stale", offline);
  if (current && wasOffline !== offline) showRunHeader();
}

// The server's refusal is already a sentence saying what to do ("You are not logged
// in: reload the page and log in."): show it as it is, not wrapped in advice of our own.
function refusal(err) {
  const text = String((err && err.message) || "").trim();
  if (!text) return "The server refused the connection. Reload the page; you may need to log in again.";
  return /[.!?]$/.test(text) ? text : `${text}.`;
}

socket.on("connect", () => {
  setConnection("connected", "connected");
  // The same request_id: the server will not start it twice. (A start with files is an
  // HTTP request of its own, not the socket's.)
  if (pendingStart && !pendingStart.files) sendStart();
  if (session && session.watching) session.watch(session.lastSeq);
  if (stats.connects++) {
    announce("Reconnected.");
    runList.load();
    schedules.load();
  }
});

socket.on("disconnect", () => {
  early.clear();
  if (socket.active) {
    setConnection("reconnecting", "reconnecting…");
    announce("Connection lost; reconnecting.");
  } else {
    setConnection("disconnected", "disconnected",
      "The server closed the connection. Reload the page; you may need to log in again.");
  }
});

socket.on("connect_error", (err) => {
  if (socket.active) setConnection("reconnecting", "reconnecting…");
  else {
    setConnection("disconnected", "disconnected", refusal(err));
  }
});

socket.on("output", (ev) => {
  const now = performance.now();
  if (!stats.firstAt) stats.firstAt = now;
  stats.lastAt = now;
  if (session && ev.run_id === session.runId) session.onOutput(ev);
  else if (pendingStart) {
    if (!early.has(ev.run_id)) early.set(ev.run_id, []);
    early.get(ev.run_id).push(ev);
  }
  stats.busyMs += performance.now() - now;
});

socket.on("state", (record) => onRecord(record));
// Several changes sent together (docs/protocol.md): each in turn, oldest first.
socket.on("states", (records) => { if (Array.isArray(records)) records.forEach(onRecord); });
socket.on("schedule", (schedule) => schedules.upsert(schedule));

function onRecord(record) {
  if (!record || !record.id) return;
  if (!shared) notifications.onRecord(record); // a desktop notification when it ends
  if (!shared) runList.upsert(record); // a shared run is not in the viewer's own list
  if (!shared) schedules.onRun(record);
  if (!session || record.id !== session.runId) return;
  const before = current;
  if (before && RANK[record.state] < RANK[before.state]) return; // an older answer
  current = record;
  showRunHeader();
  if (!before || before.state !== record.state) {
    announce(`${record.title || record.job}: ${record.state}.`);
    if (RANK[record.state] === 3 && record.has_result) loadResult(record.id);
    // A run's files are its owner's (web/files.py): not shown through a share link.
    if (RANK[record.state] === 3 && !shared) renderFiles($("files"), record);
  }
}

// --- starting and stopping ----------------------------------------------------------
function start() {
  const job = form.job();
  if (pendingStart || !job) return;
  const { params, ok } = form.read();
  if (!ok) return;
  form.setMessage("");
  pendingStart = {
    job: job.name, params, request_id: newRequestId(), notify: notifications.startChoice(),
    files: form.hasFiles(),
  };
  $("start-btn").disabled = true;
  $("start-btn").textContent = "Starting…";
  if (pendingStart.files) startWithFiles();
  else sendStart();
}

// A job that takes files starts over HTTP (multipart): the socket's start takes none.
async function startWithFiles() {
  const request = pendingStart;
  const body = new FormData();
  const plain = {};
  for (const [name, value] of Object.entries(request.params)) {
    if (value instanceof File) body.append(name, value, value.name);
    else plain[name] = value;
  }
  body.append("job", request.job);
  body.append("params", JSON.stringify(plain));
  body.append("request_id", request.request_id);
  if (request.notify) body.append("notify", request.notify);
  try {
    const record = await getJSON("/api/runs", { method: "POST", body });
    form.remember(request.job, plain);
    runList.upsert(record);
    announce("Run started.");
    openRun(record.id, { reveal: true });
  } catch (err) {
    // fetch fails with a TypeError when the connection closes under it: a server
    // refusing a body too large may close it before the page has sent it all.
    const message = err instanceof TypeError
      ? "The file could not be sent: the connection closed (a server refuses a file " +
        "too large that way). Choose a smaller file, or try again."
      : err.message;
    form.showErrors(message, err.errors || {});
    announce("The job did not start.");
  } finally {
    pendingStart = null;
    $("start-btn").disabled = false;
    $("start-btn").textContent = "Start";
  }
}

function sendStart() {
  if (!socket.connected) return; // sent again on connect
  const request = pendingStart;
  const { job, params, request_id: requestId, notify } = request;
  socket.emit("start", { job, params, request_id: requestId, notify }, (ack) => {
    if (pendingStart !== request) return; // answered already (a re-send after a reconnect)
    pendingStart = null;
    $("start-btn").disabled = false;
    $("start-btn").textContent = "Start";
    if (!ack || ack.error) {
      early.clear();
      form.showErrors((ack && ack.error) || "The server did not answer.", ack && ack.errors);
      announce("The job did not start.");
      return;
    }
    form.remember(request.job, request.params);
    openRun(ack.run_id, { started: true, reveal: true });
    const buffered = early.get(ack.run_id) || [];
    early.clear();
    for (const ev of buffered) session.onOutput(ev);
  });
}

function requestStop() {
  if (!current || !(current.state === "queued" || current.state === "running")) return;
  const age = current.started_at ? Date.now() - Date.parse(current.started_at) : 0;
  if (age > STOP_CONFIRM_MS) {
    $("stop-dialog").returnValue = "";
    $("stop-dialog").showModal();
  } else {
    sendStop(current.id);
  }
}

function sendStop(runId) {
  socket.emit("stop", { run_id: runId }, (ack) => {
    if (!ack || ack.error) showRunError((ack && ack.error) || "The server did not answer.");
  });
}

// Re-run: the same job and parameters, checked again by the server (a job no longer
// offered, or parameters it no longer takes, come back as a sentence).
let rerunning = false;
async function rerun() {
  if (!current || rerunning || RANK[current.state] !== 3) return;
  rerunning = true;
  $("rerun-btn").disabled = true;
  try {
    const record = await getJSON(runUrl(current.id, "/rerun"), {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ request_id: newRequestId() }),
    });
    runList.upsert(record);
    announce("Run started again.");
    openRun(record.id, { reveal: true });
  } catch (err) {
    showRunError(`Could not re-run: ${err.message}`);
  } finally {
    rerunning = false;
    $("rerun-btn").disabled = false;
  }
}

// Edit and run: the form gets the shown run's job and values; the user starts it.
function editRun() {
  if (!current) return;
  if (!form.fill(current.job, current.params)) {
    form.setMessage(`The job ${current.job} is not offered any more: pick another.`);
  }
  $("job-form").scrollIntoView({ block: "nearest" });
  const first = $("job-fields").querySelector("input, select");
  (first || $("job-select")).focus();
  announce("The form holds this run's job and parameters.");
}

// --- the shown run ----------------------------------------------------------------
function fragment(runId, line = null) {
  let hash = `#run=${encodeURIComponent(runId)}`;
  if (line) hash += `&line=${line[0] === line[1] ? line[0] : `${line[0]}-${line[1]}`}`;
  return hash;
}

// {run, line}: what the URL's fragment names; line is [from, to] or null.
function fromFragment() {
  const q = new URLSearchParams(location.hash.slice(1));
  const m = /^(\d+)(?:-(\d+))?$/.exec(q.get("line") || "");
  let line = null;
  if (m) {
    const a = Number(m[1]), b = Number(m[2] || m[1]);
    line = [Math.max(1, Math.min(a, b)), Math.max(1, a, b)];
  }
  return { run: q.get("run") || null, line, share: q.get("share") || null };
}

// Back, Forward, or the fragment edited: show what it names.
function followFragment() {
  const { run, line, share } = fromFragment();
  if (share || shared) {
    // Into or out of a shared view: the page starts again as the fragment says.
    if (!shared || share !== shared.token) location.reload();
    return;
  }
  if (!run) {
    if (session) closeRun();
    return;
  }
  if (!session || session.runId !== run) {
    openRun(run, { line, push: false });
  } else if (line && String(line) !== String(viewer.picked)) {
    showLine(line);
  } else if (!line && viewer.picked) {
    viewer.unpick();
  }
}

// Scroll to a line of the shown run; one the page does not hold (older than its window)
// is fetched by opening the run again from just before it. A window still empty (its
// replay not come yet) will start after `heldEnd`: a line up to there is not coming;
// nor is one a cap or more past the window's start (the view stays at the link, so the
// window takes no more than the cap).
function showLine(line) {
  const held = session.lines;
  const first = held.firstSeq();
  const start = first === null ? session.heldEnd + 1 : first;
  const last = first === null ? session.heldEnd : held.seq[held.length - 1];
  const missing = line[0] < start ? first === null || !held.startsAtBeginning()
    : line[0] > last && line[0] >= start + held.cap;
  if (missing) {
    openRun(session.runId, { line, push: false });
  } else {
    viewer.reveal(line[0], line[1]);
  }
}

function pickLine(seq, extend) {
  if (!session) return;
  const was = viewer.picked;
  const line = extend && was ? [Math.min(was[0], seq), Math.max(was[1], seq)] : [seq, seq];
  viewer.reveal(line[0], line[1], false);
  if (!shared) history.replaceState(null, "", fragment(session.runId, line));
}

// No run shown (Back past the first one opened).
function closeRun() {
  if (session) session.close();
  session = null;
  current = null;
  if (RENDER) viewer.setLines(null);
  runList.setCurrent(null);
  $("layout").classList.remove("has-run");
  setVisibleText($("run-title"), "Output");
  for (const id of ["run-state", "run-params", "run-times"]) $(id).replaceChildren();
  $("stop-btn").disabled = true;
  $("rerun-btn").hidden = true;
  $("edit-run-btn").hidden = true;
  $("share-btn").hidden = true;
  $("share-panel").hidden = true;
  $("copy-btn").disabled = true;
  $("download-link").hidden = true;
  $("result").hidden = true;
  $("files").hidden = true;
  $("run-error").hidden = true;
  $("output-empty").hidden = false;
  $("input-line").hidden = true;
  showStatus();
}

function showStatus() {
  const n = session && viewer.lines ? viewer.lines.length : 0;
  $("output-status").hidden = !session || !RENDER;
  $("jump-end").hidden = viewer.follow || n === 0;
  $("output-count").textContent = !session ? ""
    : n ? `${n.toLocaleString("en-US")} line${n === 1 ? "" : "s"}` : "No output yet.";
}

// `reveal`: the user asked for this run (Start, a row of the list): on a phone, where
// the pane is below the form, bring it into view.
async function openRun(runId, { started = false, line = null, push = true, reveal = false } = {}) {
  if (shared) { // leave the shared view: the page starts again with the user's own run
    location.hash = fragment(runId, line);
    return;
  }
  if (session) session.close();
  session = new RunSession(runId, {
    socket, viewer: RENDER ? viewer : null, cap: CAP, stats, onRecord, onError: showRunError,
  });
  const mine = session;
  current = null;
  $("rerun-btn").hidden = true;
  $("edit-run-btn").hidden = true;
  $("share-btn").hidden = true;
  $("share-panel").hidden = true;
  if (RENDER) viewer.setLines(session.lines);
  runList.setCurrent(runId);
  const hash = fragment(runId, line);
  if (location.hash !== hash) {
    if (push) history.pushState(null, "", hash);
    else history.replaceState(null, "", hash);
  }
  if (line && RENDER) viewer.reveal(line[0], line[1]);
  $("layout").classList.add("has-run");
  if (reveal && NARROW.matches) $("output-panel").scrollIntoView({ block: "start" });
  $("result").hidden = true;
  $("files").hidden = true;
  $("run-error").hidden = true;
  $("output-empty").hidden = true;
  showStatus();
  $("copy-btn").disabled = false;
  $("download-link").href = runUrl(runId, "/log");
  $("download-link").hidden = false;
  if (started) {
    session.adoptStarted();
    announce("Run started.");
  }
  let record = runList.get(runId);
  if (started) {
    if (record) onRecord(record);
    else getJSON(runUrl(runId)).then(onRecord, () => {}); // its `state` events follow anyway
    return;
  }
  if (!record) {
    try {
      record = await getJSON(runUrl(runId));
    } catch (err) {
      showRunError(err.message);
    }
    if (session !== mine) return;
  }
  if (record) onRecord(record);
  // A run longer than the window: its newest half-window now, older lines on scroll-back;
  // a linked line the page would not get that way: from a little before it.
  let after = record && record.lines > CAP ? record.lines - (CAP >> 1) : 0;
  if (line) { // from before it, unless the window takes it, with what led to it, from `after`
    const before = Math.max(0, line[0] - 1 - Math.min(LINE_CONTEXT, CAP >> 2));
    if (before < after || line[0] >= after + CAP) after = before;
  }
  session.watch(after);
}

// --- sharing (docs/ui.md, "Sharing a run") --------------------------------------------
// A run another user shared: read-only. Its state events go to its owner only, so
// while it runs the page asks for the record every 2 s (the output comes live).
let sharedTicks = 0;
async function openShared(token) {
  let record;
  try {
    record = await getJSON(sharedUrl(token));
  } catch (err) {
    $("output-empty").hidden = true;
    showRunError(err.message);
    return;
  }
  shared = { token, owner: record.shared_by };
  document.body.classList.add("shared-view");
  setVisibleText($("share-banner"), `Shared by ${record.shared_by} — read-only`);
  $("share-banner").hidden = false;
  session = new RunSession(record.id, {
    socket, viewer: RENDER ? viewer : null, cap: CAP, stats, onRecord, onError: showRunError,
    shareToken: token,
  });
  if (RENDER) viewer.setLines(session.lines);
  $("layout").classList.add("has-run");
  $("output-empty").hidden = true;
  $("copy-btn").disabled = false;
  $("download-link").href = sharedUrl(token, "/log");
  $("download-link").hidden = false;
  onRecord(record);
  showStatus();
  session.watch(record.lines > CAP ? record.lines - (CAP >> 1) : 0);
}

async function refreshShared() {
  try {
    onRecord(await getJSON(sharedUrl(shared.token)));
  } catch (err) {
    showRunError(err.message); // revoked or expired: say so
  }
}

async function createShare() {
  if (!current || shared) return;
  const runId = current.id;
  $("share-btn").disabled = true;
  $("share-panel").hidden = false;
  try {
    const link = await getJSON(runUrl(runId, "/shares"), {
      method: "POST", headers: { "Content-Type": "application/json" }, body: "{}",
    });
    if (!current || current.id !== runId) return;
    $("share-url").value = link.url;
    $("share-expiry").textContent = `Expires ${formatStart(link.expires_at)}.`;
    $("share-new").hidden = false;
    $("share-message").textContent = "Anyone logged in here who has this link can read the run; nobody else can stop or re-run it.";
    $("share-url").select();
    await loadShares(runId);
  } catch (err) {
    $("share-message").textContent = `Could not make a link: ${err.message}`;
  } finally {
    $("share-btn").disabled = false;
  }
}

async function copyShareLink() {
  const url = $("share-url").value;
  try {
    await navigator.clipboard.writeText(url);
    $("share-message").textContent = "Link copied.";
  } catch {
    $("share-url").select(); // no clipboard (plain http): the user copies the selection
    $("share-message").textContent = "Copy the selected link with Ctrl+C.";
  }
}

async function loadShares(runId) {
  const { shares } = await getJSON(runUrl(runId, "/shares"));
  if (!current || current.id !== runId) return;
  const rows = shares.map((s) => {
    const li = document.createElement("li");
    const text = document.createElement("span");
    text.textContent = `Link ${s.id}, expires ${formatStart(s.expires_at)}`;
    const revoke = document.createElement("button");
    revoke.type = "button";
    revoke.textContent = "Revoke";
    revoke.addEventListener("click", async () => {
      try {
        await getJSON(runUrl(runId, `/shares/${encodeURIComponent(s.id)}`), { method: "DELETE" });
        $("share-message").textContent = "Link revoked: it opens nothing now.";
        $("share-new").hidden = true;
        await loadShares(runId);
      } catch (err) {
        $("share-message").textContent = `Could not revoke the link: ${err.message}`;
      }
    });
    li.append(text, " ", revoke);
    return li;
  });
  $("share-list").replaceChildren(...rows);
}

function showRunHeader() {
  const r = current;
  setVisibleText($("run-title"), r.title || r.job);
  const badge = stateBadge(offline ? "unknown" : r.state);
  if (offline) badge.title = `Last known: ${r.state}. The state shows again when the connection is back.`;
  $("run-state").replaceChildren(badge);
  const params = paramsText(r.params);
  setVisibleText($("run-params"), params);
  $("run-params").title = visibleText(params);
  const started = r.started_at ? `started ${formatStart(r.started_at)}` : "";
  $("run-times").textContent = [started, formatDuration(r)].filter(Boolean).join(" · ");
  $("stop-btn").disabled = !(r.state === "queued" || r.state === "running");
  $("rerun-btn").hidden = RANK[r.state] !== 3;
  $("edit-run-btn").hidden = false;
  $("share-btn").hidden = false;
  if (shared) {
    for (const id of ["stop-btn", "rerun-btn", "edit-run-btn", "share-btn"]) $(id).hidden = true;
  }
  if (r.error) showRunError(r.error);
  showInput();
  showNotified($("run-notified"), shared ? null : r); // how telling the owner went
}

// --- input: the line under the output while the run waits for it (docs/ui.md) --------
function showInput() {
  const wait = current && !shared && RANK[current.state] !== 3 ? current.waiting_input : null;
  const line = $("input-line");
  const was = !line.hidden;
  line.hidden = !wait;
  if (!wait) {
    $("input-message").textContent = "";
    return;
  }
  setVisibleText($("input-prompt"), wait.prompt || "Input");
  $("input-text").type = wait.secret ? "password" : "text";
  for (const id of ["input-text", "input-send", "input-eof"]) $(id).disabled = offline;
  // Bring the cursor to it, unless the user is typing somewhere else.
  if (!was && !typing(document.activeElement)) $("input-text").focus({ preventScroll: true });
}

// `typed`: the field's text, put back if the line is refused (nothing typed is lost).
function sendInput(payload, typed = "") {
  if (!current) return;
  const runId = current.id;
  socket.emit("input", { run_id: runId, ...payload }, (ack) => {
    if (!ack || ack.error) {
      $("input-message").textContent = (ack && ack.error) || "The server did not answer.";
      if (typed && !$("input-text").value) $("input-text").value = typed;
      return;
    }
    $("input-message").textContent = payload.eof ? "Input ended." : "";
  });
}

$("input-line").addEventListener("submit", (e) => {
  e.preventDefault();
  const text = $("input-text").value;
  $("input-text").value = "";
  sendInput({ text: `${text}\n` }, text);
});
$("input-eof").addEventListener("click", () => sendInput({ eof: true }));
$("input-text").addEventListener("keydown", (e) => {
  if (e.key === "d" && e.ctrlKey && !$("input-text").value) {
    e.preventDefault();
    sendInput({ eof: true });
  }
});

function showRunError(text) {
  setVisibleText($("run-error"), text);
  $("run-error").hidden = !text;
}

async function loadResult(runId) {
  try {
    const full = await getJSON(shared ? sharedUrl(shared.token) : runUrl(runId));
    if (!session || session.runId !== runId) return;
    renderResult($("result-body"), full.result, shared ? null : runUrl(runId, "/result.csv"));
    // A stopped job's return value is whatever it had when it stopped: say so.
    const stopped = full.state === "stopped";
    $("result-heading").textContent = stopped ? "Result, returned when the run was stopped" : "Result";
    $("result-note").textContent = stopped
      ? "The job was stopped before it finished: this is what it returned then, not a final result."
      : "";
    $("result-note").hidden = !stopped;
    $("result").hidden = false;
  } catch (err) {
    showRunError(`Could not load the result: ${err.message}`);
  }
}

// --- tools: search, copy, timestamps, keyboard ------------------------------------------
let appliedQuery = "";
let searchTimer = 0;
function applySearch() {
  clearTimeout(searchTimer);
  appliedQuery = $("search").value;
  viewer.setQuery(appliedQuery);
}

$("search").addEventListener("input", () => {
  clearTimeout(searchTimer);
  searchTimer = setTimeout(applySearch, 150);
});
$("search").addEventListener("keydown", (e) => {
  if (e.key !== "Enter") return;
  e.preventDefault();
  if ($("search").value !== appliedQuery) applySearch();
  else viewer.step(e.shiftKey ? -1 : 1);
});
$("search-next").addEventListener("click", () => viewer.step(1));
$("search-prev").addEventListener("click", () => viewer.step(-1));
$("show-times").addEventListener("change", (e) => viewer.setShowTimes(e.target.checked));
$("jump-end").addEventListener("click", () => session && session.jumpToEnd());
$("stop-btn").addEventListener("click", requestStop);
$("rerun-btn").addEventListener("click", rerun);
$("share-btn").addEventListener("click", createShare);
$("share-copy").addEventListener("click", copyShareLink);
$("edit-run-btn").addEventListener("click", editRun);
$("stop-dialog").addEventListener("close", () => {
  if ($("stop-dialog").returnValue === "stop" && current) sendStop(current.id);
});
$("job-form").addEventListener("submit", (e) => {
  e.preventDefault();
  start();
});

$("copy-btn").addEventListener("click", async () => {
  const text = viewer.plainAll();
  try {
    await navigator.clipboard.writeText(text);
  } catch {
    const area = document.createElement("textarea"); // no clipboard API on plain http
    area.value = text;
    document.body.appendChild(area);
    area.select();
    document.execCommand("copy");
    area.remove();
  }
  announce("Output copied.");
});

function typing(target) {
  return target instanceof HTMLElement
    && (target.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(target.tagName));
}

document.addEventListener("keydown", (e) => {
  if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) {
    e.preventDefault();
    start();
  } else if (e.key === "Escape" && !$("stop-dialog").open) {
    if (e.target === $("search")) {
      if ($("search").value) {
        $("search").value = "";
        applySearch();
      } else {
        $("search").blur();
      }
    } else {
      e.preventDefault(); // or this very key press would close the confirmation it opens
      requestStop();
    }
  } else if ((e.key === "/" && !typing(e.target))
    || (e.key === "f" && (e.ctrlKey || e.metaKey) && $("output").contains(e.target))) {
    e.preventDefault();
    $("search").focus();
  }
});

$("runs-toggle").addEventListener("click", () => {
  const panel = $("runs-toggle").closest(".history-panel");
  const open = panel.classList.toggle("collapsed") === false;
  $("runs-toggle").setAttribute("aria-expanded", String(open));
  $("runs-toggle").textContent = open ? "Hide" : "Show";
});
window.addEventListener("hashchange", followFragment);
window.addEventListener("popstate", followFragment);

setInterval(() => {
  if (offline) return; // nothing ticks while the state is not known
  runList.tick();
  if (current && isActive(current)) showRunHeader();
  if (shared && current && isActive(current) && ++sharedTicks % 2 === 0) refreshShared();
  if (session) session.checkGap();
  if (viewer.needsRematch()) viewer.refreshMatches();
}, 1000);

window.flaskRealtime = {
  socket, stats, viewer, runList, schedules, form, openRun, get session() { return session; },
};

async function init() {
  $("demo-banner").hidden = data.demoMode !== "true";
  try {
    const { jobs } = await getJSON("/api/jobs");
    form.setJobs(jobs);
    runList.setJobs(jobs);
    $("start-btn").disabled = false;
  } catch (err) {
    form.setMessage(`Could not load the jobs: ${err.message}`);
  }
  await runList.load();
  schedules.load();
  notifications.load();
  const { run, line, share } = fromFragment();
  if (share) openShared(share);
  else if (run && !session) openRun(run, { line, push: false });
}

init();
