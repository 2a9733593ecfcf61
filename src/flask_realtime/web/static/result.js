// A finished run's result: a list of objects becomes a table, anything else JSON text.
// Bidi controls and zero-width characters in it show as markers (invisible.js).

import { setVisibleText } from "./invisible.js";

const MAX_ROWS = 1000;

function isRecordList(value) {
  return Array.isArray(value) && value.length > 0
    && value.every((v) => v !== null && typeof v === "object" && !Array.isArray(v));
}

function cellText(value) {
  if (value === null || value === undefined) return "";
  return typeof value === "object" ? JSON.stringify(value) : String(value);
}

export function renderResult(container, result) {
  if (!isRecordList(result)) {
    const pre = document.createElement("pre");
    pre.className = "result-json";
    setVisibleText(pre, JSON.stringify(result, null, 2));
    container.replaceChildren(pre);
    return;
  }
  const columns = [];
  for (const row of result) for (const key of Object.keys(row)) {
    if (!columns.includes(key)) columns.push(key);
  }
  const table = document.createElement("table");
  table.className = "result-table";
  const head = table.createTHead().insertRow();
  for (const key of columns) {
    const th = document.createElement("th");
    th.scope = "col";
    setVisibleText(th, key);
    head.appendChild(th);
  }
  const body = table.createTBody();
  for (const row of result.slice(0, MAX_ROWS)) {
    const tr = body.insertRow();
    for (const key of columns) setVisibleText(tr.insertCell(), cellText(row[key]));
  }
  const nodes = [table];
  if (result.length > MAX_ROWS) {
    const note = document.createElement("p");
    note.textContent = `Showing the first ${MAX_ROWS} of ${result.length} rows; ` +
      "download the run's result from the API for all of them.";
    nodes.push(note);
  }
  const wrap = document.createElement("div");
  wrap.className = "table-wrap";
  wrap.replaceChildren(...nodes);
  container.replaceChildren(wrap);
}
