"""cliproxy: one local API over AI subscriptions and API keys."""

__version__ = "0.1.0"
