"""Keys CLIProxyAPI understands (current and past releases) that cliproxy reads but ignores.

They are kept in the loaded config and listed as "not supported yet"; anything else is reported
as an unknown key. Taken from CLIProxyAPI's config.example.yaml and its config structs.
"""

TOP_LEVEL_KEYS = frozenset(
    {
        "antigravity",
        "antigravity-signature-bypass-strict",
        "antigravity-signature-cache-enabled",
        "auth-auto-refresh-workers",
        "claude-code",
        "codex-instructions-enabled",
        "commercial-mode",
        "credential-concurrency",
        "credential-in-flight",
        "disable-claude-cloak-mode",
        "disable-image-generation",
        "enable-gemini-cli-endpoint",
        "force-gpt-5-codex",
        "gemini-web",
        "gpt-image-2-base-model",
        "home",
        "interactions-api-key",
        "model-name-mappings",
        "nonstream-keepalive",
        "nonstream-keepalive-interval",
        "oauth-model-blacklist",
        "oauth-model-mappings",
        "passthrough-headers",
        "plugins",
        "pprof",
        "redis-usage-queue-retention-seconds",
        "streaming",
        "video-result-auth-cache-ttl",
        "xai",
    }
)

MODEL_ENTRY_KEYS = frozenset(
    {
        "display-name",
        "max-context-length",
        "force-mapping",
        "is-compat",
        "thinking",
        "image",
        "input-modalities",
        "output-modalities",
        "fork",
    }
)

PROVIDER_KEY_ENTRY_KEYS = frozenset(
    {
        "cloak",
        "fingerprint-profile",
        "experimental-cch-signing",
        "rebuild-mid-system-message",
        "websockets",
        "alpha-search",
    }
)

OPENAI_PROVIDER_KEYS = frozenset(
    {
        "support-prompt-cache-key",
    }
)

ROUTING_KEYS: frozenset[str] = frozenset()

QUOTA_EXCEEDED_KEYS = frozenset({"antigravity-credits"})

# The `codex:` block's other switches (CLIProxyAPI; its v8 layout moves them under upstream.codex).
CODEX_SETTINGS_KEYS = frozenset(
    {
        "disable-codex-cloaking",
        "stream-bootstrap-buffering",
        "stream-bootstrap-timeout",
        "orphan-delegation-compatibility",
        "response-steering",
        "optimize-multi-agent-v2",
    }
)

OPENAI_KEY_ENTRY_KEYS: frozenset[str] = frozenset()
