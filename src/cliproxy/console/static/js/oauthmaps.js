// The OAuth-channel maps of config.yaml: models a channel's accounts must not serve
// (oauth-excluded-models) and the aliases clients use for its models (oauth-model-alias).
// One channel is saved with PATCH {channel, <list>} and removed with DELETE ?channel=.

import { call, get } from "./api.js";
import { confirmDialog, h, toast } from "./dom.js";
import { field, linesInput, readLines, rowsEditor, showProblems, textInput } from "./forms.js";

const MAPS = [
  {
    key: "oauth-excluded-models",
    title: "OAuth excluded models",
    about: "Model patterns (* wildcards) the accounts of a channel must not serve.",
    list: "models",
  },
  {
    key: "oauth-model-alias",
    title: "OAuth model aliases",
    about: "Names clients may ask for, per channel; with fork the upstream name stays listed beside the alias.",
    list: "aliases",
  },
];

const ALIAS_COLUMNS = [
  { key: "name", label: "Upstream model", placeholder: "gpt-5" },
  { key: "alias", label: "Alias", placeholder: "g5" },
  { key: "fork", label: "fork", checkbox: true },
];

function shown(spec, items) {
  if (spec.list === "models") return h("ul", { class: "plain" }, items.map((m) => h("li", { class: "model" }, m)));
  return h(
    "ul",
    { class: "plain models" },
    items.map((a) => h("li", {}, h("span", { class: "model" }, a.name), " → ", h("span", { class: "model alias" }, a.alias || a.name), a.fork ? h("span", { class: "muted" }, " (fork)") : null)),
  );
}

function mapForm(spec, channel, items, reload, close) {
  const fields = new Map();
  const name = textInput(channel || "", { placeholder: "codex, claude, gemini, …", readonly: channel ? true : null });
  fields.set("channel", name);
  let editor;
  if (spec.list === "models") {
    editor = linesInput(items, { placeholder: "one pattern per line" });
    fields.set(spec.list, editor);
  } else {
    editor = rowsEditor({ name: "aliases", columns: ALIAS_COLUMNS, rows: (items || []).map((a) => ({ ...a })), addLabel: "Add alias", empty: "No aliases." });
  }
  const save = h("button", { type: "submit", class: "primary", "data-action": "save" }, "Save");
  const cancel = h("button", { type: "button", "data-action": "cancel" }, "Cancel");
  const listField = field(spec.list === "models" ? "Excluded models" : "Aliases", editor, { path: spec.list, wide: true });
  if (spec.list !== "models") fields.set(spec.list, listField);
  const form = h(
    "form",
    { class: "editor", novalidate: true, dataset: { map: spec.key, channel: channel || "new" } },
    h("h3", {}, channel ? `${spec.title}: ${channel}` : `New channel in ${spec.key}`),
    h("div", { class: "form-grid" }, field("Channel", name, { path: "channel" })),
    listField,
    h("p", { class: "form-error error", role: "alert", hidden: true }),
    h("div", { class: "row end" }, cancel, save),
  );
  cancel.addEventListener("click", close);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const target = name.value.trim().toLowerCase();
    let list;
    if (spec.list === "models") list = readLines(editor);
    else {
      const rows = editor.read();
      rows.forEach((r, i) => {
        fields.set(`aliases[${i}]`, r.el);
        fields.set(`aliases[${i}].name`, r.inputs.name);
        fields.set(`aliases[${i}].alias`, r.inputs.alias);
      });
      list = rows.map((r) => {
        const row = { ...(r.original || {}), name: r.values.name, alias: r.values.alias };
        if (r.values.fork) row.fork = true;
        else delete row.fork;
        return row;
      });
    }
    // The route's own refusals name "channel"/"aliases[0].name"; the config's name the key
    // ("oauth-model-alias.codex[0].alias").
    const ownKey = `${spec.key}.${target}`;
    const locate = (path) => {
      if (path === "provider" || path === "channel") return "channel";
      if (path.startsWith(spec.list)) return path;
      if (path.startsWith(ownKey)) return spec.list + path.slice(ownKey.length);
      return null;
    };
    if (!target) {
      showProblems(form, { message: "is required (a channel name such as codex or claude)", body: { field: "channel" } }, { fields, locate });
      return;
    }
    if (!list.length) {
      showProblems(form, { message: "add at least one, or use Delete to remove the channel", body: { field: spec.list } }, { fields, locate });
      return;
    }
    save.disabled = true;
    try {
      await call("PATCH", `/${spec.key}`, { json: { channel: target, [spec.list]: list } });
      toast(`${spec.key}: ${target} saved`);
      await reload();
    } catch (error) {
      if (error.status === 401) return;
      showProblems(form, error, { fields, locate });
      save.disabled = false;
    }
  });
  return form;
}

function mapCard(spec, map, reload) {
  const slot = h("div", { class: "editor-slot" });
  const open = (channel, items) => {
    slot.replaceChildren(mapForm(spec, channel, items, reload, () => slot.replaceChildren()));
    const first = slot.querySelector("input:not([readonly]), textarea, input");
    if (first) first.focus();
  };
  const add = h("button", { type: "button", class: "small primary", "data-action": "add" }, "Add channel");
  add.addEventListener("click", () => open("", []));
  const channels = Object.keys(map).sort();
  const rows = channels.map((channel) => {
    const edit = h("button", { type: "button", class: "small", "data-action": "edit" }, "Edit");
    edit.addEventListener("click", () => open(channel, map[channel]));
    const remove = h("button", { type: "button", class: "small danger", "data-action": "delete" }, "Delete");
    remove.addEventListener("click", async () => {
      if (!(await confirmDialog(`Remove the channel ${channel} from ${spec.key}?`))) return;
      remove.disabled = true;
      try {
        await call("DELETE", `/${spec.key}`, { query: { channel } });
        toast(`${spec.key}: ${channel} removed`);
        await reload();
      } catch (error) {
        toast(error.message, "error");
        remove.disabled = false;
      }
    });
    const cells = [h("td", { class: "name" }, channel), h("td", { class: "models" }, shown(spec, map[channel])), h("td", { class: "actions" }, edit, remove)];
    ["Channel", spec.list === "models" ? "Excluded models" : "Aliases", "Actions"].forEach((label, i) => {
      cells[i].dataset.label = label;
    });
    return h("tr", { dataset: { channel } }, cells);
  });
  return h(
    "section",
    { class: "card oauth-map", id: `map-${spec.key}`, dataset: { map: spec.key } },
    h("div", { class: "card-head" }, h("h2", {}, `${spec.title} `, h("span", { class: "muted" }, `(${channels.length})`), " ", h("code", { class: "muted small-text" }, spec.key)), add),
    h("p", { class: "muted small-text" }, spec.about),
    h(
      "div",
      { class: "table-wrap" },
      h(
        "table",
        { class: "cards entries" },
        h("thead", {}, h("tr", {}, h("th", {}, "Channel"), h("th", {}, spec.list === "models" ? "Excluded models" : "Aliases"), h("th", {}, "Actions"))),
        h("tbody", {}, rows.length ? rows : h("tr", {}, h("td", { colspan: 3, class: "muted" }, "None."))),
      ),
    ),
    slot,
  );
}

// Fills `box` with both maps' cards; each save or removal reads them again.
export async function oauthMapCards(box) {
  async function reload() {
    const replies = await Promise.all(MAPS.map((spec) => get(`/${spec.key}`)));
    box.replaceChildren(
      h("h2", { class: "section-title" }, "OAuth accounts"),
      ...MAPS.map((spec, i) => mapCard(spec, (replies[i].data && replies[i].data[spec.key]) || {}, reload)),
    );
  }
  await reload();
}
