// Every credential the server routes to: auth files (OAuth accounts) and the API keys of
// config.yaml, with one label per auth_index (what the usage ledger groups accounts by).

import { get } from "./api.js";

export const KEY_SECTIONS = [
  { path: "/gemini-api-key", field: "gemini-api-key", provider: "gemini" },
  { path: "/claude-api-key", field: "claude-api-key", provider: "claude" },
  { path: "/codex-api-key", field: "codex-api-key", provider: "codex" },
  { path: "/openai-compatibility", field: "openai-compatibility", provider: "openai-compatibility" },
];

export function maskKey(key) {
  const text = String(key || "");
  if (text.length <= 8) return text ? "…" + text.slice(-2) : "";
  return text.slice(0, 4) + "…" + text.slice(-4);
}

export async function loadAccounts() {
  const [files, quota] = await Promise.all([get("/auth-files"), get("/quota")]);
  const quotaByName = new Map((quota.data.accounts || []).map((a) => [a.name, a]));
  return (files.data.files || []).map((file) => ({ ...file, quota: quotaByName.get(file.name) || null }));
}

export async function loadApiKeys() {
  const lists = await Promise.all(KEY_SECTIONS.map((s) => get(s.path)));
  const keys = [];
  lists.forEach((reply, sectionIndex) => {
    const section = KEY_SECTIONS[sectionIndex];
    const entries = (reply.data && reply.data[section.field]) || [];
    entries.forEach((entry, i) => {
      if (section.provider === "openai-compatibility") {
        (entry["api-key-entries"] || []).forEach((item, j) => {
          keys.push({
            provider: `openai-compatibility (${entry.name})`,
            label: entry.name,
            baseUrl: entry["base-url"] || "",
            key: maskKey(item["api-key"]),
            authIndex: item["auth-index"],
            routingId: `openai-compatibility[${entry.name}][${j}]`,
            models: (entry.models || []).length,
          });
        });
        return;
      }
      keys.push({
        provider: section.provider,
        label: entry.prefix ? `${entry.prefix}/ (${section.field}[${i}])` : `${section.field}[${i}]`,
        baseUrl: entry["base-url"] || "",
        key: maskKey(entry["api-key"]),
        authIndex: entry["auth-index"],
        routingId: `${section.field}[${i}]`,
        models: (entry.models || []).length,
      });
    });
  });
  return keys;
}

export function labelsByIndex(accounts, apiKeys) {
  const labels = new Map();
  for (const a of accounts) labels.set(a.auth_index, `${a.label || a.name} (${a.provider || "?"})`);
  for (const k of apiKeys) {
    const label = `${k.provider} key ${k.key}`;
    labels.set(k.authIndex, label);
    labels.set(k.routingId, label);
  }
  return labels;
}

const NEAR_QUOTA_PERCENT = 80;

function usedPercents(quota) {
  const found = [];
  const visit = (value) => {
    if (!value || typeof value !== "object") return;
    for (const [name, inner] of Object.entries(value)) {
      if (name === "used_percent" && typeof inner === "number") found.push(inner);
      else visit(inner);
    }
  };
  visit(quota && quota.usage);
  visit(quota && quota.vendor_quota);
  return found;
}

// Why an account needs the operator, or null: expired, needs login, broken, cooling, near quota.
export function attentionReason(account) {
  if (account.disabled) return null;
  if (account.state === "needs_login") return `needs login: ${account.status_message || "sign in again"}`;
  if (account.state === "invalid") return `unreadable file: ${account.status_message || ""}`;
  if (account.state === "cooling") return account.status_message || "cooling down";
  const cooldowns = (account.quota && account.quota.cooldowns) || [];
  if (cooldowns.length) return `cooling down for ${cooldowns.map((c) => c.model).join(", ")}`;
  if (account.expiry && Date.parse(account.expiry) < Date.now()) return "token expired (waiting for a refresh)";
  const near = usedPercents(account.quota).filter((p) => p >= NEAR_QUOTA_PERCENT);
  if (near.length) return `near its quota (${Math.max(...near)}% used)`;
  return null;
}
