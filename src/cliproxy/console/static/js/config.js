// Configuration: the server's config.yaml in a YAML editor (CodeMirror 5). "Review changes"
// has the server check the whole text (POST /config.yaml/validate, which saves nothing) and
// shows the change as a line diff (jsdiff) against the file as it is on disk now; only "Save"
// writes it (PUT /config.yaml), and the server applies it at once. A refusal shows the server's
// message and marks its line in the editor. Both libraries are loaded when this page first
// opens, so the other pages never pay for them.

import { call, reportUnauthorized } from "./api.js";
import { append, fmtInt, h, toast } from "./dom.js";

const VENDOR = "/console/vendor/";
const YAML_TYPE = "application/yaml";
const SECRET_KEY_LINE = /^\s*secret-key\s*:/;

// --- the vendored libraries --------------------------------------------------------------

let libraries = null;

function loadScript(src) {
  return new Promise((resolve, reject) => {
    const script = h("script", { src });
    script.addEventListener("load", resolve);
    script.addEventListener("error", () => reject(new Error(`cannot load ${src}`)));
    document.head.append(script);
  });
}

function loadStyle(href) {
  return new Promise((resolve, reject) => {
    const link = h("link", { rel: "stylesheet", href });
    link.addEventListener("load", resolve);
    link.addEventListener("error", () => reject(new Error(`cannot load ${href}`)));
    // Before console.css, so the console's colours win over the editor's defaults.
    document.head.insertBefore(link, document.querySelector('link[rel="stylesheet"]'));
  });
}

function loadLibraries() {
  if (!libraries) {
    libraries = Promise.all([
      loadStyle(VENDOR + "codemirror.css"),
      loadScript(VENDOR + "codemirror.js").then(() => loadScript(VENDOR + "codemirror-mode-yaml.js")),
      loadScript(VENDOR + "diff.min.js"),
    ]).catch((error) => {
      libraries = null; // try again on the next visit
      throw error;
    });
  }
  return libraries;
}

// --- unsaved edits survive a visit to another page (never a reload or a sign-out) ---------

let draft = null;

export function forgetConfigDraft() {
  draft = null;
}

window.addEventListener("beforeunload", (event) => {
  if (draft !== null) event.preventDefault();
});

// --- the file -------------------------------------------------------------------------------

async function fileText() {
  const reply = await call("GET", "/config.yaml", { raw: true });
  return reply.blob.text();
}

function lineCount(text) {
  if (!text) return 0;
  return text.split("\n").length - (text.endsWith("\n") ? 1 : 0);
}

function plural(n, word) {
  return `${fmtInt(n)} ${word}${n === 1 ? "" : "s"}`;
}

function noFilePage(main, message) {
  main.replaceChildren(
    h("div", { class: "page-head" }, h("h1", {}, "Configuration")),
    h(
      "section",
      { class: "card", id: "config-no-file" },
      h("h2", {}, "No config file"),
      h("p", {}, "This server was started without a config file: it runs on the embedded default settings (or on a config its program handed it in code). There is no config.yaml to show or edit here, and the settings routes cannot save anything."),
      h("p", {}, "To manage the configuration from this page, start cliproxy with a file:"),
      h("pre", { class: "code" }, "cliproxy serve --config /path/to/config.yaml"),
      h("p", { class: "muted" }, "(or set CLIPROXY_CONFIG, or start it in a directory that holds a config.yaml). The server said: ", h("span", { class: "server-message" }, message)),
    ),
  );
}

// --- the diff -------------------------------------------------------------------------------

// Rows of a unified diff (3 lines of context) from the file on disk to the edited text.
function diffRows(before, after) {
  const patch = window.Diff.structuredPatch("config.yaml", "config.yaml", before, after, "", "", { context: 3 });
  const rows = [];
  let added = 0;
  let removed = 0;
  const changed = [];
  const addedLines = [];
  for (const hunk of patch.hunks) {
    let oldNo = hunk.oldStart;
    let newNo = hunk.newStart;
    rows.push(h("tr", { class: "hunk" }, h("td", { colspan: 4 }, `@@ -${hunk.oldStart},${hunk.oldLines} +${hunk.newStart},${hunk.newLines} @@`)));
    for (const line of hunk.lines) {
      const sign = line[0];
      const code = line.slice(1);
      if (sign === "\\") {
        rows.push(h("tr", { class: "note" }, h("td", { colspan: 4 }, code.trim())));
        continue;
      }
      if (sign === "+") {
        added += 1;
        changed.push(code);
        addedLines.push(code);
        rows.push(h("tr", { class: "add" }, h("td", { class: "ln" }), h("td", { class: "ln" }, newNo++), h("td", { class: "sign" }, "+"), h("td", { class: "code" }, code)));
      } else if (sign === "-") {
        removed += 1;
        changed.push(code);
        rows.push(h("tr", { class: "del" }, h("td", { class: "ln" }, oldNo++), h("td", { class: "ln" }), h("td", { class: "sign" }, "−"), h("td", { class: "code" }, code)));
      } else {
        rows.push(h("tr", { class: "ctx" }, h("td", { class: "ln" }, oldNo++), h("td", { class: "ln" }, newNo++), h("td", { class: "sign" }), h("td", { class: "code" }, code)));
      }
    }
  }
  return { rows, added, removed, changed, addedLines };
}

// --- the page -------------------------------------------------------------------------------

export async function renderConfig(main) {
  let text;
  try {
    [text] = await Promise.all([fileText(), loadLibraries()]);
  } catch (error) {
    if (error.status === 404 && error.body && error.body["config-file"] === false) {
      noFilePage(main, error.message);
      return;
    }
    if (error.status === 404) error.message = `config.yaml is missing: ${error.message}`;
    throw error;
  }
  const CodeMirror = window.CodeMirror;
  let base = text; // the file as last read from the server
  let marks = []; // line handles carrying a problem or warning class
  let escaped = false; // Esc was pressed: the next Tab leaves the editor

  const state = h("span", { id: "config-state", class: "muted", role: "status" });
  const reviewButton = h("button", { type: "button", class: "primary", id: "config-review", title: "Ctrl+S" }, "Review changes");
  const discardButton = h("button", { type: "button", id: "config-discard" }, "Discard edits");
  const problems = h("div", { id: "config-problems", class: "card problems", role: "alert", hidden: true });
  const reviewPanel = h("section", { id: "config-review-panel", class: "card review", "aria-labelledby": "config-review-title", hidden: true });
  const host = h("div", { class: "config-editor", id: "config-editor" });

  main.replaceChildren(
    h("div", { class: "page-head" }, h("h1", {}, "Configuration"), h("span", { class: "muted" }, "config.yaml")),
    h(
      "section",
      { class: "card" },
      h("p", { class: "muted" }, "The server's config file. Review changes asks the server to check the whole file and shows what will change; nothing is saved until you confirm, and the server applies a saved file at once (comments and all, as you wrote them)."),
      h("div", { class: "row toolbar" }, reviewButton, discardButton, state),
    ),
    problems,
    reviewPanel,
    h("section", { class: "card editor-card" }, host, h("p", { class: "muted small-text" }, "Tab indents with spaces (YAML allows no tabs); Esc then Tab leaves the editor; Ctrl+S reviews.")),
  );

  const cm = CodeMirror(host, {
    value: draft !== null ? draft : text,
    mode: "yaml",
    lineNumbers: true,
    indentUnit: 2,
    tabSize: 2,
    indentWithTabs: false,
    viewportMargin: Infinity, // every line in the DOM: the browser's find and the tests see them
    gutters: ["CodeMirror-linenumbers", "cm-problems"],
    screenReaderLabel: "config.yaml",
    extraKeys: {
      Tab: (editor) => (escaped ? CodeMirror.Pass : editor.execCommand(editor.somethingSelected() ? "indentMore" : "insertSoftTab")),
      "Shift-Tab": (editor) => (escaped ? CodeMirror.Pass : editor.execCommand("indentLess")),
      Esc: () => {
        escaped = true;
      },
      "Ctrl-S": () => review(),
      "Cmd-S": () => review(),
    },
  });
  cm.on("keydown", (_editor, event) => {
    if (event.key !== "Escape" && event.key !== "Tab" && event.key !== "Shift") escaped = false;
  });
  cm.on("blur", () => {
    escaped = false;
  });

  function dirty() {
    return cm.getValue() !== base;
  }

  function update() {
    const edited = dirty();
    draft = edited ? cm.getValue() : null;
    reviewButton.disabled = !edited;
    discardButton.disabled = !edited;
    state.textContent = edited ? "edited, not saved" : `${plural(lineCount(base), "line")}, no changes`;
  }

  // --- marks in the editor ---

  function clearMarks() {
    for (const handle of marks) {
      cm.removeLineClass(handle, "background");
      cm.setGutterMarker(handle, "cm-problems", null);
    }
    marks = [];
  }

  function mark(line, kind, message) {
    if (!line || line < 1 || line > cm.lineCount()) return;
    const handle = cm.addLineClass(line - 1, "background", kind === "error" ? "cm-problem-line" : "cm-warning-line");
    cm.setGutterMarker(handle, "cm-problems", h("span", { class: `gutter-mark ${kind}`, title: message }, kind === "error" ? "●" : "▲"));
    marks.push(handle);
  }

  function jumpTo(line, column = 1) {
    if (!line) return;
    cm.setCursor({ line: line - 1, ch: Math.max(0, column - 1) });
    cm.scrollIntoView(null, 120);
    cm.focus();
  }

  function lineButton(line, column) {
    return h("button", { type: "button", class: "link line-link", dataset: { line: String(line) }, onclick: () => jumpTo(line, column) }, `Line ${line}`);
  }

  // The server's refusal: its message as it sent it, a button per line it names (422 lists
  // every problem with its line; 400 the line of the YAML syntax error), those lines marked in
  // the editor, and the cursor on the first of them.
  function showProblems(error) {
    const body = error.body || {};
    const listed = Array.isArray(body.problems) ? body.problems : [];
    const places = listed.length ? listed.filter((p) => p.line) : body.line ? [{ line: body.line, key: "", message: body.message || error.message }] : [];
    clearMarks();
    const title = error.status === 400 ? "Not valid YAML: the server refused it" : error.status === 422 ? "Not a valid config: the server refused it" : "The server refused it";
    problems.replaceChildren(
      h("h2", {}, title),
      h("p", { class: "error server-message" }, body.message || error.message),
      places.length
        ? h("p", { class: "problem-lines" }, places.length === 1 ? "Marked in the editor: " : "Marked in the editor, go to: ", places.map((p, i) => [i ? ", " : "", lineButton(p.line, p.line === body.line ? body.column || 1 : 1)]))
        : h("p", { class: "muted" }, "The server named no line."),
      h("p", { class: "muted small-text" }, "Nothing was saved: config.yaml on the server is as it was."),
    );
    problems.hidden = false;
    for (const p of places) mark(p.line, "error", p.key ? `${p.key}: ${p.message}` : p.message);
    if (places.length) jumpTo(places[0].line, places[0].line === body.line ? body.column || 1 : 1);
    problems.scrollIntoView({ block: "nearest" });
  }

  function hideReview() {
    reviewPanel.hidden = true;
    reviewPanel.replaceChildren();
  }

  function finding(item, about) {
    return h("li", {}, item.line ? lineButton(item.line, 1) : h("span", { class: "muted" }, "(no line)"), " ", about);
  }

  function showReview(edited, current, check) {
    const { rows, added, removed, changed, addedLines } = diffRows(current, edited);
    const notes = [];
    if (current !== base) {
      notes.push(h("p", { class: "warn", id: "config-changed-on-disk" }, "config.yaml changed on the server since this page read it (another client, or an edit by hand). The diff is against the file as it is now: saving replaces those changes."));
    }
    if (addedLines.some((line) => SECRET_KEY_LINE.test(line))) {
      notes.push(h("p", { class: "warn", id: "config-key-changes" }, "remote-management.secret-key changes: after saving, sign in again with the new key. A plaintext key is stored as its bcrypt hash."));
    }
    if (check.management === false) {
      notes.push(h("p", { class: "error", id: "config-management-off" }, "With this file the management API turns off (no remote-management.secret-key, and no MANAGEMENT_PASSWORD): this console stops working until a key is added to config.yaml by hand."));
    }
    const warnings = check.warnings || [];
    const unsupported = check.unsupported || [];
    clearMarks();
    for (const w of warnings) mark(w.line, "warning", `${w.key}: ${w.message}`);
    for (const u of unsupported) mark(u.line, "warning", `${u.key}: not supported yet`);
    const findings = [];
    if (warnings.length || unsupported.length) {
      findings.push(
        h("h3", {}, "The server accepts it, with remarks"),
        h(
          "ul",
          { class: "plain findings", id: "config-findings" },
          warnings.map((w) => finding(w, w.key ? `${w.key}: ${w.message}` : w.message)),
          unsupported.map((u) => finding(u, `${u.key}: not supported by cliproxy yet (kept in the file, ignored)`)),
        ),
      );
    }
    const nothing = edited === current;
    const save = h(
      "button",
      { type: "button", class: check.management === false ? "danger" : "primary", id: "config-save", hidden: nothing },
      check.management === false ? "Save and turn management off" : "Save and apply",
    );
    const back = h("button", { type: "button", id: "config-back" }, "Keep editing");
    save.addEventListener("click", () => saveText(edited, changed, save));
    back.addEventListener("click", () => {
      hideReview();
      cm.focus();
    });
    // append() flattens the lists (notes, findings); replaceChildren would print them.
    reviewPanel.replaceChildren();
    append(reviewPanel, [
      h("h2", { id: "config-review-title", tabindex: "-1" }, nothing ? "Nothing to save" : "Review: the server accepts this config"),
      h("p", { id: "config-diff-summary" }, nothing ? "The file on the server already says exactly this." : `${plural(added, "line")} added, ${plural(removed, "line")} removed.`),
      notes,
      findings,
      nothing ? null : h("div", { class: "table-wrap diff-wrap" }, h("table", { class: "diff", id: "config-diff" }, h("caption", { class: "muted" }, "config.yaml on the server → your version"), h("tbody", {}, rows))),
      h("div", { class: "row" }, save, back),
    ]);
    reviewPanel.hidden = false;
    reviewPanel.scrollIntoView({ block: "start" });
    reviewPanel.querySelector("h2").focus({ preventScroll: true });
  }

  async function review() {
    if (reviewButton.disabled) return;
    const edited = cm.getValue();
    reviewButton.disabled = true;
    problems.hidden = true;
    hideReview();
    try {
      const [check, current] = await Promise.all([
        call("POST", "/config.yaml/validate", { body: edited, contentType: YAML_TYPE }),
        fileText(),
      ]);
      if (cm.getValue() !== edited) return; // edited again while the server looked
      showReview(edited, current, check.data || {});
    } catch (error) {
      if (error.status === 401) return; // back at the login form
      showProblems(error);
    } finally {
      update();
    }
  }

  async function saveText(edited, changed, button) {
    button.disabled = true;
    try {
      await call("PUT", "/config.yaml", { body: edited, contentType: YAML_TYPE });
    } catch (error) {
      if (error.status === 401) return;
      hideReview();
      showProblems(error);
      return;
    }
    hideReview();
    clearMarks();
    problems.hidden = true;
    draft = null;
    const keyChanged = changed.some((line) => SECRET_KEY_LINE.test(line));
    let saved;
    try {
      saved = await call("GET", "/config.yaml", { raw: true, quiet: true }).then((reply) => reply.blob.text());
    } catch (error) {
      if (error.status === 401) {
        reportUnauthorized(keyChanged ? "Saved. The management key changed: sign in with the new key." : "Saved, but the management key no longer works: sign in again.");
        return;
      }
      saved = edited;
    }
    base = saved;
    if (saved !== cm.getValue()) {
      // The server stored something else (a plaintext secret-key as its hash): show that.
      const cursor = cm.getCursor();
      cm.setValue(saved);
      cm.setCursor(cursor);
    }
    update();
    const when = new Date().toLocaleTimeString();
    state.textContent = `saved at ${when} and applied, ${plural(lineCount(base), "line")}`;
    state.dataset.saved = "true";
    toast("config.yaml saved and applied");
  }

  cm.on("change", () => {
    delete state.dataset.saved;
    if (!reviewPanel.hidden) hideReview(); // what was reviewed is not what is there now
    update();
  });
  reviewButton.addEventListener("click", () => review());
  discardButton.addEventListener("click", async () => {
    discardButton.disabled = true;
    try {
      base = await fileText();
    } catch (error) {
      if (error.status !== 401) toast(error.message, "error");
      update();
      return;
    }
    draft = null;
    cm.setValue(base);
    cm.clearHistory();
    clearMarks();
    problems.hidden = true;
    hideReview();
    update();
  });

  if (draft !== null) {
    toast("your unsaved edits to config.yaml are back (not saved yet)");
  }
  update();
  cm.refresh();
}
