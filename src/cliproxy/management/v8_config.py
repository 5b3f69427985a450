"""/v8/management/config: the whole config, and one key path of it, as JSON in the v8 layout
(the reference system's second management tree; shared/reference/wave2.md §i).

Reads show the live config in the v8 layout, defaults included, as GET /v0/management/config
shows the legacy one (client-keys' keys masked), and also what that one leaves out
(server.host and .port, oauth.auth-dir, management) except `management.secret-key`.

Writes take bare JSON values (no `{"value": ...}` envelope) at a path of mapping keys
(`/config/routing/retry/request-retry`; never an index into a list): PUT replaces, PATCH
merges objects (a null removes a key) and replaces lists and scalars, DELETE removes. They go
through the config editor like every write (validated as a whole config, written with the
file's comments, applied live); a legacy file is migrated to the v8 layout by the first one.
A path the layout or the settings do not have is 404 naming it; a value the config refuses
is 422 naming its v8 path. Since reads never show `management.secret-key`, a write that
leaves it out keeps it, and a masked client key sent back keeps the key it stands for.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import unquote

from ruamel.yaml import YAML, YAMLError
from ruamel.yaml.comments import CommentedMap
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from cliproxy.config.load import unknown_keys
from cliproxy.config.schema import Config
from cliproxy.config.v8_layout import is_legacy_name, v8_home
from cliproxy.config.v8_migrate import migrate
from cliproxy.config.v8_paths import is_within, layout_problem, spelled, v8_path_problem
from cliproxy.config.yaml_text import commented
from cliproxy.management import routes_config
from cliproxy.management.common import OK, ApiError, api, context, json_response, read_json
from cliproxy.management.routes_client_keys import KeyFiller
from cliproxy.management.routes_config import config_json, live_config
from cliproxy.management.v8_key_groups import (
    console_groups,
    names_from_file,
    without_response_only,
)

Path_ = tuple[str, ...]
SECRET: Path_ = ("management", "secret-key")
CLIENT_KEYS: Path_ = ("client-keys",)


def v8_view(config: Config, *, with_index: bool = True) -> dict[str, Any]:
    """The live config as JSON in the v8 layout, its provider groups as the console reads
    them (``with_index``: each key's response-only `auth-index` too)."""
    shown = config_json(config, hidden=frozenset({"home"}))
    management = shown.get("remote-management")
    if isinstance(management, dict):
        management.pop("secret-key", None)
    if not config.demo_explicit:
        shown.pop("demo", None)  # it follows the providers; written, it would stop following
    tree: dict[str, Any] = migrate(shown).tree
    return console_groups(tree, with_index=with_index)


def view_of(request: Request, *, with_index: bool = True) -> dict[str, Any]:
    """The live config's v8 view, its provider groups named as the config file names them."""
    tree = v8_view(live_config(request), with_index=with_index)
    try:
        text = context(request).editor.read_text()
        file_tree = YAML(typ="safe").load(text)
    except (ApiError, YAMLError):
        return tree  # no file (or one that does not parse): nothing to take names from
    return names_from_file(tree, file_tree)


def request_path(request: Request) -> Path_:
    """The key path after `/config/`, from the raw path so that `%2F` can stand for a `/`
    inside a key (model names such as `openrouter/...`)."""
    raw: bytes = request.scope.get("raw_path") or request.url.path.encode()
    _, _, rest = raw.partition(b"/config/")
    parts = [unquote(part.decode("latin-1")) for part in rest.split(b"/")]
    if parts and parts[-1] == "":
        parts.pop()  # a trailing slash
    if not parts or any(part == "" for part in parts):
        raise _unknown(tuple(parts), "a key path has no empty parts")
    return tuple(parts)


def _unknown(path: Path_, message: str) -> ApiError:
    shown = "/".join(path)
    return ApiError(404, "unknown_path", f"config path {shown}: {message}", {"path": shown})


def _not_set(path: Path_) -> ApiError:
    shown = "/".join(path)
    return ApiError(404, "not_found", f"config path {shown}: not set", {"path": shown})


def _refused(key: str, message: str) -> ApiError:
    problem = {"line": None, "key": key, "message": message}
    return ApiError(
        422, "invalid_config", f"{key}: {message}", {"line": None, "problems": [problem]}
    )


def _said(problem: tuple[Path_, str]) -> str:
    where, message = problem
    return f"{spelled(where)}: {message}"


def _not_mapping(path: Path_, where: Path_, node: Any) -> ApiError:
    """404 for ``path``: at ``where`` (a part of it) there is no mapping to go on in."""
    if isinstance(node, list):
        message = f"{spelled(where)} is a list; paths address mapping keys, not indexes"
    else:
        message = f"{spelled(where)} holds a value, not a mapping of keys"
    return _unknown(path, message)


# --- reads ----------------------------------------------------------------------------------


@api
async def get_config(request: Request) -> Response:
    return json_response(view_of(request))


@api
async def get_path(request: Request) -> Response:
    """The value at the path; a path the layout has that holds nothing is 404 `not_found`
    (the reference's answer, on which the console falls back to its default: `[]`, `{}`)."""
    path = request_path(request)
    node: Any = view_of(request)
    for depth, part in enumerate(path):
        if not isinstance(node, dict):
            raise _not_mapping(path, path[:depth], node)
        if part not in node:
            problem = v8_path_problem(path)
            if problem is not None:
                raise _unknown(path, _said(problem))
            raise _not_set(path)
        node = node[part]
    return json_response(node)


# --- writes ---------------------------------------------------------------------------------


class _Write:
    """One write at ``path`` (``op``: put, patch or delete), as the editor's mutation.
    ``effective``: the live config's v8 view before it (what the config says without the
    file spelling a key out)."""

    def __init__(self, path: Path_, op: str, value: Any, effective: dict[str, Any]) -> None:
        self.path = path
        self.op = op
        self.value = value
        self.effective = effective
        self.keys = KeyFiller([])

    def written(self) -> list[Path_]:
        """Every key path the write names: its own, and those inside an object value."""
        if self.op == "delete":
            return [self.path]
        return [self.path, *_paths_in(self.value, self.path)]

    def __call__(self, tree: CommentedMap) -> None:
        problem = v8_path_problem(self.path)
        if problem is not None:
            raise _unknown(self.path, _said(problem))
        if self.path == () and not isinstance(self.value, dict):
            raise _refused("(the config)", "must be a JSON object of keys")
        known_unknown = set(unknown_keys(tree))
        client_keys = [
            dict(entry) for entry in tree.get("client-keys") or [] if isinstance(entry, dict)
        ]
        written = self.written()
        secret = _at(tree, SECRET)
        keep_secret = isinstance(secret, str) and bool(secret)
        keep_secret = keep_secret and not any(is_within(p, SECRET) for p in written)
        if keep_secret and self.op == "put":
            # Reads never show it: a whole section written back keeps it (in its place).
            self.value = _with(self.value, SECRET[len(self.path) :], secret)
        getattr(self, "_" + self.op)(tree)
        if keep_secret and _at(tree, SECRET) is None:
            _keep_secret(tree, str(secret))
        if any(is_within(CLIENT_KEYS, p) or is_within(p, CLIENT_KEYS) for p in written):
            self._fill_client_keys(tree, client_keys)
        self._check(tree, written, known_unknown)

    def _put(self, tree: CommentedMap) -> None:
        if self.path == ():
            _sync(tree, self.value, self.effective)
            return
        parent = _parent(tree, self.path, create=True)
        assert parent is not None  # created
        last = self.path[-1]
        current = parent.get(last)
        if isinstance(current, CommentedMap) and isinstance(self.value, dict):
            _sync(current, self.value, _at(self.effective, self.path))
        elif isinstance(self.value, dict):
            parent[last] = CommentedMap()
            _sync(parent[last], self.value, _at(self.effective, self.path))
        else:
            parent[last] = commented(self.value)

    def _patch(self, tree: CommentedMap) -> None:
        if self.path == ():
            _merge_patch(tree, self.value, self.effective)
            return
        parent = _parent(tree, self.path, create=self.value is not None)
        if parent is None:
            return
        last = self.path[-1]
        current = parent.get(last)
        if self.value is None:
            parent.pop(last, None)
        elif isinstance(self.value, dict):
            if not isinstance(current, CommentedMap):
                current = parent[last] = CommentedMap()
            _merge_patch(current, self.value, _at(self.effective, self.path))
        else:
            parent[last] = commented(self.value)

    def _delete(self, tree: CommentedMap) -> None:
        parent = _parent(tree, self.path, create=False)
        if parent is not None:
            parent.pop(self.path[-1], None)
            _prune(tree, self.path[:-1])

    def _fill_client_keys(self, tree: CommentedMap, existing: list[dict[str, Any]]) -> None:
        self.keys.existing = existing
        entries = tree.get("client-keys")
        for index, entry in enumerate(entries if isinstance(entries, list) else []):
            if isinstance(entry, dict):
                self.keys.resolve(entry, f"client-keys[{index}]")

    def _check(self, tree: CommentedMap, written: list[Path_], known: set[Any]) -> None:
        """What the layout and the settings say against the written keys: 404 for the
        request's own path, 422 for a key inside its value."""
        found: list[tuple[Path_, str]] = []
        for key in tree:
            if is_legacy_name(tree, key):  # (a client api-keys list is one; groups are not)
                home = spelled(v8_home((str(key),)) or ())
                said = ((str(key),), f"a legacy name; in the v8 layout it is {home}")
                found.append(layout_problem((str(key),)) or said)
        for path in written[1:]:
            problem = layout_problem(path)
            if problem is not None:
                found.append(problem)
        for unknown in unknown_keys(tree):
            if unknown not in known:
                found.append((tuple(str(part) for part in unknown), "unknown key"))
        for problem in found:
            if is_within(self.path, problem[0]):
                raise _unknown(self.path, _said(problem))
        if found:
            raise _refused(spelled(found[0][0]), found[0][1])


def _paths_in(value: Any, at: Path_) -> Iterator[Path_]:
    if isinstance(value, dict):
        for key, item in value.items():
            path = (*at, str(key))
            yield path
            yield from _paths_in(item, path)


def _at(tree: Any, path: Path_) -> Any:
    node = tree
    for part in path:
        if not isinstance(node, dict):
            return None
        node = node.get(part)
    return node


def _parent(tree: CommentedMap, path: Path_, *, create: bool) -> CommentedMap | None:
    node = tree
    for depth, part in enumerate(path[:-1]):
        child = node.get(part)
        if child is None:
            if not create:
                return None
            child = CommentedMap()
            node[part] = child
        elif not isinstance(child, CommentedMap):
            raise _not_mapping(path, path[: depth + 1], child)
        node = child
    return node


def _prune(tree: CommentedMap, path: Path_) -> None:
    """Drop the mappings along ``path`` that a removal left empty."""
    while path:
        parent = _at(tree, path[:-1])
        node = _at(tree, path)
        if not (isinstance(node, dict) and not node and isinstance(parent, dict)):
            return
        parent.pop(path[-1], None)
        path = path[:-1]


_UNSET = object()


def _sync(target: CommentedMap, value: dict[str, Any], effective: Any) -> None:
    """Make ``target`` say what ``value`` says, keeping the nodes (and so the comments) of
    what did not change. A key the file does not set is written only when its value differs
    from what the config has without it (``effective``), so a read written back changes
    nothing and does not spell out every default."""
    for key in [key for key in target if key not in value]:
        del target[key]
    for key, item in value.items():
        said = effective.get(key, _UNSET) if isinstance(effective, dict) else _UNSET
        current = target.get(key, _UNSET)
        if isinstance(current, CommentedMap) and isinstance(item, dict):
            _sync(current, item, said)
        elif current is not _UNSET:
            if _plain(current) != item and item != said:  # (equal to said: same meaning)
                target[key] = commented(item)
        elif isinstance(item, dict) and isinstance(said, dict):
            child = CommentedMap()
            _sync(child, item, said)
            if child:
                target[key] = child
        elif item != said:
            target[key] = commented(item)


def _merge_patch(target: CommentedMap, patch: dict[str, Any], effective: Any) -> None:
    """Merge ``patch`` into ``target``: objects merge, lists and values replace, null removes
    (keys the file does not set are left out when they repeat what the config says)."""
    for key, item in patch.items():
        said = effective.get(key, _UNSET) if isinstance(effective, dict) else _UNSET
        current = target.get(key)
        if item is None:
            target.pop(key, None)
        elif isinstance(item, dict):
            if not isinstance(current, CommentedMap):
                current = CommentedMap()
            _merge_patch(current, item, said)
            if current or key in target:
                target[key] = current
        elif key in target:
            if _plain(target[key]) != item and item != said:
                target[key] = commented(item)
        elif item != said:
            target[key] = commented(item)


def _with(value: Any, path: Path_, item: Any) -> Any:
    """``value`` with ``item`` at ``path`` when it has a mapping there and nothing at it."""
    if not path:
        return value
    if not isinstance(value, dict):
        return value
    if len(path) == 1:
        return value if path[0] in value else {**value, path[0]: item}
    if path[0] not in value:
        return value
    return {**value, path[0]: _with(value[path[0]], path[1:], item)}


def _keep_secret(tree: CommentedMap, secret: str) -> None:
    section = tree.get("management")
    if not isinstance(section, CommentedMap):
        section = CommentedMap()
        tree["management"] = section
    section.setdefault("secret-key", secret)


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


async def _write(request: Request, path: Path_, op: str, value: Any = None) -> Response:
    value = without_response_only(path, value)
    write = _Write(path, op, value, view_of(request, with_index=False))
    await context(request).editor.edit_v8(write)
    return write.keys.reply()


@api
async def put_config(request: Request) -> Response:
    return await _write(request, (), "put", await read_json(request))


@api
async def patch_config(request: Request) -> Response:
    body = await read_json(request)
    if not isinstance(body, dict):
        raise _refused("(the config)", "must be a JSON object of keys to merge")
    return await _write(request, (), "patch", body)


@api
async def put_path(request: Request) -> Response:
    path = request_path(request)
    return await _write(request, path, "put", await read_json(request))


@api
async def patch_path(request: Request) -> Response:
    path = request_path(request)
    return await _write(request, path, "patch", await read_json(request))


@api
async def delete_path(request: Request) -> Response:
    await _write(request, request_path(request), "delete")
    return json_response(OK)


ROUTES: list[Route] = [
    Route("/config", get_config, methods=["GET"]),
    Route("/config", put_config, methods=["PUT"]),
    Route("/config", patch_config, methods=["PATCH"]),
    # The whole file as YAML: the /v0 routes' own (the text as given, nothing migrated).
    Route("/config.yaml", routes_config.get_config_yaml, methods=["GET"]),
    Route("/config.yaml", routes_config.put_config_yaml, methods=["PUT"]),
    Route("/config/{path:path}", get_path, methods=["GET"]),
    Route("/config/{path:path}", put_path, methods=["PUT"]),
    Route("/config/{path:path}", patch_path, methods=["PATCH"]),
    Route("/config/{path:path}", delete_path, methods=["DELETE"]),
]
