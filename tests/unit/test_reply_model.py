"""The pass-through stream rename touches only the exact upstream name as a model key's value."""

from __future__ import annotations

import orjson

from cliproxy.server.reply_model import stream_renamer


def test_equal_names_need_no_rename() -> None:
    assert stream_renamer("model", "same", "same") is None


def test_the_model_key_is_renamed_with_any_spacing() -> None:
    rename = stream_renamer("model", "up", "alias")
    assert rename is not None
    raw = b'data: {"id":"1","model":"up"}\n\ndata: {"response": {"model" :\t"up"}}\n\n'
    assert rename(raw) == (
        b'data: {"id":"1","model":"alias"}\n\ndata: {"response": {"model" :\t"alias"}}\n\n'
    )


def test_only_the_exact_name_of_that_key_changes() -> None:
    rename = stream_renamer("modelVersion", "up", "alias")
    assert rename is not None
    untouched = (
        b'data: {"modelVersion":"up-2","model":"up","text":"{\\"modelVersion\\": \\"up\\"}"}\n\n'
        b'data: {"modelVersion":\n"up"}\n\n'
    )
    assert rename(untouched) == untouched


def test_names_are_json_escaped_both_ways() -> None:
    upstream, client = 'we"ird\\name', 'team/"quoted"\\x'
    rename = stream_renamer("model", upstream, client)
    assert rename is not None
    event = b"data: " + orjson.dumps({"model": upstream, "n": 1}) + b"\n\n"
    renamed = rename(event)
    assert orjson.loads(renamed[len(b"data: ") :]) == {"model": client, "n": 1}
