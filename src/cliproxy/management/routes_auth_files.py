"""Management routes for auth files and their quota view (paths relative to /v0/management).

Payloads and status codes follow the reference system's (§3.6, §3.11 of
shared/reference/management-api.md): `{"error": "..."}` bodies, 207 for partial batches.
Additions of ours: `POST /auth-files/refresh` (the reference has no refresh route; its console
back-dates `expired` through PATCH /auth-files/fields, which works here too) and `GET /quota`
(a per-account view of what the server already knows, instead of an open relay).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from fnmatch import fnmatchcase
from typing import Any

import orjson
from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from cliproxy.auth.files import AuthWriteError
from cliproxy.auth.refresher import AccountNeedsLogin
from cliproxy.auth.vertex_account import ServiceAccountError
from cliproxy.auth.vertex_import import import_service_account
from cliproxy.model import ProxyError, loads_limited
from cliproxy.state import AppState

from .auth_fields import patch_fields
from .auth_files import (
    MAX_FILE_BYTES,
    ManagementError,
    auth_index,
    check_name,
    delete_all,
    delete_files,
    describe_record,
    existing_path,
    list_entries,
    set_disabled,
    usable_record,
    validate_upload,
    write_file,
)
from .auth_quota import quota_entries, reset_quota, resolve_credential

Handler = Callable[[Request], Awaitable[Response]]
TRUE_WORDS = frozenset({"true", "1", "*"})


def _state(request: Request) -> AppState:
    # The outer Starlette app owns the state; a Mount of plain routes keeps request.app on it.
    state = getattr(request.app.state, "cliproxy", None)
    if not isinstance(state, AppState):
        raise ManagementError(500, "management routes are not attached to a cliproxy server")
    return state


def _json(payload: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(payload), status, media_type="application/json")


def _refusals(handler: Handler) -> Handler:
    """ManagementError → its status with `{"error": ...}`; nothing else is caught here."""

    async def wrapped(request: Request) -> Response:
        try:
            return await handler(request)
        except ManagementError as exc:
            return JSONResponse({"error": exc.message, **exc.extra}, exc.status)

    wrapped.__name__ = handler.__name__
    wrapped.__doc__ = handler.__doc__
    return wrapped


async def _body(request: Request, *, required: bool = True) -> Any:
    data = await request.body()
    if not data.strip():
        if required:
            raise ManagementError(400, "invalid body: a JSON object is required")
        return None
    try:
        return loads_limited(data, "body")
    except orjson.JSONDecodeError:
        raise ManagementError(400, "invalid body: not JSON") from None
    except ProxyError as exc:
        raise ManagementError(400, exc.message) from None


async def _object(request: Request) -> dict[str, Any]:
    body = await _body(request)
    if not isinstance(body, dict):
        raise ManagementError(400, "invalid body: expected a JSON object")
    return body


# ----- listing, download ----------------------------------------------------------------------


@_refusals
async def list_auth_files(request: Request) -> Response:
    """GET /auth-files[?name=&auth_index=] → {"files": [...]}"""
    query = request.query_params
    files = list_entries(_state(request), name=query.get("name"), index=query.get("auth_index"))
    return _json({"files": files})


@_refusals
async def download_auth_file(request: Request) -> Response:
    """GET /auth-files/download?name=x.json → the file's bytes as an attachment."""
    path = existing_path(_state(request), request.query_params.get("name"))
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ManagementError(500, f"cannot read {path.name}: {exc.strerror}") from None
    disposition = f'attachment; filename="{path.name}"'
    return Response(
        data, media_type="application/json", headers={"content-disposition": disposition}
    )


@_refusals
async def auth_file_models(request: Request) -> Response:
    """GET /auth-files/models?name= → {"models": [{id, owned_by, type}]} the account serves."""
    state = _state(request)
    record = usable_record(state, request.query_params.get("name"))
    provider = state.account_providers.get(record.type)
    excluded = record.excluded_models
    names = [
        m
        for m in (provider.models() if provider is not None else [])
        if not any(fnmatchcase(m.lower(), p.lower()) for p in excluded)
    ]
    prefix = f"{record.prefix}/" if record.prefix else ""
    models = [{"id": prefix + m, "owned_by": record.type, "type": record.type} for m in names]
    return _json({"models": models})


# ----- upload -----------------------------------------------------------------------------------


@_refusals
async def upload_auth_files(request: Request) -> Response:
    """POST /auth-files: multipart (every file part, any field) or a raw JSON body with ?name=."""
    state = _state(request)
    if request.headers.get("content-type", "").startswith("multipart/form-data"):
        uploads = await _multipart_files(request)
    else:
        uploads = [(request.query_params.get("name"), await _raw_body(request))]
    written: list[str] = []
    failed: list[dict[str, Any]] = []
    statuses: list[int] = []
    for name, data in uploads:
        try:
            if isinstance(data, ManagementError):
                raise data
            _refuse_deep(name, data)
            raw = validate_upload(state, name, data)
            written.append(write_file(state, check_name(name), raw).id)
        except ManagementError as exc:
            failed.append({"name": name if isinstance(name, str) else "", "error": exc.message})
            statuses.append(exc.status)
    if not written:
        if len(uploads) == 1:
            raise ManagementError(statuses[0], failed[0]["error"])
        raise ManagementError(max(statuses), "no file was uploaded", failed=failed)
    if failed:
        body = {"status": "partial", "uploaded": len(written), "files": written, "failed": failed}
        return _json(body, 207)
    if len(uploads) == 1:
        return _json({"status": "ok", "files": written})
    return _json({"status": "ok", "uploaded": len(written), "files": written})


def _refuse_deep(name: str | None, data: bytes) -> None:
    """A file nested past the proxy's limit would parse, then fail to be written (orjson
    writes about 254 levels): refuse it by that limit."""
    try:
        loads_limited(data, name or "the file")
    except orjson.JSONDecodeError:
        pass  # validate_upload says what is wrong with it
    except ProxyError as exc:
        raise ManagementError(400, exc.message) from None


async def _multipart_files(request: Request) -> list[tuple[str | None, bytes | ManagementError]]:
    try:
        form = await request.form(max_files=100, max_fields=100)
    except Exception as exc:  # python-multipart's errors vary by version; all mean bad input
        raise ManagementError(400, f"invalid multipart body: {exc}") from None
    files: list[tuple[str | None, bytes | ManagementError]] = []
    try:
        for _, value in form.multi_items():
            if not isinstance(value, UploadFile):
                continue
            data = await value.read(MAX_FILE_BYTES + 1)
            if len(data) > MAX_FILE_BYTES:
                too_big = ManagementError(
                    413, f"{value.filename}: larger than {MAX_FILE_BYTES} bytes"
                )
                files.append((value.filename, too_big))
            else:
                files.append((value.filename, data))
    finally:
        await form.close()
    if not files:
        raise ManagementError(400, "no files in the upload (send them as multipart file parts)")
    return files


async def _raw_body(request: Request) -> bytes:
    if request.query_params.get("name") is None:
        raise ManagementError(400, "name: required for a raw JSON upload (?name=x.json)")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_FILE_BYTES:
            raise ManagementError(413, f"body larger than {MAX_FILE_BYTES} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


# ----- delete -----------------------------------------------------------------------------------


@_refusals
async def delete_auth_files(request: Request) -> Response:
    """DELETE /auth-files?all=true | ?name=a&name=b | body ["a"] or {"name", "names"}."""
    state = _state(request)
    if request.query_params.get("all", "").lower() in TRUE_WORDS:
        return _json({"status": "ok", "deleted": delete_all(state)})
    names = [
        *request.query_params.getlist("name"),
        *_names_in(await _body(request, required=False)),
    ]
    if not names:
        raise ManagementError(400, "name: give ?name=, a JSON list of names, or ?all=true")
    deleted, failed = delete_files(state, names)
    if len(names) == 1 and failed:
        raise ManagementError(failed[0]["status"], f"auth file {names[0]}: {failed[0]['error']}")
    if not deleted:
        raise ManagementError(max(f["status"] for f in failed), "nothing deleted", failed=failed)
    if failed:
        body = {"status": "partial", "deleted": len(deleted), "files": deleted, "failed": failed}
        return _json(body, 207)
    if len(names) == 1:
        return _json({"status": "ok"})
    return _json({"status": "ok", "deleted": len(deleted), "files": deleted})


def _names_in(body: Any) -> list[Any]:
    if body is None:
        return []
    if isinstance(body, list):
        return body
    if isinstance(body, dict):
        names = body.get("names") or []
        if not isinstance(names, list):
            raise ManagementError(400, "names: expected a list of file names")
        return ([body["name"]] if body.get("name") else []) + names
    raise ManagementError(400, "invalid body: expected a list of names or an object")


# ----- edits ------------------------------------------------------------------------------------


@_refusals
async def patch_status(request: Request) -> Response:
    """PATCH /auth-files/status {"name", "disabled": bool} → written into the file."""
    body = await _object(request)
    disabled = body.get("disabled")
    if not isinstance(disabled, bool):
        raise ManagementError(400, "disabled: expected true or false")
    state = _state(request)
    name = body.get("name") or _name_of_index(state, body.get("auth_index"))
    record = set_disabled(state, name, disabled)
    return _json({"status": "ok", "name": record.id, "disabled": record.disabled})


@_refusals
async def patch_auth_fields(request: Request) -> Response:
    """PATCH /auth-files/fields {"name", <field>: <value>, ...}"""
    body = await _object(request)
    state = _state(request)
    if not body.get("name") and body.get("auth_index"):
        body["name"] = _name_of_index(state, body["auth_index"])
    record, changed = patch_fields(state, body)
    return _json({"status": "ok", "name": record.id, "updated": changed})


def _name_of_index(state: AppState, index: Any) -> str:
    if not isinstance(index, str) or not index:
        raise ManagementError(400, "name: required")
    for entry in list_entries(state, index=index):
        return str(entry["name"])
    raise ManagementError(404, f"no auth file with auth_index {index}")


@_refusals
async def refresh_auth_file(request: Request) -> Response:
    """POST /auth-files/refresh?name= (or {"name"}) → refresh the access token now."""
    name = request.query_params.get("name")
    if name is None:
        name = (await _object(request)).get("name")
    state = _state(request)
    record = usable_record(state, name)
    try:
        fresh = await state.refresher.refresh(record.id)
    except AccountNeedsLogin as exc:
        raise ManagementError(409, exc.message) from None
    except ProxyError as exc:
        raise ManagementError(502, exc.message) from None
    return _json({"status": "ok", "file": describe_record(state, fresh)})


# ----- vertex import ----------------------------------------------------------------------------


async def _vertex_form(request: Request) -> tuple[bytes, str, str]:
    """(the key file's bytes, location, prefix) of a multipart import; the text fields may
    also come in the query, as the reference reads them."""
    if not request.headers.get("content-type", "").startswith("multipart/form-data"):
        raise ManagementError(400, "file: send the service-account JSON as multipart field 'file'")
    try:
        form = await request.form(max_files=4, max_fields=20)
    except Exception as exc:  # python-multipart's errors vary by version; all mean bad input
        raise ManagementError(400, f"invalid multipart body: {exc}") from None
    try:
        upload = form.get("file")
        if not isinstance(upload, UploadFile):
            raise ManagementError(400, "file: the service-account JSON is missing (field 'file')")
        data = await upload.read(MAX_FILE_BYTES + 1)
        if len(data) > MAX_FILE_BYTES:
            raise ManagementError(413, f"file: larger than {MAX_FILE_BYTES} bytes")
        texts = {
            name: value.strip() if isinstance(value, str) else ""
            for name in ("location", "prefix")
            for value in [form.get(name, request.query_params.get(name, ""))]
        }
    finally:
        await form.close()
    return data, texts["location"], texts["prefix"]


@_refusals
async def vertex_import(request: Request) -> Response:
    """POST /vertex/import (multipart `file` = a service-account key, optional `location`,
    `prefix`) → writes vertex-<project>.json (0600) and routes it at once. A bad key is
    refused with the field it lacks, and nothing is written or removed."""
    data, location, prefix = await _vertex_form(request)
    try:
        record, _ = import_service_account(
            _state(request).auth_store, data, location=location, prefix=prefix
        )
    except ServiceAccountError as exc:
        raise ManagementError(400, str(exc)) from None
    except AuthWriteError as exc:
        raise ManagementError(500, str(exc)) from None
    return _json(
        {
            "status": "ok",
            "auth-file": str(record.path),
            "project_id": record.project_id,
            "email": record.email,
            "location": record.raw.get("location", ""),
        }
    )


# ----- quota ------------------------------------------------------------------------------------


@_refusals
async def quota(request: Request) -> Response:
    """GET /quota[?name=&auth_index=] → {"accounts": [...]} usage and cooldowns per account."""
    query = request.query_params
    accounts = quota_entries(_state(request), name=query.get("name"), index=query.get("auth_index"))
    return _json({"accounts": accounts})


@_refusals
async def post_reset_quota(request: Request) -> Response:
    """POST /reset-quota {"auth_index" | "name", "model"?} → that credential's cooldowns end."""
    body = await _object(request)
    state = _state(request)
    model = body.get("model")
    if model is not None and not isinstance(model, str):
        raise ManagementError(400, "model: expected a string")
    index = body.get("auth_index") or body.get("authIndex")
    if isinstance(body.get("name"), str) and not index:
        record = usable_record(state, body["name"])
        credential, index = record.id, auth_index(record.type, record.path)
    elif isinstance(index, str) and index:
        found = resolve_credential(state, index)
        if found is None:
            raise ManagementError(404, f"no credential with auth_index {index}")
        credential = found
    else:
        raise ManagementError(400, "auth_index: required")
    models = reset_quota(state, credential, model)
    return _json({"status": "ok", "auth_index": index, "name": credential, "models": models})


ROUTES: list[Route] = [
    Route("/auth-files", list_auth_files, methods=["GET"]),
    Route("/auth-files", upload_auth_files, methods=["POST"]),
    Route("/auth-files", delete_auth_files, methods=["DELETE"]),
    Route("/auth-files/download", download_auth_file, methods=["GET"]),
    Route("/auth-files/models", auth_file_models, methods=["GET"]),
    Route("/auth-files/status", patch_status, methods=["PATCH"]),
    Route("/auth-files/fields", patch_auth_fields, methods=["PATCH"]),
    Route("/auth-files/refresh", refresh_auth_file, methods=["POST"]),
    Route("/vertex/import", vertex_import, methods=["POST"]),
    Route("/quota", quota, methods=["GET"]),
    Route("/reset-quota", post_reset_quota, methods=["POST"]),
]
