// The admins' page of the audit trail (templates/audit.html, web/admin.py): pages of
// GET /api/admin/audit, filtered by who and action, and the CSV and JSON downloads of
// what the filters select. Every value goes in with textContent, never as HTML.
import { getJSON } from "./api.js";

const $ = (id) => document.getElementById(id);
let next = null;

function say(text) {
  $("audit-message").textContent = text || "";
  $("audit-message").hidden = !text;
}

function filters() {
  const q = new URLSearchParams();
  const actor = $("filter-actor").value.trim();
  const action = $("filter-action").value;
  if (actor) q.set("actor", actor);
  if (action) q.set("action", action);
  return q;
}

function cell(value) {
  const td = document.createElement("td");
  td.textContent = value == null ? "" : typeof value === "string" ? value : JSON.stringify(value);
  return td;
}

function row(entry) {
  const tr = document.createElement("tr");
  tr.append(cell(entry.time), cell(entry.actor), cell(entry.action), cell(entry.address),
    cell(entry.run_id), cell(entry.job), cell(entry.owner), cell(entry.detail));
  return tr;
}

function downloads() {
  for (const [id, format] of [["audit-csv", "csv"], ["audit-json", "json"]]) {
    const q = filters();
    q.set("format", format);
    q.set("download", "1");
    $(id).href = `/api/admin/audit?${q}`;
  }
}

async function load(more = false) {
  const q = filters();
  if (more && next) q.set("before", next);
  try {
    const page = await getJSON(`/api/admin/audit?${q}`);
    const body = $("audit-entries").tBodies[0];
    if (more) body.append(...page.entries.map(row));
    else body.replaceChildren(...page.entries.map(row));
    next = page.next;
    $("audit-older").hidden = !next;
    say(page.entries.length || more ? "" : "No entries.");
  } catch (err) {
    say(err.message);
  }
  downloads();
}

$("audit-filter").addEventListener("submit", (event) => {
  event.preventDefault();
  load();
});
$("audit-older").addEventListener("click", () => load(true));
load();
