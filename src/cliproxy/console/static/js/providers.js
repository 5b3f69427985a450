// Providers and keys: the API-key lists of config.yaml, one card per management route, every
// entry editable. An edit is saved with PATCH {index, value: the fields that changed}, so the
// fields the form does not show (and the file's comments) stay as they are; an addition with
// PUT of the list as read just before plus the new entry (PATCH cannot add to these lists);
// a removal with DELETE ?index= after a confirmation. A value the API refuses shows its
// message next to its field, and nothing is written. API keys are shown masked; a form never
// holds a full key unless "Reveal" is pressed.

import { call, get } from "./api.js";
import { maskKey } from "./credentials.js";
import { confirmDialog, h, toast } from "./dom.js";
import { field, linesInput, readLines, readNumber, rowsEditor, secretInput, showProblems, textInput } from "./forms.js";
import { oauthMapCards } from "./oauthmaps.js";

// The lists of routes_keys.SECTIONS, in its order (a test holds the two equal).
export const PROVIDER_SECTIONS = [
  { key: "gemini-api-key", title: "Gemini API keys", routed: true },
  { key: "claude-api-key", title: "Claude API keys", routed: true },
  { key: "codex-api-key", title: "Codex API keys", routed: true },
  { key: "openai-compatibility", title: "OpenAI-compatible providers", routed: true, compat: true },
  { key: "vertex-api-key", title: "Vertex API keys", routed: true },
  { key: "xai-api-key", title: "xAI API keys", routed: true },
  { key: "interactions-api-key", title: "Gemini Interactions keys", routed: false },
];

const HEADER_COLUMNS = [
  { key: "name", label: "Header", placeholder: "X-Header" },
  { key: "value", label: "Value" },
];
const MODEL_COLUMNS = [
  { key: "name", label: "Upstream model", placeholder: "claude-sonnet-4-5" },
  { key: "alias", label: "Alias clients ask for", placeholder: "(the same name)" },
];
const KEY_ENTRY_COLUMNS = [
  { key: "api-key", label: "API key", secret: true, mask: maskKey },
  { key: "proxy-url", label: "Proxy URL", placeholder: "the global proxy-url" },
];

const same = (a, b) => JSON.stringify(a) === JSON.stringify(b);

function orNull(text) {
  return text === "" ? null : text;
}

function modelRows(models) {
  return (models || []).map((m) => (typeof m === "string" ? { name: m } : { ...m }));
}

// A model as it is written: its other fields kept, an empty alias left out.
function modelValue(model) {
  const out = { ...model };
  if (!out.alias) delete out.alias;
  return out;
}

function headersValue(rows) {
  return Object.fromEntries(rows.map((r) => [r.values.name, r.values.value]));
}

// --- the lists -----------------------------------------------------------------------------

function modelList(models) {
  const rows = modelRows(models);
  if (!rows.length) return h("span", { class: "muted" }, "default list");
  return h(
    "ul",
    { class: "plain models" },
    rows.map((m) => h("li", {}, h("span", { class: "model" }, m.name), m.alias ? [" → ", h("span", { class: "model alias" }, m.alias)] : null)),
  );
}

function plainList(items, empty) {
  if (!items || !items.length) return h("span", { class: "muted" }, empty);
  return h("ul", { class: "plain" }, items.map((item) => h("li", { class: "model" }, item)));
}

function table(headers, rows, empty) {
  for (const row of rows) {
    [...row.children].forEach((cell, i) => {
      cell.dataset.label = headers[i];
    });
  }
  return h(
    "div",
    { class: "table-wrap" },
    h(
      "table",
      { class: "cards entries" },
      h("thead", {}, h("tr", {}, headers.map((t) => h("th", {}, t)))),
      h("tbody", {}, rows.length ? rows : h("tr", {}, h("td", { colspan: headers.length, class: "muted" }, empty))),
    ),
  );
}

function actions(section, entry, index, page) {
  const edit = h("button", { type: "button", class: "small", "data-action": "edit" }, "Edit");
  edit.addEventListener("click", () => page.openEditor(section, entry, index));
  const remove = h("button", { type: "button", class: "small danger", "data-action": "delete" }, "Delete");
  remove.addEventListener("click", async () => {
    const what = section.compat ? `the provider ${entry.name}` : `${section.key}[${index}] (key ${maskKey(entry["api-key"])})`;
    if (!(await confirmDialog(`Delete ${what}? It is removed from config.yaml and from the pool at once.`))) return;
    remove.disabled = true;
    try {
      await call("DELETE", `/${section.key}`, { query: { index } });
      toast(`${section.key}[${index}] deleted`);
      await page.refresh();
    } catch (error) {
      toast(error.message, "error");
      remove.disabled = false;
    }
  });
  return h("td", { class: "actions" }, edit, remove);
}

function keyRow(section, entry, index, page) {
  return h(
    "tr",
    { dataset: { index: String(index) } },
    h("td", { class: "name" }, h("div", { class: "label" }, `#${index}`), entry.prefix ? h("div", { class: "muted small-text" }, `prefix ${entry.prefix}/`) : null),
    h("td", { class: "mono key" }, entry["api-key"] ? maskKey(entry["api-key"]) : h("span", { class: "muted" }, "none")),
    h(
      "td",
      { class: "url" },
      entry["base-url"] ? h("span", { class: "mono" }, entry["base-url"]) : h("span", { class: "muted" }, "default"),
      entry["proxy-url"] ? h("div", { class: "muted small-text" }, `proxy ${entry["proxy-url"]}`) : null,
    ),
    h("td", { class: "models" }, modelList(entry.models)),
    h("td", { class: "excluded" }, plainList(entry["excluded-models"], "none")),
    actions(section, entry, index, page),
  );
}

function compatRow(section, entry, index, page) {
  const keys = entry["api-key-entries"] || [];
  return h(
    "tr",
    { dataset: { index: String(index), name: entry.name } },
    h("td", { class: "name" }, h("div", { class: "label" }, entry.name), entry.prefix ? h("div", { class: "muted small-text" }, `prefix ${entry.prefix}/`) : null, entry.disabled ? h("span", { class: "badge muted" }, "disabled") : null),
    h("td", { class: "url mono" }, entry["base-url"] || ""),
    h("td", { class: "mono key" }, keys.length ? h("ul", { class: "plain" }, keys.map((k) => h("li", {}, maskKey(k["api-key"])))) : h("span", { class: "muted" }, "none")),
    h("td", { class: "models" }, modelList(entry.models)),
    actions(section, entry, index, page),
  );
}

function sectionCard(section, entries, page) {
  const add = h("button", { type: "button", class: "small primary", "data-action": "add" }, section.compat ? "Add provider" : "Add key");
  add.addEventListener("click", () => page.openEditor(section, null, entries.length));
  const rows = entries.map((entry, i) => (section.compat ? compatRow : keyRow)(section, entry, i, page));
  const headers = section.compat ? ["Provider", "Base URL", "API keys", "Models", "Actions"] : ["Entry", "API key", "Base URL", "Models", "Excluded models", "Actions"];
  return h(
    "section",
    { class: "card provider", id: `section-${section.key}`, dataset: { section: section.key } },
    h("div", { class: "card-head" }, h("h2", {}, `${section.title} `, h("span", { class: "muted" }, `(${entries.length})`), " ", h("code", { class: "muted small-text" }, section.key)), add),
    section.routed ? null : h("p", { class: "muted small-text" }, "Kept in config.yaml and editable here, as CLIProxyAPI's tools expect; cliproxy does not route requests to these yet."),
    table(headers, rows, "None yet."),
    h("div", { class: "editor-slot" }),
  );
}

// --- the editor ----------------------------------------------------------------------------

function numberField(label, value, path, hint, fields) {
  const input = textInput(value ?? "", { inputmode: "numeric" });
  fields.set(path, input);
  return field(label, input, { path, hint });
}

function textField(label, value, path, props, fields, hint) {
  const input = textInput(value ?? "", props);
  fields.set(path, input);
  return field(label, input, { path, hint });
}

function rowsField(label, editor, path, fields, hint) {
  const wrap = field(label, editor, { path, hint, wide: true });
  fields.set(path, wrap);
  return wrap;
}

// Each form returns {body, read()}: read() gives {value: the fields to write, fields: API
// path -> element, problem: a check the API cannot make for us, or null}.
function keyForm(section, entry) {
  const fields = new Map();
  const old = entry || {};
  const apiKey = secretInput(old["api-key"] || "", maskKey(old["api-key"]), { required: !entry });
  const keyInput = apiKey.querySelector("input");
  fields.set("api-key", keyInput);
  const headers = rowsEditor({ name: "headers", columns: HEADER_COLUMNS, rows: Object.entries(old.headers || {}).map(([name, value]) => ({ name, value })), addLabel: "Add header", empty: "No extra headers." });
  const models = rowsEditor({ name: "models", columns: MODEL_COLUMNS, rows: modelRows(old.models), addLabel: "Add model", empty: "No models listed: the provider's default list." });
  const excluded = linesInput(old["excluded-models"], { placeholder: "one pattern per line, * wildcards" });
  fields.set("excluded-models", excluded);
  const body = [
    h("div", { class: "form-grid" }, field("API key", apiKey, { path: "api-key", hint: entry ? "Leave empty to keep the key." : null }), textField("Base URL", old["base-url"], "base-url", { placeholder: "the provider's default", inputmode: "url" }, fields), textField("Proxy URL", old["proxy-url"], "proxy-url", { placeholder: "the global proxy-url" }, fields, "http(s)://, socks5://, direct or none"), textField("Prefix", old.prefix, "prefix", { placeholder: "none" }, fields, "Clients ask for prefix/model."), numberField("Priority", old.priority, "priority", "Higher is tried first.", fields), numberField("Weight", old.weight, "weight", "For weighted round-robin; 0 or more.", fields)),
    rowsField("Headers", headers, "headers", fields),
    rowsField("Models", models, "models", fields),
    field("Excluded models", excluded, { path: "excluded-models", wide: true }),
  ];
  const before = {
    "base-url": old["base-url"] || "",
    "proxy-url": old["proxy-url"] || "",
    prefix: old.prefix || "",
    priority: old.priority ?? null,
    weight: old.weight ?? null,
    headers: old.headers || {},
    models: modelRows(old.models).map(modelValue),
    "excluded-models": old["excluded-models"] || [],
  };
  function read() {
    const headerRows = headers.read();
    const modelRowsNow = models.read();
    headerRows.forEach((r, i) => {
      fields.set(`headers.${r.values.name}`, r.el);
      fields.set(`headers[${i}]`, r.el);
    });
    modelRowsNow.forEach((r, i) => {
      fields.set(`models[${i}]`, r.el);
      fields.set(`models[${i}].name`, r.inputs.name);
      fields.set(`models[${i}].alias`, r.inputs.alias);
    });
    const after = {
      "base-url": fields.get("base-url").value.trim(),
      "proxy-url": fields.get("proxy-url").value.trim(),
      prefix: fields.get("prefix").value.trim(),
      priority: readNumber(fields.get("priority")),
      weight: readNumber(fields.get("weight")),
      headers: headersValue(headerRows),
      models: modelRowsNow.map((r) => modelValue({ ...(r.original || {}), name: r.values.name, alias: r.values.alias })),
      "excluded-models": readLines(excluded),
    };
    const value = {};
    for (const [name, now] of Object.entries(after)) {
      if (entry && same(now, before[name])) continue;
      const empty = now === "" || now === null || (Array.isArray(now) && !now.length) || (typeof now === "object" && now !== null && !Array.isArray(now) && !Object.keys(now).length);
      if (empty) {
        if (entry) value[name] = null;
      } else value[name] = now;
    }
    if (keyInput.changedSecret()) value["api-key"] = keyInput.value.trim();
    let problem = null;
    if (!entry && section.routed && !value["api-key"] && !value["base-url"]) {
      problem = { field: "api-key", message: "is required (or a base-url, for an upstream that takes no key)" };
    }
    return { value, fields, problem };
  }
  return { body, read };
}

function compatForm(section, entry) {
  const fields = new Map();
  const old = entry || {};
  const headers = rowsEditor({ name: "headers", columns: HEADER_COLUMNS, rows: Object.entries(old.headers || {}).map(([name, value]) => ({ name, value })), addLabel: "Add header", empty: "No extra headers." });
  const keys = rowsEditor({ name: "api-key-entries", columns: KEY_ENTRY_COLUMNS, rows: (old["api-key-entries"] || []).map((k) => ({ ...k })), addLabel: "Add API key", empty: "No API keys: requests go without one." });
  const models = rowsEditor({ name: "models", columns: MODEL_COLUMNS, rows: modelRows(old.models), addLabel: "Add model", empty: "No models listed." });
  const body = [
    h("div", { class: "form-grid" }, textField("Name", old.name, "name", { placeholder: "local" }, fields, "Names the provider in logs and model listings."), textField("Base URL", old["base-url"], "base-url", { placeholder: "the server's URL, up to /v1", inputmode: "url" }, fields), textField("Prefix", old.prefix, "prefix", { placeholder: "none" }, fields, "Clients ask for prefix/model."), numberField("Priority", old.priority, "priority", "Higher is tried first.", fields)),
    rowsField("API keys", keys, "api-key-entries", fields),
    rowsField("Models", models, "models", fields),
    rowsField("Headers", headers, "headers", fields),
  ];
  // A key entry as it is written: its other fields kept, defaults and auth-index left out.
  const keyValue = (k) => {
    const out = { ...k };
    delete out["auth-index"];
    for (const [name, value] of Object.entries(out)) {
      if (value === "" || value === null || (name === "weight" && value === 1)) delete out[name];
    }
    return out;
  };
  const before = {
    name: old.name || "",
    "base-url": old["base-url"] || "",
    prefix: old.prefix || "",
    priority: old.priority ?? null,
    "api-key-entries": (old["api-key-entries"] || []).map(keyValue),
    models: modelRows(old.models).map(modelValue),
    headers: old.headers || {},
  };
  function read() {
    const keyRows = keys.read();
    keyRows.forEach((r, i) => {
      fields.set(`api-key-entries[${i}]`, r.el);
      fields.set(`api-key-entries[${i}].api-key`, r.inputs["api-key"]);
      fields.set(`api-key-entries[${i}].proxy-url`, r.inputs["proxy-url"]);
    });
    const modelRowsNow = models.read();
    modelRowsNow.forEach((r, i) => {
      fields.set(`models[${i}]`, r.el);
      fields.set(`models[${i}].name`, r.inputs.name);
      fields.set(`models[${i}].alias`, r.inputs.alias);
    });
    const headerRows = headers.read();
    headerRows.forEach((r) => fields.set(`headers.${r.values.name}`, r.el));
    const after = {
      name: fields.get("name").value.trim(),
      "base-url": fields.get("base-url").value.trim(),
      prefix: fields.get("prefix").value.trim(),
      priority: readNumber(fields.get("priority")),
      "api-key-entries": keyRows.map((r) => keyValue({ ...(r.original || {}), "api-key": r.values["api-key"], "proxy-url": r.values["proxy-url"] })),
      models: modelRowsNow.map((r) => modelValue({ ...(r.original || {}), name: r.values.name, alias: r.values.alias })),
      headers: headersValue(headerRows),
    };
    const value = {};
    for (const [name, now] of Object.entries(after)) {
      if (entry && same(now, before[name])) continue;
      const empty = now === "" || now === null || (Array.isArray(now) && !now.length) || (typeof now === "object" && now !== null && !Array.isArray(now) && !Object.keys(now).length);
      if (empty) {
        if (entry) value[name] = name === "name" ? "" : null;
      } else value[name] = now;
    }
    // The API removes a provider whose base-url is set to "" (as CLIProxyAPI does): an
    // emptied field here is a mistake to point out, not a deletion.
    const problem = after["base-url"] ? null : { field: "base-url", message: "is required (an http(s) URL); use Delete to remove the provider" };
    return { value, fields, problem };
  }
  return { body, read };
}

function editor(section, entry, index, page) {
  const built = (section.compat ? compatForm : keyForm)(section, entry);
  const title = entry ? `Edit ${section.key}[${index}]${section.compat ? ` (${entry.name})` : ""}` : section.compat ? "New OpenAI-compatible provider" : `New ${section.title.replace(/s$/, "")}`;
  const save = h("button", { type: "submit", class: "primary", "data-action": "save" }, "Save");
  const cancel = h("button", { type: "button", "data-action": "cancel" }, "Cancel");
  const form = h(
    "form",
    { class: "editor", novalidate: true, "aria-label": title, dataset: { section: section.key, index: entry ? String(index) : "new" } },
    h("h3", {}, title),
    built.body,
    h("p", { class: "form-error error", role: "alert", hidden: true }),
    h("div", { class: "row end" }, cancel, save),
  );
  cancel.addEventListener("click", () => page.closeEditor());
  // The API's path of a field in this entry ("claude-api-key[3].models[0].alias") as the
  // form's own ("models[0].alias"); null for another entry's. A PATCH names the entry by its
  // place in the file, which can differ from its place in the list (the server skips empty
  // entries), so any index of this section is this entry's while editing.
  const prefix = new RegExp(`^${section.key.replace(/[-[\]]/g, "\\$&")}\\[(\\d+)\\](?:\\.(.+))?$`);
  const locate = (path) => {
    const found = prefix.exec(path);
    if (!found || !found[2]) return null;
    if (!entry && Number(found[1]) !== index) return null;
    return found[2];
  };
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const { value, fields, problem } = built.read();
    if (problem) {
      showProblems(form, { message: problem.message, body: { field: `${section.key}[${index}].${problem.field}`, error: problem.message } }, { fields, locate });
      return;
    }
    if (entry && !Object.keys(value).length) {
      toast("nothing changed");
      page.closeEditor();
      return;
    }
    save.disabled = true;
    try {
      if (entry) {
        await call("PATCH", `/${section.key}`, { json: { index, value } });
      } else {
        const fresh = await get(`/${section.key}`);
        const list = (fresh.data && fresh.data[section.key]) || [];
        index = list.length;
        await call("PUT", `/${section.key}`, { json: [...list, value] });
      }
      toast(entry ? `${section.key}[${index}] saved` : `${section.key}[${index}] added`);
      await page.refresh();
    } catch (error) {
      if (error.status === 401) return;
      showProblems(form, error, { fields, locate });
      save.disabled = false;
    }
  });
  return form;
}

export async function renderProviders(main) {
  const cards = h("div", { id: "provider-lists" });
  const maps = h("div", { id: "oauth-maps" });
  const page = {
    open: null,
    closeEditor() {
      if (page.open) page.open.remove();
      page.open = null;
    },
    openEditor(section, entry, index) {
      page.closeEditor();
      const slot = cards.querySelector(`[data-section="${section.key}"] .editor-slot`);
      page.open = editor(section, entry, index, page);
      slot.append(page.open);
      page.open.scrollIntoView({ block: "nearest" });
      const first = page.open.querySelector("input");
      if (first) first.focus();
    },
    async refresh() {
      page.closeEditor();
      const lists = await Promise.all(PROVIDER_SECTIONS.map((s) => get(`/${s.key}`)));
      cards.replaceChildren(...PROVIDER_SECTIONS.map((s, i) => sectionCard(s, (lists[i].data && lists[i].data[s.key]) || [], page)));
    },
  };
  await Promise.all([page.refresh(), oauthMapCards(maps)]);
  main.replaceChildren(
    h("div", { class: "page-head" }, h("h1", {}, "Providers and keys")),
    h("p", { class: "muted" }, "The upstream API keys of config.yaml. A save is checked like the whole file and applied at once; a value the server refuses is shown by its field and nothing is written."),
    cards,
    maps,
  );
}
