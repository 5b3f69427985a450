"""Checks for the JSON fields a client sends, shared by every protocol's request parser.

The contract, the same for every check here:

- A failure raises ``invalid(f"{path}: expected ...", path)``: the message starts with the JSON
  path of the offending value (``messages[2].content[0].text``) and the same path is the error's
  ``param``, so a client can find the field without reading the sentence.
- The words name JSON types, never Python ones: an object, a list, a string, a non-empty string,
  a number, an integer, a boolean (true or false).
- A boolean is never a number: Python's True is an int, JSON's true is not a token count.
- An integer is a JSON number without a fraction; an integral float such as ``3.0`` passes only
  when the caller asks for it (``integral_floats=True``, as Google's API does) and comes back
  as an int.
- A check returns the value narrowed to its type (a number as a float). Each ``optional_``
  variant lets None (the field absent, or JSON null) through as None and checks anything else.
"""

from __future__ import annotations

from typing import Any

from cliproxy.model import invalid
from cliproxy.protocols.base import JSON


def expect_object(value: Any, path: str) -> JSON:
    if not isinstance(value, dict):
        raise invalid(f"{path}: expected an object", path)
    return value


def expect_list(value: Any, path: str) -> list[Any]:
    if not isinstance(value, list):
        raise invalid(f"{path}: expected a list", path)
    return value


def expect_str(value: Any, path: str) -> str:
    if not isinstance(value, str):
        raise invalid(f"{path}: expected a string", path)
    return value


def expect_nonempty_str(value: Any, path: str) -> str:
    if not isinstance(value, str) or not value:
        raise invalid(f"{path}: expected a non-empty string", path)
    return value


def expect_number(value: Any, path: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise invalid(f"{path}: expected a number", path)
    return float(value)


def expect_int(value: Any, path: str, *, integral_floats: bool = False) -> int:
    if integral_floats and isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise invalid(f"{path}: expected an integer", path)
    return value


def expect_bool(value: Any, path: str) -> bool:
    if not isinstance(value, bool):
        raise invalid(f"{path}: expected a boolean (true or false)", path)
    return value


def optional_object(value: Any, path: str) -> JSON | None:
    return None if value is None else expect_object(value, path)


def optional_str(value: Any, path: str) -> str | None:
    return None if value is None else expect_str(value, path)


def optional_number(value: Any, path: str) -> float | None:
    return None if value is None else expect_number(value, path)


def optional_int(value: Any, path: str) -> int | None:
    return None if value is None else expect_int(value, path)


def optional_bool(value: Any, path: str) -> bool | None:
    return None if value is None else expect_bool(value, path)
