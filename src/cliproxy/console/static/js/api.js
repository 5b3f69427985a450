// The management API, called with the key the user typed. The key lives in this tab's
// sessionStorage only: never in a URL, a cookie or the page's markup.

const STORAGE_KEY = "cliproxy.management-key";
const BASE = "/v0/management";

export class ApiError extends Error {
  constructor(status, message, body) {
    super(message);
    this.status = status;
    this.body = body;
  }
}

export function storedKey() {
  return sessionStorage.getItem(STORAGE_KEY) || "";
}

export function storeKey(key) {
  sessionStorage.setItem(STORAGE_KEY, key);
}

export function forgetKey() {
  sessionStorage.removeItem(STORAGE_KEY);
}

// Calls that answer 401 while a page is open (the key was changed on the server) send the
// user back to the login form; main.js sets this.
let onUnauthorized = null;

export function whenUnauthorized(callback) {
  onUnauthorized = callback;
}

// Back to the login form with this notice (the key stopped working, and the page knows why).
export function reportUnauthorized(message) {
  if (onUnauthorized) onUnauthorized(new ApiError(401, message, null));
}

// `raw`: a successful answer comes back as a Blob (downloads) instead of parsed JSON.
// `contentType`: that of a `body` given as it is (YAML text, for instance).
export async function call(method, path, { json, body, contentType, query, key, quiet, raw } = {}) {
  const url = new URL(BASE + path, location.origin);
  for (const [name, value] of Object.entries(query || {})) {
    if (value !== undefined && value !== null) url.searchParams.set(name, String(value));
  }
  const headers = {};
  const secret = key ?? storedKey();
  if (secret) headers.Authorization = "Bearer " + secret;
  let payload = body;
  if (body !== undefined && contentType) headers["Content-Type"] = contentType;
  if (json !== undefined) {
    headers["Content-Type"] = "application/json";
    payload = JSON.stringify(json);
  }
  let response;
  try {
    response = await fetch(url, { method, headers, body: payload, cache: "no-store", credentials: "omit" });
  } catch (error) {
    throw new ApiError(0, `cannot reach cliproxy: ${error.message}`, null);
  }
  if (response.ok && raw) return { status: response.status, blob: await response.blob() };
  const text = await response.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = null;
  }
  if (response.ok) return { status: response.status, data };
  // A coded refusal ({"error": "invalid_config", "message": "..."}) is told by its message.
  const message =
    (data && typeof data.error === "string" && typeof data.message === "string" && data.message) ||
    (data && typeof data.error === "string" && data.error) ||
    (data && typeof data.message === "string" && data.message) ||
    text ||
    `HTTP ${response.status}`;
  const error = new ApiError(response.status, message, data);
  if (response.status === 401 && !quiet && onUnauthorized) onUnauthorized(error);
  throw error;
}

export const get = (path, query) => call("GET", path, { query });

// "IP banned due to too many failed attempts. Try again in 29m59s" → seconds, or null.
export function lockoutSeconds(message) {
  const found = /try again in (?:(\d+)m)?(\d+)s/i.exec(message || "");
  if (!found) return null;
  return Number(found[1] || 0) * 60 + Number(found[2]);
}
