"""Config problems that point at a file, a line and a key path."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

KeyPath = tuple[str | int, ...]


def render_key_path(loc: KeyPath) -> str:
    """('openai-compatibility', 0, 'base-url') -> 'openai-compatibility[0].base-url'."""
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else str(part)
    return text


@dataclass(frozen=True)
class ConfigProblem:
    """One finding. `line` is 1-based; None when the problem has no place in the file."""

    source: str
    line: int | None
    key_path: str
    message: str

    def __str__(self) -> str:
        where = f"{self.source}:{self.line}" if self.line is not None else self.source
        if self.key_path:
            return f"{where}: {self.key_path}: {self.message}"
        return f"{where}: {self.message}"


class ConfigError(Exception):
    """The config cannot be used. `.problems` lists every error found, in file order."""

    def __init__(self, problems: Sequence[ConfigProblem], warnings: Sequence[str] = ()) -> None:
        self.problems = list(problems)
        # Non-fatal findings from the same read, so `config check` can show everything at once.
        self.warnings = list(warnings)
        super().__init__("\n".join(str(problem) for problem in self.problems))
