"""The /v0/management API: configuration, client keys and provider lists, guarded by the
management key (see security.py); compatible with CLIProxyAPI's management routes."""

from cliproxy.management.app import PREFIX, ManagementMount, management_routes

__all__ = ["PREFIX", "ManagementMount", "management_routes"]
