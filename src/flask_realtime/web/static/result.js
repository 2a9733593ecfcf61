// A finished run's result: a list of objects becomes a table, anything else JSON text.
// Bidi controls and zero-width characters in it show as markers (invisible.js).
//
// A table sorts by a column when its header is pressed (again: the other way), with
// aria-sort on that header: numbers (and text that is a number) as numbers, before
// text, empty cells last either way; rows that tie keep their order. "Download CSV"
// is the server's CSV of the result (web/files.py, formulas defused there).

import { setVisibleText } from "./invisible.js";

const MAX_ROWS = 1000;
const NUMBER = /^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/;
const TEXT_ORDER = new Intl.Collator(undefined, { numeric: true, sensitivity: "base" });

function isRecordList(value) {
  return Array.isArray(value) && value.length > 0
    && value.every((v) => v !== null && typeof v === "object" && !Array.isArray(v));
}

function cellText(value) {
  if (value === null || value === undefined) return "";
  return typeof value === "object" ? JSON.stringify(value) : String(value);
}

// [rank, number, text]: rank 0 numbers, 1 text, 2 empty.
function sortKey(value) {
  if (value === null || value === undefined || value === "") return [2, 0, ""];
  if (typeof value === "number") return [0, value, ""];
  if (typeof value === "string" && NUMBER.test(value.trim())) return [0, Number(value), ""];
  return [1, 0, cellText(value)];
}

// Row indices of `rows` ordered by `column`, `direction` 1 (ascending) or -1; stable.
export function sortedOrder(rows, column, direction) {
  const keys = rows.map((row) => sortKey(row[column]));
  return rows.map((_, i) => i).sort((a, b) => {
    const [ra, na, ta] = keys[a];
    const [rb, nb, tb] = keys[b];
    if (ra !== rb) return ra === 2 || rb === 2 ? ra - rb : direction * (ra - rb);
    let order = 0;
    if (ra === 0) order = na < nb ? -1 : na > nb ? 1 : 0;
    else if (ra === 1) order = TEXT_ORDER.compare(ta, tb);
    return order ? direction * order : a - b;
  });
}

export function renderResult(container, result, csvUrl = null) {
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
  const body = table.createTBody();
  const sort = { column: null, direction: 1 };
  const headers = columns.map((key) => {
    const th = document.createElement("th");
    th.scope = "col";
    const button = document.createElement("button");
    button.type = "button";
    button.className = "sort-button";
    const label = document.createElement("span");
    setVisibleText(label, key);
    const mark = document.createElement("span");
    mark.className = "sort-mark";
    mark.setAttribute("aria-hidden", "true");
    button.append(label, mark);
    button.addEventListener("click", () => {
      sort.direction = sort.column === key ? -sort.direction : 1;
      sort.column = key;
      fill();
    });
    th.appendChild(button);
    head.appendChild(th);
    return th;
  });

  function fill() {
    const order = sort.column === null ? result.map((_, i) => i)
      : sortedOrder(result, sort.column, sort.direction);
    const rows = order.slice(0, MAX_ROWS).map((i) => {
      const tr = document.createElement("tr");
      for (const key of columns) {
        const td = document.createElement("td");
        setVisibleText(td, cellText(result[i][key]));
        tr.appendChild(td);
      }
      return tr;
    });
    body.replaceChildren(...rows);
    headers.forEach((th, i) => {
      const mark = th.querySelector(".sort-mark");
      if (columns[i] === sort.column) {
        th.setAttribute("aria-sort", sort.direction === 1 ? "ascending" : "descending");
        mark.textContent = sort.direction === 1 ? " ▲" : " ▼";
      } else {
        th.removeAttribute("aria-sort");
        mark.textContent = "";
      }
    });
  }
  fill();

  const wrap = document.createElement("div");
  wrap.className = "table-wrap";
  wrap.appendChild(table);
  if (result.length > MAX_ROWS) {
    const note = document.createElement("p");
    note.textContent = `Showing the first ${MAX_ROWS} of ${result.length} rows; ` +
      (csvUrl ? "download the CSV for all of them." : "the API has all of them.");
    wrap.appendChild(note);
  }
  if (!csvUrl) {
    container.replaceChildren(wrap);
    return;
  }
  const tools = document.createElement("div");
  tools.className = "result-tools";
  const link = document.createElement("a");
  link.className = "button";
  link.id = "result-csv";
  link.href = csvUrl;
  link.setAttribute("download", "");
  link.textContent = "Download CSV";
  tools.appendChild(link);
  container.replaceChildren(tools, wrap);
}
