"""settle_unanswered_calls: a result is supplied for a call the conversation went on past."""

from __future__ import annotations

from cliproxy.model import Message, TextPart, ToolCallPart, ToolResultPart
from cliproxy.protocols.cross_vendor import UNANSWERED, settle_unanswered_calls


def call(call_id: str) -> ToolCallPart:
    return ToolCallPart(id=call_id, name="lookup", arguments="{}")


def result(call_id: str) -> ToolResultPart:
    return ToolResultPart(call_id, [TextPart("42")])


def test_answered_calls_leave_the_history_untouched() -> None:
    history = [
        Message("user", [TextPart("q")]),
        Message("assistant", [call("a"), call("b")]),
        Message("user", [result("a"), result("b")]),
    ]
    assert settle_unanswered_calls(history) is history


def test_a_call_in_the_last_message_is_left_alone() -> None:
    history = [Message("user", [TextPart("q")]), Message("assistant", [call("a")])]
    assert settle_unanswered_calls(history) is history


def test_missing_results_lead_the_next_user_turn() -> None:
    history = [
        Message("user", [TextPart("q")]),
        Message("assistant", [call("a"), call("b")]),
        Message("user", [result("b"), TextPart("go on")]),
    ]
    settled = settle_unanswered_calls(history)
    supplied, kept, text = settled[2].content
    assert isinstance(supplied, ToolResultPart) and supplied.call_id == "a"
    assert supplied.is_error and supplied.text() == UNANSWERED and supplied.name == "lookup"
    assert kept == history[2].content[0] and text == TextPart("go on")
    assert history[2].content[0] is kept and len(history[2].content) == 2  # input unchanged


def test_consecutive_assistant_messages_are_one_turn() -> None:
    history = [
        Message("user", [TextPart("q")]),
        Message("assistant", [call("a")]),
        Message("assistant", [call("b")]),
        Message("user", [result("a"), TextPart("ok")]),
    ]
    settled = settle_unanswered_calls(history)
    assert [m.role for m in settled] == ["user", "assistant", "assistant", "user"]
    supplied, answered, text = settled[3].content
    assert isinstance(supplied, ToolResultPart) and supplied.call_id == "b"
    assert answered == result("a") and text == TextPart("ok")
    # Two assistant messages at the end are one last turn: nothing to supply yet.
    assert settle_unanswered_calls(history[:3]) == history[:3]


def test_a_system_message_after_the_call_gets_the_results_before_it() -> None:
    history = [
        Message("user", [TextPart("q")]),
        Message("assistant", [call("a")]),
        Message("system", [TextPart("reminder")]),
        Message("user", [TextPart("go")]),
    ]
    settled = settle_unanswered_calls(history)
    assert [m.role for m in settled] == ["user", "assistant", "user", "system", "user"]
    [supplied] = settled[2].content
    assert isinstance(supplied, ToolResultPart) and supplied.call_id == "a"
