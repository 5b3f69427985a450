"""OpenAPI paths of the auth-file routes (routes_auth_files.py) and the browser logins
(routes_oauth.py)."""

from __future__ import annotations

from typing import Any

from cliproxy.auth.catalog import catalog
from cliproxy.management.auth_fields import LEGACY_NAMES
from cliproxy.management.openapi_common import (
    BOOLEAN,
    ENTRY,
    FLAG,
    INTEGER,
    JSON,
    STRING,
    STRINGS,
    Schema,
    json_body,
    object_of,
    op,
    query,
)

NULLABLE_STRING: Schema = {"type": "string", "nullable": True}
NULLABLE_INTEGER: Schema = {"type": "integer", "nullable": True}
AUTH_FILE: Schema = {
    "type": "object",
    "description": "One auth file as GET /auth-files lists it (unusable files too, state invalid)",
    "properties": {
        "id": STRING,
        "auth_index": STRING,
        "name": STRING,
        "type": STRING,
        "provider": STRING,
        "label": STRING,
        "status": STRING,
        "state": STRING,
        "status_message": STRING,
        "disabled": BOOLEAN,
        "unavailable": BOOLEAN,
        "needs_login": BOOLEAN,
        "email": NULLABLE_STRING,
        "expiry": NULLABLE_STRING,
        "last_refresh": NULLABLE_STRING,
        "next_retry_after": NULLABLE_STRING,
        "prefix": STRING,
        "priority": NULLABLE_INTEGER,
        "weight": NULLABLE_INTEGER,
        "excluded_models": STRINGS,
        "path": STRING,
        "size": INTEGER,
        "modtime": NULLABLE_STRING,
        "success": INTEGER,
        "failed": INTEGER,
        "recent_requests": {"type": "array", "items": ENTRY},
    },
    "required": ["name", "auth_index", "type", "status"],
}
NAME = query("name", STRING, about="the auth file's name, e.g. codex-bob@example.com.json")
REQUIRED_NAME = query("name", STRING, required=True, about="the auth file's name")
AUTH_INDEX = query("auth_index", STRING, about="the file's 16-hex auth_index")
BINARY: Schema = {"type": "string", "format": "binary"}
FAILED_ROWS: Schema = {
    "type": "array",
    "items": object_of({"name": STRING, "error": STRING, "status": INTEGER}),
}
# What PATCH /auth-files/fields edits (auth_fields.py); `null` removes a setting.
_FIELD_SCHEMAS: dict[str, Schema] = {
    "prefix": NULLABLE_STRING,
    "proxy_url": NULLABLE_STRING,
    "priority": NULLABLE_INTEGER,
    "weight": {"type": "integer", "minimum": 0, "nullable": True},
    "request_retry": {"type": "integer", "minimum": 0, "nullable": True},
    "note": NULLABLE_STRING,
    "websockets": {"type": "boolean", "nullable": True},
    "disabled": {"type": "boolean", "nullable": True},
    "disable_cooling": {"type": "boolean", "nullable": True},
    "using_api": {"type": "boolean", "nullable": True},
    "excluded_models": {"type": "array", "items": STRING, "nullable": True},
    "expired": {**NULLABLE_STRING, "description": "RFC 3339; a past time forces a refresh"},
    "headers": {"type": "object", "additionalProperties": NULLABLE_STRING, "nullable": True},
}


def _upload() -> dict[str, Any]:
    uploaded = object_of({"status": STRING, "uploaded": INTEGER, "files": STRINGS}, "status")
    partial = object_of(
        {"status": STRING, "uploaded": INTEGER, "files": STRINGS, "failed": FAILED_ROWS},
        "status",
        "failed",
    )
    body = {
        "required": True,
        "content": {
            "multipart/form-data": {
                # Every file part is read, whatever its field name; `file` is the usual one.
                "schema": object_of({"file": {"type": "array", "items": BINARY}}, "file")
            },
            JSON: {"schema": object_of({"type": STRING}, "type")},
        },
    }
    return op(
        "Upload auth files: multipart file parts (one or many), or one raw JSON body with "
        "?name=; 207 when some fail",
        "auth-files",
        params=[NAME],
        body=body,
        reply=uploaded,
        replies={207: partial},
        errors=[400, 413, 422],
    )


def _delete() -> dict[str, Any]:
    names = {"type": "array", "items": STRING}
    body = json_body(
        {"oneOf": [names, object_of({"name": STRING, "names": names})]}, required=False
    )
    deleted = object_of({"status": STRING, "deleted": INTEGER, "files": STRINGS}, "status")
    partial = object_of(
        {"status": STRING, "deleted": INTEGER, "files": STRINGS, "failed": FAILED_ROWS},
        "status",
        "failed",
    )
    return op(
        "Delete auth files: ?all=true, ?name= (repeatable), or a JSON list of names; "
        "207 when some are missing",
        "auth-files",
        params=[
            query("all", FLAG, about="true, 1 or * deletes every auth file"),
            query("name", names, about="a name to delete; repeat for several"),
        ],
        body=body,
        reply=deleted,
        replies={207: partial},
        errors=[400, 404],
    )


def auth_file_paths() -> dict[str, dict[str, Any]]:
    files = object_of({"files": {"type": "array", "items": AUTH_FILE}}, "files")
    named = object_of({"name": STRING, "auth_index": STRING})
    status_body = object_of({"name": STRING, "auth_index": STRING, "disabled": BOOLEAN}, "disabled")
    field_names = {**_FIELD_SCHEMAS}
    for legacy, field in LEGACY_NAMES.items():
        field_names[legacy] = _FIELD_SCHEMAS[field]
    fields_body = object_of({"name": STRING, "auth_index": STRING, **field_names}, closed=True)
    account = object_of(
        {
            "name": STRING,
            "auth_index": STRING,
            "type": STRING,
            "email": NULLABLE_STRING,
            "status": STRING,
            "cooldowns": {"type": "array", "items": ENTRY},
            "usage": {"type": "object", "nullable": True},
        }
    )
    models = object_of(
        {"models": {"type": "array", "items": object_of({"id": STRING, "owned_by": STRING})}}
    )
    return {
        "/auth-files": {
            "get": op(
                "Auth files with state, expiry and request counts",
                "auth-files",
                params=[NAME, AUTH_INDEX],
                reply=files,
            ),
            "post": _upload(),
            "delete": _delete(),
        },
        "/auth-files/download": {
            "get": op(
                "One auth file's bytes, as an attachment",
                "auth-files",
                params=[REQUIRED_NAME],
                reply=ENTRY,
                errors=[400, 404],
            )
        },
        "/auth-files/models": {
            "get": op(
                "Models the account serves (minus its excluded models)",
                "auth-files",
                params=[REQUIRED_NAME],
                reply=models,
                errors=[400, 404, 409],
            )
        },
        "/auth-files/status": {
            "patch": op(
                "Disable or enable an account, picked by name or auth_index",
                "auth-files",
                body=json_body(status_body),
                reply=object_of({"status": STRING, "name": STRING, "disabled": BOOLEAN}),
                errors=[400, 404, 409, 422],
            )
        },
        "/auth-files/fields": {
            "patch": op(
                "Edit an account's settings (null removes one); tokens are not editable",
                "auth-files",
                body=json_body(fields_body),
                reply=object_of({"status": STRING, "name": STRING, "updated": STRINGS}),
                errors=[400, 404, 409, 422],
            )
        },
        "/auth-files/refresh": {
            "post": op(
                "Refresh the account's access token now (?name= or {name})",
                "auth-files",
                params=[NAME],
                body=json_body(named, required=False),
                reply=object_of({"status": STRING, "file": AUTH_FILE}),
                errors=[400, 404, 409, 422, 502],
            )
        },
        "/vertex/import": {
            "post": op(
                "Import a Vertex service-account key as vertex-<project>.json",
                "auth-files",
                body={
                    "required": True,
                    "content": {
                        "multipart/form-data": {
                            "schema": object_of(
                                {"file": BINARY, "location": STRING, "prefix": STRING}, "file"
                            )
                        }
                    },
                },
                reply=object_of(
                    {
                        "status": STRING,
                        "auth-file": STRING,
                        "project_id": STRING,
                        "email": STRING,
                        "location": STRING,
                    }
                ),
                errors=[400, 413],
            )
        },
        "/quota": {
            "get": op(
                "Usage windows and cooldowns per account, from what the server already knows",
                "quota",
                params=[NAME, AUTH_INDEX],
                reply=object_of({"accounts": {"type": "array", "items": account}}, "accounts"),
            )
        },
    }


def login_paths() -> dict[str, dict[str, Any]]:
    started = object_of({"status": STRING, "url": STRING, "state": STRING}, "url", "state")
    webui = query(
        "is_webui",
        FLAG,
        about="true: also listen on the vendor's fixed loopback port for the redirect",
    )
    project = query("project_id", STRING, about="the Google Cloud project to use (Gemini)")
    paths: dict[str, dict[str, Any]] = {}
    device_started = object_of(
        {
            "status": STRING,
            "url": STRING,
            "state": STRING,
            "flow": {"type": "string", "enum": ["device"]},
            "user_code": STRING,
            "expires_in": {"type": "integer"},
        },
        "url",
        "state",
        "user_code",
    )
    for entry in catalog().entries:
        params = [webui, project] if entry.cloud_project else [webui]
        if entry.flow.device:
            for position, route in enumerate(entry.login_routes):
                operation = op(
                    f"Start a {entry.display_name} device-code login: the verification "
                    "URL, the user code to enter there, and the state to poll",
                    "logins",
                    reply=device_started,
                    errors=[502],
                )
                operation["x-cliproxy-login"] = {
                    "provider": entry.login,
                    "kind": entry.kind,
                    "title": entry.flow.display_name,
                    "project": False,
                    "device": True,
                    "alias": position > 0,
                }
                paths[f"/{route}-auth-url"] = {"get": operation}
            continue
        # What a page needs to offer the login (the console's "Add an account" reads it):
        # the provider name oauth-callback takes, a name for people, whether it takes a
        # project. The first route of a kind is its own name; the others are aliases.
        login = {
            "provider": entry.login,
            "kind": entry.kind,
            "title": entry.flow.display_name,
            "project": entry.cloud_project,
        }
        for position, route in enumerate(entry.login_routes):
            operation = op(
                f"Start a {entry.display_name} login: the authorize URL and its state",
                "logins",
                params=params,
                reply=started,
            )
            operation["x-cliproxy-login"] = {**login, "alias": position > 0}
            paths[f"/{route}-auth-url"] = {"get": operation}
    for name in ("antigravity", "kimi", "xai", "qwen", "iflow"):
        if catalog().by_login(name) is not None:
            continue  # offered now (a catalog kind)
        refused = op(
            f"{name} logins are not supported: always 422 with the reason", "logins", errors=[422]
        )
        del refused["responses"]["200"]  # never sent
        paths[f"/{name}-auth-url"] = {"get": refused}
    state = query("state", STRING, about="the state returned when the login started")
    status = object_of(
        {"status": {"type": "string", "enum": ["wait", "ok", "error"]}, "error": STRING}, "status"
    )
    callback_fields = {
        "provider": STRING,
        "redirect_url": {**STRING, "description": "the pasted callback URL"},
        "code": STRING,
        "state": STRING,
        "error": STRING,
        "error_description": STRING,
    }
    finish = "Finish a login with the pasted callback URL (or code and state); poll the status"
    paths["/get-auth-status"] = {
        "get": op(
            "A login's progress (an empty state answers ok, as the reference does)",
            "logins",
            params=[state],
            reply=status,
            errors=[400],
        )
    }
    paths["/oauth-session"] = {
        "delete": op(
            "Cancel a pending login",
            "logins",
            params=[{**state, "required": True}],
            reply=object_of({"status": STRING, "cancelled": BOOLEAN}),
            errors=[400],
        )
    }
    paths["/oauth-callback"] = {
        "get": op(
            finish,
            "logins",
            params=[query(name, schema) for name, schema in callback_fields.items()],
            errors=[400, 404, 409],
        ),
        "post": op(
            finish,
            "logins",
            body=json_body(object_of(callback_fields)),
            errors=[400, 404, 409, 413, 422],
        ),
    }
    return paths
