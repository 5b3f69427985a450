// The console's entry point: management availability, login, and a hash router over the pages.

import { forgetKey, storedKey, whenUnauthorized } from "./api.js";
import { renderAccounts } from "./accounts.js";
import { destroyCharts } from "./charts.js";
import { renderClientKeys } from "./clientkeys.js";
import { $, h } from "./dom.js";
import { probe, renderLogin, renderOff, renderRefused } from "./login.js";
import { renderOverview } from "./overview.js";
import { renderProviders } from "./providers.js";

const PAGES = {
  overview: { title: "Overview", render: renderOverview },
  accounts: { title: "Accounts", render: renderAccounts },
  providers: { title: "Providers and keys", render: renderProviders },
  "client-keys": { title: "Client keys", render: renderClientKeys },
};

const main = $("#main");
const nav = $("#nav");
const signOut = $("#sign-out");

function pageName() {
  const name = location.hash.replace(/^#\/?/, "");
  return name in PAGES ? name : "overview";
}

function showLogin(notice = "") {
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
  const name = pageName();
  nav.hidden = false;
  signOut.hidden = false;
  for (const link of nav.querySelectorAll("a")) {
    if (link.dataset.page === name) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  document.title = `${PAGES[name].title} · cliproxy console`;
  destroyCharts();
  main.replaceChildren(h("p", { class: "muted", id: "loading" }, "Loading…"));
  try {
    await PAGES[name].render(main);
    main.dataset.page = name;
  } catch (error) {
    if (error.status === 401) return; // whenUnauthorized already showed the login
    main.replaceChildren(h("section", { class: "card error-card" }, h("h1", {}, "Could not load this page"), h("p", { class: "error" }, error.message)));
  }
}

whenUnauthorized((error) => {
  forgetKey();
  showLogin(error.message);
});

signOut.addEventListener("click", () => {
  forgetKey();
  showLogin();
});

window.addEventListener("hashchange", () => route());
// Charts take their colours from the scheme: draw them again when it changes.
matchMedia("(prefers-color-scheme: dark)").addEventListener("change", () => {
  if (storedKey() && pageName() === "overview") route();
});

async function start() {
  const found = await probe();
  if (found.state === "off") renderOff(main);
  else if (found.state === "refused") renderRefused(main, found.message);
  else if (found.state === "error") main.replaceChildren(h("p", { class: "error" }, found.message));
  else route();
}

start();
