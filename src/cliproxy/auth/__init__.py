"""Subscription accounts: the auth directory (store), OAuth logins, and token refresh."""

from .files import AuthWriteError
from .flows import OAuthFlow, default_flows, oauth_flow
from .records import AccountState, AccountStatus, AuthRecord
from .refresher import AccountNeedsLogin, Refresher, RefreshFailed
from .store import AuthChange, AuthFileProblem, AuthStore, SaveResult

__all__ = [
    "AccountNeedsLogin",
    "AccountState",
    "AccountStatus",
    "AuthChange",
    "AuthFileProblem",
    "AuthRecord",
    "AuthStore",
    "AuthWriteError",
    "OAuthFlow",
    "RefreshFailed",
    "Refresher",
    "SaveResult",
    "default_flows",
    "oauth_flow",
]
