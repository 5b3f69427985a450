"""Whole-config routes, scalar settings and the OAuth-channel maps (reference §3.1, §3.2, §3.5).

Reads answer from the live config; writes go through ConfigEditor (file first, then live).
A body that is not JSON is 400 `invalid body`; JSON of the wrong shape is 422 naming the field.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ruamel.yaml.comments import CommentedMap
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from cliproxy.config.schema import _STRATEGY_SPELLINGS, ROUTING_STRATEGIES, Config
from cliproxy.config.state_store import masked_url
from cliproxy.config.usage_database import masked_database
from cliproxy.management.common import (
    OK,
    ApiError,
    api,
    context,
    crud_routes,
    invalid,
    json_response,
    read_body,
    read_json,
    read_object,
    type_name,
)
from cliproxy.management.config_file import problem_fields
from cliproxy.management.security import management_enabled
from cliproxy.providers.base import mask_secret

# GET /config leaves these out, as the reference does: where the server listens, where the
# accounts live, and the management secret itself.
HIDDEN_KEYS = frozenset({"host", "port", "auth-dir", "remote-management", "home"})
NO_CONFIG_FILE = (
    "the server runs without a config file (on the embedded default settings, or a config "
    "given in code), so there is no config.yaml to show or edit; start it with --config FILE"
)


def live_config(request: Request) -> Config:
    return context(request).state_getter().runtime.config


def config_json(config: Config, hidden: frozenset[str] = HIDDEN_KEYS) -> dict[str, Any]:
    """The live config as the reference's GET /config shows it (without the ``hidden`` keys).
    Settings kept only as extra keys (request-log, logging-to-file, ws-auth, ...) are absent
    from the dump when the file does not set them; the Management Center's dashboard and
    System page read them from here, so each scalar setting is filled in with the value its
    own route reports."""
    dumped: dict[str, Any] = config.model_dump(mode="json", by_alias=True)
    shown = {key: value for key, value in dumped.items() if key not in hidden}
    for entry in shown.get("client-keys") or []:
        entry["key"] = mask_secret(entry["key"])  # shown in full only when generated
    # Database URLs may hold a password: shown masked (a masked value written back, equal to
    # what is shown, leaves the file's value as it is).
    if shown.get("usage-database"):
        shown["usage-database"] = masked_database(shown["usage-database"])
    store = shown.get("state-store")
    if isinstance(store, dict) and store.get("redis-url"):
        store["redis-url"] = masked_url(store["redis-url"])
    for scalar in SCALARS:
        node = shown
        for part in scalar.path[:-1]:
            child = node.get(part)
            if not isinstance(child, dict):
                child = node[part] = {}
            node = child
        if node.get(scalar.json_key) is None:
            node[scalar.json_key] = scalar.default
        elif scalar.kind is int and isinstance(node[scalar.json_key], float):
            # 30.0 (a float field in our schema) is shown as the reference's integer 30.
            value = node[scalar.json_key]
            node[scalar.json_key] = int(value) if value.is_integer() else value
    return shown


def ensure_map(parent: CommentedMap, key: str) -> CommentedMap:
    """The mapping at `parent[key]`, created when absent or empty (`routing:` with no value)."""
    node = parent.get(key)
    if not isinstance(node, CommentedMap):
        node = CommentedMap()
        parent[key] = node
    return node


def set_path(tree: CommentedMap, path: tuple[str, ...], value: Any) -> None:
    node = tree
    for part in path[:-1]:
        node = ensure_map(node, part)
    node[path[-1]] = value


# --- whole config -------------------------------------------------------------------------


@api
async def get_config(request: Request) -> Response:
    return json_response(config_json(live_config(request)))


@api
async def get_config_yaml(request: Request) -> Response:
    editor = context(request).editor
    if editor.path is None:
        # `config-file: false` tells this case from a config file that was deleted.
        raise ApiError(404, "not_found", NO_CONFIG_FILE, {"config-file": False})
    text = editor.read_text()
    return Response(
        text.encode("utf-8"),
        media_type="application/yaml; charset=utf-8",
        headers={"cache-control": "no-store", "x-content-type-options": "nosniff"},
    )


async def _yaml_body(request: Request) -> str:
    raw = await read_body(request)
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ApiError(400, "invalid_yaml", "the body is not UTF-8 text", {"line": None}) from None


@api
async def put_config_yaml(request: Request) -> Response:
    await context(request).editor.replace(await _yaml_body(request))
    return json_response({"ok": True, "changed": ["config"]})


@api
async def validate_config_yaml(request: Request) -> Response:
    """Check a whole config.yaml as PUT would, without saving it: the same 400/422 refusals
    (with `line`), or what saving it would bring besides the change itself."""
    config = await context(request).editor.validate(await _yaml_body(request))
    return json_response(
        {
            "ok": True,
            "warnings": [problem_fields(problem) for problem in config.warning_problems()],
            "unsupported": [
                {"line": line, "key": key} for key, line in config.unsupported_key_lines()
            ],
            # False: no secret-key and no MANAGEMENT_PASSWORD, so saving it turns this API off.
            "management": management_enabled(config.remote_management),
        }
    )


# --- scalar settings ----------------------------------------------------------------------


def _strategy(value: str) -> str:
    spelled = value.strip().lower()
    if spelled not in _STRATEGY_SPELLINGS:
        raise invalid(f"value: invalid strategy (one of {', '.join(ROUTING_STRATEGIES)})")
    return _STRATEGY_SPELLINGS[spelled]


@dataclass(frozen=True)
class Scalar:
    route: str  # path under the mount
    path: tuple[str, ...]  # where it lives in config.yaml
    kind: type  # bool, int or str
    default: Any  # what GET says when neither the file nor the schema sets it
    normalize: Callable[[Any], Any] | None = None
    deletable: bool = False

    @property
    def json_key(self) -> str:
        return self.path[-1]


SCALARS = (
    Scalar("debug", ("debug",), bool, False),
    Scalar("logging-to-file", ("logging-to-file",), bool, False),
    Scalar("logs-max-total-size-mb", ("logs-max-total-size-mb",), int, 0, lambda v: max(v, 0)),
    Scalar(
        "error-logs-max-files", ("error-logs-max-files",), int, 10, lambda v: v if v >= 0 else 10
    ),
    Scalar("usage-statistics-enabled", ("usage-statistics-enabled",), bool, True),
    Scalar("proxy-url", ("proxy-url",), str, "", str.strip, deletable=True),
    Scalar("quota-exceeded/switch-project", ("quota-exceeded", "switch-project"), bool, True),
    Scalar(
        "quota-exceeded/switch-preview-model",
        ("quota-exceeded", "switch-preview-model"),
        bool,
        True,
    ),
    Scalar("request-log", ("request-log",), bool, False),
    Scalar("ws-auth", ("ws-auth",), bool, False),
    Scalar("request-retry", ("request-retry",), int, 3),
    Scalar("max-retry-credentials", ("max-retry-credentials",), int, 0),
    Scalar("max-retry-interval", ("max-retry-interval",), int, 30),
    Scalar("force-model-prefix", ("force-model-prefix",), bool, False),
    Scalar("routing/strategy", ("routing", "strategy"), str, "round-robin", _strategy),
)

_KIND_WORDS = {bool: "a boolean", int: "a whole number", str: "a string"}


def _live_scalar(config: Config, scalar: Scalar) -> Any:
    node: Any = config.model_dump(mode="json", by_alias=True)
    for part in scalar.path:
        node = node.get(part) if isinstance(node, dict) else None
    if node is None:
        return scalar.default
    if scalar.kind is int and isinstance(node, float) and node.is_integer():
        return int(node)
    return node


def _checked_value(scalar: Scalar, body: dict[str, Any]) -> Any:
    if "value" not in body:
        raise invalid("value: is required")
    value = body["value"]
    fits = isinstance(value, scalar.kind) and not (scalar.kind is int and isinstance(value, bool))
    if not fits:
        raise invalid(f"value: must be {_KIND_WORDS[scalar.kind]} (got {type_name(value)})")
    return scalar.normalize(value) if scalar.normalize else value


def _scalar_routes(scalar: Scalar) -> list[Route]:
    @api
    async def get_value(request: Request) -> Response:
        return json_response({scalar.json_key: _live_scalar(live_config(request), scalar)})

    @api
    async def set_value(request: Request) -> Response:
        value = _checked_value(scalar, await read_object(request))
        await context(request).editor.edit(lambda tree: set_path(tree, scalar.path, value))
        return json_response(OK)

    @api
    async def clear_value(request: Request) -> Response:
        await context(request).editor.edit(lambda tree: set_path(tree, scalar.path, ""))
        return json_response(OK)

    routes = [
        Route(f"/{scalar.route}", get_value, methods=["GET"]),
        Route(f"/{scalar.route}", set_value, methods=["PUT", "PATCH"]),
    ]
    if scalar.deletable:
        routes.append(Route(f"/{scalar.route}", clear_value, methods=["DELETE"]))
    return routes


# --- OAuth-channel maps -------------------------------------------------------------------


def _channel(body: dict[str, Any], *names: str) -> str:
    for name in names:
        value = body.get(name)
        if isinstance(value, str) and value.strip():
            return value.strip().lower()
    raise invalid(f"{names[0]}: is required (a channel name such as codex or claude)")


def _string_list(value: Any, where: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise invalid(f"{where}: must be an array of strings")
    return list(dict.fromkeys(item.strip().lower() for item in value if item.strip()))


def _alias_list(value: Any, where: str) -> list[dict[str, Any]]:
    if not isinstance(value, list):
        raise invalid(f"{where}: must be an array of {{name, alias}} objects")
    rows = []
    for index, item in enumerate(value):
        if not isinstance(item, dict):
            raise invalid(f"{where}[{index}]: must be an object with name and alias")
        name = item.get("name")
        if not isinstance(name, str) or not name.strip():
            raise invalid(f"{where}[{index}].name: is required (a string)")
        rows.append(item)
    return rows


@dataclass(frozen=True)
class ChannelMap:
    key: str  # YAML key, also the route
    items_field: str  # PATCH body field with the new value
    clean: Callable[[Any, str], list[Any]]


CHANNEL_MAPS = (
    ChannelMap("oauth-excluded-models", "models", _string_list),
    ChannelMap("oauth-model-alias", "aliases", _alias_list),
)


def _map_routes(spec: ChannelMap) -> list[Route]:
    def whole_map(body: Any) -> dict[str, list[Any]]:
        if isinstance(body, dict) and set(body) == {"items"}:
            body = body["items"]
        if not isinstance(body, dict):
            raise invalid(f"{spec.key}: must be an object of channel → list")
        return {
            str(channel).strip().lower(): spec.clean(value, f"{spec.key}.{channel}")
            for channel, value in body.items()
            if str(channel).strip()
        }

    @api
    async def get_map(request: Request) -> Response:
        dumped = live_config(request).model_dump(mode="json", by_alias=True)
        return json_response({spec.key: dumped.get(spec.key) or {}})

    @api
    async def put_map(request: Request) -> Response:
        new = whole_map(await read_json(request))
        await context(request).editor.edit(lambda tree: tree.__setitem__(spec.key, new))
        return json_response(OK)

    @api
    async def patch_map(request: Request) -> Response:
        body = await read_object(request)
        channel = _channel(body, "provider", "channel")
        items = spec.clean(body.get(spec.items_field), spec.items_field)

        def mutate(tree: CommentedMap) -> None:
            current = ensure_map(tree, spec.key)
            if items:
                current[channel] = items
            elif channel in current:
                del current[channel]
            else:
                raise ApiError(404, None, "provider not found")

        await context(request).editor.edit(mutate)
        return json_response(OK)

    @api
    async def delete_channel(request: Request) -> Response:
        raw = request.query_params.get("provider") or request.query_params.get("channel") or ""
        channel = raw.strip().lower()
        if not channel:
            raise ApiError(400, None, "missing provider")

        def mutate(tree: CommentedMap) -> None:
            current = tree.get(spec.key)
            if not isinstance(current, CommentedMap) or channel not in current:
                raise ApiError(404, None, "provider not found")
            del current[channel]

        await context(request).editor.edit(mutate)
        return json_response(OK)

    return crud_routes(f"/{spec.key}", get_map, put_map, patch_map, delete_channel)


ROUTES: list[Route] = [
    Route("/config", get_config, methods=["GET"]),
    Route("/config.yaml", get_config_yaml, methods=["GET"]),
    Route("/config.yaml", put_config_yaml, methods=["PUT"]),
    Route("/config.yaml/validate", validate_config_yaml, methods=["POST"]),
    *(route for scalar in SCALARS for route in _scalar_routes(scalar)),
    *(route for spec in CHANNEL_MAPS for route in _map_routes(spec)),
]
