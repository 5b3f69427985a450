"""cliproxy configuration: CLIProxyAPI-compatible config.yaml, validation, hot reload."""

from .errors import ConfigError, ConfigProblem
from .load import check_config, default_config, load_config, parse_config_text
from .schema import Config, RemoteManagement, RoutingConfig, TLSConfig
from .upstreams import ModelAlias, OpenAICompatibility, OpenAIKeyEntry, ProviderKey
from .watch import ConfigWatcher, diff_keys

__all__ = [
    "Config",
    "ConfigError",
    "ConfigProblem",
    "ConfigWatcher",
    "ModelAlias",
    "OpenAICompatibility",
    "OpenAIKeyEntry",
    "ProviderKey",
    "RemoteManagement",
    "RoutingConfig",
    "TLSConfig",
    "check_config",
    "default_config",
    "diff_keys",
    "load_config",
    "parse_config_text",
]
