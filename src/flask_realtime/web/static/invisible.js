// Bidi controls and zero-width characters, shown as visible markers.
//
// A right-to-left override (U+202E) in output would reorder the text after it on
// screen ("abc\u202Edcba" shows as "abcabcd"), and zero-width characters hide what a
// line really holds; either lets output spoof the text around it. So they never
// reach the DOM as they are: each shows as its code point, "<U+202E>", the way
// editors show them, in a span of class `cc` (docs/ui.md, "Output is text"). The
// markers are text made here, never markup from the output. The held lines, the
// Copy button and the download keep the real characters.

// Embeddings, overrides and isolates (U+202A-202E, U+2066-2069), the marks (U+200E,
// U+200F, U+061C), zero-width space, joiners and no-break space (U+200B-200D,
// U+2060, U+FEFF), the invisible operators (U+2061-2064), the deprecated format
// controls (U+206A-206F) and the Mongolian vowel separator (U+180E).
const CLASS = "\\u061c\\u180e\\u200b-\\u200f\\u202a-\\u202e\\u2060-\\u2064\\u2066-\\u206f\\ufeff";
const ANY = new RegExp(`[${CLASS}]`);
// A run of them: one character class under one quantifier, so matching is linear.
const RUNS = new RegExp(`[${CLASS}]+`, "g");

// Marker spans per element: past this, markers go in as plain text, so a line made
// of thousands of controls costs about what a line of its length costs.
export const MAX_MARKS = 64;
const MAX_TITLE_NAMES = 8;

const NAMES = {
  0x061c: "ARABIC LETTER MARK",
  0x180e: "MONGOLIAN VOWEL SEPARATOR",
  0x200b: "ZERO WIDTH SPACE",
  0x200c: "ZERO WIDTH NON-JOINER",
  0x200d: "ZERO WIDTH JOINER",
  0x200e: "LEFT-TO-RIGHT MARK",
  0x200f: "RIGHT-TO-LEFT MARK",
  0x202a: "LEFT-TO-RIGHT EMBEDDING",
  0x202b: "RIGHT-TO-LEFT EMBEDDING",
  0x202c: "POP DIRECTIONAL FORMATTING",
  0x202d: "LEFT-TO-RIGHT OVERRIDE",
  0x202e: "RIGHT-TO-LEFT OVERRIDE",
  0x2060: "WORD JOINER",
  0x2066: "LEFT-TO-RIGHT ISOLATE",
  0x2067: "RIGHT-TO-LEFT ISOLATE",
  0x2068: "FIRST STRONG ISOLATE",
  0x2069: "POP DIRECTIONAL ISOLATE",
  0xfeff: "ZERO WIDTH NO-BREAK SPACE",
};

// True if `text` holds a character shown as a marker: the one test a line without
// any pays.
export function hasInvisible(text) {
  return ANY.test(text);
}

function code(c) {
  return "U+" + c.charCodeAt(0).toString(16).toUpperCase().padStart(4, "0");
}

// "<U+202E>" for each character of `run`.
function markers(run) {
  let out = "";
  for (const c of run) out += `<${code(c)}>`;
  return out;
}

function title(run) {
  const names = [];
  for (const c of run.slice(0, MAX_TITLE_NAMES)) {
    names.push(`${NAMES[c.charCodeAt(0)] || "INVISIBLE FORMAT CHARACTER"} (${code(c)})`);
  }
  if (run.length > MAX_TITLE_NAMES) names.push("\u2026");
  return `${names.join(", ")}, not applied`;
}

// `text` with every such character replaced by its marker: for attributes (a title).
export function visibleText(text) {
  return hasInvisible(text) ? text.replace(RUNS, markers) : text;
}

// A budget of marker spans, shared by the pieces of one row.
export function markBudget() {
  return { marks: MAX_MARKS };
}

// Append `text` to `parent` as text nodes, each run of such characters as a marker
// span while `budget` lasts (then as marker text).
export function appendVisible(parent, text, budget = markBudget()) {
  if (!hasInvisible(text)) {
    parent.append(text);
    return;
  }
  let plain = "";
  let pos = 0;
  for (const m of text.matchAll(RUNS)) {
    plain += text.slice(pos, m.index);
    pos = m.index + m[0].length;
    if (budget.marks <= 0) {
      plain += markers(m[0]);
      continue;
    }
    budget.marks--;
    if (plain) parent.append(plain);
    plain = "";
    const span = document.createElement("span");
    span.className = "cc";
    span.textContent = markers(m[0]);
    span.title = title(m[0]);
    parent.appendChild(span);
  }
  plain += text.slice(pos);
  if (plain) parent.append(plain);
}

// Set an element's content to `text`, markers and all.
export function setVisibleText(element, text) {
  if (!hasInvisible(text)) {
    element.textContent = text;
    return;
  }
  element.replaceChildren();
  appendVisible(element, text);
}
