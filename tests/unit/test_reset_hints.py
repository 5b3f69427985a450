from cliproxy.routing.reset_hints import seconds_from_headers

NOW = 1_700_000_000.0


def test_the_exhausted_limit_decides() -> None:
    headers = {
        "anthropic-ratelimit-requests-remaining": "3",
        "anthropic-ratelimit-requests-reset": "2023-11-14T22:13:30Z",  # NOW + 10
        "anthropic-ratelimit-output-tokens-remaining": "0",
        "anthropic-ratelimit-output-tokens-reset": "2023-11-14T22:14:20Z",  # NOW + 60
    }
    assert seconds_from_headers(headers, NOW) == 60


def test_unified_reset_is_epoch_seconds_and_counts_when_rejected() -> None:
    headers = {
        "anthropic-ratelimit-unified-status": "rejected",
        "anthropic-ratelimit-unified-reset": str(int(NOW + 3600)),
        "anthropic-ratelimit-unified-5h-reset": str(int(NOW + 100)),
    }
    assert seconds_from_headers(headers, NOW) == 3600


def test_without_an_exhausted_limit_the_earliest_reset_is_used() -> None:
    headers = {
        "anthropic-ratelimit-tokens-reset": "2023-11-14T22:14:20Z",
        "anthropic-ratelimit-requests-reset": "2023-11-14T22:13:30Z",
    }
    assert seconds_from_headers(headers, NOW) == 10


def test_nothing_usable_is_no_hint() -> None:
    assert seconds_from_headers({}, NOW) is None
    assert seconds_from_headers({"anthropic-ratelimit-tokens-reset": "soon"}, NOW) is None
    assert seconds_from_headers({"x-ratelimit-reset": "10"}, NOW) is None
    # A reset already past is "now", never negative.
    assert seconds_from_headers({"anthropic-ratelimit-tokens-reset": str(NOW - 5)}, NOW) == 0
