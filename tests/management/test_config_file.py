"""The YAML editing underneath every write: comments stay above the key they describe."""

from __future__ import annotations

import re

from ruamel.yaml.comments import CommentedMap

from cliproxy.management.config_file import dump_document, edit_keeping_comments, load_document

TEXT = """\
# header
api-keys:
- a  # key a
- {x: 1}
# about debug
debug: false  # off
# about routing
routing:
    strategy: rr
    nested:
        deep: 1
# trailer
"""


def edited(mutate) -> str:  # type: ignore[no-untyped-def]
    document = load_document(TEXT)
    edit_keeping_comments(document.tree, mutate)
    return dump_document(document)


def test_untouched_tree_dumps_the_same_text() -> None:
    assert edited(lambda tree: None) == TEXT


def test_growing_and_emptying_lists_keep_the_comment_blocks_in_place() -> None:
    def grow(tree: CommentedMap) -> None:
        tree["api-keys"].append("b")
        tree["routing"]["nested"]["more"] = 2
        tree["new-key"] = [1, 2]

    text = edited(grow)
    lines = text.splitlines()
    assert lines[lines.index("# about debug") - 1] == "- b"
    assert lines[lines.index("# about debug") + 1] == "debug: false  # off"
    assert lines[lines.index("# about routing") + 1] == "routing:"
    assert lines[-1] == "# trailer"
    assert "- a  # key a" in lines

    text = edited(lambda tree: tree["api-keys"].clear())
    assert "api-keys: []\n# about debug\ndebug: false  # off\n" in text


def test_replacing_a_scalar_keeps_its_own_comment_and_the_next_block() -> None:
    text = edited(lambda tree: tree.__setitem__("debug", True))
    assert re.search(r"debug: true +# off\n# about routing\nrouting:", text)


def test_comment_only_file_keeps_its_comments() -> None:
    document = load_document("# only comments\n# here\n")
    edit_keeping_comments(document.tree, lambda tree: tree.__setitem__("debug", True))
    assert dump_document(document) == "# only comments\n# here\ndebug: true\n"


def test_flow_style_values_keep_the_following_comments() -> None:
    text = "a: [1, 2]  # two\n# about b\nb: {x: 1}\n# trailer\n"
    document = load_document(text)
    assert dump_document(document) == text

    def replace(tree: CommentedMap) -> None:
        tree["a"] = [3]
        tree["b"] = {"y": 2}

    edit_keeping_comments(document.tree, replace)
    out = dump_document(document)
    assert out.index("# about b") < out.index("b:")
    assert out.rstrip().endswith("# trailer")
