// Logs: the server's log as it is written (GET /logs, polled with its cursor), filtered by
// level and text, with a pause; and, on its second tab, the request log (requests.js).

import { get } from "./api.js";
import { fmtTime, h } from "./dom.js";
import { logTabs, renderRequests } from "./requests.js";

const POLL_MS = 1500;
const FIRST_LINES = 1000; // read when the page opens
const KEPT = 5000; // lines held in the page; older ones are dropped
const LEVELS = { debug: 0, info: 1, warning: 2, error: 3, fatal: 4 };
// "[2026-12-02 06:15:12] [5be1f0a3] [warning] [forward.py:190] message" (log_buffer.py)
const LINE = /^\[([^\]]*)\] \[([^\]]*)\] \[([a-z]+)\] \[([^\]]*)\] ?(.*)$/s;
const REQUEST_ID = /^[0-9a-f]{8}$/;

// Kept while the console is open.
const view = { level: "", text: "", paused: false };

export async function renderLogs(main, rest = []) {
  if (rest[0] === "requests") return renderRequests(main, rest[1] || "");
  return renderServerLog(main);
}

function parse(text, previous) {
  const found = LINE.exec(text);
  if (!found) {
    // A traceback's later lines: they belong to the record above them.
    return { text, time: "", request: "", level: previous ? previous.level : "info", source: "", message: text };
  }
  const [, time, request, level, source, message] = found;
  return { text, time, request, level, source, message };
}

function lineElement(line) {
  let request = null;
  if (REQUEST_ID.test(line.request)) request = h("a", { class: "request", href: `#/logs/requests/${line.request}`, title: "This request's log" }, line.request);
  else if (line.time) request = h("span", { class: "request none" }, line.request || "--------");
  return h(
    "li",
    { class: `log-line level-${line.level}`, dataset: { level: line.level } },
    line.time ? h("span", { class: "time" }, line.time) : null,
    request,
    line.time ? h("span", { class: `level badge ${line.level}` }, line.level) : null,
    line.source ? h("span", { class: "source" }, line.source) : null,
    h("span", { class: "message" }, line.message),
  );
}

async function renderServerLog(main) {
  const first = await get("/logs", { limit: FIRST_LINES });
  let cursor = first.data["next-cursor"];
  const lines = []; // { line, el }, oldest first

  const list = h("ol", { id: "log-lines", class: "log-lines" });
  const box = h("div", { class: "log-box", id: "log-box", tabindex: "0", role: "log", "aria-label": "Server log" }, list);
  const status = h("span", { id: "log-status", class: "muted", role: "status" });
  const counter = h("span", { id: "log-count", class: "muted" });
  const empty = h("p", { id: "log-empty", class: "muted" }, "No log lines yet.");

  const wanted = (line) => {
    if (view.level && (LEVELS[line.level] ?? 1) < LEVELS[view.level]) return false;
    return !view.text || line.text.toLowerCase().includes(view.text.toLowerCase());
  };
  const recount = () => {
    const shown = lines.filter((l) => !l.el.hidden).length;
    counter.textContent = shown === lines.length ? `${lines.length} lines` : `${shown} of ${lines.length} lines`;
    empty.hidden = lines.length > 0;
  };
  const refilter = () => {
    for (const item of lines) item.el.hidden = !wanted(item.line);
    recount();
  };
  const add = (texts) => {
    if (!texts.length) return;
    const atBottom = box.scrollHeight - box.scrollTop - box.clientHeight < 40;
    const made = [];
    for (const text of texts) {
      const line = parse(text, lines.length ? lines[lines.length - 1].line : null);
      const el = lineElement(line);
      el.hidden = !wanted(line);
      lines.push({ line, el });
      made.push(el);
    }
    list.append(...made);
    while (lines.length > KEPT) lines.shift().el.remove();
    recount();
    if (atBottom) box.scrollTop = box.scrollHeight;
  };

  const level = h(
    "select",
    { id: "log-level", onchange: (event) => { view.level = event.target.value; refilter(); } },
    [["", "All levels"], ["info", "Info and above"], ["warning", "Warnings and errors"], ["error", "Errors only"]].map(([value, label]) => h("option", { value, selected: value === view.level }, label)),
  );
  const filter = h("input", { type: "search", id: "log-filter", placeholder: "Filter text", value: view.text, autocomplete: "off", oninput: (event) => { view.text = event.target.value; refilter(); } });
  const pause = h("button", { type: "button", id: "log-pause", "aria-pressed": String(view.paused) }, view.paused ? "Resume" : "Pause");

  let timer = null;
  let busy = false;
  const live = () => box.isConnected;
  const schedule = (delay) => {
    clearTimeout(timer);
    if (live()) timer = setTimeout(tick, delay);
  };
  const showStatus = () => {
    status.textContent = view.paused ? "Paused: new lines are not fetched" : `Live · checked ${new Date().toLocaleTimeString()}`;
    status.className = view.paused ? "warn" : "muted";
  };
  async function tick() {
    if (!live() || busy) return;
    if (!view.paused) {
      busy = true;
      try {
        const reply = await get("/logs", { cursor });
        if (!live()) return;
        if (reply.data["cursor-reset"]) {
          for (const item of lines.splice(0)) item.el.remove();
        }
        if (!view.paused) {
          add(reply.data.lines || []);
          cursor = reply.data["next-cursor"];
        }
        showStatus();
      } catch (error) {
        if (error.status === 401) return;
        status.textContent = `Could not read the log: ${error.message}`;
        status.className = "error";
      } finally {
        busy = false;
      }
    }
    schedule(POLL_MS);
  }
  pause.addEventListener("click", () => {
    view.paused = !view.paused;
    pause.setAttribute("aria-pressed", String(view.paused));
    pause.textContent = view.paused ? "Resume" : "Pause";
    showStatus();
    if (!view.paused) schedule(0);
  });

  main.replaceChildren(
    h("div", { class: "page-head" }, h("h1", {}, "Logs"), logTabs("server")),
    h(
      "section",
      { class: "card" },
      h(
        "div",
        { class: "row wrap between" },
        h("div", { class: "row wrap" }, h("label", { for: "log-level", class: "inline" }, "Level"), level, h("label", { for: "log-filter", class: "inline" }, "Text"), filter, pause),
        h("div", { class: "row wrap" }, counter, status),
      ),
      h("p", { class: "muted small-text" }, `The server's log as it is written (kept in memory, the newest ${(10000).toLocaleString()} lines), read every ${POLL_MS / 1000} s. A request id links to that request's log. Opened ${fmtTime(new Date().toISOString())}.`),
      empty,
      box,
    ),
  );
  add(first.data.lines || []);
  box.scrollTop = box.scrollHeight;
  showStatus();
  schedule(POLL_MS);
}
