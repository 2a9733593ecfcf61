// One shown run: its place in the live stream and the window of lines held.
//
// Two positions are kept apart:
// * `lastSeq`: the last seq taken from the socket. Every `output` batch must
//   continue it (a batch that repeats seen lines is trimmed, one that leaves a gap
//   is ignored and the run re-watched from `lastSeq`); after a reconnect the run
//   is re-watched from it. So each line is shown once, in order.
// * `heldEnd`: the last seq in the window. While the user reads older lines the
//   window may stop at an earlier seq ("detached"): live lines then only move
//   `lastSeq`, and scrolling down fetches the gap over HTTP until both meet.

import { getJSON, runUrl, sharedUrl } from "./api.js";
import { LineWindow, droppedMessage, feed } from "./lines.js";

const PAGE = 5000; // lines per HTTP page when scrolling back
const GAP_PATIENCE_MS = 1500; // a gap this old means a lost batch: re-watch

export class RunSession {
  // `shareToken`: watch and page through a read-only share link, not as the run's owner.
  constructor(runId, { socket, viewer, cap, onRecord, onError, stats, shareToken = null }) {
    this.runId = runId;
    this.shareToken = shareToken;
    this.socket = socket;
    this.viewer = viewer;
    this.onRecord = onRecord;
    this.onError = onError;
    this.stats = stats;
    this.lines = new LineWindow(cap);
    this.lastSeq = 0;
    this.heldEnd = 0;
    this.watching = false;
    this.detached = false;
    this.gapSince = 0;
    this.loadingOlder = false;
    this.loadingNewer = false;
    this.closed = false;
  }

  // Already watched from seq 0 by the server (the run this socket started).
  adoptStarted() {
    this.watching = true;
  }

  watch(after = this.lastSeq) {
    this.watching = true;
    this.gapSince = 0;
    if (this.lines.length === 0) this.heldEnd = after;
    this.lastSeq = after;
    if (!this.socket.connected) return; // the connect handler watches again
    const [event, ask] = this.shareToken
      ? ["watch_shared", { token: this.shareToken, after }]
      : ["watch", { run_id: this.runId, after }];
    this.socket.emit(event, ask, (ack) => {
      if (this.closed) return;
      if (!ack || ack.error) this.onError((ack && ack.error) || "The server did not answer.");
      else this.onRecord(ack.run);
    });
  }

  close() {
    this.closed = true;
    if (this.watching && this.socket.connected) {
      this.socket.emit("unwatch", { run_id: this.runId }, () => {});
    }
    this.watching = false;
  }

  onOutput(ev) {
    if (!this.watching) return;
    const first = ev.first_seq;
    const batch = ev.lines;
    const last = first + batch.length - 1;
    if (last <= this.lastSeq) return; // seen already (a repeat after a re-watch)
    if (first - (ev.skipped || 0) > this.lastSeq + 1) {
      if (!this.gapSince) this.gapSince = performance.now();
      return; // a batch went missing: wait for the re-watch to resend it
    }
    this.gapSince = 0;
    this.stats.lines += last - Math.max(first - 1, this.lastSeq);
    this.lastSeq = last;
    if (this.viewer === null) return; // ?render=0: count only
    if (this.detached) return;
    if (!this.viewer.follow && this.lines.length >= this.lines.cap) {
      this.setDetached(true); // the reader is looking back: keep their lines, stop adding
      return;
    }
    const dropped = first - this.heldEnd - 1;
    if (dropped > 0) this.lines.appendMarker(droppedMessage(dropped), first);
    const from = Math.max(0, this.heldEnd + 1 - first);
    // A reader looking back keeps every line in view: a batch that would overfill the
    // window is taken only up to the cap (a raw line makes at most one display line),
    // and the window detaches there. Trimming the front would drop what they read.
    let take = batch.length;
    if (!this.viewer.follow) take = Math.min(take, from + Math.max(0, this.lines.cap - this.lines.length));
    feed(this.lines, first, take < batch.length ? batch.slice(0, take) : batch, ev.times, from);
    this.heldEnd = first + take - 1;
    if (take < batch.length) {
      this.setDetached(true);
      this.viewer.invalidate();
      return;
    }
    const trimmed = this.lines.trimFront();
    if (trimmed) this.viewer.shifted(-trimmed);
    this.viewer.invalidate();
  }

  // Called every second: re-watch if a gap has not closed by itself.
  checkGap() {
    if (this.gapSince && performance.now() - this.gapSince > GAP_PATIENCE_MS
        && this.socket.connected) {
      this.watch(this.lastSeq);
    }
  }

  setDetached(on) {
    this.detached = on;
    this.viewer.canFollow = !on;
    if (on) this.viewer.setFollow(false);
  }

  // Jump to the live end: a detached window is dropped and restarts at the live position.
  jumpToEnd() {
    if (this.detached) {
      this.lines.clear();
      this.heldEnd = this.lastSeq;
      this.setDetached(false);
      this.viewer.setLines(this.lines);
      this.fetchOlder();
    } else {
      this.viewer.jumpToEnd();
    }
  }

  async page(after, limit) {
    const query = `/lines?after=${after}&limit=${limit}`;
    if (this.shareToken) return getJSON(sharedUrl(this.shareToken, query));
    return getJSON(runUrl(this.runId, query));
  }

  // Scroll-back: fetch the lines just before the window and put them in front.
  async fetchOlder() {
    const lo = this.lines.firstSeq() ?? this.heldEnd + 1;
    if (this.loadingOlder || lo <= 1 || (this.lines.length && this.lines.startsAtBeginning())) {
      return;
    }
    this.loadingOlder = true;
    try {
      const older = new LineWindow(Infinity);
      // At most half the cap, so the lines in view stay in the window.
      let pos = Math.max(0, lo - 1 - Math.min(PAGE, this.lines.cap >> 1));
      while (pos < lo - 1) {
        const page = await this.page(pos, lo - 1 - pos);
        const dropped = Math.min(page.first_seq, lo) - pos - 1;
        if (dropped > 0) older.appendMarker(droppedMessage(dropped), Math.min(page.first_seq, lo));
        const count = Math.min(page.lines.length, lo - page.first_seq);
        if (count <= 0) break;
        feed(older, page.first_seq, page.lines.slice(0, count), page.times);
        pos = page.first_seq + count - 1;
      }
      if (this.closed) return;
      const added = this.lines.prepend(older);
      if (this.lines.length > this.lines.cap) {
        this.heldEnd = this.lines.seq[this.lines.cap] - 1;
        this.lines.keepFirst(this.lines.cap);
        this.setDetached(true);
      }
      this.viewer.shifted(added);
      this.viewer.invalidate();
    } catch (err) {
      this.onError(`Could not load earlier lines: ${err.message}`);
    } finally {
      this.loadingOlder = false;
    }
  }

  // Scrolling down a detached window: fetch what follows it, re-attach when caught up.
  async fetchNewer() {
    if (this.loadingNewer || !this.detached) return;
    this.loadingNewer = true;
    try {
      const page = await this.page(this.heldEnd, Math.min(PAGE, this.lines.cap >> 1));
      if (this.closed) return;
      const dropped = page.first_seq - this.heldEnd - 1;
      if (dropped > 0) this.lines.appendMarker(droppedMessage(dropped), page.first_seq);
      feed(this.lines, page.first_seq, page.lines, page.times);
      if (page.lines.length) this.heldEnd = page.first_seq + page.lines.length - 1;
      if (this.heldEnd >= this.lastSeq || !page.lines.length) this.setDetached(false);
      const trimmed = this.lines.trimFront();
      if (trimmed) this.viewer.shifted(-trimmed);
      this.viewer.invalidate();
    } catch (err) {
      this.onError(`Could not load later lines: ${err.message}`);
    } finally {
      this.loadingNewer = false;
    }
  }
}
