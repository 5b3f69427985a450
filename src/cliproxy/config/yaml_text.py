"""Round-trip YAML text: how a file indents, and the comment lines between its keys.

Shared by the management API's config editor and the v8 layout migration, which both rewrite
a config file and must leave it looking like the user's own: the same indentation, and each
block of comment lines still above the key it described. Comment lines between two keys are
kept by ruamel on the last item of the preceding value, where an edit would drop or misplace
them; ``take_trailing`` lifts them out and ``put_trailing`` / ``set_before`` put them back.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import CommentMark
from ruamel.yaml.tokens import CommentToken

Mutation = Callable[[CommentedMap], None]


@dataclass
class Indentation:
    """How the file indents, so a rewrite looks like the original: `mapping` spaces for a
    nested key, block list items `offset` spaces in with their content at `sequence`."""

    mapping: int = 2
    sequence: int = 2
    offset: int = 0


_BLOCK_KEY = re.compile(r"^( *)[^\s#-][^#]*:\s*(#.*)?$")


def guess_indentation(text: str) -> Indentation:
    """The first nested mapping and the first block list decide (ruamel's own guess mixes
    the two, and files commonly indent lists differently from maps)."""
    style = Indentation()
    seen_map = seen_seq = False
    lines = [
        line for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")
    ]
    for line, following in itertools.pairwise(lines):
        parent = _BLOCK_KEY.match(line)
        if parent is None:
            continue
        step = (len(following) - len(following.lstrip(" "))) - len(parent.group(1))
        if step < 0 or (step == 0 and not following.lstrip().startswith("- ")):
            continue
        if following.lstrip().startswith("- "):
            if not seen_seq:
                style.offset, style.sequence, seen_seq = step, step + 2, True
        elif not seen_map:
            style.mapping, seen_map = step, True
        if seen_map and seen_seq:
            break
    return style


def round_trip_yaml(style: Indentation | None = None) -> YAML:
    yaml = YAML(typ="rt")
    yaml.preserve_quotes = True
    yaml.width = 4096  # never re-wrap long values (URLs, keys)
    if style is not None:
        yaml.indent(mapping=style.mapping, sequence=style.sequence, offset=style.offset)
    return yaml


def comment_lines(text: str) -> str:
    """The comment (and blank) lines of a document that holds no value (an empty, `null`,
    `~` or comment-only file): what a rewrite puts back above its first key."""
    kept = [line for line in text.splitlines() if not line.strip() or line.lstrip().startswith("#")]
    return "\n".join(kept) + "\n" if any(line.strip() for line in kept) else ""


# --- comments between keys ----------------------------------------------------------------


def tail_slots(node: Any) -> list[tuple[Any, Any, int]]:
    """(container, key, position) of each comment slot along the last items of `node`,
    deepest first: a comment after a block ends up in one of them. A flow-style container
    (`{x: 1}`) is one item: a comment put inside it would print inside the braces."""
    if isinstance(node, CommentedMap | CommentedSeq) and node.fa.flow_style():
        return []
    if isinstance(node, CommentedSeq) and len(node):
        return [*tail_slots(node[-1]), (node, len(node) - 1, 0)]
    if isinstance(node, CommentedMap) and len(node):
        last = list(node.keys())[-1]
        return [*tail_slots(node[last]), (node, last, 2)]
    return []


def take_trailing(tree: CommentedMap, key: Any) -> str:
    """Remove and return the full comment lines after `key`'s value (its own end-of-line
    comment stays)."""
    for container, slot_key, position in [*tail_slots(tree[key]), (tree, key, 2)]:
        entry = container.ca.items.get(slot_key)
        token = entry[position] if entry and len(entry) > position else None
        if isinstance(token, CommentToken):
            head, newline, tail = token.value.partition("\n")
            if newline and tail:
                if head:
                    token.value = head + "\n"
                else:
                    entry[position] = None
                return tail
    # After a flow-style item ruamel keeps the following comments on the list's `end`.
    containers = [slot[0] for slot in tail_slots(tree[key])]
    for container in [*containers, tree[key]]:
        end = getattr(getattr(container, "ca", None), "end", None)
        if end:
            text = "".join(token.value for token in end if isinstance(token, CommentToken))
            container.ca.end = []
            return text
    return ""


def put_trailing(tree: CommentedMap, key: Any, text: str) -> None:
    container, slot_key, position = [*tail_slots(tree[key]), (tree, key, 2)][0]
    entry = container.ca.items.setdefault(slot_key, [None, None, None, None])
    token = entry[position]
    if isinstance(token, CommentToken):
        token.value = token.value if token.value.endswith("\n") else token.value + "\n"
        token.value += text
    else:
        entry[position] = CommentToken("\n" + text, CommentMark(0), None)


def set_before(node: CommentedMap, key: Any, text: str, indent: int) -> None:
    """Print the comment lines of ``text`` (as `take_trailing` returns them) right above
    ``key`` of ``node``, each moved to column ``indent``; blank lines stay blank."""
    lines = text.splitlines()
    if not lines:
        return
    entry = node.ca.items.setdefault(key, [None, None, None, None])
    tokens = entry[1] if isinstance(entry[1], list) else []
    if tokens and not text.strip():
        return  # blank lines under comments already placed there would part them from it
    for line in lines:
        value = " " * indent + line.strip() + "\n" if line.strip() else "\n"
        tokens.append(CommentToken(value, CommentMark(0), None))
    entry[1] = tokens


def commented(value: Any) -> Any:
    """Plain dicts and lists as ruamel containers, which have comment slots of their own."""
    if isinstance(value, dict) and not isinstance(value, CommentedMap):
        return CommentedMap((key, commented(item)) for key, item in value.items())
    if isinstance(value, list) and not isinstance(value, CommentedSeq):
        return CommentedSeq(commented(item) for item in value)
    if isinstance(value, CommentedMap):
        for key in value:
            value[key] = commented(value[key])
    elif isinstance(value, CommentedSeq):
        for index, item in enumerate(value):
            value[index] = commented(item)
    if isinstance(value, CommentedMap | CommentedSeq) and not value:
        # `key: {}` on one line: an empty block container would print a comment that follows
        # it between the key and its value.
        value.fa.set_flow_style()
        value.ca.items.clear()  # slots of removed items would swallow the comment after it
    return value


def edit_keeping_comments(tree: CommentedMap, mutate: Mutation) -> None:
    """Apply `mutate`, then put each block of comment lines back before the key it preceded
    (or at the end of the file)."""
    keys = list(tree.keys())
    blocks: list[tuple[Any, str]] = []  # (key the comments stood before | None for EOF, text)
    for index, key in enumerate(keys):
        text = take_trailing(tree, key)
        if text:
            blocks.append((keys[index + 1] if index + 1 < len(keys) else None, text))
    mutate(tree)
    for key in tree:
        tree[key] = commented(tree[key])
    new_keys = list(tree.keys())
    for before, text in blocks:
        if not new_keys:
            return
        if before is None or before not in tree:
            put_trailing(tree, new_keys[-1], text)
        elif new_keys.index(before) > 0:
            put_trailing(tree, new_keys[new_keys.index(before) - 1], text)
