// The lines of one run that the page holds: a bounded window of display lines.
//
// Raw lines come numbered by seq from the server. A raw line whose `end` is ""
// (partial) is continued by the next raw line of the same stream; one whose `end`
// is "\r" is replaced by it. So several raw lines can make one display line, which
// keeps the seq of its first raw line. Columns are parallel arrays: a million
// small objects would cost far more memory and garbage collection.

import { DEFAULT_STATE, advance, hasControls } from "./ansi.js";

export const MARKER = "marker";
// Group marker lines (core/groups.py, the GitHub Actions convention): a line that is
// exactly `::group::Title` opens a group, `::endgroup::` closes the innermost open one
// (`::endgroup::failed`: its block raised). Groups nest to any depth.
const GROUP_START = "::group::";
const GROUP_END = "::endgroup::";
// A partial line continued past this many characters goes on in a new row (a job
// writing dots without a newline for hours must not grow one row without bound).
const MAX_ROW_CHARS = 65_536;

export class LineWindow {
  constructor(cap = 200_000) {
    this.cap = cap;
    this.clear();
  }

  clear() {
    this.text = [];
    this.stream = [];
    this.seq = [];
    this.time = [];
    this.sgr = []; // SGR state at the start of each line
    this.open = new Map(); // stream -> {index, mode}: a line the next raw line continues
    this.sgrEnd = new Map(); // stream -> SGR state after its last line
    this.changes = 0; // bumped on every change, so views know when to redraw
    // {seq, endSeq, title, depth, t0, t1, failed}, in order of their first line; seqs,
    // not indexes, so that lines dropped or added at the front do not move them.
    this.groups = [];
    this.groupStack = []; // the groups still open, innermost last
  }

  // Note a group marker at display line `i` (the caller saw it begin with ":").
  noteMarker(i) {
    const text = this.text[i];
    if (text.startsWith(GROUP_START)) {
      const group = {
        seq: this.seq[i], endSeq: null, title: text.slice(GROUP_START.length).trim() || "Group",
        depth: this.groupStack.length, t0: this.time[i], t1: 0, failed: false,
      };
      this.groups.push(group);
      this.groupStack.push(group);
    } else if (text.startsWith(GROUP_END) && this.groupStack.length) {
      const group = this.groupStack.pop();
      group.endSeq = this.seq[i];
      group.t1 = this.time[i];
      group.failed = text.slice(GROUP_END.length).trim() === "failed";
    }
  }

  // Groups again from the lines held (after lines went or came at the front): a group
  // whose first line is not held any more is not one.
  rescanGroups() {
    this.groups = [];
    this.groupStack = [];
    const { text, stream } = this;
    for (let i = 0; i < text.length; i++) {
      if (text[i].charCodeAt(0) === 58 && stream[i] !== MARKER) this.noteMarker(i);
    }
  }

  get length() {
    return this.text.length;
  }

  // Add raw line `seq`; `end` is undefined (newline), "" (partial) or "\r".
  appendRaw(stream, text, end, seq, time) {
    let open = this.open.get(stream);
    if (open !== undefined && open.mode === ""
        && this.text[open.index].length + text.length > MAX_ROW_CHARS) {
      this.open.delete(stream);
      open = undefined;
    }
    let i;
    if (open !== undefined) {
      i = open.index;
      if (open.mode === "") this.text[i] += text;
      else {
        this.text[i] = text;
        this.time[i] = time;
      }
      const line = this.text[i];
      this.sgrEnd.set(stream, hasControls(line) ? advance(this.sgr[i], line) : this.sgr[i]);
    } else {
      const start = this.sgrEnd.get(stream) || DEFAULT_STATE;
      i = this.text.length;
      this.text.push(text);
      this.stream.push(stream);
      this.seq.push(seq);
      this.time.push(time);
      this.sgr.push(start);
      if (hasControls(text)) this.sgrEnd.set(stream, advance(start, text));
      if (text.charCodeAt(0) === 58) this.noteMarker(i); // ":": perhaps a group marker
    }
    if (end === undefined || end === "\n") this.open.delete(stream);
    else if (open !== undefined) open.mode = end;
    else this.open.set(stream, { index: i, mode: end });
    this.changes++;
  }

  // A visible note (e.g. "... lines dropped ...") placed before raw line `seq`.
  appendMarker(text, seq) {
    this.text.push(text);
    this.stream.push(MARKER);
    this.seq.push(seq);
    this.time.push(0);
    this.sgr.push(DEFAULT_STATE);
    this.open.clear();
    this.changes++;
  }

  // Seq of the first raw line held, or null if the window is empty.
  firstSeq() {
    return this.text.length ? this.seq[0] : null;
  }

  // True when nothing older can exist: the window starts at seq 1 or at a drop marker.
  startsAtBeginning() {
    return this.text.length === 0 || this.seq[0] <= 1 || this.stream[0] === MARKER;
  }

  // Drop the oldest lines once the window is a tenth over its cap; returns how many.
  trimFront() {
    if (this.text.length <= this.cap + Math.max(1, this.cap >> 3)) return 0;
    return this.dropFront(this.text.length - this.cap);
  }

  dropFront(count) {
    for (const column of [this.text, this.stream, this.seq, this.time, this.sgr]) {
      column.splice(0, count);
    }
    for (const [stream, open] of this.open) {
      open.index -= count;
      if (open.index < 0) this.open.delete(stream);
    }
    if (this.groups.length) this.rescanGroups();
    this.changes++;
    return count;
  }

  // Keep only the first `count` lines (scroll-back pushed the newest ones out).
  keepFirst(count) {
    if (count >= this.text.length) return;
    for (const column of [this.text, this.stream, this.seq, this.time, this.sgr]) {
      column.length = count;
    }
    this.open.clear(); // how the last kept raw line ended is not known any more
    if (this.groups.length) this.rescanGroups();
    this.changes++;
  }

  // Put the lines of `older` (built from the raw lines just before ours) in front.
  // Returns the number of display lines added at the front.
  prepend(older) {
    for (const [stream, open] of older.open) {
      const j = this.stream.indexOf(stream);
      if (j < 0 || j > 5000) continue;
      if (open.mode === "") {
        this.text[j] = older.text[open.index] + this.text[j];
        this.seq[j] = older.seq[open.index];
        this.sgr[j] = older.sgr[open.index];
      }
      older.text[open.index] = null; // continued or replaced by our line j
    }
    const keep = [];
    for (let i = 0; i < older.text.length; i++) if (older.text[i] !== null) keep.push(i);
    const pick = (column) => keep.map((i) => column[i]);
    this.text = pick(older.text).concat(this.text);
    this.stream = pick(older.stream).concat(this.stream);
    this.seq = pick(older.seq).concat(this.seq);
    this.time = pick(older.time).concat(this.time);
    this.sgr = pick(older.sgr).concat(this.sgr);
    for (const open of this.open.values()) open.index += keep.length;
    if (this.groups.length || older.groups.length) this.rescanGroups();
    this.changes++;
    return keep.length;
  }
}

// Feed one `output` payload's lines (from the socket or GET .../lines) into `window`,
// starting at `firstSeq`; `times` are [index, epoch_ms] change points.
export function feed(window, firstSeq, lines, times, from = 0) {
  let t = 0;
  let now = 0;
  const n = lines.length;
  for (let i = 0; i < n; i++) {
    while (times && t < times.length && times[t][0] <= i) now = times[t++][1];
    if (i < from) continue;
    const line = lines[i];
    window.appendRaw(line.stream, line.text, line.end, firstSeq + i, now);
  }
}

export function droppedMessage(count) {
  return `\u2026 ${count.toLocaleString("en-US")} earlier lines dropped (retention limit) \u2026`;
}
