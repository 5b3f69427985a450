// Overview: traffic, tokens, cost and errors over 24 h or 7 d from /usage/summary; the top
// models, accounts and client keys; the accounts that need the operator.

import { get } from "./api.js";
import { chart, palette } from "./charts.js";
import { attentionReason, labelsByIndex, loadAccounts, loadApiKeys } from "./credentials.js";
import { fmtCompact, fmtCost, fmtInt, h } from "./dom.js";

const RANGES = {
  "24h": { label: "Last 24 hours", bucket: "hour", hours: 24 },
  "7d": { label: "Last 7 days", bucket: "day", hours: 24 * 7 },
};
const TOP = 5;

let range = "24h";

function bucketStarts(from, to, bucket) {
  const step = bucket === "hour" ? 3600e3 : 86400e3;
  const first = Math.floor(from.getTime() / step) * step;
  const starts = [];
  for (let t = first; t <= to.getTime(); t += step) starts.push(t);
  return starts;
}

function label(t, bucket) {
  const d = new Date(t);
  return bucket === "hour"
    ? d.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" })
    : d.toLocaleDateString([], { month: "short", day: "numeric" });
}

function totals(buckets) {
  const sum = { requests: 0, failed: 0, input: 0, output: 0, cached: 0, cost: 0 };
  for (const b of buckets) {
    sum.requests += b.requests;
    sum.failed += b.failed;
    sum.input += b.input_tokens;
    sum.output += b.output_tokens;
    sum.cached += b.cached_tokens;
    sum.cost += b.cost_usd || 0;
  }
  return sum;
}

function byGroup(buckets) {
  const groups = new Map();
  for (const b of buckets) {
    const g = groups.get(b.group) || { group: b.group, requests: 0, failed: 0, tokens: 0, cost: 0 };
    g.requests += b.requests;
    g.failed += b.failed;
    g.tokens += b.input_tokens + b.output_tokens;
    g.cost += b.cost_usd || 0;
    groups.set(b.group, g);
  }
  return [...groups.values()].sort((a, b) => b.requests - a.requests || b.tokens - a.tokens);
}

function series(buckets, starts, value) {
  const at = new Map(starts.map((t, i) => [t, i]));
  const out = new Array(starts.length).fill(0);
  for (const b of buckets) {
    const i = at.get(Date.parse(b.start));
    if (i !== undefined) out[i] += value(b);
  }
  return out;
}

function stat(name, value, detail) {
  return h("div", { class: "stat" }, h("div", { class: "stat-name" }, name), h("div", { class: "stat-value" }, value), h("div", { class: "muted" }, detail));
}

function chartCard(title, id) {
  const canvas = h("canvas", { id, role: "img", "aria-label": title });
  return { card: h("section", { class: "card chart-card" }, h("h2", {}, title), h("div", { class: "chart-box" }, canvas)), canvas };
}

function topTable(title, id, rows, nameOf) {
  const body = rows.length
    ? rows.slice(0, TOP).map((r) =>
        h("tr", {}, h("td", { class: "name" }, nameOf(r.group)), h("td", { class: "num" }, fmtInt(r.requests)), h("td", { class: "num" }, fmtCompact(r.tokens)), h("td", { class: "num" }, fmtCost(r.cost))),
      )
    : [h("tr", {}, h("td", { colspan: 4, class: "muted" }, "No requests in this range."))];
  return h(
    "section",
    { class: "card", id },
    h("h2", {}, title),
    h("table", {}, h("thead", {}, h("tr", {}, h("th", {}, "Name"), h("th", { class: "num" }, "Requests"), h("th", { class: "num" }, "Tokens"), h("th", { class: "num" }, "Cost"))), h("tbody", {}, body)),
  );
}

export async function renderOverview(main) {
  const spec = RANGES[range];
  const to = new Date();
  const from = new Date(to.getTime() - spec.hours * 3600e3);
  const query = (group) => ({ from: from.toISOString(), to: to.toISOString(), bucket: spec.bucket, "group-by": group });
  const [models, accountsUsage, keysUsage, accounts, apiKeys] = await Promise.all([
    get("/usage/summary", query("model")),
    get("/usage/summary", query("account")),
    get("/usage/summary", query("api-key")),
    loadAccounts(),
    loadApiKeys(),
  ]);
  const buckets = models.data.buckets || [];
  const starts = bucketStarts(from, to, spec.bucket);
  const sum = totals(buckets);
  const labels = labelsByIndex(accounts, apiKeys);

  const switcher = h(
    "div",
    { class: "segmented", role: "group", "aria-label": "Time range" },
    Object.entries(RANGES).map(([name, r]) =>
      h("button", {
        type: "button",
        id: `range-${name}`,
        "aria-pressed": String(name === range),
        onclick: () => {
          range = name;
          renderOverview(main);
        },
      }, r.label),
    ),
  );
  const errorRate = sum.requests ? ((100 * sum.failed) / sum.requests).toFixed(1) + "% of requests" : "no requests";
  const requestsChart = chartCard("Requests and errors", "chart-requests");
  const tokensChart = chartCard("Tokens", "chart-tokens");
  const costChart = chartCard("Cost (USD)", "chart-cost");
  const attention = accounts.map((a) => ({ account: a, reason: attentionReason(a) })).filter((x) => x.reason);

  main.replaceChildren(
    h("div", { class: "page-head" }, h("h1", {}, "Overview"), switcher),
    h(
      "div",
      { class: "stats", id: "totals" },
      stat("Requests", fmtInt(sum.requests), spec.label.toLowerCase()),
      stat("Errors", fmtInt(sum.failed), errorRate),
      stat("Tokens", fmtCompact(sum.input + sum.output), `${fmtCompact(sum.input)} in · ${fmtCompact(sum.output)} out`),
      stat("Cost", fmtCost(sum.cost), "list-price equivalent"),
    ),
    h("div", { class: "grid charts" }, requestsChart.card, tokensChart.card, costChart.card),
    h(
      "section",
      { class: "card", id: "attention" },
      h("h2", {}, "Accounts needing attention"),
      attention.length
        ? h("ul", { class: "plain" }, attention.map(({ account, reason }) => h("li", {}, h("a", { href: "#/accounts" }, account.label || account.name), " — ", h("span", { class: "warn" }, reason))))
        : h("p", { class: "muted" }, accounts.length ? "All accounts are fine." : "No accounts yet: upload auth files on the Accounts page."),
    ),
    h(
      "div",
      { class: "grid tops" },
      topTable("Top models", "top-models", byGroup(buckets), (g) => g),
      topTable("Top accounts", "top-accounts", byGroup(accountsUsage.data.buckets || []), (g) => labels.get(g) || g || "(none)"),
      topTable("Top client keys", "top-keys", byGroup(keysUsage.data.buckets || []), (g) => g || "(no key)"),
    ),
  );

  const colors = palette();
  const xLabels = starts.map((t) => label(t, spec.bucket));
  const topModels = byGroup(buckets).slice(0, TOP).map((g) => g.group);
  const datasets = topModels.map((name, i) => ({
    type: "bar",
    label: name,
    data: series(buckets.filter((b) => b.group === name), starts, (b) => b.requests),
    backgroundColor: colors[i % colors.length],
    stack: "requests",
  }));
  const rest = buckets.filter((b) => !topModels.includes(b.group));
  if (rest.length) datasets.push({ type: "bar", label: "other", data: series(rest, starts, (b) => b.requests), backgroundColor: colors[5], stack: "requests" });
  datasets.push({ type: "line", label: "errors", data: series(buckets, starts, (b) => b.failed), borderColor: getComputedStyle(document.documentElement).getPropertyValue("--danger").trim(), pointRadius: 2 });
  chart(requestsChart.canvas, { data: { labels: xLabels, datasets }, options: { scales: { x: { stacked: true }, y: { stacked: true, beginAtZero: true, ticks: { precision: 0 } } } } });
  chart(tokensChart.canvas, {
    type: "bar",
    data: {
      labels: xLabels,
      datasets: [
        { label: "input", data: series(buckets, starts, (b) => Math.max(0, b.input_tokens - b.cached_tokens)), backgroundColor: colors[0] },
        { label: "cached input", data: series(buckets, starts, (b) => b.cached_tokens), backgroundColor: colors[2] },
        { label: "output", data: series(buckets, starts, (b) => b.output_tokens), backgroundColor: colors[1] },
      ],
    },
    options: { scales: { x: { stacked: true }, y: { stacked: true, beginAtZero: true } } },
  });
  chart(costChart.canvas, {
    type: "line",
    data: { labels: xLabels, datasets: [{ label: "cost", data: series(buckets, starts, (b) => b.cost_usd || 0), borderColor: colors[3], backgroundColor: colors[3], fill: false, pointRadius: 2 }] },
    options: { plugins: { legend: { display: false } }, scales: { y: { beginAtZero: true } } },
  });
}
