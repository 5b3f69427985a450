// The login form, and what the page says when management is off or refused from here.

import { call, lockoutSeconds, storeKey } from "./api.js";
import { countdown, h } from "./dom.js";

// Before asking for a key: is management on, and may this address use it at all?
export async function probe() {
  let response;
  try {
    response = await fetch("/console/status", { cache: "no-store", credentials: "omit" });
  } catch (error) {
    return { state: "error", message: `cannot reach cliproxy: ${error.message}` };
  }
  if (!response.ok) return { state: "error", message: await response.text() };
  const status = await response.json();
  if (!status.management) return { state: "off" };
  if (status.remote_refused) return { state: "refused", message: "remote management disabled" };
  return { state: "login" };
}

export function renderOff(main) {
  main.replaceChildren(
    h(
      "section",
      { class: "card narrow", id: "management-off" },
      h("h1", {}, "Management is turned off"),
      h("p", {}, "This server has no management key, so its management API (and this console) is off. Add this line to its config.yaml and the console works at once (the file is reloaded on change):"),
      h("pre", { class: "code" }, 'remote-management: {secret-key: "a-long-random-key"}'),
      h("p", { class: "muted" }, "Or start it with the environment variable MANAGEMENT_PASSWORD set. The key you choose is what you type here to sign in; cliproxy stores it hashed."),
    ),
  );
}

export function renderRefused(main, message) {
  const seconds = lockoutSeconds(message);
  const remote = /remote management disabled/i.test(message);
  main.replaceChildren(
    h(
      "section",
      { class: "card narrow", id: "management-refused" },
      h("h1", {}, "Management refused"),
      h("p", { class: "error" }, message),
      remote
        ? [
            h("p", {}, "This browser is not on the server's machine. To manage it from elsewhere, add to the server's config.yaml:"),
            h("pre", { class: "code" }, "remote-management: {allow-remote: true, secret-key: \"a-long-random-key\"}"),
          ]
        : null,
      seconds !== null ? h("p", {}, "Try again in ", countdown(Date.now() + seconds * 1000, () => location.reload())) : null,
    ),
  );
}

export function renderLogin(main, onSuccess, notice = "") {
  const input = h("input", {
    id: "management-key",
    type: "password",
    name: "management-key",
    autocomplete: "current-password",
    required: true,
    "aria-describedby": "login-message",
  });
  const message = h("p", { id: "login-message", class: "error", role: "alert" }, notice);
  const button = h("button", { type: "submit", class: "primary", id: "sign-in" }, "Sign in");
  const form = h(
    "form",
    { class: "card narrow", id: "login", method: "post", action: "#" },
    h("h1", {}, "Sign in"),
    h("label", { for: "management-key" }, "Management key"),
    input,
    h("p", { class: "muted" }, "The remote-management secret-key of this server. It is kept in this tab only."),
    message,
    h("div", { class: "row end" }, button),
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const key = input.value.trim();
    if (!key) return;
    button.disabled = true;
    message.replaceChildren();
    try {
      await call("GET", "/auth-files", { key, quiet: true });
      storeKey(key);
      onSuccess();
    } catch (error) {
      const seconds = lockoutSeconds(error.message);
      if (seconds !== null) {
        // The API's words, with its "Try again in 29m59s" counting down live.
        const reopen = () => {
          button.disabled = false;
          message.replaceChildren();
        };
        message.append(error.message.replace(/\s*try again in .*$/i, ""), " Try again in ", countdown(Date.now() + seconds * 1000, reopen), ".");
        return;
      }
      message.append(error.message);
      button.disabled = false;
      input.select();
    }
  });
  main.replaceChildren(form);
  input.focus();
}
