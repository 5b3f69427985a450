"""Editing config.yaml for the management API: round-trip load, edit, validate, atomic write,
live apply.

Every write is validated as a whole config before anything touches the disk, so a rejected
edit leaves the file byte-identical. Comments and key order survive because the file is edited
as ruamel's round-trip tree; the comment lines that sit between two top-level keys are moved
along with their keys when a list or map before them changes (ruamel hangs them on the last
item of the preceding value, which an edit would otherwise drop or misplace).
"""

from __future__ import annotations

import asyncio
import io
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from ruamel.yaml.comments import CommentedMap
from ruamel.yaml.error import MarkedYAMLError, YAMLError
from ruamel.yaml.scalarstring import ScalarString

from cliproxy.auth.file_lock import exclusive
from cliproxy.auth.files import AuthWriteError, remove_stale_temp_files, write_atomic
from cliproxy.config import ConfigError, ConfigProblem, parse_config_text
from cliproxy.config.load import describe_yaml_error
from cliproxy.config.schema import Config
from cliproxy.config.v8_layout import (
    VERSION_KEY,
    is_legacy_name,
    top_level,
    translate,
    write_back,
)
from cliproxy.config.v8_migrate import VERSION, MigrationError, migrate, migrate_text
from cliproxy.config.yaml_text import (
    Indentation,
    Mutation,
    comment_lines,
    commented,
    edit_keeping_comments,
    guess_indentation,
    round_trip_yaml,
)
from cliproxy.management.errors import ApiError
from cliproxy.management.security import hash_secret, is_bcrypt_hash
from cliproxy.state import AppState


def config_problem_text(error: ConfigError) -> str:
    """`key.path: message (line N)` per problem, without the server's file path."""
    parts = []
    for problem in error.problems:
        text = f"{problem.key_path}: {problem.message}" if problem.key_path else problem.message
        parts.append(f"{text} (line {problem.line})" if problem.line else text)
    return "; ".join(parts) or str(error)


def problem_fields(problem: ConfigProblem) -> dict[str, Any]:
    """One problem as JSON: `{"line": N | null, "key": "a.b[0]", "message": "..."}`."""
    return {"line": problem.line, "key": problem.key_path, "message": problem.message}


def config_refusal(error: ConfigError) -> ApiError:
    """422 invalid_config. Besides the message: `line` (the first problem's line, or null),
    `field` (the first problem's key path) and every problem with its own line and path, so an
    editor can mark them and a form can put each message by its field."""
    lines = [problem.line for problem in error.problems if problem.line is not None]
    field = next((problem.key_path for problem in error.problems if problem.key_path), None)
    return ApiError(
        422,
        "invalid_config",
        config_problem_text(error),
        {"line": lines[0] if lines else None},
        field=field,
        # `field` too: the name every other refusal gives the refused value (console forms).
        problems=[
            {**problem_fields(problem), "field": problem.key_path} for problem in error.problems
        ]
        or None,
    )


def _yaml_refusal(exc: YAMLError) -> ApiError:
    """400 invalid_yaml with the line and column (1-based) as fields and in the message."""
    if not isinstance(exc, MarkedYAMLError):
        return ApiError(400, "invalid_yaml", f"YAML syntax: {exc}", {"line": None})
    line, column, message = describe_yaml_error(exc)
    where = f" (line {line}, column {column})" if line is not None else ""
    return ApiError(
        400, "invalid_yaml", f"YAML syntax: {message}{where}", {"line": line, "column": column}
    )


@dataclass
class _Document:
    tree: CommentedMap
    style: Indentation
    preamble: str  # the text of a file that held only comments (ruamel loads it as nothing)


def load_document(text: str) -> _Document:
    """Parse YAML text; raises ApiError 400 for text that is not YAML or not a mapping."""
    try:
        tree = round_trip_yaml().load(text)
    except YAMLError as exc:
        raise _yaml_refusal(exc) from None
    except (ValueError, OverflowError) as exc:  # a tagged value ruamel cannot build
        raise ApiError(400, "invalid_yaml", f"YAML value: {exc}", {"line": None}) from None
    except RecursionError:
        raise ApiError(400, "invalid_yaml", "YAML nesting too deep", {"line": None}) from None
    if tree is None:
        return _Document(CommentedMap(), Indentation(), comment_lines(text))
    if not isinstance(tree, CommentedMap):
        message = "the config must be a mapping of keys (line 1)"
        raise ApiError(400, "invalid_yaml", message, {"line": 1, "column": 1})
    if _has_lone_surrogate(tree):
        # YAML's "\ud800" escape yields a str no UTF-8 encoder takes: the file would be
        # written, then applying it (keys are encoded) would fail.
        message = "a string holds an escaped lone surrogate (\\ud800)"
        raise ApiError(400, "invalid_yaml", message, {"line": None})
    return _Document(tree, guess_indentation(text), "")


def _has_lone_surrogate(node: Any) -> bool:
    if isinstance(node, str):
        return any("\ud800" <= ch <= "\udfff" for ch in node)
    if isinstance(node, dict):
        return any(_has_lone_surrogate(k) or _has_lone_surrogate(v) for k, v in node.items())
    if isinstance(node, list):
        return any(_has_lone_surrogate(item) for item in node)
    return False


def dump_document(document: _Document) -> str:
    out = io.StringIO()
    round_trip_yaml(document.style).dump(document.tree, out)
    body = out.getvalue() if document.tree else ""
    if document.preamble.strip():
        return document.preamble.rstrip("\n") + "\n" + body
    return body


# --- the editor ---------------------------------------------------------------------------


def _write_atomically(path: Path, data: bytes) -> None:
    """The file keeps its mode and a symlink to it survives (auth/files.py, the one writer)."""
    write_atomic(path, data, keep_mode=True)


def _hash_plain_secret(tree: CommentedMap) -> bool:
    """Replace a plaintext remote-management.secret-key in the tree by its bcrypt hash."""
    section = tree.get("remote-management")
    if not isinstance(section, CommentedMap):
        return False
    value = section.get("secret-key")
    if not isinstance(value, str) or not value.strip() or is_bcrypt_hash(value.strip()):
        return False
    hashed = hash_secret(value.strip())
    # Keep the quoting style the file used (ruamel's quoted scalars are str subclasses).
    section["secret-key"] = type(value)(hashed) if isinstance(value, ScalarString) else hashed
    return True


_T = TypeVar("_T")


class ConfigEditor:
    """One per server. Writes are serialised by `lock`; each ends with `state.apply`."""

    def __init__(self, path: Path | None, state_getter: Callable[[], AppState]) -> None:
        self.path = path
        self.state_getter = state_getter
        self.lock = asyncio.Lock()
        if path is not None:
            # A write killed between its temp file and the rename left the temp file (it holds
            # the keys of that config); the server starting is the moment to clear it.
            target = path.resolve()
            remove_stale_temp_files(target.parent, target.name)

    def _require_path(self) -> Path:
        if self.path is None:
            raise ApiError(
                409,
                "no_config_file",
                "the server runs without a config file, so there is nothing to write; "
                "start it with --config to manage settings through this API",
            )
        return self.path

    def read_text(self) -> str:
        path = self._require_path()
        try:
            return path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise ApiError(404, "not_found", "the config file does not exist") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise ApiError(500, "read_failed", f"cannot read the config file: {exc}") from None

    async def edit(self, mutate: Mutation) -> Config:
        """Load the file, apply `mutate` to its tree, validate, write, apply live. Refusals
        carry the plain `{"error": message}` body of the reference's setting routes."""
        async with self.lock:
            try:
                config = await asyncio.to_thread(self._one_writer, self._edit_sync, mutate)
            except ApiError as error:
                raise ApiError(
                    error.status,
                    None,
                    error.message,
                    field=error.field,
                    problems=error.problems,
                ) from None
            self.state_getter().apply(config)
            return config

    async def edit_v8(self, mutate: Mutation) -> Config | None:
        """A /v8/management write: the file is edited in the v8 layout (a legacy or mixed
        file is migrated first, comments kept, and the migration must read to the same
        config), then validated, written and applied as every write. Refusals keep their code
        (`{"error": code, "message": ...}`). None when the edit changed nothing (nothing is
        written, a legacy file stays as it is)."""
        async with self.lock:
            config = await asyncio.to_thread(self._one_writer, self._edit_v8_sync, mutate)
            if config is not None:
                self.state_getter().apply(config)
            return config

    async def replace(self, text: str) -> Config:
        """PUT /config.yaml: the new text as given (a plaintext secret-key gets hashed)."""
        self._require_path()
        async with self.lock:
            config = await asyncio.to_thread(self._one_writer, self._replace_sync, text)
            self.state_getter().apply(config)
            return config

    async def validate(self, text: str) -> Config:
        """POST /config.yaml/validate: what PUT would refuse, refused the same way (lines of
        `text` as sent); nothing is hashed, written or applied. Works without a config file
        too (relative paths then resolve against the working directory)."""
        return await asyncio.to_thread(self._validate_sync, text)

    def hash_secret_in_file(self) -> Config | None:
        """At start: a plaintext secret-key in the file is replaced by its hash. Returns the
        re-read config when the file changed. Synchronous: runs before the event loop."""
        if self.path is None:
            return None
        text = self.read_text()
        document = load_document(text)
        # In a v8 file the secret sits under management:, which the legacy view shares.
        if not _hash_plain_secret(translate(document.tree).tree):
            return None
        return self._commit(dump_document(document))

    def _one_writer(self, write: Callable[[Any], _T], argument: Any) -> _T:
        """``write(argument)``, alone among the server's processes when it has several (a
        single process is serialised by ``lock`` already and leaves no lock file about). The
        workers of one server each edit the one file: two read-modify-writes at once would
        let the later undo the earlier."""
        if self.path is None or self.state_getter().processes == 1:
            return write(argument)
        with exclusive(self.path):
            return write(argument)

    def _edit_sync(self, mutate: Mutation) -> Config:
        document = load_document(self.read_text())
        translated = translate(document.tree)
        if translated.layout == "legacy":
            edit_keeping_comments(document.tree, mutate)
            _hash_plain_secret(document.tree)
        else:
            # A v8 (or mixed) file: the routes edit its legacy view, and the edits are written
            # back under the file's own paths, so it keeps its layout.
            before = top_level(translated.tree)
            mutate(translated.tree)
            _hash_plain_secret(translated.tree)
            write_back(document.tree, translated, before)
            for key in document.tree:
                document.tree[key] = commented(document.tree[key])
        return self._commit(dump_document(document))

    def _edit_v8_sync(self, mutate: Mutation) -> Config | None:
        document = self._v8_document(self.read_text())
        before = dump_document(document)
        edit_keeping_comments(document.tree, mutate)
        # The secret sits under management:, which the legacy view shares.
        _hash_plain_secret(translate(document.tree).tree)
        after = dump_document(document)
        if after == before:
            return None
        return self._commit(after)

    def _v8_document(self, text: str) -> _Document:
        """The file in the v8 layout."""
        document = load_document(text)
        tree = document.tree
        legacy = [key for key in tree if is_legacy_name(tree, key)]
        if not legacy and tree.get(VERSION_KEY) == VERSION:
            return document
        path = self._require_path()
        try:
            migrated = migrate_text(text, str(path), path.parent)
        except ConfigError:
            # The file does not load as it is (edited by hand since): nothing to compare the
            # migration with; this write's own validation decides.
            document.tree = migrate(tree, document.style.mapping).tree
            return document
        except MigrationError as error:
            raise ApiError(
                500, "migration_failed", f"cannot write the v8 layout: {error}"
            ) from None
        return load_document(migrated.text)

    def _validate_sync(self, text: str) -> Config:
        load_document(text)  # what only the editor refuses (a lone surrogate, a non-mapping)
        if self.path is None:
            return self._parse(text, "config.yaml", Path.cwd())
        return self._parse(text, self.path.name, self.path.parent)

    def _replace_sync(self, text: str) -> Config:
        path = self._require_path()
        document = load_document(text)
        # Validated as sent first, so a refusal's lines are those of the caller's text (the
        # text with a hashed secret is dumped again and may be laid out differently).
        config = self._parse(text, str(path), path.parent)
        # In a v8 file the secret sits under management:, which the legacy view shares.
        if _hash_plain_secret(translate(document.tree).tree):
            return self._commit(dump_document(document))
        return self._commit(text, config)

    @staticmethod
    def _parse(text: str, source: str, base_dir: Path) -> Config:
        try:
            return parse_config_text(text, source, base_dir=base_dir)
        except ConfigError as exc:
            raise config_refusal(exc) from None

    def _commit(self, text: str, config: Config | None = None) -> Config:
        """Write `text` (validated here unless `config` is its already validated result)."""
        path = self._require_path()
        if config is None:
            config = self._parse(text, str(path), path.parent)
        try:
            _write_atomically(path, text.encode("utf-8"))
        except OSError as exc:
            raise ApiError(500, "write_failed", f"failed to save config: {exc.strerror}") from None
        except AuthWriteError as exc:
            raise ApiError(500, "write_failed", f"failed to save config: {exc}") from None
        return config
