// Add an account: a Codex, Claude or Gemini login started from the browser
// (GET /<provider>-auth-url?is_webui=true → {url, state}) and finished either by the vendor's
// redirect reaching cliproxy (the loopback listener is_webui starts, when this browser runs on
// cliproxy's machine) or by pasting the callback URL (POST /oauth-callback, for remote servers).
// GET /get-auth-status?state= is polled every 2 s until ok or error; Cancel is
// DELETE /oauth-session?state=. The logins offered are the ones the server's OpenAPI document
// marks with x-cliproxy-login.
//
// The login in progress lives in this module, not in the page: leaving the page keeps it
// polling (a toast says how it ended), and coming back shows it again.

import { call, get, storedKey } from "./api.js";
import { countdown, h, toast } from "./dom.js";

const POLL_MS = 2000;
const SESSION_MS = 30 * 60 * 1000; // the server keeps an unfinished login this long
// When the server's document cannot be read: the logins cliproxy ships.
const FALLBACK = [
  { route: "codex", provider: "codex", kind: "codex", title: "Codex (ChatGPT)", project: false },
  { route: "anthropic", provider: "anthropic", kind: "claude", title: "Claude", project: false },
  { route: "gemini-cli", provider: "gemini-cli", kind: "gemini", title: "Gemini (Google account)", project: true },
];
const ABOUT = {
  codex: "A ChatGPT Plus, Pro, Team or Enterprise account, signed in as the Codex CLI does.",
  claude: "A Claude Pro or Max account, signed in as Claude Code does.",
  gemini: "A Google account for Gemini CLI (Code Assist). Its Google Cloud project is found, or set up, unless you name one.",
  antigravity: "A Google account for the Antigravity IDE (Gemini and Claude models). Its project is found, or set up, for you.",
  kimi: "A Kimi Code account: you get a code to enter on Kimi's page, from any device.",
  xai: "A Grok (xAI) account: you get a code to enter on xAI's page, from any device.",
};
const OPEN = new Set(["starting", "waiting", "exchanging"]);

let current = null; // the login this page started: see startLogin
let view = null; // the rendered login card, while it is on the page
let offered = null; // the server's logins, once read (its document does not change while it runs)

async function loginProviders() {
  if (offered) return offered;
  try {
    const doc = (await get("/openapi.json")).data || {};
    const found = [];
    const seen = new Set();
    for (const [path, item] of Object.entries(doc.paths || {})) {
      const login = item && item.get && item.get["x-cliproxy-login"];
      const route = /^\/(.+)-auth-url$/.exec(path);
      if (!login || !route || login.alias || seen.has(login.provider)) continue;
      seen.add(login.provider);
      found.push({ route: route[1], provider: login.provider, kind: login.kind, title: login.title || login.provider, project: Boolean(login.project), device: Boolean(login.device) });
    }
    if (found.length) return (offered = found);
  } catch (error) {
    if (error.status === 401) throw error;
  }
  return FALLBACK;
}

async function fileTimes() {
  const files = (await get("/auth-files")).data.files || [];
  return new Map(files.map((f) => [f.name, f.modtime || ""]));
}

// The auth file the login wrote: one that is new, or rewritten (a login again to an account
// already there), since the login started; its own kind first.
async function writtenAccount(login) {
  const files = (await get("/auth-files")).data.files || [];
  const changed = files.filter((f) => !login.before.has(f.name) || login.before.get(f.name) !== (f.modtime || ""));
  return changed.find((f) => f.type === login.kind) || changed[0] || null;
}

function redirectTarget(url) {
  try {
    const target = new URL(new URL(url).searchParams.get("redirect_uri") || "");
    return target.host + target.pathname;
  } catch {
    return "";
  }
}

// ----- the login's life ---------------------------------------------------------------------

function isOpen(login) {
  return login && OPEN.has(login.phase);
}

function changed(login) {
  if (view && view.login === login && view.card.isConnected) view.update();
}

function end(login, phase, error = "") {
  login.phase = phase;
  login.error = error;
  clearTimeout(login.timer);
  changed(login);
  if (!(view && view.login === login && view.card.isConnected) && phase !== "cancelled") {
    // The user left the page: say how it ended wherever they are.
    if (phase === "done") toast(`${login.entry.title} login finished: ${accountName(login) || "account added"}`);
    else toast(`${login.entry.title} login failed: ${error}`, "error");
  }
}

function schedule(login, ms = POLL_MS) {
  clearTimeout(login.timer);
  login.timer = setTimeout(() => poll(login), ms);
}

async function poll(login) {
  if (login !== current || !isOpen(login) || !storedKey()) return;
  let status;
  try {
    status = (await get("/get-auth-status", { state: login.state })).data || {};
  } catch (error) {
    if (error.status === 401) return; // signed out: the login form is showing
    login.note = `could not ask for the login's state: ${error.message}`;
    changed(login);
    schedule(login);
    return;
  }
  if (login !== current || !isOpen(login)) return;
  login.note = "";
  if (status.status === "ok") {
    try {
      login.account = await writtenAccount(login);
    } catch {
      login.account = null;
    }
    end(login, "done");
  } else if (status.status === "error") {
    end(login, "failed", status.error || "the login failed");
  } else {
    changed(login);
    schedule(login);
  }
}

async function startLogin(entry, project, failed) {
  failed.replaceChildren();
  if (isOpen(current) && current.phase !== "waiting") {
    failed.append("The login in progress is being completed; start another when it has ended.");
    return null;
  }
  // One login at a time: a new one cancels the one still waiting.
  if (isOpen(current)) await cancelLogin(current, true);
  const login = { entry, project, phase: "starting", url: "", state: "", code: "", error: "", note: "", account: null, before: new Map(), timer: null, started: Date.now() };
  current = login;
  try {
    login.before = await fileTimes();
    const query = { is_webui: "true" };
    if (entry.project && project) query.project_id = project;
    const reply = await call("GET", `/${entry.route}-auth-url`, { query });
    const data = reply.data || {};
    if (!data.url || !data.state) throw new Error(data.error || "the server did not return a sign-in link");
    login.url = data.url;
    login.state = data.state;
    login.code = data.user_code || ""; // device-code logins: what the user types on the vendor's page
    login.started = Date.now();
    login.phase = "waiting";
  } catch (error) {
    if (current === login) current = null;
    // The API's own words (a 422 names the logins this server supports).
    failed.replaceChildren(h("strong", {}, `${entry.title}: `), error.message);
    return null;
  }
  schedule(login);
  return login;
}

async function cancelLogin(login, quietly = false) {
  clearTimeout(login.timer);
  try {
    await call("DELETE", "/oauth-session", { query: { state: login.state } });
  } catch (error) {
    if (!quietly) toast(error.message, "error");
  }
  end(login, "cancelled");
}

async function submitCallback(login, pasted, problem) {
  problem.replaceChildren();
  try {
    await call("POST", "/oauth-callback", { json: { provider: login.entry.provider, redirect_url: pasted } });
  } catch (error) {
    problem.append(error.message); // the API's reason: wrong state, already used, expired…
    return false;
  }
  if (login.phase === "waiting") login.phase = "exchanging";
  changed(login);
  schedule(login, 250);
  return true;
}

function accountName(login) {
  const account = login.account;
  if (!account) return "";
  return account.email && account.email !== account.name ? `${account.email} (${account.name})` : account.name;
}

// ----- the page -------------------------------------------------------------------------------

const STATE_TEXT = {
  starting: ["warn", "starting"],
  waiting: ["warn", "waiting for you to sign in"],
  exchanging: ["warn", "completing the login"],
  done: ["ok", "done"],
  failed: ["bad", "failed"],
  cancelled: ["muted", "cancelled"],
};

function loginCard(login, restart) {
  const entry = login.entry;
  const badge = h("span", { class: "badge", id: "login-badge" });
  const detail = h("span", { id: "login-detail" });
  const stateLine = h("p", { id: "login-state", role: "status", "aria-live": "polite" }, badge, " ", detail);
  const target = redirectTarget(login.url);

  const link = h("a", { class: "button primary", id: "auth-open", href: login.url, target: "_blank", rel: "noopener noreferrer" }, `Open the ${entry.title} sign-in page`);
  const urlText = h("pre", { class: "code", id: "auth-url" }, login.url);
  const copy = h("button", { type: "button", id: "copy-url" }, "Copy link");
  copy.addEventListener("click", async () => {
    try {
      await navigator.clipboard.writeText(login.url);
      toast("sign-in link copied");
    } catch {
      getSelection().selectAllChildren(urlText); // copy by hand: the text is selected
      toast("select and copy the link shown");
    }
  });

  const pasted = h("input", { type: "text", id: "callback-url", name: "callback-url", autocomplete: "off", spellcheck: "false", required: true, placeholder: target ? `${target}?code=…&state=…` : "the address the browser ended on", "aria-describedby": "callback-help callback-error" });
  const problem = h("p", { class: "error", id: "callback-error", role: "alert" });
  const finish = h("button", { type: "submit", id: "callback-submit" }, "Finish login");
  const form = h(
    "form",
    { id: "callback-form", method: "post", action: "#" },
    h("label", { for: "callback-url" }, "Callback URL"),
    h("div", { class: "row paste" }, pasted, finish),
    problem,
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const text = pasted.value.trim();
    if (!text) return;
    finish.disabled = true;
    if (await submitCallback(login, text, problem)) pasted.value = "";
    finish.disabled = false;
  });

  const cancel = h("button", { type: "button", class: "danger", id: "cancel-login" }, "Cancel login");
  cancel.addEventListener("click", () => {
    cancel.disabled = true;
    cancelLogin(login);
  });
  const again = h("button", { type: "button", id: "login-again" }, "Try again");
  again.addEventListener("click", () => restart(entry, login.project));

  const deviceSteps = h(
    "ol",
    { class: "steps" },
    h("li", {}, h("p", {}, "Open the vendor's page, on this or any other device:"), h("div", { class: "row wrap" }, link, copy), urlText),
    h("li", {}, h("p", {}, "Enter this code there and approve access:"), h("pre", { class: "code user-code", id: "user-code" }, login.code)),
    h("li", {}, h("p", { class: "muted" }, "The login finishes here by itself once you have approved.")),
  );
  const steps = entry.device ? deviceSteps : h(
    "ol",
    { class: "steps" },
    h("li", {}, h("p", {}, "Open the sign-in page and approve access:"), h("div", { class: "row wrap" }, link, copy), urlText),
    h(
      "li",
      {},
      h(
        "p",
        { id: "callback-help" },
        "After you approve, the vendor sends your browser to ",
        h("span", { class: "mono" }, target || "a localhost address"),
        ". When this browser runs on cliproxy's machine, that reaches cliproxy and the login finishes here by itself. ",
        "When cliproxy runs elsewhere, that page does not load: copy its whole address from the address bar and paste it here.",
      ),
      form,
    ),
  );
  const expires = h("p", { class: "muted small-text", id: "login-expires" }, "The sign-in link works for ", countdown(login.started + SESSION_MS), ".");
  const note = h("p", { class: "warn small-text", id: "login-note" });
  const done = h("div", { id: "login-done" });
  const card = h(
    "section",
    { class: "card", id: "login-flow", dataset: { provider: entry.provider } },
    h("div", { class: "page-head" }, h("h2", {}, `Signing in: ${entry.title}`), h("div", { class: "row" }, again, cancel)),
    stateLine,
    note,
    steps,
    expires,
    done,
  );

  function update() {
    const [kind, text] = STATE_TEXT[login.phase];
    card.dataset.state = login.phase;
    badge.className = `badge ${kind}`;
    badge.textContent = text;
    detail.className = login.phase === "failed" ? "error" : "muted";
    detail.textContent =
      login.phase === "failed"
        ? login.error
        : login.phase === "waiting"
          ? "(checked every 2 seconds)"
          : login.phase === "exchanging"
            ? "the callback was accepted; cliproxy is fetching the tokens"
            : "";
    note.textContent = login.note || "";
    note.hidden = !login.note;
    const open = isOpen(login);
    steps.hidden = login.phase !== "waiting" && login.phase !== "exchanging";
    finish.disabled = login.phase !== "waiting";
    pasted.disabled = login.phase !== "waiting";
    expires.hidden = !open;
    cancel.hidden = !open;
    cancel.disabled = login.phase === "exchanging";
    again.hidden = open || login.phase === "done";
    if (login.phase === "done") {
      const name = accountName(login);
      done.replaceChildren(
        h("p", { class: "ok-text" }, name ? ["Added ", h("strong", { id: "login-account" }, name), "."] : "The account was added."),
        h("p", {}, h("a", { href: "#/accounts", id: "to-accounts", class: "button primary" }, "See it on the Accounts page")),
      );
    } else {
      done.replaceChildren();
    }
  }
  update();
  return { login, card, update };
}

function providerCard(entry, begin) {
  const project = entry.project
    ? h(
        "div",
        { class: "field" },
        h("label", { for: `project-${entry.provider}` }, "Google Cloud project ", h("span", { class: "muted" }, "(optional)")),
        h("input", { type: "text", id: `project-${entry.provider}`, autocomplete: "off", spellcheck: "false", placeholder: "found or set up for you" }),
      )
    : null;
  const button = h("button", { type: "button", class: "primary", dataset: { start: entry.provider } }, `Sign in with ${entry.title}`);
  button.addEventListener("click", () => begin(entry, project ? project.querySelector("input").value.trim() : ""));
  return h(
    "section",
    { class: "card provider", dataset: { login: entry.provider } },
    h("h2", {}, entry.title),
    h("p", { class: "muted" }, ABOUT[entry.kind] || `A ${entry.title} account.`),
    project,
    h("div", { class: "row end" }, button),
  );
}

export async function renderAddAccount(main) {
  const providers = await loginProviders();
  const failed = h("p", { class: "error", id: "start-error", role: "alert" });
  const slot = h("div", { id: "login-slot" });
  const buttons = () => main.querySelectorAll("button[data-start]");

  function show(login) {
    if (!login) {
      view = null;
      slot.replaceChildren();
      return;
    }
    view = loginCard(login, begin);
    slot.replaceChildren(view.card);
  }

  async function begin(entry, project) {
    for (const b of buttons()) b.disabled = true;
    const login = await startLogin(entry, project, failed);
    for (const b of buttons()) b.disabled = false;
    if (!slot.isConnected) return;
    if (login) {
      show(login);
      view.card.scrollIntoView({ block: "nearest" });
      view.card.querySelector("#auth-open").focus();
    } else if (!current) show(null);
  }

  main.replaceChildren(
    h("div", { class: "page-head" }, h("h1", {}, "Add an account"), h("a", { href: "#/accounts" }, "Accounts")),
    h(
      "p",
      { class: "muted intro" },
      "Sign in with a subscription you pay for; cliproxy saves the account as an auth file and adds it to the pool at once. Only the logins this server supports are offered.",
    ),
    h("div", { class: "grid providers", id: "providers" }, providers.map((entry) => providerCard(entry, begin))),
    failed,
    slot,
  );
  if (current) {
    show(current);
    if (isOpen(current) && current.phase !== "starting") schedule(current, 0);
  }
}
