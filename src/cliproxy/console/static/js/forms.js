// Editing forms: labelled fields, editable rows (models, headers, keys), and the API's refusals
// shown next to the field they name. The management API answers a refused value with
// `field` (its path in the config's names, "claude-api-key[0].base-url") and, when the whole
// config was checked, `problems` [{field, message, line}] (docs/management-api.md, "Writes").

import { h } from "./dom.js";

let seq = 0;

function nextId(prefix) {
  seq += 1;
  return `${prefix}-${seq}`;
}

export function textInput(value, props = {}) {
  const input = h("input", { type: "text", autocomplete: "off", spellcheck: "false", ...props });
  input.value = value === undefined || value === null ? "" : String(value);
  return input;
}

// A labelled field. `path` is the field's name in the API; a refusal that names it shows here.
// A group of inputs (rows) gets a labelled group instead of a label for one input.
export function field(label, control, { path, hint, wide } = {}) {
  const own = "input, textarea, select";
  const input = control.matches(own) ? control : control.querySelector(":scope > input, :scope > textarea, :scope > select, :scope > .secret-wrap > input");
  if (input && !input.id) input.id = nextId("field");
  const labelEl = h("label", input ? { for: input.id } : { id: nextId("label") }, label);
  const error = h("p", { class: "field-error", role: "alert", hidden: true });
  const props = { class: wide ? "field wide" : "field", dataset: path ? { field: path } : {} };
  if (!input) Object.assign(props, { role: "group", "aria-labelledby": labelEl.id });
  return h("div", props, labelEl, control, hint ? h("p", { class: "hint muted small-text" }, hint) : null, error);
}

// A secret (an API key) that is never put in the page unless the user asks: the input starts
// empty with the masked key as its placeholder, and "Reveal" fills in the full key.
export function secretInput(current, masked, { required } = {}) {
  const input = h("input", { type: "password", autocomplete: "new-password", spellcheck: "false", class: "secret" });
  input.placeholder = current ? `unchanged (${masked})` : required ? "required" : "";
  const wrap = h("div", { class: "secret-wrap" }, input);
  if (current) {
    const reveal = h("button", { type: "button", class: "small", "data-action": "reveal" }, "Reveal");
    reveal.addEventListener("click", () => {
      if (input.type === "password") {
        if (!input.value) input.value = current;
        input.type = "text";
        reveal.textContent = "Hide";
      } else {
        input.type = "password";
        reveal.textContent = "Reveal";
      }
    });
    wrap.append(reveal);
  }
  // The key to send: what was typed (or revealed), else the key it had.
  input.secretValue = () => input.value.trim() || current || "";
  input.changedSecret = () => input.value.trim() !== "" && input.value.trim() !== (current || "");
  return wrap;
}

// Rows of inputs (models: name + alias; headers: name + value; key entries: key + proxy).
// `columns`: [{key, label, placeholder, secret}]; each row keeps the object it came from, so
// fields the form does not show are sent back unchanged.
export function rowsEditor({ columns, rows, addLabel, empty, name }) {
  const list = h("div", { class: "rows", dataset: { rows: name } });
  const head = h("div", { class: "rows-head" }, columns.map((c) => h("span", {}, c.label)), h("span", {}));
  const emptyNote = h("p", { class: "muted small-text rows-empty" }, empty || "none");
  function addRow(original = null) {
    const inputs = {};
    const cells = columns.map((c) => {
      let control;
      if (c.secret) {
        control = secretInput(original ? original[c.key] : "", original ? c.mask(original[c.key]) : "", {});
        inputs[c.key] = control.querySelector("input");
      } else if (c.checkbox) {
        const box = h("input", { type: "checkbox" });
        box.checked = Boolean(original && original[c.key]);
        control = h("label", { class: "check" }, box, c.label);
        inputs[c.key] = box;
      } else {
        control = textInput(original ? original[c.key] : "", { placeholder: c.placeholder || "" });
        inputs[c.key] = control;
      }
      inputs[c.key].setAttribute("aria-label", c.label);
      inputs[c.key].dataset.column = c.key;
      return h("div", { class: "cell" }, control);
    });
    const remove = h("button", { type: "button", class: "small danger", "data-action": "remove-row", "aria-label": `Remove this ${name} row` }, "Remove");
    const rowEl = h("div", { class: "sub-row" }, h("div", { class: "cells" }, cells, remove), h("p", { class: "field-error", role: "alert", hidden: true }));
    rowEl.rowData = { original, inputs };
    remove.addEventListener("click", () => {
      rowEl.remove();
      sync();
    });
    list.append(rowEl);
    sync();
    return rowEl;
  }
  function sync() {
    const count = list.querySelectorAll(":scope > .sub-row").length;
    emptyNote.hidden = count > 0;
    head.hidden = count === 0;
  }
  for (const row of rows || []) addRow(row);
  const add = h("button", { type: "button", class: "small", "data-action": `add-${name}` }, addLabel);
  add.addEventListener("click", () => {
    const added = addRow();
    added.querySelector("input").focus();
  });
  sync();
  const el = h("div", { class: "rows-editor", dataset: { columns: String(columns.length) } }, head, list, emptyNote, add);
  // The rows as they are now: [{original, values, el, inputs}]; a row with every text left
  // empty is left out (as the API drops a model row without name and alias).
  el.read = () =>
    [...list.querySelectorAll(":scope > .sub-row")]
      .map((rowEl) => {
        const values = {};
        for (const c of columns) {
          const input = rowEl.rowData.inputs[c.key];
          values[c.key] = c.secret ? input.secretValue() : c.checkbox ? input.checked : input.value.trim();
        }
        return { original: rowEl.rowData.original, values, el: rowEl, inputs: rowEl.rowData.inputs };
      })
      .filter((row) => columns.some((c) => !c.checkbox && row.values[c.key]));
  return el;
}

// One pattern (or model) per line.
export function linesInput(list, props = {}) {
  const area = h("textarea", { rows: 3, spellcheck: "false", ...props });
  area.value = (list || []).join("\n");
  return area;
}

export function readLines(area) {
  return area.value
    .split("\n")
    .map((line) => line.trim())
    .filter(Boolean);
}

// A number field's value for the API: null when empty (the default / no limit), the number
// when it reads as one, else the text as typed (so the API's own message says what is wrong).
export function readNumber(input) {
  const text = input.value.trim();
  if (!text) return null;
  const number = Number(text);
  return Number.isFinite(number) ? number : text;
}

// "models[1].alias" -> ["models[1].alias", "models[1]", "models"]: the field itself, then the
// groups that hold it, so a refusal lands on the nearest element the form has.
function widen(path) {
  const parts = path.match(/[^.[\]]+|\[\d+\]/g) || [];
  const found = [];
  for (let n = parts.length; n > 0; n -= 1) {
    found.push(parts.slice(0, n).reduce((text, part) => (part.startsWith("[") || !text ? text + part : `${text}.${part}`), ""));
  }
  return found;
}

// The refusal as [{path, message}]: `problems` when the API listed them, else `field` with its
// message, else one problem for the whole form. A message's leading "<path>: " is left out
// where the problem is shown by its field.
export function problemsOf(error) {
  const body = (error && error.body) || {};
  if (Array.isArray(body.problems) && body.problems.length) {
    return body.problems.map((p) => ({ path: typeof p.field === "string" ? p.field : "", message: String(p.message || "") }));
  }
  const text = typeof body.message === "string" && body.message ? body.message : error.message;
  if (typeof body.field === "string" && body.field) {
    const prefix = `${body.field}: `;
    return [{ path: body.field, message: text.startsWith(prefix) ? text.slice(prefix.length) : text }];
  }
  return [{ path: "", message: text }];
}

export function clearProblems(form) {
  for (const el of form.querySelectorAll(".field-error")) {
    el.textContent = "";
    el.hidden = true;
  }
  for (const el of form.querySelectorAll("[aria-invalid]")) {
    el.removeAttribute("aria-invalid");
    el.removeAttribute("aria-describedby");
  }
}

function showAt(target, message) {
  const box = target.closest(".sub-row, .field, form");
  const slot = box.querySelector(":scope > .field-error") || box.querySelector(".form-error");
  slot.textContent = slot.hidden || !slot.textContent ? message : `${slot.textContent}; ${message}`;
  slot.hidden = false;
  const input = target.matches("input, textarea, select") ? target : null;
  if (input) {
    input.setAttribute("aria-invalid", "true");
    if (!slot.id) slot.id = nextId("error");
    input.setAttribute("aria-describedby", slot.id);
  }
  return box;
}

// Shows each problem next to its element: `locate(path)` maps an API path to the form's own
// path (or null: not this form's), `fields` maps form paths to elements. The rest goes to the
// form's general error line. Focuses the first field shown.
export function showProblems(form, error, { fields, locate }) {
  clearProblems(form);
  let first = null;
  for (const problem of problemsOf(error)) {
    const own = problem.path ? locate(problem.path) : null;
    let target = null;
    let message = problem.message;
    if (own !== null && own !== undefined) {
      for (const candidate of widen(own)) {
        if (fields.has(candidate)) {
          target = fields.get(candidate);
          break;
        }
      }
    }
    if (!target) {
      target = form.querySelector(".form-error");
      if (problem.path) message = `${problem.path}: ${message}`;
    }
    showAt(target, message);
    first = first || target;
  }
  if (first && first.focus) first.focus();
}
