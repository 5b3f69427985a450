// Building the page from API data. Everything the API says goes in as text (text nodes,
// textContent, attribute values); nothing here ever parses a string as HTML.

export function h(tag, props, ...children) {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(props || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (name === "class") el.className = value;
    else if (name === "text") el.textContent = String(value);
    else if (name === "dataset") Object.assign(el.dataset, value);
    else if (name.startsWith("on") && typeof value === "function") {
      el.addEventListener(name.slice(2), value);
    } else if (name === "style") throw new Error("inline styles are refused by the page's CSP");
    else el.setAttribute(name, value === true ? "" : String(value));
  }
  append(el, children);
  return el;
}

export function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

export function $(selector, root = document) {
  return root.querySelector(selector);
}

const intFormat = new Intl.NumberFormat("en-US");
const compactFormat = new Intl.NumberFormat("en-US", { notation: "compact", maximumFractionDigits: 1 });

export function fmtInt(n) {
  return intFormat.format(Number(n) || 0);
}

export function fmtCompact(n) {
  return compactFormat.format(Number(n) || 0);
}

export function fmtCost(usd) {
  const value = Number(usd) || 0;
  if (value === 0) return "$0";
  if (value < 0.0001) return "<$0.0001";
  if (value < 0.01) return "$" + value.toFixed(4);
  return "$" + value.toFixed(2);
}

export function fmtDuration(seconds) {
  let s = Math.max(0, Math.ceil(seconds));
  const d = Math.floor(s / 86400);
  s -= d * 86400;
  const hh = Math.floor(s / 3600);
  s -= hh * 3600;
  const m = Math.floor(s / 60);
  s -= m * 60;
  if (d >= 365) return `${Math.floor(d / 365)}y ${Math.floor((d % 365) / 30)}mo`;
  if (d) return `${d}d ${hh}h`;
  if (hh) return `${hh}h ${String(m).padStart(2, "0")}m`;
  if (m) return `${m}m ${String(s).padStart(2, "0")}s`;
  return `${s}s`;
}

export function fmtWhen(iso) {
  if (!iso) return "—";
  const t = Date.parse(iso);
  if (Number.isNaN(t)) return String(iso);
  const delta = (t - Date.now()) / 1000;
  return delta >= 0 ? `in ${fmtDuration(delta)}` : `${fmtDuration(-delta)} ago`;
}

export function fmtTime(iso) {
  const t = Date.parse(iso);
  return Number.isNaN(t) ? String(iso || "") : new Date(t).toLocaleString();
}

// Live countdowns: any element with data-until (epoch ms) is rewritten once a second; its
// callback runs once when it reaches zero, if it is still on the page.
const onEnded = new WeakMap();

export function countdown(untilMs, onEnd) {
  const el = h("span", { class: "countdown", dataset: { until: String(untilMs) } });
  tick(el);
  if (onEnd) onEnded.set(el, onEnd);
  return el;
}

function tick(el) {
  const left = (Number(el.dataset.until) - Date.now()) / 1000;
  el.textContent = left > 0 ? fmtDuration(left) : "ended";
  return left > 0;
}

setInterval(() => {
  for (const el of document.querySelectorAll("[data-until]")) {
    if (tick(el)) continue;
    delete el.dataset.until;
    const callback = onEnded.get(el);
    if (callback && el.isConnected) callback();
  }
}, 1000);

// A Blob (a file fetched with the key, a CSV made here) saved by the browser under ``name``.
export function saveBlob(blob, name) {
  const url = URL.createObjectURL(blob);
  const link = h("a", { href: url, download: name, hidden: true });
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}

// RFC 4180 CSV. A text cell that a spreadsheet would run as a formula (=, +, -, @ first) gets
// a leading apostrophe: model names and key names come from clients and config.
export function csv(rows) {
  const cell = (value) => {
    if (value === null || value === undefined) return "";
    if (typeof value === "number") return String(value);
    let text = String(value);
    if (/^[=+\-@\t\r]/.test(text)) text = "'" + text;
    return /[",\r\n]/.test(text) ? `"${text.replaceAll('"', '""')}"` : text;
  };
  return rows.map((row) => row.map(cell).join(",")).join("\r\n") + "\r\n";
}

export function toast(message, kind = "info") {
  const box = $("#toasts");
  const item = h("div", { class: `toast ${kind}` }, message);
  box.append(item);
  setTimeout(() => item.remove(), 6000);
}

export function confirmDialog(text, okLabel = "Delete") {
  const dialog = $("#confirm");
  $("#confirm-text").textContent = text;
  $("#confirm-ok").textContent = okLabel;
  return new Promise((resolve) => {
    const done = (answer) => {
      $("#confirm-ok").removeEventListener("click", ok);
      $("#confirm-cancel").removeEventListener("click", cancel);
      dialog.removeEventListener("cancel", cancel);
      if (dialog.open) dialog.close();
      resolve(answer);
    };
    const ok = () => done(true);
    const cancel = () => done(false);
    $("#confirm-ok").addEventListener("click", ok);
    $("#confirm-cancel").addEventListener("click", cancel);
    dialog.addEventListener("cancel", cancel);
    dialog.showModal();
    $("#confirm-cancel").focus();
  });
}
