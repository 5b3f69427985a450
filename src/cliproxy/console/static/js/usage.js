// Usage: the ledger explored over a time range (1 h, 24 h, 7 d, 30 d or from/to), narrowed by
// model, account, client key and provider and grouped by one of them (/usage/summary); a
// chart per time bucket, a sortable table, and CSV files of what is shown, made in the browser.

import { get } from "./api.js";
import { chart, palette } from "./charts.js";
import { labelsByIndex, loadAccounts, loadApiKeys } from "./credentials.js";
import { csv, fmtCompact, fmtCost, fmtInt, h, saveBlob } from "./dom.js";

const HOUR = 3600e3;
const STEP = { minute: 60e3, hour: HOUR, day: 24 * HOUR };
const PRESETS = {
  "1h": { label: "1 h", hours: 1, bucket: "minute" },
  "24h": { label: "24 h", hours: 24, bucket: "hour" },
  "7d": { label: "7 d", hours: 24 * 7, bucket: "hour" },
  "30d": { label: "30 d", hours: 24 * 30, bucket: "day" },
};
// Each way to slice the ledger: its /usage/summary group-by and its filter parameter.
const DIMENSIONS = {
  model: { label: "Model", group: "model", param: "model", none: "(none)" },
  account: { label: "Account", group: "account", param: "auth-index", none: "(none)" },
  key: { label: "Client key", group: "api-key", param: "api-key", none: "(no key)" },
  provider: { label: "Provider", group: "provider", param: "provider", none: "(none)" },
};
const METRICS = {
  requests: { label: "Requests", value: (b) => b.requests },
  errors: { label: "Errors", value: (b) => b.failed },
  tokens: { label: "Tokens", value: (b) => b.input_tokens + b.output_tokens },
  cost: { label: "Cost (USD)", value: (b) => b.cost_usd || 0 },
};
const COLUMNS = [
  { key: "name", label: "Name" },
  { key: "requests", label: "Requests", num: true, show: fmtInt },
  { key: "failed", label: "Errors", num: true, show: fmtInt },
  { key: "input", label: "Input tokens", num: true, show: fmtInt },
  { key: "output", label: "Output tokens", num: true, show: fmtInt },
  { key: "cached", label: "Cached tokens", num: true, show: fmtInt },
  { key: "cost", label: "Cost", num: true, show: fmtCost },
];
const SERIES = 6; // groups drawn on their own; the rest are "other"

// Kept while the console is open, so coming back shows the same view.
const view = {
  preset: "24h",
  custom: null, // { from: Date, to: Date }
  groupBy: "model",
  filters: { model: "", account: "", key: "", provider: "" },
  metric: "requests",
  sort: { key: "requests", descending: true },
};

function bucketFor(ms) {
  if (ms <= 3 * HOUR) return "minute";
  return ms <= 7 * 24 * HOUR ? "hour" : "day";
}

function span() {
  if (view.preset === "custom" && view.custom) {
    const { from, to } = view.custom;
    return { from, to, bucket: bucketFor(to - from) };
  }
  const preset = PRESETS[view.preset];
  const to = new Date();
  return { from: new Date(to.getTime() - preset.hours * HOUR), to, bucket: preset.bucket };
}

function bucketStarts(from, to, bucket) {
  const step = STEP[bucket];
  const starts = [];
  for (let t = Math.floor(from.getTime() / step) * step; t <= to.getTime(); t += step) starts.push(t);
  return starts;
}

function tickLabel(t, bucket, long) {
  const d = new Date(t);
  // Day buckets are UTC days (as the server aligns them); shorter ones read in local time.
  if (bucket === "day") return d.toLocaleDateString([], { month: "short", day: "numeric", timeZone: "UTC" });
  const time = d.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
  return long ? `${d.toLocaleDateString([], { month: "short", day: "numeric" })} ${time}` : time;
}

function tally(buckets) {
  const groups = new Map();
  for (const b of buckets) {
    const g = groups.get(b.group) || { group: b.group, requests: 0, failed: 0, input: 0, output: 0, cached: 0, cost: 0 };
    g.requests += b.requests;
    g.failed += b.failed;
    g.input += b.input_tokens;
    g.output += b.output_tokens;
    g.cached += b.cached_tokens;
    g.cost += b.cost_usd || 0;
    groups.set(b.group, g);
  }
  return [...groups.values()];
}

function sorted(rows) {
  const { key, descending } = view.sort;
  const sign = descending ? -1 : 1;
  return [...rows].sort((a, b) => {
    const order = key === "name" ? a.name.localeCompare(b.name) : a[key] - b[key];
    return sign * order || b.requests - a.requests || a.name.localeCompare(b.name);
  });
}

function stamp(date) {
  return date.toISOString().replace(/[-:]/g, "").replace(/\.\d+/, "");
}

function localInput(date) {
  const shifted = new Date(date.getTime() - date.getTimezoneOffset() * 60e3);
  return shifted.toISOString().slice(0, 16);
}

function select(id, label, options, value, onchange) {
  return h(
    "div",
    { class: "field" },
    h("label", { for: id }, label),
    h("select", { id, onchange: (event) => onchange(event.target.value) }, options.map(([v, text]) => h("option", { value: v, selected: v === value }, text))),
  );
}

export async function renderUsage(main) {
  const { from, to, bucket } = span();
  const range = { from: from.toISOString(), to: to.toISOString() };
  const filters = {};
  for (const [name, dim] of Object.entries(DIMENSIONS)) {
    if (view.filters[name]) filters[dim.param] = view.filters[name];
  }
  const dimension = DIMENSIONS[view.groupBy];
  const [shown, accounts, apiKeys, ...choices] = await Promise.all([
    get("/usage/summary", { ...range, bucket, "group-by": dimension.group, ...filters }),
    loadAccounts(),
    loadApiKeys(),
    ...Object.values(DIMENSIONS).map((dim) => get("/usage/summary", { ...range, bucket: "day", "group-by": dim.group })),
  ]);
  const labels = labelsByIndex(accounts, apiKeys);
  const nameOf = (dimName, value) => (dimName === "account" ? labels.get(value) : null) || value || DIMENSIONS[dimName].none;
  const buckets = shown.data.buckets || [];
  const rows = tally(buckets).map((r) => ({ ...r, name: nameOf(view.groupBy, r.group) }));
  const total = rows.reduce((sum, r) => {
    for (const c of COLUMNS.slice(1)) sum[c.key] = (sum[c.key] || 0) + r[c.key];
    return sum;
  }, {});
  const rerender = () => renderUsage(main);

  // The range: presets, or a custom from/to (local time in the inputs).
  const presets = h(
    "div",
    { class: "segmented", role: "group", "aria-label": "Time range" },
    [...Object.entries(PRESETS), ["custom", { label: "Custom" }]].map(([name, p]) =>
      h("button", {
        type: "button",
        id: `usage-range-${name}`,
        "aria-pressed": String(view.preset === name),
        onclick: () => {
          view.preset = name;
          if (name === "custom" && !view.custom) view.custom = { from, to };
          rerender();
        },
      }, p.label),
    ),
  );
  const fromInput = h("input", { type: "datetime-local", id: "usage-from", value: localInput(from) });
  const toInput = h("input", { type: "datetime-local", id: "usage-to", value: localInput(to) });
  const rangeError = h("p", { class: "error", id: "usage-range-error", role: "alert" });
  const custom = h(
    "form",
    {
      class: "row wrap custom-range",
      hidden: view.preset !== "custom",
      onsubmit: (event) => {
        event.preventDefault();
        const start = new Date(fromInput.value);
        const end = new Date(toInput.value);
        if (Number.isNaN(start.getTime()) || Number.isNaN(end.getTime()) || start >= end) {
          rangeError.textContent = "From must be a time before To.";
          return;
        }
        view.custom = { from: start, to: end };
        rerender();
      },
    },
    h("div", { class: "field" }, h("label", { for: "usage-from" }, "From"), fromInput),
    h("div", { class: "field" }, h("label", { for: "usage-to" }, "To"), toInput),
    h("button", { type: "submit", id: "usage-apply", class: "primary" }, "Apply"),
    rangeError,
  );

  const controls = h(
    "div",
    { class: "row wrap controls" },
    select("usage-group", "Group by", Object.entries(DIMENSIONS).map(([n, d]) => [n, d.label]), view.groupBy, (v) => {
      view.groupBy = v;
      rerender();
    }),
    Object.entries(DIMENSIONS).map(([name, dim], i) => {
      const values = new Set((choices[i].data.buckets || []).map((b) => b.group).filter(Boolean));
      if (view.filters[name]) values.add(view.filters[name]);
      const options = [...values].map((v) => [v, nameOf(name, v)]).sort((a, b) => a[1].localeCompare(b[1]));
      return select(`filter-${name}`, dim.label, [["", "All"], ...options], view.filters[name], (v) => {
        view.filters[name] = v;
        rerender();
      });
    }),
  );

  const canvas = h("canvas", { id: "usage-chart", role: "img" });
  const metricSwitch = h(
    "div",
    { class: "segmented small", role: "group", "aria-label": "Chart shows" },
    Object.entries(METRICS).map(([name, m]) =>
      h("button", { type: "button", id: `usage-metric-${name}`, "aria-pressed": String(view.metric === name), onclick: () => { view.metric = name; rerender(); } }, m.label),
    ),
  );

  const headCells = COLUMNS.map((c) => {
    const active = view.sort.key === c.key;
    return h(
      "th",
      { class: c.num ? "num" : "", "aria-sort": active ? (view.sort.descending ? "descending" : "ascending") : "none" },
      h("button", {
        type: "button",
        class: "sort",
        dataset: { column: c.key },
        onclick: () => {
          view.sort = { key: c.key, descending: active ? !view.sort.descending : c.key !== "name" };
          rerender();
        },
      }, c.label, active ? (view.sort.descending ? " ▼" : " ▲") : ""),
    );
  });
  const bodyRows = rows.length
    ? sorted(rows).map((r) =>
        h("tr", { dataset: { group: r.group } }, COLUMNS.map((c) => h("td", { class: c.num ? `num ${c.key}` : "name", dataset: { label: c.label } }, c.num ? c.show(r[c.key]) : r.name))),
      )
    : [h("tr", {}, h("td", { colspan: COLUMNS.length, class: "muted" }, "No requests in this range."))];
  const footer = rows.length
    ? h("tfoot", {}, h("tr", { class: "total" }, COLUMNS.map((c) => h("td", { class: c.num ? `num ${c.key}` : "name", dataset: { label: c.label } }, c.num ? c.show(total[c.key]) : "Total"))))
    : null;

  const groupLabel = dimension.label.toLowerCase();
  const fileName = (what) => `cliproxy-usage-${what}-by-${dimension.group}-${stamp(from)}-${stamp(to)}.csv`;
  const exportTable = () => {
    const header = ["group", "name", "requests", "errors", "input_tokens", "output_tokens", "cached_tokens", "cost_usd"];
    const lines = sorted(rows).map((r) => [r.group, r.name, r.requests, r.failed, r.input, r.output, r.cached, Number(r.cost.toFixed(6))]);
    saveBlob(new Blob([csv([header, ...lines])], { type: "text/csv" }), fileName("table"));
  };
  const exportBuckets = () => {
    const header = ["bucket_start", "group", "name", "requests", "errors", "input_tokens", "output_tokens", "cached_tokens", "cost_usd"];
    const lines = buckets.map((b) => [b.start, b.group, nameOf(view.groupBy, b.group), b.requests, b.failed, b.input_tokens, b.output_tokens, b.cached_tokens, b.cost_usd || 0]);
    saveBlob(new Blob([csv([header, ...lines])], { type: "text/csv" }), fileName("buckets"));
  };
  const active = Object.entries(view.filters).filter(([, v]) => v);

  main.replaceChildren(
    h("div", { class: "page-head" }, h("h1", {}, "Usage"), presets),
    custom,
    h("section", { class: "card" }, controls),
    h(
      "div",
      { class: "stats", id: "usage-totals" },
      [["Requests", fmtInt(total.requests || 0)], ["Errors", fmtInt(total.failed || 0)], ["Input tokens", fmtCompact(total.input || 0)], ["Output tokens", fmtCompact(total.output || 0)], ["Cached tokens", fmtCompact(total.cached || 0)], ["Cost", fmtCost(total.cost || 0)]].map(([name, value]) =>
        h("div", { class: "stat", dataset: { stat: name } }, h("div", { class: "stat-name" }, name), h("div", { class: "stat-value" }, value)),
      ),
    ),
    h(
      "section",
      { class: "card chart-card" },
      h("div", { class: "row between wrap" }, h("h2", {}, `${METRICS[view.metric].label} per ${bucket}, by ${groupLabel}`), metricSwitch),
      h("p", { class: "muted small-text", id: "usage-window" }, `${from.toLocaleString()} – ${to.toLocaleString()}`, active.length ? ` · only ${active.map(([n, v]) => `${DIMENSIONS[n].label.toLowerCase()} ${nameOf(n, v)}`).join(", ")}` : "", bucket === "day" ? " · days in UTC" : ""),
      h("div", { class: "chart-box tall" }, canvas),
    ),
    h(
      "section",
      { class: "card" },
      h(
        "div",
        { class: "row between wrap" },
        h("h2", {}, `By ${groupLabel}`),
        h("div", { class: "row" }, h("button", { type: "button", id: "usage-export", onclick: exportTable, disabled: !rows.length }, "Export table (CSV)"), h("button", { type: "button", id: "usage-export-buckets", onclick: exportBuckets, disabled: !rows.length }, "Export per " + bucket + " (CSV)")),
      ),
      h("div", { class: "table-wrap" }, h("table", { id: "usage-table", class: "cards" }, h("thead", {}, h("tr", {}, headCells)), h("tbody", {}, bodyRows), footer)),
    ),
  );

  // The chart: one stacked series per leading group (by the metric), the rest as "other".
  const starts = bucketStarts(from, to, bucket);
  const index = new Map(starts.map((t, i) => [t, i]));
  const metric = METRICS[view.metric];
  const byMetric = new Map();
  for (const b of buckets) byMetric.set(b.group, (byMetric.get(b.group) || 0) + metric.value(b));
  const ranked = [...byMetric.keys()].sort((a, b) => byMetric.get(b) - byMetric.get(a) || nameOf(view.groupBy, a).localeCompare(nameOf(view.groupBy, b)));
  const own = ranked.slice(0, ranked.length > SERIES ? SERIES - 1 : SERIES);
  const colors = palette();
  const seriesOf = (keep) => {
    const data = new Array(starts.length).fill(0);
    for (const b of buckets) {
      const i = index.get(Date.parse(b.start));
      if (i !== undefined && keep(b.group)) data[i] += metric.value(b);
    }
    return data;
  };
  const datasets = own.map((group, i) => ({ label: nameOf(view.groupBy, group), data: seriesOf((g) => g === group), backgroundColor: colors[i % colors.length], stack: "usage" }));
  if (ranked.length > own.length) datasets.push({ label: "other", data: seriesOf((g) => !own.includes(g)), backgroundColor: colors[5], stack: "usage" });
  const long = to - from > 24 * HOUR;
  canvas.setAttribute("aria-label", `${metric.label} per ${bucket} by ${groupLabel}: ` + (datasets.length ? datasets.map((d) => `${d.label} ${d.data.reduce((a, b) => a + b, 0)}`).join(", ") : "none"));
  chart(canvas, {
    type: "bar",
    data: { labels: starts.map((t) => tickLabel(t, bucket, long)), datasets },
    options: { scales: { x: { stacked: true, ticks: { maxTicksLimit: 12 } }, y: { stacked: true, beginAtZero: true, ticks: view.metric === "cost" ? {} : { precision: 0 } } } },
  });
}
