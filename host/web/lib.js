// What the player client and the admin console share: building the page
// from text (never from HTML: a name or a chat line is shown as it was
// typed, and runs nothing), the HTTP API, and a session's WebSocket.

/** An element: `props` sets properties, attributes and `on*` listeners;
 * children are nodes or text (arrays flatten, null and false are left out). */
export function h(tag, props, ...children) {
  const el = tag.includes(":")
    ? document.createElementNS("http://www.w3.org/2000/svg", tag.split(":")[1])
    : document.createElement(tag);
  for (const [key, value] of Object.entries(props ?? {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith("on")) el.addEventListener(key.slice(2), value);
    else if (key === "class") el.setAttribute("class", value);
    else if (typeof value === "boolean" || key === "value") el[key] = value;
    else el.setAttribute(key, String(value));
  }
  fill(el, children);
  return el;
}

/** Appends `children` to `el` as nodes or text. */
export function fill(el, ...children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : String(child));
  }
  return el;
}

/** Empties `el`, then fills it. */
export function put(el, ...children) {
  el.replaceChildren();
  return fill(el, ...children);
}

/** Shows `text` for five seconds in the page's `#toast` box; `bad` marks
 * a refusal or a failure. */
export function toast(text, bad = true) {
  const line = h("p", { class: bad ? "bad" : "", role: "status" }, text);
  document.getElementById("toast").append(line);
  setTimeout(() => line.remove(), 5000);
}

/** A table of `rows` under `head`, which scrolls sideways on its own and,
 * on a phone, stacks each row with its cells named. */
export function table(head, rows) {
  return h("div", { class: "scroll" }, h("table", {},
    h("thead", {}, h("tr", {}, head.map((c) => h("th", {}, c)))),
    h("tbody", {}, rows.map((r) => h("tr", {}, r.map((c, i) => h("td", { "data-label": head[i] || null }, c)))))));
}

/** An error the host answered with: its stable `code` and its message. */
export class ApiError extends Error {
  constructor(status, code, message, retryAfter) {
    super(message);
    this.status = status;
    this.code = code;
    this.retryAfter = retryAfter;
  }
}

/** Calls the HTTP API: `body` is sent as JSON, `token` as a bearer token.
 * Answers the parsed JSON (or the text), or throws an `ApiError`. */
export async function api(method, path, { body, token, raw } = {}) {
  const headers = {};
  if (body !== undefined) headers["content-type"] = raw ? "application/octet-stream" : "application/json";
  if (token) headers.authorization = `Bearer ${token}`;
  let response;
  try {
    response = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : raw ? body : JSON.stringify(body),
    });
  } catch {
    throw new ApiError(0, "unreachable", "the host cannot be reached");
  }
  const text = await response.text();
  let json = null;
  try {
    json = text ? JSON.parse(text) : null;
  } catch {
    json = null;
  }
  if (!response.ok) {
    const error = json?.error ?? {};
    throw new ApiError(
      response.status,
      error.code ?? `http_${response.status}`,
      error.message ?? text,
      Number(response.headers.get("retry-after")) || undefined,
    );
  }
  return json ?? text;
}

/** Values kept in the browser between visits, as JSON. */
export const store = {
  get(key, where = localStorage) {
    try {
      return JSON.parse(where.getItem(`hoard.${key}`));
    } catch {
      return null;
    }
  },
  set(key, value, where = localStorage) {
    if (value === null || value === undefined) where.removeItem(`hoard.${key}`);
    else where.setItem(`hoard.${key}`, JSON.stringify(value));
  },
};

/** Close codes after which reconnecting cannot help. */
const FINAL = new Set([1000, 1003, 1007, 1009, 4000, 4001, 4004]);

/** A session's events over its WebSocket: reconnects with backoff and
 * resumes from the last event seen, so nothing is missed or seen twice;
 * actions sent while the socket is down wait, and go (again, under the same
 * idempotency key, so never applied twice) once it is back. */
export class Live {
  constructor(session, { token, onState, onMessage, onStatus, onEnd }) {
    this.session = session;
    this.token = token;
    this.handlers = { onState, onMessage, onStatus, onEnd };
    this.epoch = null;
    this.seq = null;
    this.pending = new Map();
    this.next = 0;
    this.tries = 0;
    this.closed = false;
    this.connect();
  }

  connect() {
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    const url = `${scheme}//${location.host}/v1/sessions/${this.session}/events`;
    const socket = new WebSocket(url);
    this.socket = socket;
    this.welcomed = false;
    this.status(this.epoch ? "reconnecting" : "connecting");
    socket.onopen = () => {
      const hello = { type: "hello" };
      if (this.token) hello.token = this.token;
      // Resume from the last event seen; having seen none, start afresh.
      if (this.epoch !== null && this.seq !== null) hello.resume = { epoch: this.epoch, seq: this.seq };
      socket.send(JSON.stringify(hello));
    };
    socket.onmessage = (event) => this.receive(JSON.parse(event.data));
    socket.onclose = (event) => {
      if (this.socket !== socket) return;
      this.socket = null;
      if (this.closed) return;
      if (FINAL.has(event.code)) {
        this.closed = true;
        this.status("closed");
        for (const { reject } of this.pending.values()) {
          reject(new ApiError(0, "closed", event.reason || "the session's events ended"));
        }
        this.pending.clear();
        this.handlers.onEnd?.(event.code, event.reason);
        return;
      }
      this.status("reconnecting");
      const wait = Math.min(10_000, 250 * 2 ** this.tries) * (0.5 + Math.random() / 2);
      this.tries += 1;
      this.timer = setTimeout(() => this.connect(), wait);
    };
  }

  receive(frame) {
    switch (frame.type) {
      case "welcome":
        this.tries = 0;
        this.welcomed = true;
        this.player = frame.player;
        if (!frame.resumed) this.seq = null;
        this.epoch = frame.epoch;
        this.status(frame.resumed ? "resumed" : "live");
        // Actions the socket lost go again: their keys make them once only.
        for (const { frame: act } of this.pending.values()) this.socket.send(JSON.stringify(act));
        break;
      case "state":
        this.seq = frame.seq;
        this.handlers.onState?.(frame);
        break;
      case "message":
        this.seq = frame.seq;
        this.handlers.onMessage?.(frame);
        break;
      case "reply":
      case "error": {
        const waiting = this.pending.get(frame.id);
        if (!waiting) break;
        this.pending.delete(frame.id);
        if (frame.type === "reply") waiting.resolve(frame);
        else {
          const { code, message } = frame.error ?? {};
          waiting.reject(new ApiError(0, code ?? "error", message ?? "", frame.error?.retry_after_s));
        }
        break;
      }
    }
  }

  /** Sends `action`; resolves with the host's reply, or rejects with its
   * error (the HTTP API's codes). */
  act(action) {
    if (this.closed) return Promise.reject(new ApiError(0, "closed", "the session's events ended"));
    const id = ++this.next;
    const frame = { type: "act", id, action, idempotency_key: randomKey() };
    return new Promise((resolve, reject) => {
      this.pending.set(id, { frame, resolve, reject });
      if (this.socket?.readyState === WebSocket.OPEN && this.welcomed) {
        this.socket.send(JSON.stringify(frame));
      }
    });
  }

  status(text) {
    this.handlers.onStatus?.(text);
  }

  close() {
    this.closed = true;
    clearTimeout(this.timer);
    this.socket?.close(1000, "left");
  }
}

function randomKey() {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

/** A short line for an error, as a player should read it. */
export function describe(error) {
  if (error instanceof ApiError) return `${error.message} (${error.code})`;
  return String(error?.message ?? error);
}

/** "3 s", "4 min", "2 h": a duration in ms, roughly. */
export function ago(ms) {
  if (ms < 1000) return `${ms} ms`;
  if (ms < 60_000) return `${Math.round(ms / 1000)} s`;
  if (ms < 3_600_000) return `${Math.round(ms / 60_000)} min`;
  return `${Math.round(ms / 3_600_000)} h`;
}
