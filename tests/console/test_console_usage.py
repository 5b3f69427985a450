"""The Usage page in headless Chromium, from real requests through the proxy (the conftest's
cliproxy and Claude simulator): the table and the chart count them right per model, with their
tokens and errors; a client-key filter narrows them; grouping by client key and sorting
reorder the rows; the CSV downloads hold what the table and the chart show; the 1 h preset and a
custom range that holds none of them; screenshots to build/console-screenshots/."""

from __future__ import annotations

import csv
import io
import time
from typing import Any

import httpx
import pytest

from tests.console.browser import expect, mgmt, open_page, sign_in
from tests.console.conftest import (
    CLIENT_KEY,
    HOSTILE,
    LIMITED_KEY,
    LIMITED_NAME,
    SCREENSHOTS,
)
from tests.proxy_server import ProxyServer
from tests.simulators import AnthropicSim, Reply
from tests.simulators.claude_oauth_sim import ClaudeOAuthSim

MASKED_CLIENT = f"{CLIENT_KEY[:4]}…{CLIENT_KEY[-4:]}"


def _ask(proxy: ProxyServer, key: str, model: str) -> httpx.Response:
    return httpx.post(
        f"{proxy.base_url}/v1/messages",
        headers={"x-api-key": key, "anthropic-version": "2023-06-01"},
        json={"model": model, "max_tokens": 32, "messages": [{"role": "user", "content": "hi"}]},
        timeout=30,
    )


@pytest.fixture(scope="module")
def traffic(proxy: ProxyServer, sims: tuple[AnthropicSim, ClaudeOAuthSim]) -> None:
    """Through the proxy: `sonnet` three times with the plain key (one fails upstream) and
    twice with the limited key, the hostile alias once; known token counts."""
    claude, _ = sims
    claude.queue(
        Reply.text("one", input_tokens=100, output_tokens=10, cached_tokens=40),
        Reply.text("two", input_tokens=100, output_tokens=10, cached_tokens=40),
        Reply.text("three", input_tokens=7, output_tokens=3),
        Reply.text("four", input_tokens=7, output_tokens=3),
        Reply.text("five", input_tokens=50, output_tokens=5),
        Reply.error(500, "upstream broke"),  # last: the key rests after it
    )
    for key, model in (
        (CLIENT_KEY, "sonnet"),
        (CLIENT_KEY, "sonnet"),
        (LIMITED_KEY, "sonnet"),
        (LIMITED_KEY, "sonnet"),
        (CLIENT_KEY, HOSTILE),
        (CLIENT_KEY, "sonnet"),
    ):
        _ask(proxy, key, model)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        buckets = mgmt(proxy, "GET", "/usage/summary").json()["buckets"]
        if sum(b["requests"] for b in buckets) >= 6:
            return
        time.sleep(0.1)
    raise AssertionError("the ledger did not record the requests")


def _cells(page: Any, group: str) -> dict[str, str]:
    row = page.locator(f'#usage-table tbody tr[data-group="{group}"]')
    expect(row).to_have_count(1)
    names = ("requests", "failed", "input", "output", "cached", "cost")
    return {n: (row.locator(f"td.{n}").text_content() or "") for n in names}


def _chart_total(page: Any) -> dict[str, float]:
    found: dict[str, float] = page.evaluate(
        """() => Object.fromEntries(window.Chart.getChart(document.getElementById('usage-chart'))
                 .data.datasets.map(d => [d.label, d.data.reduce((a, b) => a + b, 0)]))"""
    )
    return found


def _download(page: Any, button: str) -> tuple[str, list[dict[str, str]]]:
    with page.expect_download() as info:
        page.click(button)
    download = info.value
    path = download.path()
    assert path is not None
    with open(path, encoding="utf-8", newline="") as handle:
        text = handle.read()
    return download.suggested_filename, list(csv.DictReader(io.StringIO(text)))


def test_table_chart_filter_and_csv(page: Any, proxy: ProxyServer, traffic: None) -> None:
    watch = sign_in(page, proxy)
    open_page(page, "usage")
    expect(page.locator("#usage-range-24h")).to_have_attribute("aria-pressed", "true")
    sonnet = _cells(page, "sonnet")
    assert sonnet["requests"] == "5" and sonnet["failed"] == "1"
    assert (sonnet["input"], sonnet["output"], sonnet["cached"]) == ("214", "26", "80")
    assert sonnet["cost"] not in ("", "$0")
    assert _cells(page, HOSTILE)["requests"] == "1"
    expect(page.locator('#usage-totals [data-stat="Requests"] .stat-value')).to_have_text("6")
    expect(page.locator('#usage-totals [data-stat="Errors"] .stat-value')).to_have_text("1")
    assert _chart_total(page) == {"sonnet": 5, HOSTILE: 1}
    page.click("#usage-metric-errors")
    expect(page.locator("#usage-metric-errors")).to_have_attribute("aria-pressed", "true")
    assert _chart_total(page) == {"sonnet": 1, HOSTILE: 0}
    page.click("#usage-metric-requests")

    # The whole table as a CSV, as shown.
    name, rows = _download(page, "#usage-export")
    assert name.startswith("cliproxy-usage-table-by-model-") and name.endswith(".csv")
    by_group = {r["group"]: r for r in rows}
    assert set(by_group) == {"sonnet", HOSTILE}
    assert [r["group"] for r in rows] == ["sonnet", HOSTILE]  # requests, descending
    row = by_group["sonnet"]
    assert (row["requests"], row["errors"], row["input_tokens"]) == ("5", "1", "214")
    assert (row["output_tokens"], row["cached_tokens"]) == ("26", "80")
    assert float(row["cost_usd"]) > 0
    assert by_group[HOSTILE]["name"] == HOSTILE  # the hostile name is data, and no formula

    # Only the limited key's requests.
    page.select_option("#filter-key", LIMITED_NAME)
    expect(page.locator('#usage-totals [data-stat="Requests"] .stat-value')).to_have_text("2")
    expect(page.locator("#usage-table tbody tr")).to_have_count(1)
    limited = _cells(page, "sonnet")
    assert (limited["requests"], limited["failed"], limited["input"]) == ("2", "0", "14")
    assert _chart_total(page) == {"sonnet": 2}
    expect(page.locator("#usage-window")).to_contain_text(f"client key {LIMITED_NAME}")
    _, rows = _download(page, "#usage-export-buckets")
    assert [(r["group"], r["requests"]) for r in rows] == [("sonnet", "2")]
    assert rows[0]["bucket_start"].endswith(":00:00Z")

    # Grouped by client key, every key, sorted by name and back.
    page.select_option("#filter-key", "")
    page.select_option("#usage-group", "key")
    expect(page.locator("#usage-table tbody tr")).to_have_count(2)
    assert _cells(page, MASKED_CLIENT)["requests"] == "4"
    assert _cells(page, LIMITED_NAME)["requests"] == "2"
    page.click('#usage-table th button[data-column="name"]')
    expect(page.locator('#usage-table th[aria-sort="ascending"]')).to_have_count(1)
    first = page.locator("#usage-table tbody tr").first
    expect(first).to_have_attribute("data-group", MASKED_CLIENT)  # "sk-c…" < "team-…"
    page.click('#usage-table th button[data-column="name"]')
    expect(page.locator('#usage-table th[aria-sort="descending"]')).to_have_count(1)
    expect(first).to_have_attribute("data-group", LIMITED_NAME)
    page.click('#usage-table th button[data-column="failed"]')
    expect(first).to_have_attribute("data-group", MASKED_CLIENT)
    _, rows = _download(page, "#usage-export")
    assert [r["group"] for r in rows] == [MASKED_CLIENT, LIMITED_NAME]
    assert CLIENT_KEY not in page.content() and LIMITED_KEY not in page.content()

    # Grouped by provider, filtered by model.
    page.select_option("#usage-group", "provider")
    expect(page.locator("#usage-table tbody tr[data-group='claude-api-key']")).to_have_count(1)
    page.select_option("#filter-model", "sonnet")
    expect(page.locator('#usage-totals [data-stat="Requests"] .stat-value')).to_have_text("5")
    expect(page.locator("#usage-table tbody tr")).to_have_count(1)
    assert _cells(page, "claude-api-key")["requests"] == "5"
    page.select_option("#filter-model", "")
    page.select_option("#usage-group", "model")
    assert watch.take() == []


def test_presets_and_a_custom_range(page: Any, proxy: ProxyServer, traffic: None) -> None:
    watch = sign_in(page, proxy)
    open_page(page, "usage")
    page.click("#usage-range-1h")
    expect(page.locator("#usage-range-1h")).to_have_attribute("aria-pressed", "true")
    expect(page.locator('#usage-totals [data-stat="Requests"] .stat-value')).to_have_text("6")
    expect(page.locator(".chart-card h2")).to_contain_text("per minute")
    for preset in ("7d", "30d"):
        page.click(f"#usage-range-{preset}")
        expect(page.locator(f"#usage-range-{preset}")).to_have_attribute("aria-pressed", "true")
        expect(page.locator('#usage-totals [data-stat="Requests"] .stat-value')).to_have_text("6")
    expect(page.locator(".chart-card h2")).to_contain_text("per day")
    page.click("#usage-range-custom")
    expect(page.locator("#usage-from")).to_be_visible()
    # A range that ends before the requests were made: nothing in it.
    page.fill("#usage-from", "2020-01-01T00:00")
    page.fill("#usage-to", "2020-01-02T00:00")
    page.click("#usage-apply")
    expect(page.locator("#usage-table tbody")).to_contain_text("No requests in this range.")
    expect(page.locator('#usage-totals [data-stat="Requests"] .stat-value')).to_have_text("0")
    expect(page.locator("#usage-export")).to_be_disabled()
    # To before From is refused in place.
    page.fill("#usage-from", "2020-01-03T00:00")
    page.click("#usage-apply")
    expect(page.locator("#usage-range-error")).to_have_text("From must be a time before To.")
    page.click("#usage-range-24h")
    expect(page.locator('#usage-totals [data-stat="Requests"] .stat-value')).to_have_text("6")
    assert watch.take() == []


def test_screenshots(page: Any, proxy: ProxyServer, traffic: None) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    watch = sign_in(page, proxy)
    for scheme in ("light", "dark"):
        page.emulate_media(color_scheme=scheme)
        open_page(page, "usage")
        page.wait_for_selector("#usage-table tbody tr[data-group]")
        page.screenshot(path=str(SCREENSHOTS / f"usage-with-use-{scheme}.png"), full_page=True)
    page.set_viewport_size({"width": 390, "height": 844})
    page.reload()
    page.wait_for_selector('main[data-page="usage"]')
    page.screenshot(path=str(SCREENSHOTS / "usage-with-use-phone-dark.png"), full_page=True)
    assert watch.take() == []
