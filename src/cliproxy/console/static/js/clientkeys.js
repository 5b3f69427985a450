// Client keys: each `client-keys` entry with its models and limits, and its use against those
// limits, counted as the server counts them: tokens since 00:00 UTC, cost since the first of
// the month (00:00 UTC), both from /usage/summary grouped by key name. Keys are added, edited
// and deleted through /client-keys (PATCH by name adds a name not listed yet; DELETE ?name=);
// a value the API refuses shows its message by its field. A key the server generates is shown
// once, in full, above the list.

import { call, get } from "./api.js";
import { confirmDialog, fmtCompact, fmtCost, fmtInt, h, toast } from "./dom.js";
import { field, linesInput, readLines, readNumber, showProblems, textInput } from "./forms.js";

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

const HEADERS = ["Name", "Key", "Models", "Requests / min#", "Concurrent#", "Tokens / day#", "Budget / month#", "Requests today#", "Tokens today#", "Cost today#", "Cost this month#", "Actions"];

const LIMITS = [
  { key: "requests-per-minute", label: "Requests per minute", hint: "A whole number, at least 1." },
  { key: "max-concurrent-requests", label: "Concurrent requests", hint: "A whole number, at least 1." },
  { key: "tokens-per-day", label: "Tokens per day", hint: "Input plus output, since 00:00 UTC." },
  { key: "max-budget-usd-per-month", label: "Budget per month (USD)", hint: "0 or more; the ledger's cost estimate." },
];

// The add / edit form. `entry` null: a new key. `names`: the names listed (unique ignoring
// case: a PATCH with a listed name would change that key instead of adding one).
function keyForm(entry, names, page) {
  const fields = new Map();
  const old = entry || {};
  const name = textInput(old.name || "", { placeholder: "team-a" });
  fields.set("name", name);
  const key = textInput("", { placeholder: entry ? `unchanged (${old.key})` : "leave empty to have one generated", class: "mono" });
  fields.set("key", key);
  const rotate = h("input", { type: "checkbox", "data-action": "rotate" });
  const restricted = h("input", { type: "checkbox", "data-action": "restrict" });
  restricted.checked = Array.isArray(old["allowed-models"]);
  const models = linesInput(old["allowed-models"] || [], { placeholder: "one pattern per line: claude-*, gpt-5*" });
  models.disabled = !restricted.checked;
  restricted.addEventListener("change", () => {
    models.disabled = !restricted.checked;
  });
  fields.set("allowed-models", models);
  const limitInputs = LIMITS.map((limit) => {
    const input = textInput(old[limit.key] ?? "", { inputmode: "decimal", placeholder: "no limit" });
    fields.set(limit.key, input);
    return field(limit.label, input, { path: limit.key, hint: limit.hint });
  });
  const save = h("button", { type: "submit", class: "primary", "data-action": "save" }, "Save");
  const cancel = h("button", { type: "button", "data-action": "cancel" }, "Cancel");
  const title = entry ? `Edit ${entry.name}` : "New client key";
  const form = h(
    "form",
    { class: "editor", id: "client-key-form", novalidate: true, "aria-label": title, dataset: { name: entry ? entry.name : "new" } },
    h("h3", {}, title),
    h(
      "div",
      { class: "form-grid" },
      field("Name", name, { path: "name", hint: entry ? "Renaming starts its usage counts over." : "Stands for the key in logs and usage; unique." }),
      field("Key", entry ? h("div", {}, key, h("label", { class: "check" }, rotate, "Generate a new key")) : key, { path: "key", hint: entry ? "Type a new key, or generate one; the old key stops working." : "A generated key is shown once, after saving." }),
      limitInputs,
    ),
    field("Models", h("div", {}, h("label", { class: "check" }, restricted, "Only these models (else every model)"), models), { path: "allowed-models", wide: true, hint: "* wildcards, matched against the model name the client sends." }),
    h("p", { class: "form-error error", role: "alert", hidden: true }),
    h("div", { class: "row end" }, cancel, save),
  );
  cancel.addEventListener("click", () => page.closeEditor());
  // "client-keys[2].requests-per-minute" (the config's check), "value.name" (the route's).
  const locate = (path) => {
    const found = /^(?:client-keys\[\d+\]|value)\.(.+)$/.exec(path);
    return found ? found[1] : path === "name" ? "name" : null;
  };
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const after = {
      name: name.value.trim(),
      "allowed-models": restricted.checked ? readLines(models) : null,
      ...Object.fromEntries(LIMITS.map((limit) => [limit.key, readNumber(fields.get(limit.key))])),
    };
    const value = {};
    for (const [prop, now] of Object.entries(after)) {
      const before = old[prop] ?? null;
      if (entry && JSON.stringify(before) === JSON.stringify(now)) continue;
      if (!entry && now === null) continue;
      value[prop] = now;
    }
    if (entry && rotate.checked) value.key = "";
    else if (key.value.trim()) value.key = key.value.trim();
    const folded = after.name.toLowerCase();
    if (after.name && names.some((n) => n.toLowerCase() === folded && (!entry || n.toLowerCase() !== entry.name.toLowerCase()))) {
      showProblems(form, { message: `a key named ${after.name} is listed already; names are unique (ignoring case)`, body: { field: "name" } }, { fields, locate });
      return;
    }
    if (!after.name) {
      showProblems(form, { message: "must not be empty (it stands for the key in logs and usage)", body: { field: "name" } }, { fields, locate });
      return;
    }
    if (entry && !Object.keys(value).length) {
      toast("nothing changed");
      page.closeEditor();
      return;
    }
    save.disabled = true;
    try {
      const target = entry ? entry.name : after.name;
      if (!entry) delete value.name;
      const reply = await call("PATCH", "/client-keys", { json: { name: target, value } });
      toast(entry ? `${after.name} saved` : `${after.name} added`);
      await page.refresh((reply.data && reply.data["generated-keys"]) || []);
    } catch (error) {
      if (error.status === 401) return;
      showProblems(form, error, { fields, locate });
      save.disabled = false;
    }
  });
  return form;
}

// A key the server generated, in full: the only time it is shown.
function generatedNotice(generated) {
  if (!generated.length) return null;
  return h(
    "section",
    { class: "card notice", id: "generated-keys", role: "status" },
    h("h2", {}, generated.length === 1 ? "New key" : "New keys"),
    h("p", {}, "Copy it now: this is the only time the full key is shown (the list shows it masked)."),
    h("ul", { class: "plain" }, generated.map((g) => h("li", { dataset: { name: g.name } }, h("span", { class: "label" }, g.name), ": ", h("code", { class: "generated-key" }, g.key)))),
  );
}

function keyRow(entry, today, month, page) {
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
    h("td", { class: "actions" }, rowActions(entry, page)),
  ];
  cells.forEach((cell, i) => {
    cell.dataset.label = HEADERS[i].replace("#", "");
  });
  return h("tr", { dataset: { name: entry.name } }, cells);
}

function rowActions(entry, page) {
  const edit = h("button", { type: "button", class: "small", "data-action": "edit" }, "Edit");
  edit.addEventListener("click", () => page.openEditor(entry));
  const remove = h("button", { type: "button", class: "small danger", "data-action": "delete" }, "Delete");
  remove.addEventListener("click", async () => {
    if (!(await confirmDialog(`Delete the client key ${entry.name}? Clients using it are refused at once.`))) return;
    remove.disabled = true;
    try {
      await call("DELETE", "/client-keys", { query: { name: entry.name } });
      toast(`${entry.name} deleted`);
      await page.refresh();
    } catch (error) {
      toast(error.message, "error");
      remove.disabled = false;
    }
  });
  return [edit, remove];
}

export async function renderClientKeys(main) {
  const box = h("div", { id: "client-keys-page" });
  const page = {
    entries: [],
    closeEditor() {
      const open = box.querySelector("#client-key-form");
      if (open) open.remove();
    },
    openEditor(entry) {
      page.closeEditor();
      const form = keyForm(entry, page.entries.map((e) => e.name), page);
      box.querySelector(".editor-slot").append(form);
      form.scrollIntoView({ block: "nearest" });
      form.querySelector("input").focus();
    },
    async refresh(generated = []) {
      await draw(box, page, generated);
    },
  };
  await draw(box, page, []);
  main.replaceChildren(box);
}

async function draw(box, page, generated) {
  const now = new Date();
  const day = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate()));
  const month = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), 1));
  const summary = (from) => get("/usage/summary", { "group-by": "api-key", bucket: "day", from: from.toISOString(), to: now.toISOString() });
  const [keys, plain, today, thisMonth] = await Promise.all([get("/client-keys"), get("/api-keys"), summary(day), summary(month)]);
  const entries = (keys.data && keys.data["client-keys"]) || [];
  const plainCount = ((plain.data && plain.data["api-keys"]) || []).length;
  const usedToday = usageByName(today.data.buckets);
  const usedMonth = usageByName(thisMonth.data.buckets);
  page.entries = entries;
  const rows = entries.map((entry) => keyRow(entry, usedToday, usedMonth, page));
  const add = h("button", { type: "button", class: "primary", "data-action": "add", id: "add-client-key" }, "Add client key");
  add.addEventListener("click", () => page.openEditor(null));

  box.replaceChildren(
    h("div", { class: "page-head" }, h("h1", {}, "Client keys"), add),
    generatedNotice(generated) || "",
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
          h("tbody", {}, rows.length ? rows : h("tr", {}, h("td", { colspan: HEADERS.length, class: "muted" }, "No client keys yet: add one."))),
        ),
      ),
      h("div", { class: "editor-slot" }),
      h(
        "p",
        { id: "plain-keys", class: "muted" },
        plainCount === 1 ? "1 plain key in api-keys" : `${fmtInt(plainCount)} plain keys in api-keys`,
        " (no name and no limits; their use shows under their masked form on the Overview).",
      ),
    ),
  );
}
