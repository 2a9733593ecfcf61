// The output pane: a windowed view over a LineWindow.
//
// Every display line has the same height (no wrapping: long lines scroll
// sideways), so the pane is a spacer as tall as all lines plus a few dozen row
// elements placed over the visible part. The DOM stays a few hundred nodes
// whatever the line count; drawing happens at most once per animation frame,
// however many batches arrive in between.
//
// Text only ever enters the DOM through text nodes and `textContent`; bidi controls
// and zero-width characters show as markers (invisible.js).
//
// Line numbers are the lines' seqs, shown in a gutter by CSS (`data-n` and
// `::before`), so selecting or copying text never takes them. A display line made of
// several raw lines (a partial line continued, a progress bar redrawn with "\r")
// shows the seq of its first raw line. Clicking a number picks that line (Shift
// extends the pick): `onLinePick` hears it, `reveal` scrolls to a picked range.
//
// Groups (`::group::Title` .. `::endgroup::`, lines.js) fold: the pane's rows are
// then the display lines outside folded groups, mapped to line indexes through the
// few hidden ranges (see Fold), so the cost is the number of groups, never the number
// of lines. A group is folded unless it is still open (no end line yet: live output,
// or the run ended inside it) or its block failed; what the reader toggles wins.
// Search and links open the groups around the line they go to.

import { plainText, segments, styleOf } from "./ansi.js";
import { appendVisible, hasInvisible, markBudget } from "./invisible.js";
import { MARKER } from "./lines.js";

const OVERSCAN = 20; // rows drawn above and below the visible ones
const EDGE_ROWS = 50; // this close to either end, ask for more lines

export class Viewer {
  constructor(root, {
    onFollowChange, onNearTop, onNearBottom, onDrawn, onMatches, onJumpToEnd, onStatus,
    onLinePick,
  } = {}) {
    this.root = root;
    this.spacer = root.querySelector(".output-spacer");
    this.rowsEl = root.querySelector(".output-rows");
    this.cb = {
      onFollowChange, onNearTop, onNearBottom, onDrawn, onMatches, onJumpToEnd, onStatus,
      onLinePick,
    };
    this.picked = null; // [fromSeq, toSeq]: lines highlighted (a link to a line or range)
    this.revealing = null; // a seq to scroll to as soon as its line is held
    // After a reveal the view stays put until the reader moves it: lines arriving
    // below a linked line must not make the bottom "reached" and follow again.
    this.pinned = false;
    this.gutterDigits = 0;
    this.toggled = new Map(); // group seq -> open (true) or folded (false), as the reader chose
    this.fold = null; // the Fold of the held lines, or null when they hold no group
    this.foldKey = "";
    this.foldVersion = 0;
    this.focusGroup = null; // a group seq whose toggle regains focus after drawing
    this.topAnchor = null; // [seq, offset]: the line at the top of the view, when drawn
    this.statusKey = "";
    this.lines = null;
    this.follow = true;
    this.canFollow = true; // false while the window does not reach the live end
    this.showTimes = false;
    this.query = null; // RegExp or null
    this.matches = []; // display indexes of lines that match
    this.current = -1; // position in matches
    this.matchesStale = false;
    this.searchVersion = 0;
    this.pending = false;
    this.drawnChanges = -1;
    this.lastTop = 0;
    this.rowH = this.measureRow();
    this.pointerDown = false;
    this.inputAt = -Infinity; // when the user last touched the pane (wheel, keys, pointer)
    const input = () => { this.inputAt = performance.now(); };
    root.addEventListener("scroll", () => this.onScroll(), { passive: true });
    root.addEventListener("wheel", (e) => {
      input();
      if (e.deltaY < 0 && this.scrollable()) this.setFollow(false);
    }, { passive: true });
    this.rowsEl.addEventListener("click", (e) => this.onRowClick(e));
    root.addEventListener("pointerdown", () => { input(); this.pointerDown = true; });
    window.addEventListener("pointerup", () => { this.pointerDown = false; });
    root.addEventListener("touchmove", input, { passive: true });
    root.addEventListener("keydown", (e) => { input(); this.onKey(e); });
    new ResizeObserver(() => { this.rowH = this.measureRow(); this.invalidate(true); })
      .observe(root);
  }

  measureRow() {
    const probe = document.createElement("div");
    probe.className = "line";
    probe.textContent = "Mg";
    this.rowsEl.appendChild(probe);
    const h = probe.getBoundingClientRect().height || 18;
    probe.remove();
    return h;
  }

  setLines(lines) {
    this.lines = lines;
    this.toggled.clear();
    this.fold = null;
    this.foldKey = "";
    this.topAnchor = null;
    this.picked = null;
    this.revealing = null;
    this.pinned = false;
    this.matches = [];
    this.current = -1;
    this.matchesStale = true;
    this.canFollow = true;
    this.setFollow(true);
    this.invalidate(true);
  }

  setFollow(on) {
    on = on && this.canFollow;
    if (on === this.follow) return;
    this.follow = on;
    if (this.cb.onFollowChange) this.cb.onFollowChange(on);
    if (on) this.invalidate();
  }

  jumpToEnd() {
    this.revealing = null;
    this.pinned = false;
    this.setFollow(true);
    this.invalidate(true);
  }

  // Something to scroll: a pane with no lines, or all of them in view, has no "up".
  scrollable() {
    return this.root.scrollHeight > this.root.clientHeight + 1;
  }

  // Highlight lines `from`..`to` (seqs); with `scroll`, bring `from` into view, now or
  // when it arrives.
  reveal(from, to, scroll = true) {
    this.picked = [from, to];
    if (scroll) {
      this.revealing = [from, to];
      this.pinned = true;
      this.follow = false; // quietly: the view is about to move to the line
      if (this.cb.onFollowChange) this.cb.onFollowChange(false);
    }
    this.invalidate(true);
  }

  unpick() {
    this.picked = null;
    this.invalidate(true);
  }

  // Display index of the line holding seq `seq` (the last line starting at or before it).
  indexOfSeq(seq) {
    const s = this.lines.seq;
    let lo = 0, hi = s.length - 1, at = 0;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      if (s[mid] <= seq) { at = mid; lo = mid + 1; } else hi = mid - 1;
    }
    return at;
  }

  // --- groups -------------------------------------------------------------------
  groupOpen(group) {
    const chosen = this.toggled.get(group.seq);
    return chosen !== undefined ? chosen : group.endSeq === null || group.failed;
  }

  // The Fold of the lines as they are now (rebuilt when lines or toggles changed).
  currentFold() {
    const lines = this.lines;
    if (!lines || !lines.groups || !lines.groups.length) {
      this.fold = null;
      return null;
    }
    const key = `${lines.changes}:${this.foldVersion}`;
    if (key !== this.foldKey) {
      this.foldKey = key;
      this.fold = new Fold(this, lines);
    }
    return this.fold;
  }

  rowCount() {
    const fold = this.currentFold();
    return fold ? fold.rows : (this.lines ? this.lines.length : 0);
  }

  rowToIndex(r) {
    return this.fold ? this.fold.index(r) : r;
  }

  // The row showing line `i`; a folded line gives its group's row.
  indexToRow(i) {
    return this.fold ? this.fold.row(i) : i;
  }

  toggleGroup(seq) {
    const group = this.lines && this.lines.groups.find((g) => g.seq === seq);
    if (!group) return;
    this.toggled.set(seq, !this.groupOpen(group));
    this.foldVersion++;
    this.focusGroup = seq;
    this.invalidate(true);
  }

  // Unfold every group around line `i`; true if one was folded.
  openAround(i) {
    const fold = this.currentFold();
    if (!fold) return false;
    let changed = false;
    for (const g of fold.spans) {
      if (g.start < i && i <= g.end && !this.groupOpen(g.group)) {
        this.toggled.set(g.group.seq, true);
        changed = true;
      }
    }
    if (changed) {
      this.foldVersion++;
      this.currentFold();
    }
    return changed;
  }

  onRowClick(e) {
    const toggle = e.target.closest(".group-toggle");
    if (toggle) {
      this.toggleGroup(Number(toggle.closest(".line").dataset.n));
      return;
    }
    const row = e.target.closest(".line");
    if (!row || !row.dataset.n || !this.cb.onLinePick) return;
    // The number is generated content: find it by where the click landed.
    const before = getComputedStyle(row, "::before");
    const gutter = parseFloat(before.width) + parseFloat(before.marginRight);
    if (e.clientX - this.root.getBoundingClientRect().left > gutter) return;
    this.cb.onLinePick(Number(row.dataset.n), e.shiftKey);
  }

  // The window gained (k > 0) or lost (k < 0) lines at its front: keep the same
  // lines in view unless following the end.
  shifted(k) {
    this.matchesStale = true;
    if (this.follow || !this.lines) return;
    if (this.currentFold() && this.topAnchor) {
      // Folded rows: keep the line that was at the top there (k counts lines, not rows).
      const [seq, offset] = this.topAnchor || [this.lines.seq[0], 0];
      const rows = this.rowCount();
      this.spacer.style.height = `${rows * this.rowH}px`;
      this.root.scrollTop = this.indexToRow(this.indexOfSeq(seq)) * this.rowH + offset;
      this.lastTop = this.root.scrollTop;
      this.invalidate();
      return;
    }
    this.spacer.style.height = `${this.lines.length * this.rowH}px`;
    this.root.scrollTop += k * this.rowH;
    this.lastTop = this.root.scrollTop;
    this.invalidate();
  }

  invalidate(force = false) {
    if (force) this.drawnChanges = -1;
    if (this.pending) return;
    this.pending = true;
    requestAnimationFrame(() => this.draw());
  }

  onScroll() {
    const r = this.root;
    const top = r.scrollTop;
    const atBottom = top + r.clientHeight >= r.scrollHeight - this.rowH * 2;
    // Following stops only when the user moved the view up (scrollbar, wheel, keys,
    // touch): the browser clamping the offset after the window or the pane shrank
    // must not count as the reader scrolling away.
    const byUser = this.pointerDown || performance.now() - this.inputAt < 500;
    if (byUser) this.pinned = false;
    if (this.follow ? byUser && top < this.lastTop - 1 && !atBottom : atBottom && !this.pinned) {
      this.setFollow(atBottom);
    }
    this.lastTop = top;
    // A reveal waiting for its draw: the view is about to move to the linked line, so
    // where it is now (an emptied pane's offset, before the lines came) asks for nothing.
    // A fetch from here could trim the linked lines away before they are shown.
    // (The reader scrolling meanwhile asks as usual.)
    if (this.lines && this.lines.length && (this.revealing === null || byUser)) {
      if (r.scrollTop < EDGE_ROWS * this.rowH && this.cb.onNearTop) this.cb.onNearTop();
      if (!this.canFollow && r.scrollTop + r.clientHeight > r.scrollHeight - EDGE_ROWS * this.rowH
          && this.cb.onNearBottom) this.cb.onNearBottom();
    }
    this.invalidate();
  }

  onKey(e) {
    if (["PageUp", "ArrowUp", "Home"].includes(e.key) && this.scrollable()) this.setFollow(false);
    if (e.key === "End" && !e.shiftKey) {
      e.preventDefault();
      if (this.cb.onJumpToEnd) this.cb.onJumpToEnd();
      else this.jumpToEnd();
    }
  }

  draw() {
    const started = performance.now();
    this.pending = false;
    const lines = this.lines;
    const n = lines ? lines.length : 0;
    const want = this.revealing;
    if (want !== null && n && (lines.seq[n - 1] >= want[0] || lines.seq[0] > want[0])) {
      this.openAround(this.indexOfSeq(want[0]));
    }
    const fold = this.currentFold();
    const rowsN = fold ? fold.rows : n;
    const total = rowsN * this.rowH;
    if (this.spacer.style.height !== `${total}px`) this.spacer.style.height = `${total}px`;
    const r = this.root;
    if (want !== null && n && (lines.seq[n - 1] >= want[0] || lines.seq[0] > want[0])) {
      // The line asked for is held (or older than anything still kept): show it a
      // third of the way down, with what led to it above; a range that fits the pane
      // comes whole into view.
      const span = (want[1] - want[0] + 2) * this.rowH;
      const above = Math.max(this.rowH, Math.min(r.clientHeight / 3, r.clientHeight - span));
      r.scrollTop = Math.max(0, this.indexToRow(this.indexOfSeq(want[0])) * this.rowH - above);
      this.revealing = null;
    } else if (this.follow) r.scrollTop = r.scrollHeight;
    this.lastTop = r.scrollTop;
    const digits = n ? String(lines.seq[n - 1]).length : 1;
    if (digits !== this.gutterDigits) {
      this.gutterDigits = digits;
      this.rowsEl.style.setProperty("--gutter", `${Math.max(3, digits)}ch`);
    }
    const status = `${n}:${this.follow}`;
    if (status !== this.statusKey) {
      this.statusKey = status;
      if (this.cb.onStatus) this.cb.onStatus(n);
    }
    const first = Math.min(rowsN, Math.max(0, Math.floor(r.scrollTop / this.rowH) - OVERSCAN));
    const last = Math.max(first,
      Math.min(rowsN, Math.ceil((r.scrollTop + r.clientHeight) / this.rowH) + OVERSCAN));
    if (fold) {
      const top = Math.min(rowsN - 1, Math.floor(r.scrollTop / this.rowH));
      this.topAnchor = top >= 0
        ? [lines.seq[fold.index(top)], r.scrollTop - top * this.rowH] : null;
    }
    const key = `${first}:${last}:${this.searchVersion}:${this.showTimes}:${this.picked}`
      + `:${this.foldKey}`;
    const changes = lines ? lines.changes : -1;
    if (changes === this.drawnChanges && key === this.drawnKey) return;
    this.drawnChanges = changes;
    this.drawnKey = key;
    this.rowsEl.style.transform = `translateY(${first * this.rowH}px)`;
    const rows = this.rowsEl.children;
    while (rows.length > last - first) this.rowsEl.lastChild.remove();
    while (rows.length < last - first) this.rowsEl.appendChild(document.createElement("div"));
    if (fold) {
      for (let k = first; k < last; k++) this.drawRow(rows[k - first], fold.index(k), fold);
    } else {
      for (let i = first; i < last; i++) this.drawRow(rows[i - first], i);
    }
    if (this.focusGroup !== null) {
      const seq = this.focusGroup;
      this.focusGroup = null;
      const row = [...rows].find((el) => el._seq === seq && el._head);
      if (row) row.querySelector(".group-toggle").focus({ preventScroll: true });
    }
    if (this.cb.onDrawn) this.cb.onDrawn(performance.now() - started);
  }

  drawRow(row, i, fold = null) {
    const lines = this.lines;
    const text = lines.text[i];
    const seq = lines.seq[i];
    const group = fold ? fold.heads.get(i) : undefined;
    if (group !== undefined) {
      this.drawHead(row, group, seq, i);
      return;
    }
    if (row._head) {
      row._head = null;
      row._seq = undefined; // drawn as a group's row: draw it again whatever it holds
    }
    const mark = this.query !== null && this.matchSet && this.matchSet.has(i)
      ? (this.matches[this.current] === i ? 2 : 1) : 0;
    const stream = lines.stream[i];
    const picked = this.picked !== null && stream !== MARKER
      && seq >= this.picked[0] && seq <= this.picked[1];
    if (row._seq === seq && row._text === text && row._mark === mark && row._picked === picked
        && row._times === this.showTimes && row._hv === this.searchVersion) return;
    row._seq = seq;
    row._picked = picked;
    row._text = text;
    row._mark = mark;
    row._times = this.showTimes;
    row._hv = this.searchVersion;
    row.className = (stream === "stdout" ? "line" : `line ${stream}`) + (picked ? " picked" : "");
    row.dataset.n = stream === MARKER ? "" : seq;
    const nodes = [];
    if (this.showTimes) {
      const ts = document.createElement("span");
      ts.className = "ts";
      ts.textContent = formatTime(lines.time[i]);
      nodes.push(ts);
    }
    const segs = stream === MARKER ? [{ text, state: null }] : segments(lines.sgr[i], text);
    // One regex test per line; only a line holding such characters does more work.
    const budget = stream !== MARKER && hasInvisible(text) ? markBudget() : null;
    const ranges = mark ? matchRanges(this.query, segs.map((s) => s.text).join("")) : [];
    let offset = 0;
    for (const seg of segs) {
      const style = seg.state === null ? null : styleOf(seg.state);
      for (const [piece, hit] of cut(seg.text, offset, ranges)) {
        let node = styled(piece, style, budget);
        if (hit) {
          const m = document.createElement("mark");
          m.className = mark === 2 ? "hl current" : "hl";
          m.appendChild(node);
          node = m;
        }
        nodes.push(node);
      }
      offset += seg.text.length;
    }
    row.replaceChildren(...nodes);
  }

  // A group's row: its toggle (a real button: Tab reaches it, Enter and Space work)
  // and how long the group took, or has taken so far.
  drawHead(row, group, seq, i) {
    const lines = this.lines;
    const open = this.groupOpen(group);
    const end = group.endSeq !== null ? group.t1 : lines.time[lines.length - 1];
    const took = group.t0 && end ? formatSpan(end - group.t0) : "";
    const mark = this.query !== null && this.matchSet && this.matchSet.has(i)
      ? (this.matches[this.current] === i ? 2 : 1) : 0;
    const picked = this.picked !== null && seq >= this.picked[0] && seq <= this.picked[1];
    const key = `${open}:${took}:${group.failed}:${group.endSeq === null}:${mark}:${picked}`
      + `:${this.showTimes}:${group.title}:${group.depth}`;
    if (row._seq === seq && row._head === key) return;
    row._seq = seq;
    row._head = key;
    row._text = null;
    row.className = "line group-head" + (group.failed ? " group-failed" : "")
      + (picked ? " picked" : "") + (mark === 2 ? " group-match current" : mark ? " group-match" : "");
    row.dataset.n = seq;
    row.style.setProperty("--depth", String(group.depth));
    const nodes = [];
    if (this.showTimes) {
      const ts = document.createElement("span");
      ts.className = "ts";
      ts.textContent = formatTime(group.t0);
      nodes.push(ts);
    }
    const button = document.createElement("button");
    button.type = "button";
    button.className = "group-toggle";
    button.setAttribute("aria-expanded", String(open));
    const title = plainText(group.title);
    button.appendChild(styled(title, null, hasInvisible(title) ? markBudget() : null));
    nodes.push(button);
    const time = document.createElement("span");
    time.className = "group-time";
    time.textContent = [group.failed ? "failed" : group.endSeq === null ? "not ended" : "", took]
      .filter(Boolean).join(" · ");
    nodes.push(time);
    row.replaceChildren(...nodes);
  }

  setShowTimes(on) {
    this.showTimes = on;
    this.invalidate(true);
  }

  // --- search -------------------------------------------------------------------
  setQuery(text) {
    this.query = text ? new RegExp(text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&"), "i") : null;
    this.current = -1;
    this.matchesStale = true;
    this.refreshMatches();
    if (this.matches.length) this.step(1);
  }

  refreshMatches() {
    const keepSeq = this.current >= 0 ? this.lines.seq[this.matches[this.current]] : null;
    this.matches = [];
    this.matchSet = new Set();
    this.matchesStale = false;
    this.matchedChanges = this.lines ? this.lines.changes : -1;
    this.searchVersion++;
    if (this.query !== null && this.lines) {
      const { text, stream } = this.lines;
      // A group's end line is never shown: not a match either.
      const fold = this.currentFold();
      const ends = fold ? new Set(fold.spans.filter((g) => g.group.endSeq !== null)
        .map((g) => g.end)) : null;
      for (let i = 0; i < text.length; i++) {
        if (stream[i] !== MARKER && this.query.test(plainText(text[i]))
            && !(ends && ends.has(i))) this.matches.push(i);
      }
      this.matchSet = new Set(this.matches);
      if (keepSeq !== null) {
        this.current = this.matches.findIndex((i) => this.lines.seq[i] >= keepSeq);
      }
    }
    this.reportMatches();
    this.invalidate(true);
  }

  // Lines came or went since the matches were counted.
  needsRematch() {
    return this.query !== null && this.lines !== null
      && (this.matchesStale || this.lines.changes !== this.matchedChanges);
  }

  // Move to the next (dir 1) or previous (dir -1) matching line and show it.
  step(dir) {
    if (this.needsRematch()) this.refreshMatches();
    const m = this.matches;
    if (!m.length) return;
    if (this.current < 0) {
      // From the view's top; from the first line while following the live end.
      const top = this.follow ? 0 : this.rowToIndex(Math.floor(this.root.scrollTop / this.rowH));
      const after = m.findIndex((i) => i >= top);
      this.current = dir > 0 ? (after < 0 ? 0 : after) : (after <= 0 ? m.length - 1 : after - 1);
    } else {
      this.current = (this.current + dir + m.length) % m.length;
    }
    this.setFollow(false);
    const line = m[this.current];
    this.openAround(line); // a match in a folded group: unfold it
    this.draw();
    this.root.scrollTop = this.indexToRow(line) * this.rowH - this.root.clientHeight / 2;
    this.searchVersion++;
    this.reportMatches();
    this.invalidate(true);
  }

  reportMatches() {
    if (this.cb.onMatches) {
      this.cb.onMatches(this.query === null ? null
        : { count: this.matches.length, current: this.current });
    }
  }

  // Plain text of every held line, for the Copy button.
  plainAll() {
    if (!this.lines) return "";
    return this.lines.text.map(plainText).join("\n");
  }
}

// Which of the held lines the pane shows when groups fold: a few hidden ranges of
// line indexes (the inside of each folded group, and every group's end line), merged
// and sorted, with the count hidden before each, so that row -> line and line -> row
// are binary searches over the ranges.
class Fold {
  constructor(viewer, lines) {
    const n = lines.length;
    this.heads = new Map(); // line index -> group, for the groups whose first line is held
    this.spans = []; // {group, start, end}: its first line and its last (end line) index
    const hidden = [];
    for (const group of lines.groups) {
      const start = viewer.indexOfSeq(group.seq);
      if (lines.seq[start] !== group.seq) continue;
      const end = group.endSeq === null ? n - 1 : viewer.indexOfSeq(group.endSeq);
      this.heads.set(start, group);
      this.spans.push({ group, start, end });
      if (!viewer.groupOpen(group)) {
        if (end > start) hidden.push([start + 1, end]);
      } else if (group.endSeq !== null) {
        hidden.push([end, end]);
      }
    }
    hidden.sort((a, b) => a[0] - b[0]);
    this.starts = [];
    this.ends = [];
    for (const [a, b] of hidden) {
      const k = this.ends.length - 1;
      if (k >= 0 && a <= this.ends[k] + 1) this.ends[k] = Math.max(this.ends[k], b);
      else {
        this.starts.push(a);
        this.ends.push(b);
      }
    }
    this.before = [0]; // before[k]: lines hidden by the ranges ahead of range k
    this.rowStarts = []; // the row at which range k would begin
    for (let k = 0; k < this.starts.length; k++) {
      this.rowStarts.push(this.starts[k] - this.before[k]);
      this.before.push(this.before[k] + this.ends[k] - this.starts[k] + 1);
    }
    this.rows = n - this.before[this.starts.length];
  }

  // The line index shown at row `r`.
  index(r) {
    let lo = 0, hi = this.rowStarts.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (this.rowStarts[mid] <= r) lo = mid + 1; else hi = mid;
    }
    return r + this.before[lo];
  }

  // The row showing line `i`, or for a hidden line the row just above its range.
  row(i) {
    let lo = 0, hi = this.starts.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (this.starts[mid] <= i) lo = mid + 1; else hi = mid;
    }
    if (lo > 0 && i <= this.ends[lo - 1]) return Math.max(0, this.starts[lo - 1] - 1 - this.before[lo - 1]);
    return i - this.before[lo];
  }
}

// "0.4 s", "12 s", "3 min 05 s", "1 h 02 min".
function formatSpan(ms) {
  const s = Math.max(0, ms / 1000);
  if (s < 10) return `${s.toFixed(1)} s`;
  if (s < 60) return `${Math.round(s)} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min ${String(Math.round(s % 60)).padStart(2, "0")} s`;
  return `${Math.floor(m / 60)} h ${String(m % 60).padStart(2, "0")} min`;
}

// A node showing `text` in `style`; with a `budget`, `text` may hold controls to mark.
function styled(text, style, budget) {
  if (style === null && budget === null) return document.createTextNode(text);
  const node = style === null ? document.createDocumentFragment() : document.createElement("span");
  if (style !== null) {
    if (style.cls) node.className = style.cls;
    if (style.color) node.style.color = style.color;
    if (style.background) node.style.backgroundColor = style.background;
  }
  if (budget === null) node.textContent = text;
  else appendVisible(node, text, budget);
  return node;
}

function matchRanges(query, plain) {
  const global = new RegExp(query.source, "gi");
  const out = [];
  for (const m of plain.matchAll(global)) {
    if (m[0].length) out.push([m.index, m.index + m[0].length]);
  }
  return out;
}

// Split `text` (which starts at `offset` in the line) into [piece, inMatch] parts.
function cut(text, offset, ranges) {
  if (!ranges.length) return [[text, false]];
  const out = [];
  let pos = 0;
  for (const [a, b] of ranges) {
    const s = Math.max(a - offset, pos), e = Math.min(b - offset, text.length);
    if (e <= s) continue;
    if (s > pos) out.push([text.slice(pos, s), false]);
    out.push([text.slice(s, e), true]);
    pos = e;
  }
  if (pos < text.length) out.push([text.slice(pos), false]);
  return out;
}

function formatTime(ms) {
  if (!ms) return "            ";
  const d = new Date(ms);
  const p = (v, w = 2) => String(v).padStart(w, "0");
  return `${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}.${p(d.getMilliseconds(), 3)}`;
}
