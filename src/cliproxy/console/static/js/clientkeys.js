// Client keys: each `client-keys` entry with its models and limits, and its use against those
// limits, counted as the server counts them: tokens since 00:00 UTC, cost since the first of
// the month (00:00 UTC), both from /usage/summary grouped by key name. Read-only.

import { get } from "./api.js";
import { fmtCompact, fmtCost, fmtInt, h } from "./dom.js";

function usageByName(buckets) {
  const byName = new Map();
  for (const b of buckets || []) {
    const u = byName.get(b.group) || { requests: 0, failed: 0, tokens: 0, cost: 0 };
    u.requests += b.requests;
    u.failed += b.failed;
    u.tokens += b.input_tokens + b.output_tokens;
    u.cost += b.cost_usd || 0;
    byName.set(b.group, u);
  }
  return byName;
}

function share(used, limit) {
  if (!limit) return null;
  const percent = (100 * used) / limit;
  const kind = percent >= 100 ? "bad" : percent >= 80 ? "warn" : "ok";
  const shown = percent > 0 && percent < 0.1 ? "<0.1" : percent < 10 ? percent.toFixed(1) : String(Math.round(percent));
  return h("span", { class: `badge ${kind} share` }, `${shown}% of limit`);
}

function limit(value, show) {
  return value === undefined || value === null ? h("span", { class: "muted" }, "no limit") : show(value);
}

function models(list) {
  if (list === undefined || list === null) return h("span", { class: "muted" }, "all models");
  if (!list.length) return h("span", { class: "warn" }, "none");
  return h("ul", { class: "plain" }, list.map((m) => h("li", { class: "model" }, m)));
}

const HEADERS = ["Name", "Key", "Models", "Requests / min#", "Concurrent#", "Tokens / day#", "Budget / month#", "Requests today#", "Tokens today#", "Cost today#", "Cost this month#"];

function keyRow(entry, today, month) {
  const used = today.get(entry.name) || { requests: 0, failed: 0, tokens: 0, cost: 0 };
  const monthCost = (month.get(entry.name) || { cost: 0 }).cost;
  const tokensLimit = entry["tokens-per-day"];
  const budget = entry["max-budget-usd-per-month"];
  const cells = [
    h("td", { class: "name" }, entry.name),
    h("td", { class: "mono" }, entry.key),
    h("td", { class: "models" }, models(entry["allowed-models"])),
    h("td", { class: "num" }, limit(entry["requests-per-minute"], fmtInt)),
    h("td", { class: "num" }, limit(entry["max-concurrent-requests"], fmtInt)),
    h("td", { class: "num" }, limit(tokensLimit, fmtInt)),
    h("td", { class: "num" }, limit(budget, fmtCost)),
    h("td", { class: "num used-requests" }, fmtInt(used.requests), used.failed ? h("div", { class: "muted" }, `${fmtInt(used.failed)} failed`) : null),
    h("td", { class: "num used-tokens" }, fmtCompact(used.tokens), tokensLimit ? h("div", {}, share(used.tokens, tokensLimit)) : null),
    h("td", { class: "num used-cost" }, fmtCost(used.cost)),
    h("td", { class: "num used-month" }, fmtCost(monthCost), budget ? h("div", {}, share(monthCost, budget)) : null),
  ];
  cells.forEach((cell, i) => {
    cell.dataset.label = HEADERS[i].replace("#", "");
  });
  return h("tr", { dataset: { name: entry.name } }, cells);
}

export async function renderClientKeys(main) {
  const now = new Date();
  const day = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate()));
  const month = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), 1));
  const summary = (from) => get("/usage/summary", { "group-by": "api-key", bucket: "day", from: from.toISOString(), to: now.toISOString() });
  const [keys, plain, today, thisMonth] = await Promise.all([get("/client-keys"), get("/api-keys"), summary(day), summary(month)]);
  const entries = (keys.data && keys.data["client-keys"]) || [];
  const plainCount = ((plain.data && plain.data["api-keys"]) || []).length;
  const usedToday = usageByName(today.data.buckets);
  const usedMonth = usageByName(thisMonth.data.buckets);
  const rows = entries.map((entry) => keyRow(entry, usedToday, usedMonth));

  main.replaceChildren(
    h("div", { class: "page-head" }, h("h1", {}, "Client keys")),
    h(
      "section",
      { class: "card" },
      h("p", { class: "muted" }, "Keys of client-keys in config.yaml, with their limits. Today counts from 00:00 UTC and the month from its first day, as the limits do."),
      h(
        "div",
        { class: "table-wrap" },
        h(
          "table",
          { id: "client-keys", class: "cards" },
          h("thead", {}, h("tr", {}, HEADERS.map((t) => h("th", { class: t.endsWith("#") ? "num" : "" }, t.replace("#", ""))))),
          h("tbody", {}, rows.length ? rows : h("tr", {}, h("td", { colspan: HEADERS.length, class: "muted" }, "No client keys: add entries under client-keys in config.yaml."))),
        ),
      ),
      h(
        "p",
        { id: "plain-keys", class: "muted" },
        plainCount === 1 ? "1 plain key in api-keys" : `${fmtInt(plainCount)} plain keys in api-keys`,
        " (no name and no limits; their use shows under their masked form on the Overview).",
      ),
    ),
  );
}
