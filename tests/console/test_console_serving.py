"""How the console's files are served (no browser needed): from the package, with a strict
CSP and nosniff on every response, no client key needed, nothing outside the static folder,
and /console/status telling the page whether management is on."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from cliproxy.console import CONTENT_SECURITY_POLICY, STATIC
from tests.console.conftest import CLIENT_KEY, MGMT
from tests.proxy_server import ProxyServer

REPO = Path(__file__).resolve().parents[2]
CONFIG = f"""
api-keys: [{CLIENT_KEY}]
remote-management:
  secret-key: {MGMT}
"""


@pytest.fixture(scope="module")
def server() -> ProxyServer:
    with ProxyServer(CONFIG) as proxy:
        yield proxy


def test_csp_is_strict() -> None:
    directives = dict(d.split(" ", 1) for d in CONTENT_SECURITY_POLICY.split("; "))
    assert directives["default-src"] == "'none'"
    assert directives["script-src"] == "'self'"
    assert directives["style-src"] == "'self'"
    assert directives["connect-src"] == "'self'"
    assert directives["frame-ancestors"] == "'none'"
    assert "unsafe" not in CONTENT_SECURITY_POLICY


@pytest.mark.parametrize(
    ("path", "kind"),
    [
        ("/console/", "text/html"),
        ("/management.html", "text/html"),
        ("/console/console.css", "text/css"),
        ("/console/js/main.js", "text/javascript"),
        ("/console/vendor/chart.umd.min.js", "text/javascript"),
        ("/console/vendor/codemirror.js", "text/javascript"),
        ("/console/vendor/codemirror-mode-yaml.js", "text/javascript"),
        ("/console/vendor/codemirror.css", "text/css"),
        ("/console/vendor/diff.min.js", "text/javascript"),
        ("/console/favicon.svg", "image/svg+xml"),
    ],
)
def test_files_are_served_with_the_security_headers(
    server: ProxyServer, path: str, kind: str
) -> None:
    reply = httpx.get(server.base_url + path)  # no client key, no management key
    assert reply.status_code == 200
    assert reply.headers["content-type"].startswith(kind)
    assert reply.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
    assert reply.headers["x-content-type-options"] == "nosniff"
    assert reply.headers["x-frame-options"] == "DENY"


def test_page_has_no_inline_code_and_nothing_remote() -> None:
    for path in STATIC.rglob("*"):
        if path.suffix not in (".html", ".js", ".css") or "vendor" in path.parts:
            continue
        text = path.read_text()
        assert "http://" not in text and "https://" not in text, path
        assert ".innerHTML" not in text and "insertAdjacentHTML" not in text, path
    page = (STATIC / "index.html").read_text()
    assert "<script>" not in page and "<style" not in page and " style=" not in page
    assert " on" + "click=" not in page


def test_the_vendored_chart_library_is_the_locked_one() -> None:
    """`make console-vendor` copies what console/package-lock.json pins; the copy is committed."""
    lock = json.loads((REPO / "console" / "package-lock.json").read_text())
    version = lock["packages"]["node_modules/chart.js"]["version"]
    vendored = (STATIC / "vendor" / "chart.umd.min.js").read_text()[:200]
    assert f"Chart.js v{version}" in vendored
    assert (STATIC / "vendor" / "chart.js.LICENSE.md").exists()


# Each vendored file and where `make console-vendor` copies it from (console/node_modules).
VENDORED = {
    "chart.umd.min.js": "chart.js/dist/chart.umd.min.js",
    "chart.js.LICENSE.md": "chart.js/LICENSE.md",
    "codemirror.js": "codemirror/lib/codemirror.js",
    "codemirror.css": "codemirror/lib/codemirror.css",
    "codemirror-mode-yaml.js": "codemirror/mode/yaml/yaml.js",
    "codemirror.LICENSE": "codemirror/LICENSE",
    "diff.min.js": "diff/dist/diff.min.js",
    "diff.LICENSE": "diff/LICENSE",
}


def test_the_vendored_editor_and_diff_are_the_locked_ones() -> None:
    """CodeMirror 5 and jsdiff (the Configuration page) are pinned exactly in package.json and
    the lock; the copies are those versions, with their licences. After `make console-vendor`
    (node_modules present) every vendored file is byte for byte the installed one."""
    manifest = json.loads((REPO / "console" / "package.json").read_text())
    lock = json.loads((REPO / "console" / "package-lock.json").read_text())
    for name in ("chart.js", "codemirror", "diff"):
        assert manifest["dependencies"][name] == lock["packages"][f"node_modules/{name}"]["version"]
    codemirror = lock["packages"]["node_modules/codemirror"]["version"]
    assert codemirror.startswith("5.")
    vendor = STATIC / "vendor"
    assert f'CodeMirror.version = "{codemirror}"' in (vendor / "codemirror.js").read_text()
    assert 'CodeMirror.defineMode("yaml"' in (vendor / "codemirror-mode-yaml.js").read_text()
    assert "structuredPatch" in (vendor / "diff.min.js").read_text()
    assert "MIT License" in (vendor / "codemirror.LICENSE").read_text()
    assert "BSD 3-Clause License" in (vendor / "diff.LICENSE").read_text()
    assert {p.name for p in vendor.iterdir()} == set(VENDORED)
    installed = REPO / "console" / "node_modules"
    if installed.is_dir():
        for copy, source in VENDORED.items():
            assert (vendor / copy).read_bytes() == (installed / source).read_bytes(), copy


def test_redirect_and_unknown_files(server: ProxyServer) -> None:
    reply = httpx.get(server.base_url + "/console")
    assert reply.status_code == 308 and reply.headers["location"] == "/console/"
    for path in ("/console/nope.js", "/console/%2e%2e/__init__.py", "/console/js"):
        missing = httpx.get(server.base_url + path)
        assert missing.status_code == 404, path
        assert missing.headers["x-content-type-options"] == "nosniff"
    # "%2e%2e" reached the route undecoded-as-a-path and still found nothing outside.
    assert (STATIC.parent / "__init__.py").exists()


def test_status_says_whether_management_is_on(server: ProxyServer) -> None:
    status = httpx.get(server.base_url + "/console/status").json()
    assert status == {"management": True, "remote_refused": False}
    config = server.state.runtime.config
    off = config.remote_management.model_copy(update={"secret_key": ""})
    server.state.apply(config.model_copy(update={"remote_management": off}))
    try:
        assert httpx.get(server.base_url + "/console/status").json()["management"] is False
        # The page is still served, and tells how to turn management on.
        assert httpx.get(server.base_url + "/console/").status_code == 200
    finally:
        server.state.apply(config)


def test_status_says_when_this_address_may_not_manage(server: ProxyServer) -> None:
    """A client off this machine, while allow-remote is off: the page says so before asking
    for a key (the address as the management guard reads it, trusted proxies included)."""
    config = server.state.runtime.config
    behind = config.remote_management.model_copy(update={"trusted_proxies": ["127.0.0.1/32"]})
    server.state.apply(config.model_copy(update={"remote_management": behind}))
    try:
        remote = {"x-forwarded-for": "203.0.113.9"}
        status = httpx.get(server.base_url + "/console/status", headers=remote).json()
        assert status == {"management": True, "remote_refused": True}
        api = httpx.get(
            server.base_url + "/v0/management/auth-files",
            headers={**remote, "authorization": f"Bearer {MGMT}"},
        )
        assert api.status_code == 403 and api.json()["error"] == "remote management disabled"
        local = httpx.get(server.base_url + "/console/status").json()
        assert local["remote_refused"] is False
    finally:
        server.state.apply(config)
