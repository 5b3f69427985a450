"""Read config.yaml into a Config, turning every problem into `file:line: key.path: message`."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from pydantic_core import ErrorDetails
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap
from ruamel.yaml.error import MarkedYAMLError, YAMLError

from .checks import run_checks
from .errors import ConfigError, ConfigProblem, KeyPath, render_key_path
from .schema import Config
from .tree import KeyScan, locate, scalar_problems, to_plain
from .usage_database import describe_usage_database
from .v8_layout import Translated, translate


def default_config() -> Config:
    """The embedded default: 127.0.0.1:8317, no client keys, no providers, demo models on."""
    return Config()


def load_config(path: Path) -> Config:
    """Load and validate a config file. Raises ConfigError listing every problem found."""
    source = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError([ConfigProblem(source, None, "", "config file not found")]) from None
    except IsADirectoryError:
        raise ConfigError([ConfigProblem(source, None, "", "is a directory, not a file")]) from None
    except UnicodeDecodeError as exc:
        problem = ConfigProblem(source, None, "", f"is not UTF-8 text ({exc.reason})")
        raise ConfigError([problem]) from None
    except OSError as exc:
        message = f"cannot be read: {exc.strerror or exc}"
        raise ConfigError([ConfigProblem(source, None, "", message)]) from None
    return parse_config_text(text, source, base_dir=path.parent)


def parse_config_text(text: str, source: str, base_dir: Path | None = None) -> Config:
    """Parse config YAML held in memory. Relative file paths (tls.cert/key) use `base_dir`
    (default: the current directory)."""
    translated = translate(_parse_yaml(text, source))
    tree = translated.tree
    try:
        scan = KeyScan(source, translated.v8_path)
        scan.run(tree)
        bad_values = scalar_problems(tree)
    except RecursionError:
        raise ConfigError([ConfigProblem(source, None, "", "nested too deeply")]) from None
    warnings = list(scan.warnings)
    if bad_values:
        problems = [_problem(translated, source, loc, message) for loc, message in bad_values]
        raise ConfigError(_in_file_order(problems), [str(w) for w in warnings])

    try:
        cfg = Config.model_validate(to_plain(tree))
    except ValidationError as exc:
        problems = [_problem_from_pydantic(error, translated, source) for error in exc.errors()]
        raise ConfigError(_in_file_order(problems), [str(w) for w in warnings]) from None

    checks = run_checks(cfg, base_dir or Path.cwd())
    if not cfg.demo_explicit:
        cfg.demo = not cfg.has_providers()  # checks may have dropped empty provider entries
    warnings += [_problem(translated, source, loc, message) for loc, message in checks.warnings]
    rendered_warnings = [str(w) for w in _in_file_order(warnings)]
    if checks.errors:
        problems = [_problem(translated, source, loc, message) for loc, message in checks.errors]
        raise ConfigError(_in_file_order(problems), rendered_warnings)

    cfg.set_findings(
        rendered_warnings, scan.unsupported, _in_file_order(warnings), translated.layout
    )
    return cfg


def unknown_keys(tree: CommentedMap) -> list[KeyPath]:
    """The key paths (as ``tree`` spells them, v8 or legacy) of the keys no setting reads."""
    translated = translate(copy.deepcopy(tree))  # translate may reuse the file's blocks
    scan = KeyScan("", translated.v8_path)
    scan.run(translated.tree)
    return scan.unknown


def check_config(path: Path) -> tuple[int, list[str]]:
    """What `cliproxy config check PATH` prints, and its exit status (0 usable, 2 errors)."""
    try:
        cfg = load_config(path)
    except ConfigError as exc:
        lines = [str(problem) for problem in exc.problems]
        lines += [f"warning: {warning}" for warning in exc.warnings]
        count = len(exc.problems)
        lines.append(f"{path}: {count} error{'s' if count != 1 else ''}, config not usable")
        return 2, lines
    lines = [f"warning: {warning}" for warning in cfg.warnings]
    for key_path, line in cfg.unsupported_key_lines():
        where = f"{path}:{line}" if line is not None else str(path)
        lines.append(f"not supported yet (ignored): {where}: {key_path}")
    lines.append(f"layout: {_LAYOUTS[cfg.layout]}")
    if cfg.usage_database:  # (its password masked)
        lines.append(f"usage ledger: {describe_usage_database(cfg.usage_database, cfg.auth_dir)}")
    summary = f"{path}: OK"
    extras = []
    if cfg.warnings:
        extras.append(f"{len(cfg.warnings)} warning{'s' if len(cfg.warnings) != 1 else ''}")
    if cfg.unsupported_keys():
        extras.append(f"{len(cfg.unsupported_keys())} not supported yet")
    if extras:
        summary += f" ({', '.join(extras)})"
    lines.append(summary)
    return 0, lines


_LAYOUTS = {
    "legacy": "legacy layout",
    "v8": "v8 layout (config-version 8)",
    "mixed": "mixed layout (v8 paths win over their legacy keys)",
}


def _parse_yaml(text: str, source: str) -> CommentedMap:
    yaml = YAML(typ="rt")
    try:
        tree = yaml.load(text)
    except RecursionError:
        raise ConfigError([ConfigProblem(source, None, "", "YAML nested too deeply")]) from None
    except MarkedYAMLError as exc:
        line, _column, message = describe_yaml_error(exc)
        raise ConfigError([ConfigProblem(source, line, "", f"YAML syntax: {message}")]) from None
    except YAMLError as exc:
        raise ConfigError([ConfigProblem(source, None, "", f"YAML syntax: {exc}")]) from None
    except (ValueError, TypeError) as exc:
        # A tagged value that does not construct (`!!timestamp 2001-99-99`, `!!int x`).
        message = f"a value cannot be read: {exc}"
        raise ConfigError([ConfigProblem(source, None, "", message)]) from None
    if tree is None:  # empty file or only comments: every default applies
        return CommentedMap()
    if not isinstance(tree, CommentedMap):
        kind = "a list" if isinstance(tree, list) else "a single value"
        message = f"the file must be a mapping of keys (`port: 8317` ...), not {kind}"
        raise ConfigError([ConfigProblem(source, 1, "", message)])
    return tree


def describe_yaml_error(exc: MarkedYAMLError) -> tuple[int | None, int | None, str]:
    """(1-based line, 1-based column, message) of a YAML syntax error, the message without
    ruamel's `in "<unicode string>"` locations."""
    mark = exc.problem_mark or exc.context_mark
    line = mark.line + 1 if mark is not None else None
    column = mark.column + 1 if mark is not None else None
    message = exc.problem or exc.context or "invalid YAML"
    if exc.problem and exc.context and exc.context_mark is not None:
        # The parser notices late; say where the construct it was reading began.
        message += f" ({exc.context} started on line {exc.context_mark.line + 1})"
    return line, column, message


def _problem(translated: Translated, source: str, loc: KeyPath, message: str) -> ConfigProblem:
    line = locate(translated.tree, loc)
    return ConfigProblem(source, line, render_key_path(translated.v8_path(loc)), message)


def _in_file_order(problems: list[ConfigProblem]) -> list[ConfigProblem]:
    return sorted(problems, key=lambda p: p.line if p.line is not None else 0)


def _problem_from_pydantic(
    error: ErrorDetails, translated: Translated, source: str
) -> ConfigProblem:
    loc: KeyPath = tuple(error["loc"])
    return _problem(translated, source, loc, _message(error, loc))


_EXPECTED = {
    "string_type": "a string",
    "int_type": "a whole number",
    "int_parsing": "a whole number",
    "int_from_float": "a whole number",
    "float_type": "a number",
    "float_parsing": "a number",
    "bool_type": "true or false",
    "bool_parsing": "true or false",
    "list_type": "a list",
    "dict_type": "a mapping of keys",
    "model_type": "a mapping of keys",
    "model_attributes_type": "a mapping of keys",
    "path_type": "a path",
}


def _message(error: ErrorDetails, loc: KeyPath) -> str:
    kind = error["type"]
    if kind == "missing":
        return "is required"
    if kind == "value_error":
        ctx = error.get("ctx") or {}
        return str(ctx.get("error", error["msg"]))
    if kind in _EXPECTED:
        return f"must be {_EXPECTED[kind]} (got {_describe(error.get('input'), loc)})"
    text = error["msg"]
    return text[:1].lower() + text[1:]


def _describe(value: Any, loc: KeyPath) -> str:
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    # Never echo what might be a credential.
    secret = any(isinstance(part, str) and ("key" in part or "secret" in part) for part in loc)
    if secret:
        return f"a {type(value).__name__}"
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."
