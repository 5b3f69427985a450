// The request log: the files cliproxy wrote for requests (GET /request-logs), and one read
// back (GET /request-logs/{id}): its chain of upstream attempts (which model and account
// answered, which failed and why, model-fallbacks included) and each section with its
// headers and body, redacted as the file is. With request-log off, says so and offers the
// switch (PUT /request-log).

import { call, get } from "./api.js";
import { fmtInt, fmtTime, h, saveBlob, toast } from "./dom.js";

const LISTED = 200;
const RESULT_CLASS = { answered: "ok", failed: "bad", "not sent": "warn", "token refreshed": "muted" };
const OPEN_SECTIONS = new Set(["REQUEST", "RESPONSE"]);

// The Logs page's two tabs (logs.js draws the first).
export function logTabs(current) {
  const tab = (name, href, label) => h("a", { href, id: `tab-${name}`, "aria-current": current === name ? "page" : null }, label);
  return h("nav", { class: "segmented tabs", "aria-label": "Logs" }, tab("server", "#/logs", "Server log"), tab("requests", "#/logs/requests", "Requests"));
}

export async function renderRequests(main, id) {
  if (id) return renderOne(main, id);
  const listed = (await get("/request-logs", { limit: LISTED })).data;
  const files = listed.files || [];
  const rerender = () => renderRequests(main, "");

  const rows = files.map((f) =>
    h(
      "tr",
      { dataset: { id: f.id } },
      h("td", { dataset: { label: "Time" } }, h("a", { href: `#/logs/requests/${f.id}`, class: "request-link" }, f.time ? fmtTime(f.time) : fmtTime(new Date(f.modified * 1000).toISOString()))),
      h("td", { class: "name", dataset: { label: "Request" } }, h("span", { class: "mono" }, `${f.method || "?"} ${f.url || ""}`), h("div", { class: "muted small-text mono" }, f.id)),
      h("td", { class: "model", dataset: { label: "Model" } }, modelCell(f)),
      h("td", { class: "num status", dataset: { label: "Status" } }, statusBadge(f.status, f.failed)),
      h("td", { class: "num attempts", dataset: { label: "Attempts" } }, f.attempts === null || f.attempts === undefined ? "—" : fmtInt(f.attempts)),
      h("td", { class: "num", dataset: { label: "Size" } }, `${fmtInt(Math.ceil(f.size / 1024))} KB`),
    ),
  );

  main.replaceChildren(
    h("div", { class: "page-head" }, h("h1", {}, "Logs"), logTabs("requests")),
    switchCard(listed["request-log"], rerender),
    h(
      "section",
      { class: "card" },
      h(
        "div",
        { class: "row between wrap" },
        h("h2", {}, listed["request-log"] ? "Recorded requests" : "Failed requests (error logs)"),
        h("div", { class: "row" }, h("span", { class: "muted", id: "request-count" }, listed.total > files.length ? `newest ${files.length} of ${fmtInt(listed.total)}` : `${fmtInt(files.length)} files`), h("button", { type: "button", id: "requests-refresh", onclick: rerender }, "Refresh")),
      ),
      h(
        "div",
        { class: "table-wrap" },
        h(
          "table",
          { id: "request-logs", class: "cards" },
          h("thead", {}, h("tr", {}, ["Time", "Request", "Model", "Status#", "Attempts#", "Size#"].map((t) => h("th", { class: t.endsWith("#") ? "num" : "" }, t.replace("#", ""))))),
          h("tbody", {}, rows.length ? rows : h("tr", {}, h("td", { colspan: 6, class: "muted" }, "No request log files yet."))),
        ),
      ),
    ),
  );
}

function modelCell(f) {
  if (!f.model) return h("span", { class: "muted" }, "—");
  if (!f.fell_back) return h("span", { class: "mono" }, f.model);
  return [h("span", { class: "mono" }, f.model), " → ", h("span", { class: "mono served" }, f.served_model), " ", h("span", { class: "badge warn" }, "fallback")];
}

function statusBadge(status, failed) {
  if (!status) return h("span", { class: "badge muted" }, status === 0 ? "none" : "?");
  return h("span", { class: `badge ${failed || status >= 400 ? "bad" : "ok"}` }, String(status));
}

function switchCard(on, rerender) {
  const toggle = async (value, button) => {
    button.disabled = true;
    try {
      await call("PUT", "/request-log", { json: { value } });
      toast(value ? "Request logging is on: every request gets a file." : "Request logging is off: only failed requests are written.");
      await rerender();
    } catch (error) {
      toast(`Could not change request-log: ${error.message}`, "error");
      button.disabled = false;
    }
  };
  if (on) {
    const off = h("button", { type: "button", class: "small", id: "request-log-off-button" }, "Turn off");
    off.addEventListener("click", () => toggle(false, off));
    return h("section", { class: "card", id: "request-log-on" }, h("p", {}, "Request logging is on: every request is written to a file, with its upstream attempts and bodies (keys masked). ", off));
  }
  const button = h("button", { type: "button", class: "primary", id: "request-log-enable" }, "Turn on request logging");
  button.addEventListener("click", () => toggle(true, button));
  return h(
    "section",
    { class: "card notice", id: "request-log-off" },
    h("h2", {}, "Request logging is off"),
    h("p", {}, "Only failed requests are written (as error logs, listed below). To keep a file for every request, with its bodies and each upstream attempt, add this line to config.yaml:"),
    h("pre", { class: "code" }, "request-log: true"),
    h("p", {}, "or switch it on here (this writes that line to config.yaml): ", button),
  );
}

async function renderOne(main, id) {
  let found;
  try {
    found = (await get(`/request-logs/${encodeURIComponent(id)}`)).data;
  } catch (error) {
    if (error.status !== 404 && error.status !== 400) throw error;
    main.replaceChildren(
      h("div", { class: "page-head" }, h("h1", {}, "Logs"), logTabs("requests")),
      h("section", { class: "card", id: "request-missing" }, h("h2", {}, `No log for request ${id}`), h("p", {}, error.message), h("p", { class: "muted" }, "With request-log off only failed requests are written; files also go once the log size cap is reached."), h("a", { href: "#/logs/requests" }, "All requests")),
    );
    return;
  }
  const request = found.request || {};
  const download = h("button", { type: "button", id: "request-download" }, "Download file");
  download.addEventListener("click", async () => {
    try {
      const reply = await call("GET", `/request-log-by-id/${found.id}`, { raw: true });
      saveBlob(reply.blob, found.name);
    } catch (error) {
      toast(`Download failed: ${error.message}`, "error");
    }
  });
  const facts = [
    ["Time", request.time ? fmtTime(request.time) : "—"],
    ["Request", h("span", { class: "mono" }, `${request.method || "?"} ${request.url || ""}`)],
    request.client_key ? ["Client key", h("span", { class: "mono", id: "client-key" }, request.client_key)] : null,
    ["Model asked", request.model ? h("span", { class: "mono" }, request.model) : "—"],
    ["Answered by", request.served_model ? [h("span", { class: "mono", id: "served-model" }, request.served_model), request.fell_back ? [" ", h("span", { class: "badge warn" }, "fallback")] : null] : h("span", { class: "muted" }, "no upstream answered")],
    ["Status", statusBadge(request.status, request.failed)],
    ["Attempts", request.attempts === undefined ? "—" : fmtInt(request.attempts)],
    request.stream_error ? ["Stream error", h("span", { class: "error" }, request.stream_error)] : null,
    ["File", h("span", { class: "mono" }, found.name)],
  ].filter(Boolean);

  main.replaceChildren(
    h("div", { class: "page-head" }, h("h1", {}, "Logs"), logTabs("requests")),
    h(
      "section",
      { class: "card", id: "request-summary" },
      h("div", { class: "row between wrap" }, h("h2", {}, `Request ${found.id}`), h("div", { class: "row" }, h("a", { href: "#/logs/requests", class: "button" }, "All requests"), download)),
      h("dl", { class: "facts" }, facts.map(([name, value]) => [h("dt", {}, name), h("dd", {}, value)])),
    ),
    attemptsCard(found.attempts || [], request),
    ...found.sections.map(sectionCard),
  );
}

function chainText(attempts, request) {
  const steps = attempts.map((a) => `${a.model} ${a.result === "answered" ? "answered" : a.status ? `${a.result} (${a.status})` : a.result}`);
  const note = request.fell_back ? ` · fell back from ${request.model} to ${request.served_model}` : "";
  return steps.join(" → ") + note;
}

function attemptsCard(attempts, request) {
  const heading = h("h2", {}, "Upstream attempts");
  if (!attempts.length) {
    const why = request.time ? "No upstream was asked (the request was refused before it was sent)." : "This file was written before attempts were recorded.";
    return h("section", { class: "card", id: "request-attempts" }, heading, h("p", { class: "muted" }, why));
  }
  const rows = attempts.map((a) =>
    h(
      "tr",
      { dataset: { number: String(a.number), result: a.result } },
      h("td", { class: "num", dataset: { label: "#" } }, String(a.number)),
      h("td", { class: "model", dataset: { label: "Model" } }, h("span", { class: "mono" }, a.model), a.fallback ? [" ", h("span", { class: "badge warn" }, "fallback")] : null),
      h("td", { dataset: { label: "Provider" } }, a.provider),
      h("td", { class: "account", dataset: { label: "Account" } }, a.account || a.auth_index, a.account ? h("div", { class: "muted small-text mono" }, a.auth_index) : null),
      h("td", { class: "mono", dataset: { label: "Upstream model" } }, a.upstream_model),
      h("td", { class: "num", dataset: { label: "Status" } }, a.status ? String(a.status) : "none"),
      h("td", { class: "result", dataset: { label: "Result" } }, h("span", { class: `badge ${RESULT_CLASS[a.result] || ""}` }, a.result), a.rested ? h("div", { class: "muted small-text" }, "cooling down") : null),
      h("td", { class: "num", dataset: { label: "Latency" } }, `${Math.round(a.latency_ms)} ms`),
      h("td", { class: "why", dataset: { label: "Why" } }, a.error_kind ? h("span", { class: "badge muted" }, a.error_kind) : null, a.error ? h("div", { class: "error-text" }, a.error) : null),
    ),
  );
  return h(
    "section",
    { class: "card", id: "request-attempts" },
    heading,
    h("p", { class: "chain", id: "attempt-chain" }, chainText(attempts, request)),
    h("div", { class: "table-wrap" }, h("table", { class: "cards" }, h("thead", {}, h("tr", {}, ["#", "Model", "Provider", "Account", "Upstream model", "Status", "Result", "Latency", "Why"].map((t) => h("th", {}, t)))), h("tbody", {}, rows))),
  );
}

function pretty(body) {
  const text = body.trim();
  if (!text.startsWith("{") && !text.startsWith("[")) return body;
  try {
    return JSON.stringify(JSON.parse(text), null, 2);
  } catch {
    return body;
  }
}

function sectionCard(section) {
  const slug = section.title.toLowerCase().replace(/[^a-z0-9]+/g, "-");
  // The request's own lines (id, time, URL, client) are listed; the others' first line
  // (the upstream URL, a status) goes beside the title.
  const whole = section.title === "REQUEST";
  const hint = whole ? null : section.lines[0];
  const listed = whole ? section.lines : section.lines.slice(1);
  const notes = [];
  if (section.truncated_bytes) notes.push(`${fmtInt(section.truncated_bytes)} more bytes were not kept (the file keeps 4 MB of each body)`);
  if (section.omitted_chars) notes.push(`${fmtInt(section.omitted_chars)} more characters are in the file (download it to see them)`);
  return h(
    "details",
    { class: "card section", id: `section-${slug}`, open: OPEN_SECTIONS.has(section.title) },
    h("summary", {}, h("span", { class: "section-title" }, section.title), hint ? h("span", { class: "muted" }, " · " + hint) : null),
    listed.length ? h("ul", { class: "plain lines" }, listed.map((line) => h("li", {}, line))) : null,
    section.headers.length
      ? h("div", { class: "table-wrap" }, h("table", { class: "headers" }, h("tbody", {}, section.headers.map(([name, value]) => h("tr", {}, h("th", { class: "mono" }, name), h("td", { class: "mono" }, value))))))
      : null,
    section.body === null ? null : h("pre", { class: "code body" }, section.body ? pretty(section.body) : "(empty body)"),
    notes.map((note) => h("p", { class: "muted small-text" }, note)),
  );
}
