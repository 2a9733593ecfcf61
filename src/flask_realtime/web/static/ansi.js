// ANSI escape handling for one line of output.
//
// Only SGR (colours and styles) is interpreted; every other control or escape
// sequence (cursor movement, erase, OSC titles and OSC-8 hyperlinks, DCS, ...) is
// dropped and only the text around it is kept. The result is a list of segments
// that the viewer turns into text nodes: nothing here ever produces HTML.
//
// SGR state carries from line to line (per stream), as in a terminal, so a state
// object is stored with each line; states are immutable and shared.

export const DEFAULT_STATE = Object.freeze({
  fg: null, bg: null, bold: false, dim: false, italic: false,
  underline: false, inverse: false, hidden: false, strike: false,
});

// Any C0 control but tab, DEL, or a C1 control: the line needs the slow path.
const CONTROL = /[\x00-\x08\x0a-\x1f\x7f-\x9f]/;

export function hasControls(text) {
  return CONTROL.test(text);
}

// Walk `text`, calling onText(start, end) for printable runs and onSgr(params)
// for each SGR sequence. Unterminated sequences swallow the rest of the line.
function scan(text, onText, onSgr) {
  const n = text.length;
  let i = 0;
  let runStart = 0;
  while (i < n) {
    const c = text.charCodeAt(i);
    if (c === 0x09 || (c >= 0x20 && c < 0x7f) || c > 0x9f) {
      i++;
      continue;
    }
    if (i > runStart) onText(runStart, i);
    let j = i + 1;
    if (c === 0x1b && j < n) {
      const k = text.charCodeAt(j);
      if (k === 0x5b) j = csi(text, j + 1, onSgr); // ESC [
      else if (k === 0x5d || k === 0x50 || k === 0x58 || k === 0x5e || k === 0x5f) {
        j = stringEnd(text, j + 1); // OSC, DCS, SOS, PM, APC: up to BEL or ST
      } else {
        while (j < n && text.charCodeAt(j) >= 0x20 && text.charCodeAt(j) <= 0x2f) j++;
        j++; // intermediates then one final byte (ESC ( B, ESC 7, ...)
      }
    } else if (c === 0x9b) {
      j = csi(text, j, onSgr); // C1 CSI
    } else if (c === 0x9d || c === 0x90 || c === 0x98 || c === 0x9e || c === 0x9f) {
      j = stringEnd(text, j);
    }
    i = Math.min(j, n);
    runStart = i;
  }
  if (i > runStart) onText(runStart, i);
}

function csi(text, j, onSgr) {
  const n = text.length;
  const start = j;
  while (j < n) {
    const k = text.charCodeAt(j);
    if (k >= 0x40 && k <= 0x7e) {
      if (k === 0x6d) onSgr(text.slice(start, j)); // 'm'
      return j + 1;
    }
    if (k < 0x20 || k > 0x7e) return j; // broken sequence: stop here
    j++;
  }
  return n;
}

function stringEnd(text, j) {
  const n = text.length;
  while (j < n) {
    const k = text.charCodeAt(j);
    if (k === 0x07 || k === 0x9c) return j + 1;
    if (k === 0x1b && text.charCodeAt(j + 1) === 0x5c) return j + 2;
    j++;
  }
  return n;
}

// Parameters read from one SGR sequence; the rest of a longer one is ignored. Real
// programs send a handful (38;2;r;g;b is five); a cap keeps a hostile 16 KB sequence
// as cheap as any other line (docs/reliability.md, section 7).
export const MAX_SGR_PARAMS = 32;

// Apply one SGR parameter string ("1;38;5;208", "38:2::255:0:0", "") to a state.
// Reads the parameters once, left to right: the cost is linear in the string (and
// bounded by MAX_SGR_PARAMS), whatever it holds.
export function applySgr(state, params) {
  if (params === "" || params === "0") return DEFAULT_STATE; // the commonest: a reset
  const s = { ...state };
  const parts = sgrParams(params);
  for (let p = 0; p < parts.length; p++) {
    // At most six colon sub-parameters matter (38:2:cs:r:g:b).
    const sub = parts[p].split(":", 6);
    const code = sub[0] === "" ? 0 : Number(sub[0]);
    if (code === 38 || code === 48) {
      let colour = null;
      if (sub.length > 1) {
        colour = extendedColour(sub.slice(1).map(Number), true);
      } else {
        // 38;5;n or 38;2;r;g;b: the next two or four parameters belong to this one.
        const kind = Number(parts[p + 1]);
        const take = kind === 5 ? 2 : kind === 2 ? 4 : 0;
        colour = extendedColour(parts.slice(p + 1, p + 1 + take).map(Number), false);
        p += take;
      }
      if (colour !== null) s[code === 38 ? "fg" : "bg"] = colour;
      continue;
    }
    if (code === 0) Object.assign(s, DEFAULT_STATE);
    else if (code === 1) s.bold = true;
    else if (code === 2) s.dim = true;
    else if (code === 3) s.italic = true;
    else if (code === 4) s.underline = sub[1] !== "0";
    else if (code === 7) s.inverse = true;
    else if (code === 8) s.hidden = true;
    else if (code === 9) s.strike = true;
    else if (code === 21) s.underline = true;
    else if (code === 22) s.bold = s.dim = false;
    else if (code === 23) s.italic = false;
    else if (code === 24) s.underline = false;
    else if (code === 27) s.inverse = false;
    else if (code === 28) s.hidden = false;
    else if (code === 29) s.strike = false;
    else if (code >= 30 && code <= 37) s.fg = code - 30;
    else if (code === 39) s.fg = null;
    else if (code >= 40 && code <= 47) s.bg = code - 40;
    else if (code === 49) s.bg = null;
    else if (code >= 90 && code <= 97) s.fg = code - 90 + 8;
    else if (code >= 100 && code <= 107) s.bg = code - 100 + 8;
  }
  return s;
}

// The first MAX_SGR_PARAMS ";"-separated fields of `params`, found with indexOf so
// that nothing past the cap is scanned or copied.
function sgrParams(params) {
  const out = [];
  let from = 0;
  while (out.length < MAX_SGR_PARAMS) {
    const end = params.indexOf(";", from);
    if (end < 0) {
      out.push(params.slice(from));
      break;
    }
    out.push(params.slice(from, end));
    from = end + 1;
  }
  return out;
}

// [5, n] -> palette index; [2, r, g, b] (or colon form [2, cs, r, g, b]) -> "#rrggbb".
function extendedColour(v, colonForm) {
  if (v[0] === 5 && v[1] >= 0 && v[1] <= 255) return v[1] | 0;
  if (v[0] === 2) {
    const rgb = colonForm && v.length >= 5 ? v.slice(2, 5) : v.slice(1, 4);
    if (rgb.length === 3 && rgb.every((x) => x >= 0 && x <= 255)) {
      return "#" + rgb.map((x) => (x | 0).toString(16).padStart(2, "0")).join("");
    }
  }
  return null;
}

function sameState(a, b) {
  for (const key in DEFAULT_STATE) if (a[key] !== b[key]) return false;
  return true;
}

function intern(state) {
  return sameState(state, DEFAULT_STATE) ? DEFAULT_STATE : Object.freeze(state);
}

// The state after `text`, starting from `state`.
export function advance(state, text) {
  if (!hasControls(text)) return state;
  let s = state;
  scan(text, () => {}, (params) => { s = applySgr(s, params); });
  return s === state ? state : intern(s);
}

// The printable text of a line, every escape sequence removed.
export function plainText(text) {
  if (!hasControls(text)) return text;
  let out = "";
  scan(text, (a, b) => { out += text.slice(a, b); }, () => {});
  return out;
}

// Segments [{text, state}] of a line that starts in `state`.
export function segments(state, text) {
  if (!hasControls(text)) return [{ text, state }];
  const out = [];
  let s = state;
  scan(text, (a, b) => {
    const piece = text.slice(a, b);
    const last = out[out.length - 1];
    if (last !== undefined && last.state === s) last.text += piece;
    else out.push({ text: piece, state: s });
  }, (params) => {
    // Keep the same state object when nothing changed, so the text around a sequence
    // that changes nothing (ESC[1m on bold text) stays one segment, one element.
    const next = applySgr(s, params);
    if (!sameState(next, s)) s = intern(next);
  });
  return out;
}

// 256-colour palette entries 16..255 as "#rrggbb" (0..15 are themed CSS classes).
export function paletteColour(index) {
  if (index < 232) {
    const i = index - 16;
    const level = (v) => (v === 0 ? 0 : 55 + v * 40);
    const r = level(Math.floor(i / 36)), g = level(Math.floor(i / 6) % 6), b = level(i % 6);
    return "#" + [r, g, b].map((x) => x.toString(16).padStart(2, "0")).join("");
  }
  const grey = (8 + (index - 232) * 10).toString(16).padStart(2, "0");
  return "#" + grey + grey + grey;
}

// CSS classes and CSSOM colours for a state: {cls, color, background}.
export function styleOf(state) {
  if (state === DEFAULT_STATE) return null;
  let fg = state.fg, bg = state.bg;
  const cls = [];
  if (state.inverse) {
    [fg, bg] = [bg, fg];
    if (fg === null) cls.push("a-ifg");
    if (bg === null) cls.push("a-ibg");
  }
  let color = null, background = null;
  if (typeof fg === "number" && fg < 16) cls.push("a-fg" + fg);
  else if (typeof fg === "number") color = paletteColour(fg);
  else if (typeof fg === "string") color = fg;
  if (typeof bg === "number" && bg < 16) cls.push("a-bg" + bg);
  else if (typeof bg === "number") background = paletteColour(bg);
  else if (typeof bg === "string") background = bg;
  if (state.bold) cls.push("a-b");
  if (state.dim) cls.push("a-d");
  if (state.italic) cls.push("a-i");
  if (state.underline) cls.push("a-u");
  if (state.strike) cls.push("a-s");
  if (state.hidden) cls.push("a-h");
  return { cls: cls.join(" "), color, background };
}
