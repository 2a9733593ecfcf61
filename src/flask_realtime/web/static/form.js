// The start form: a job picker and one field per job parameter, built from /api/jobs.
//
// Values are checked here first (the server checks again and its per-field
// `errors` are shown the same way); the last values used for each job, and the job
// last picked, are kept in localStorage. Jobs are grouped by where they come from
// (the `group` of /api/jobs) and a filter box narrows the list as one types.
// Descriptions and help show `backticks` as inline code, built from text nodes.

const STORE_PREFIX = "flask-realtime:params:";
const LAST_JOB = "flask-realtime:job";
const GROUPS = [["builtin", "Built-in"], ["webex", "Webex"], ["user", "Your jobs"]];

// `text` into `el`, with each `code span` as a <code> element: text nodes only.
export function setInlineCode(el, text) {
  const parts = String(text || "").split(/`([^`]+)`/);
  el.replaceChildren(...parts.map((part, i) => {
    if (i % 2 === 0) return document.createTextNode(part);
    const code = document.createElement("code");
    code.textContent = part;
    return code;
  }));
}

function remembered(job) {
  try {
    return JSON.parse(localStorage.getItem(STORE_PREFIX + job) || "{}") || {};
  } catch {
    return {};
  }
}

export class JobForm {
  constructor(form) {
    this.form = form;
    this.select = form.querySelector("#job-select");
    this.fields = form.querySelector("#job-fields");
    this.description = form.querySelector("#job-description");
    this.message = form.querySelector("#form-message");
    this.filter = form.querySelector("#job-filter");
    this.filterMessage = form.querySelector("#job-filter-message");
    this.jobs = [];
    this.inputs = new Map(); // param name -> {param, input, error}
    this.select.addEventListener("change", () => {
      this.showJob(this.select.value);
      this.rememberJob(this.select.value);
    });
    this.filter.addEventListener("input", () => this.applyFilter());
    this.filter.addEventListener("keydown", (e) => {
      if (e.key !== "Enter") return;
      e.preventDefault(); // Enter here picks the job shown, it does not start it
      this.select.focus();
    });
  }

  setJobs(jobs) {
    this.jobs = jobs;
    const groups = GROUPS.map(([key, label]) => {
      const members = jobs.filter((j) => (j.group || "user") === key);
      if (!members.length) return null;
      const group = document.createElement("optgroup");
      group.label = label;
      group.append(...members.map((j) => new Option(`${j.title} (${j.name})`, j.name)));
      return group;
    });
    this.select.replaceChildren(...groups.filter(Boolean));
    let last = null;
    try {
      last = localStorage.getItem(LAST_JOB);
    } catch {
      // storage disabled
    }
    const initial = jobs.some((j) => j.name === last) ? last : jobs[0] && jobs[0].name;
    if (initial) {
      this.select.value = initial;
      this.showJob(initial);
    }
  }

  job() {
    return this.jobs.find((j) => j.name === this.select.value) || null;
  }

  // Hide the jobs whose name, title and description do not hold the filter's words.
  applyFilter() {
    const words = this.filter.value.toLowerCase().split(/\s+/).filter(Boolean);
    let firstShown = null;
    for (const option of this.select.options) {
      const job = this.jobs.find((j) => j.name === option.value);
      const text = `${job.name} ${job.title} ${job.description || ""}`.toLowerCase();
      option.hidden = !words.every((w) => text.includes(w));
      if (!option.hidden && firstShown === null) firstShown = option.value;
    }
    for (const group of this.select.querySelectorAll("optgroup")) {
      group.hidden = [...group.children].every((o) => o.hidden);
    }
    this.filterMessage.hidden = firstShown !== null;
    this.filterMessage.textContent = firstShown === null
      ? "No job matches that filter: clear it to see them all." : "";
    const shown = this.select.selectedOptions[0];
    if (firstShown !== null && (!shown || shown.hidden)) {
      this.select.value = firstShown;
      this.showJob(firstShown);
    }
  }

  // Pick `name` and fill its fields with `values` (a run's params), for "Edit and
  // run"; false if the job is not offered any more.
  fill(name, values) {
    const job = this.jobs.find((j) => j.name === name);
    if (!job) return false;
    if (this.filter.value) {
      this.filter.value = "";
      this.applyFilter();
    }
    this.select.value = name;
    this.showJob(name, values || {});
    return true;
  }

  showJob(name, values = null) {
    const job = this.jobs.find((j) => j.name === name);
    this.inputs.clear();
    this.setMessage("");
    if (!job) {
      this.fields.replaceChildren();
      this.description.textContent = "";
      return;
    }
    setInlineCode(this.description, job.description || "");
    const saved = values || remembered(job.name);
    this.fields.replaceChildren(...job.params.map((p) => this.field(p, saved)));
  }

  field(param, saved) {
    const id = `param-${param.name}`;
    const wrap = document.createElement("div");
    wrap.className = `field field-${param.type}`;
    const label = document.createElement("label");
    label.htmlFor = id;
    label.textContent = param.name + (param.required ? " *" : "");
    let input;
    const value = param.name in saved ? saved[param.name] : param.default;
    if (param.type === "bool") {
      input = document.createElement("input");
      input.type = "checkbox";
      input.checked = Boolean(value);
    } else if (param.type === "file") {
      // A file picker: its file goes with the start (multipart), never kept here.
      input = document.createElement("input");
      input.type = "file";
    } else if (param.type === "choice") {
      input = document.createElement("select");
      (param.choices || []).forEach((c, i) => input.appendChild(new Option(String(c), String(i))));
      const at = (param.choices || []).findIndex((c) => c === value);
      if (at >= 0) input.value = String(at);
    } else {
      input = document.createElement("input");
      if (param.type === "int" || param.type === "float") {
        input.type = "number";
        input.step = param.type === "int" ? "1" : "any";
        if (param.min !== undefined && param.min !== null) input.min = String(param.min);
        if (param.max !== undefined && param.max !== null) input.max = String(param.max);
        input.inputMode = param.type === "int" ? "numeric" : "decimal";
      } else {
        input.type = "text";
      }
      if (value !== undefined && value !== null) input.value = String(value);
    }
    const hasDefault = !param.required && param.default !== undefined && param.default !== null;
    let note = null;
    if (hasDefault && input.type === "number") {
      // An empty number field means "the job's default": show which, and say so.
      input.placeholder = String(param.default);
      note = document.createElement("div");
      note.className = "field-default";
      note.id = `${id}-default`;
      note.textContent = `Empty: the default, ${param.default}, is used.`;
      const update = () => { note.hidden = input.value !== "" || input.validity.badInput; };
      input.addEventListener("input", update);
      update();
    }
    input.id = id;
    input.name = param.name;
    const error = document.createElement("div");
    error.className = "field-error";
    error.id = `${id}-error`;
    const described = [error.id];
    wrap.append(label, input);
    if (param.help) {
      const help = document.createElement("div");
      help.className = "field-help";
      help.id = `${id}-help`;
      setInlineCode(help, param.help);
      described.push(help.id);
      wrap.append(help);
    }
    if (note) {
      described.push(note.id);
      wrap.append(note);
    }
    wrap.append(error);
    input.setAttribute("aria-describedby", described.join(" "));
    input.addEventListener("input", () => this.setError(param.name, ""));
    this.inputs.set(param.name, { param, input, error });
    return wrap;
  }

  // {params, ok}: converted values, after showing a message at each bad field.
  read() {
    const params = {};
    let ok = true;
    for (const [name, { param, input }] of this.inputs) {
      const [value, problem] = convert(param, input);
      this.setError(name, problem);
      if (problem) ok = false;
      else if (value !== undefined) params[name] = value;
    }
    if (!ok) {
      const bad = [...this.inputs.values()].find((f) => f.error.textContent);
      if (bad) bad.input.focus();
    }
    return { params, ok };
  }

  setError(name, text) {
    const f = this.inputs.get(name);
    if (!f) return;
    f.error.textContent = text || "";
    if (text) f.input.setAttribute("aria-invalid", "true");
    else f.input.removeAttribute("aria-invalid");
  }

  // Show the server's answer to a refused start: {error, errors?}.
  showErrors(message, errors = {}) {
    let unplaced = false;
    for (const [name, text] of Object.entries(errors)) {
      if (this.inputs.has(name)) this.setError(name, capitalise(text));
      else unplaced = true;
    }
    this.setMessage(unplaced || !Object.keys(errors).length ? message : "Check the fields marked.");
  }

  setMessage(text) {
    this.message.textContent = text;
    this.message.hidden = !text;
  }

  // Whether the shown job takes a file: it is then started over HTTP (multipart).
  hasFiles() {
    return [...this.inputs.values()].some((f) => f.param.type === "file");
  }

  remember(job, params) {
    const kept = Object.fromEntries(Object.entries(params).filter(([, v]) => !isFile(v)));
    try {
      localStorage.setItem(STORE_PREFIX + job, JSON.stringify(kept));
    } catch {
      // storage full or disabled: nothing to remember then
    }
    this.rememberJob(job);
  }

  rememberJob(job) {
    try {
      localStorage.setItem(LAST_JOB, job);
    } catch {
      // storage disabled
    }
  }
}

function capitalise(text) {
  const s = String(text);
  return s.charAt(0).toUpperCase() + s.slice(1) + (/[.!?]$/.test(s) ? "" : ".");
}

function isFile(value) {
  return typeof File !== "undefined" && value instanceof File;
}

// "10 MB": a size as people read it (decimal units, as file pickers show them).
export function sizeText(bytes) {
  if (bytes < 1000) return `${bytes} bytes`;
  const units = ["kB", "MB", "GB"];
  let value = bytes / 1000;
  let unit = 0;
  while (value >= 1000 && unit < units.length - 1) { value /= 1000; unit += 1; }
  return `${value.toFixed(value < 10 ? 1 : 0)} ${units[unit]}`;
}

// [value, problem]: value undefined means "leave it to the job's default".
function convert(param, input) {
  if (param.type === "bool") return [input.checked, ""];
  if (param.type === "file") {
    const file = input.files && input.files[0];
    if (!file) return [undefined, param.required ? "Choose a file." : ""];
    if (param.max_bytes && file.size > param.max_bytes) {
      return [undefined, `This file is ${sizeText(file.size)}, larger than the ` +
        `${sizeText(param.max_bytes)} a file may have.`];
    }
    return [file, ""];
  }
  if (param.type === "choice") {
    const i = Number(input.value);
    return Number.isInteger(i) && param.choices && i < param.choices.length
      ? [param.choices[i], ""] : [undefined, param.required ? "Choose a value." : ""];
  }
  const raw = input.value;
  if (param.type === "str") {
    if (raw === "" && param.required) return [undefined, "Required."];
    return [raw === "" && param.default === undefined ? undefined : raw, ""];
  }
  if (raw.trim() === "") {
    if (input.validity && input.validity.badInput) return [undefined, "Enter a number."];
    return [undefined, param.required ? "Required." : ""];
  }
  const n = Number(raw);
  if (!Number.isFinite(n)) return [undefined, "Enter a number."];
  if (param.type === "int" && !Number.isInteger(n)) return [undefined, "Enter a whole number."];
  if (param.min !== undefined && param.min !== null && n < param.min) {
    return [undefined, `Must be at least ${param.min}.`];
  }
  if (param.max !== undefined && param.max !== null && n > param.max) {
    return [undefined, `Must be at most ${param.max}.`];
  }
  return [n, ""];
}
