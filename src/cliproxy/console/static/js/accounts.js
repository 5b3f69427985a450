// Accounts: every auth file and config API key, their state, expiry and cooldowns (live
// countdowns), requests per hour over the last day (a sparkline each, from one
// /usage/summary call for all of them), with enable/disable, reset cooldown, delete and upload.

import { call, get } from "./api.js";
import { chart, dropDetachedCharts, palette } from "./charts.js";
import { loadAccounts, loadApiKeys } from "./credentials.js";
import { confirmDialog, countdown, fmtInt, fmtTime, fmtWhen, h, saveBlob, toast } from "./dom.js";

const HOUR = 3600e3;
const SPARK_HOURS = 24;

// Requests per hour of every credential over the last 24 hours (the current hour last), by
// auth_index: one call, grouped by account. A ledger that cannot answer leaves the cells empty
// with its reason, not the page.
async function loadActivity() {
  const first = Math.floor(Date.now() / HOUR) * HOUR - (SPARK_HOURS - 1) * HOUR;
  const activity = { first, byIndex: new Map(), error: "" };
  try {
    const query = { from: new Date(first).toISOString(), to: new Date().toISOString(), "group-by": "account", bucket: "hour" };
    for (const b of (await get("/usage/summary", query)).data.buckets || []) {
      const i = Math.round((Date.parse(b.start) - first) / HOUR);
      if (!(i >= 0 && i < SPARK_HOURS)) continue;
      let series = activity.byIndex.get(b.group);
      if (!series) {
        series = { requests: new Array(SPARK_HOURS).fill(0), failed: new Array(SPARK_HOURS).fill(0) };
        activity.byIndex.set(b.group, series);
      }
      series.requests[i] += b.requests;
      series.failed[i] += b.failed;
    }
  } catch (error) {
    if (error.status === 401) throw error;
    activity.error = error.message;
  }
  return activity;
}

function hourText(t) {
  return new Date(t).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
}

// The cell; its chart is drawn by drawSparklines once the table is on the page.
function sparkCell(activity, authIndex, draws) {
  if (activity.error) return h("span", { class: "muted", title: activity.error }, "not available");
  const series = activity.byIndex.get(authIndex);
  const total = series ? series.requests.reduce((a, b) => a + b, 0) : 0;
  if (!total) return h("span", { class: "muted spark-none" }, "no requests");
  const failed = series.failed.reduce((a, b) => a + b, 0);
  const peak = Math.max(...series.requests);
  const peakAt = activity.first + series.requests.indexOf(peak) * HOUR;
  const summary = `${total} requests in the last 24 hours${failed ? `, ${failed} failed` : ""}; busiest hour ${hourText(peakAt)} with ${peak}`;
  const canvas = h("canvas", { class: "spark", role: "img", "aria-label": summary });
  draws.push({ canvas, series, first: activity.first });
  return h(
    "div",
    { class: "spark-cell", title: summary, dataset: { authIndex, requests: String(total) } },
    h("div", { class: "spark-box" }, canvas),
    h("span", { class: "spark-total" }, fmtInt(total)),
  );
}

function translucent(color) {
  return /^#[0-9a-f]{6}$/i.test(color) ? color + "33" : "transparent";
}

function drawSparklines(draws) {
  const colors = palette();
  const danger = getComputedStyle(document.documentElement).getPropertyValue("--danger").trim();
  for (const { canvas, series, first } of draws.splice(0)) {
    const labels = series.requests.map((_, i) => hourText(first + i * HOUR));
    const datasets = [
      { label: "requests", data: series.requests, borderColor: colors[0], backgroundColor: translucent(colors[0]), fill: true, borderWidth: 1.5, pointRadius: 0, tension: 0.3 },
    ];
    if (series.failed.some((n) => n > 0)) {
      datasets.push({ label: "failed", data: series.failed, borderColor: danger, borderWidth: 1, pointRadius: 0, fill: false });
    }
    chart(canvas, {
      type: "line",
      data: { labels, datasets },
      options: {
        events: [],
        layout: { padding: 2 },
        plugins: { legend: { display: false }, tooltip: { enabled: false } },
        scales: { x: { display: false }, y: { display: false, beginAtZero: true, suggestedMax: 1 } },
      },
    });
  }
}

const STATE_CLASS = { active: "ok", disabled: "muted", needs_login: "bad", cooling: "warn", invalid: "bad" };

function stateBadge(account) {
  const name = account.disabled ? "disabled" : account.state || account.status || "unknown";
  return h("span", { class: `badge ${STATE_CLASS[name] || ""}` }, name.replace("_", " "));
}

function cooldownList(cooldowns, refresh) {
  if (!cooldowns.length) return h("span", { class: "muted" }, "none");
  return h(
    "ul",
    { class: "plain cooldowns" },
    cooldowns.map((c) =>
      h("li", {}, h("span", { class: "model" }, c.model || "all models"), " ", countdown(Date.parse(c.until), refresh), c.reason ? h("span", { class: "muted" }, ` (${c.reason})`) : null),
    ),
  );
}

// The vendor's own quota windows (GET /quota), as the account watch last read them.
function quotaList(quota) {
  const windows = (quota && quota.vendor_quota && quota.vendor_quota.windows) || [];
  if (!windows.length) return h("span", { class: "muted" }, "not read");
  return h(
    "ul",
    { class: "plain quota" },
    windows.map((w) =>
      h(
        "li",
        {},
        h("span", { class: "model" }, w.name),
        " ",
        h("span", { class: (w.used_percent ?? 0) >= 80 ? "warn" : "" }, w.used_percent === null ? "?" : `${Math.round(w.used_percent)}%`),
        w.resets_at ? h("span", { class: "muted" }, ", resets ", fmtWhen(new Date(w.resets_at * 1000).toISOString())) : null,
      ),
    ),
  );
}

async function act(button, work, done) {
  button.disabled = true;
  try {
    await work();
    await done();
  } catch (error) {
    toast(error.message, "error");
    button.disabled = false;
  }
}

// POST /reset-quota: every cooldown of that credential ends now.
function resetButton(authIndex, refresh, disabled) {
  const button = h("button", { type: "button", class: "small", "data-action": "reset", disabled }, "Reset cooldown");
  button.addEventListener("click", () =>
    act(button, async () => {
      const reply = await call("POST", "/reset-quota", { json: { auth_index: authIndex } });
      const models = reply.data.models || [];
      toast(models.length ? `cooldown ended for ${models.join(", ")}` : "no cooldown to reset");
    }, refresh),
  );
  return button;
}

function accountRow(account, refresh, activity, draws) {
  const cooldowns = (account.quota && account.quota.cooldowns) || [];
  const toggle = h("button", { type: "button", class: "small", "data-action": "toggle" }, account.disabled ? "Enable" : "Disable");
  toggle.addEventListener("click", () =>
    act(toggle, async () => {
      await call("PATCH", "/auth-files/status", { json: { name: account.name, disabled: !account.disabled } });
      toast(`${account.name} ${account.disabled ? "enabled" : "disabled"}`);
    }, refresh),
  );
  const reset = resetButton(account.auth_index, refresh, cooldowns.length === 0);
  const refreshNow = h("button", { type: "button", class: "small", "data-action": "refresh" }, "Refresh");
  refreshNow.addEventListener("click", () =>
    act(refreshNow, async () => {
      await call("POST", "/auth-files/refresh", { query: { name: account.name } });
      toast(`${account.name}: token refreshed`);
    }, refresh),
  );
  const download = h("button", { type: "button", class: "small", "data-action": "download" }, "Download");
  download.addEventListener("click", () =>
    act(download, async () => {
      const reply = await call("GET", "/auth-files/download", { query: { name: account.name }, raw: true });
      saveBlob(reply.blob, account.name);
    }, async () => {
      download.disabled = false;
    }),
  );
  const remove = h("button", { type: "button", class: "small danger", "data-action": "delete" }, "Delete");
  remove.addEventListener("click", async () => {
    if (!(await confirmDialog(`Delete the auth file ${account.name}? The account is removed from the pool and the file from the auth directory.`))) return;
    await act(remove, async () => {
      await call("DELETE", "/auth-files", { query: { name: account.name } });
      toast(`${account.name} deleted`);
    }, refresh);
  });
  const expiry = account.expiry ? h("span", { title: fmtTime(account.expiry) }, fmtWhen(account.expiry)) : h("span", { class: "muted" }, "—");
  return h(
    "tr",
    { dataset: { name: account.name } },
    h("td", { class: "name" }, h("div", { class: "label" }, account.label || account.name), h("div", { class: "muted small-text" }, account.name)),
    h("td", {}, account.provider || account.type || "?"),
    h("td", {}, stateBadge(account), account.status_message ? h("div", { class: "muted small-text" }, account.status_message) : null),
    h("td", {}, expiry, account.last_refresh ? h("div", { class: "muted small-text" }, "refreshed ", fmtWhen(account.last_refresh)) : null),
    h("td", {}, cooldownList(cooldowns, refresh)),
    h("td", {}, quotaList(account.quota)),
    h("td", { class: "spark-td" }, sparkCell(activity, account.auth_index, draws)),
    h("td", { class: "num" }, fmtInt(account.success || 0), " / ", h("span", { class: account.failed ? "bad-text" : "" }, fmtInt(account.failed || 0))),
    h("td", { class: "actions" }, toggle, refreshNow, reset, download, remove),
  );
}

function keyRow(key, refresh, activity, draws) {
  const reset = resetButton(key.routingId, refresh, false);
  return h(
    "tr",
    { dataset: { index: key.routingId } },
    h("td", { class: "name" }, h("div", { class: "label" }, key.label), h("div", { class: "muted small-text" }, key.baseUrl)),
    h("td", {}, key.provider),
    h("td", { class: "mono" }, key.key),
    h("td", { class: "num" }, fmtInt(key.models)),
    h("td", { class: "spark-td" }, sparkCell(activity, key.authIndex, draws)),
    h("td", { class: "actions" }, reset),
  );
}

function table(id, headers, rows, empty) {
  // Each cell names its column, so a phone can show rows as cards (console.css).
  for (const row of rows) {
    [...row.children].forEach((cell, i) => {
      cell.dataset.label = headers[i].replace("#", "");
    });
  }
  return h(
    "div",
    { class: "table-wrap" },
    h(
      "table",
      { id, class: "cards" },
      h("thead", {}, h("tr", {}, headers.map((t) => h("th", { class: t.endsWith("#") ? "num" : "" }, t.replace("#", ""))))),
      h("tbody", {}, rows.length ? rows : h("tr", {}, h("td", { colspan: headers.length, class: "muted" }, empty))),
    ),
  );
}

// Upload: POST /auth-files as one multipart body; the answer names each file written and each
// refused with its reason (207 when some were refused).
async function upload(files, results, refresh) {
  if (!files.length) return;
  const form = new FormData();
  for (const file of files) form.append("file", file, file.name);
  const outcome = new Map(files.map((f) => [f.name, { ok: false, message: "not uploaded" }]));
  try {
    const reply = await call("POST", "/auth-files", { body: form });
    for (const name of reply.data.files || []) outcome.set(name, { ok: true, message: "uploaded" });
    for (const failure of reply.data.failed || []) outcome.set(failure.name, { ok: false, message: failure.error });
  } catch (error) {
    const failed = (error.body && error.body.failed) || [];
    if (failed.length) {
      for (const failure of failed) outcome.set(failure.name, { ok: false, message: failure.error });
    } else {
      for (const name of outcome.keys()) outcome.set(name, { ok: false, message: error.message });
    }
  }
  results.replaceChildren(
    ...[...outcome.entries()].map(([name, r]) =>
      h("li", { class: r.ok ? "ok-text" : "bad-text", dataset: { file: name } }, h("span", { class: "mono" }, name), ": ", r.message),
    ),
  );
  await refresh();
}

function uploader(refresh) {
  const results = h("ul", { class: "plain", id: "upload-results", "aria-live": "polite" });
  const input = h("input", { type: "file", id: "upload-input", multiple: true, accept: ".json,application/json" });
  input.addEventListener("change", async () => {
    await upload([...input.files], results, refresh);
    input.value = "";
  });
  const zone = h(
    "section",
    { class: "card dropzone", id: "upload" },
    h("h2", {}, "Upload auth files"),
    h("p", { class: "muted" }, "Drop JSON auth files here, or choose them (many at once)."),
    input,
    h("label", { class: "button", for: "upload-input" }, "Choose files…"),
    results,
  );
  zone.addEventListener("dragover", (event) => {
    event.preventDefault();
    zone.classList.add("dragging");
  });
  zone.addEventListener("dragleave", () => zone.classList.remove("dragging"));
  zone.addEventListener("drop", (event) => {
    event.preventDefault();
    zone.classList.remove("dragging");
    upload([...event.dataTransfer.files], results, refresh);
  });
  return zone;
}

export async function renderAccounts(main) {
  const lists = h("div", { id: "account-lists" });
  const draws = [];
  const filesSection = (list, activity) =>
    h(
      "section",
      { class: "card" },
      h("h2", {}, `OAuth accounts (${list.length})`),
      table("auth-files", ["Account", "Provider", "State", "Token expires", "Cooldowns", "Vendor quota", "Requests, 24 h", "OK / failed#", "Actions"], list.map((a) => accountRow(a, refresh, activity, draws)), "No auth files yet: add an account, or upload its file below."),
    );
  const keysSection = (list, activity) =>
    h(
      "section",
      { class: "card" },
      h("h2", {}, `API keys (${list.length})`),
      table("api-keys", ["Label", "Provider", "Key", "Models#", "Requests, 24 h", "Actions"], list.map((k) => keyRow(k, refresh, activity, draws)), "No API keys in config.yaml."),
    );
  const load = () => Promise.all([loadAccounts(), loadApiKeys(), loadActivity()]);
  const show = ([accounts, keys, activity]) => {
    lists.replaceChildren(filesSection(accounts, activity), keysSection(keys, activity));
    dropDetachedCharts(); // the sparklines of the lists just replaced
  };
  // Reads the lists again after an action, in place (the upload results stay on the page).
  async function refresh() {
    if (!lists.isConnected) return;
    show(await load());
    drawSparklines(draws);
  }
  show(await load());
  main.replaceChildren(
    h("div", { class: "page-head" }, h("h1", {}, "Accounts"), h("a", { href: "#/add-account", class: "button", id: "add-account" }, "Add an account")),
    lists,
    uploader(refresh),
  );
  drawSparklines(draws);
}
