// HTTP helpers: JSON requests with readable errors, and ids for idempotent starts.

const csrfToken = document.body.dataset.csrfToken || "";

export async function getJSON(url, options = {}) {
  const headers = { Accept: "application/json", ...(options.headers || {}) };
  if (options.method && options.method !== "GET" && csrfToken) headers["X-CSRF-Token"] = csrfToken;
  const res = await fetch(url, { credentials: "same-origin", ...options, headers });
  if (!res.ok) {
    let message = "";
    let errors = null; // a refused start's per-parameter sentences
    try {
      const body = await res.json();
      message = body.error || "";
      errors = body.errors || null;
    } catch {
      // not JSON: fall back to the status line
    }
    if (res.status === 401) message = message || "You are not logged in: reload the page.";
    const err = new Error(message || `The server answered ${res.status} ${res.statusText}.`);
    err.errors = errors;
    throw err;
  }
  return res.json();
}

// A random UUID (crypto.randomUUID needs a secure context; plain http on a LAN is not one).
export function newRequestId() {
  if (crypto.randomUUID) return crypto.randomUUID();
  const b = crypto.getRandomValues(new Uint8Array(16));
  b[6] = (b[6] & 0x0f) | 0x40;
  b[8] = (b[8] & 0x3f) | 0x80;
  const h = [...b].map((x) => x.toString(16).padStart(2, "0")).join("");
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

export function runUrl(runId, suffix = "") {
  return `/api/runs/${encodeURIComponent(runId)}${suffix}`;
}

export function sharedUrl(token, suffix = "") {
  return `/api/shared/${encodeURIComponent(token)}${suffix}`;
}
