// The console's entry point: management availability, login, and a hash router over the pages.

import { forgetKey, storedKey, whenUnauthorized } from "./api.js";
import { renderAccounts } from "./accounts.js";
import { renderAddAccount } from "./addaccount.js";
import { destroyCharts } from "./charts.js";
import { renderClientKeys } from "./clientkeys.js";
import { forgetConfigDraft, renderConfig } from "./config.js";
import { $, h } from "./dom.js";
import { probe, renderLogin, renderOff, renderRefused } from "./login.js";
import { renderLogs } from "./logs.js";
import { renderOverview } from "./overview.js";
import { renderUsage } from "./usage.js";
import { renderProviders } from "./providers.js";

const PAGES = {
  overview: { title: "Overview", render: renderOverview },
  usage: { title: "Usage", render: renderUsage },
  accounts: { title: "Accounts", render: renderAccounts },
  "add-account": { title: "Add an account", render: renderAddAccount },
  providers: { title: "Providers and keys", render: renderProviders },
  "client-keys": { title: "Client keys", render: renderClientKeys },
  logs: { title: "Logs", render: renderLogs },
  config: { title: "Configuration", render: renderConfig },
};
// Pages that draw charts: drawn again when the colour scheme changes.
const CHARTED = new Set(["overview", "usage", "accounts"]);

const main = $("#main");
let visits = 0;
const nav = $("#nav");
const signOut = $("#sign-out");

function decoded(part) {
  try {
    return decodeURIComponent(part);
  } catch {
    return part;
  }
}

// "#/logs/requests/0884c478" → page "logs", rest ["requests", "0884c478"].
function hashParts() {
  const [name, ...rest] = location.hash.replace(/^#\/?/, "").split("/");
  return name in PAGES ? { name, rest: rest.map(decoded) } : { name: "overview", rest: [] };
}

function pageName() {
  return hashParts().name;
}

function showLogin(notice = "") {
  visits += 1;
  delete main.dataset.page;
  destroyCharts();
  nav.hidden = true;
  signOut.hidden = true;
  renderLogin(main, () => route(), notice);
}

async function route() {
  if (!storedKey()) {
    showLogin();
    return;
  }
  const { name, rest } = hashParts();
  nav.hidden = false;
  signOut.hidden = false;
  for (const link of nav.querySelectorAll("a")) {
    if (link.dataset.page === name) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  document.title = `${PAGES[name].title} · cliproxy console`;
  destroyCharts();
  // Each visit renders into its own box: a page still loading when the user moves on
  // finishes into a box no longer on the page (and its polling sees that and stops).
  const visit = ++visits;
  const box = h("div", { class: "page" }, h("p", { class: "muted", id: "loading" }, "Loading…"));
  main.replaceChildren(box);
  delete main.dataset.page;
  try {
    await PAGES[name].render(box, rest);
    if (visit === visits) main.dataset.page = name;
  } catch (error) {
    if (error.status === 401 || visit !== visits) return; // 401: whenUnauthorized showed the login
    box.replaceChildren(h("section", { class: "card error-card" }, h("h1", {}, "Could not load this page"), h("p", { class: "error" }, error.message)));
  }
}

whenUnauthorized((error) => {
  forgetKey();
  showLogin(error.message);
});

signOut.addEventListener("click", () => {
  forgetKey();
  forgetConfigDraft();
  showLogin();
});

window.addEventListener("hashchange", () => route());
// Charts take their colours from the scheme: draw them again when it changes.
matchMedia("(prefers-color-scheme: dark)").addEventListener("change", () => {
  if (storedKey() && CHARTED.has(pageName())) route();
});

async function start() {
  const found = await probe();
  if (found.state === "off") renderOff(main);
  else if (found.state === "refused") renderRefused(main, found.message);
  else if (found.state === "error") main.replaceChildren(h("p", { class: "error" }, found.message));
  else route();
}

start();
