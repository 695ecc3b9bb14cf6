"""The chat page and the embeddable widget, driven in Chromium against a live server."""

from __future__ import annotations

import os
import shutil
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvicorn

from service.app import create_app
from service.settings import Settings
from tests.service.fakes import REPOSITORY, FakeRanker, as_ranker

pytestmark = [pytest.mark.browser, pytest.mark.timeout(180)]

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = Path(__file__).resolve().parent.parent / "artifacts"
LAUNCH_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
MARKUP = "<b>markup</b> stays plain text"


@pytest.fixture(scope="module")
def chromium_path() -> str:
    if not shutil.which(CHROMIUM):
        if os.environ.get("CI"):
            pytest.fail(f"{CHROMIUM} not found (required in CI)")
        pytest.skip(f"{CHROMIUM} not found: install Debian's chromium to run browser tests")
    return CHROMIUM


@pytest.fixture
def ranker() -> FakeRanker:
    return FakeRanker([*REPOSITORY, MARKUP])


@pytest.fixture
def server_url(ranker: FakeRanker, tmp_path: Path) -> Iterator[str]:
    """The app on a free 127.0.0.1 port, served by uvicorn in a background thread."""
    app = create_app(Settings(model_dir=tmp_path, index_dir=tmp_path), ranker=as_ranker(ranker))
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))  # we hold the port, so nothing can take it before uvicorn
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        for _ in range(200):
            if server.started:
                break
            thread.join(0.05)
        assert server.started, "uvicorn did not start"
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()


@pytest.fixture
def page(chromium_path: str) -> Iterator[object]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium_path, headless=True, args=LAUNCH_ARGS)
        try:
            yield browser.new_page(viewport={"width": 900, "height": 1000})
        finally:
            browser.close()


def test_chat_page_answers_and_shows_runners_up(
    page: object, server_url: str, ranker: FakeRanker
) -> None:
    from playwright.sync_api import Page, expect

    assert isinstance(page, Page)
    page.goto(server_url)
    bot_texts = page.locator(".cbw-bot .cbw-text")

    page.fill(".cbw-input", "which package should I install for the network")
    page.click(".cbw-send")
    expect(bot_texts.first).to_have_text("sudo apt-get install the package you need")

    page.click(".cbw-bot summary")
    alternatives = page.locator(".cbw-bot .cbw-alt")
    expect(alternatives).to_have_count(5)  # k=5: the best answer and four runners-up
    expect(alternatives.nth(1)).to_contain_text("try restarting the network manager")
    expect(alternatives.nth(1).locator(".cbw-score")).to_have_text("2.00")

    # The whole conversation goes back as context; markup in a response is shown, not parsed.
    page.fill(".cbw-input", "show me markup")
    page.press(".cbw-input", "Enter")
    expect(bot_texts.nth(1)).to_have_text(MARKUP)
    assert page.locator(".cbw-log b").count() == 0
    assert ranker.batches[-1] == [
        [
            "which package should I install for the network",
            "sudo apt-get install the package you need",
            "show me markup",
        ]
    ]

    snippet = page.locator("#embed-snippet").inner_text()
    assert f'<script src="{server_url}/static/widget.js"' in snippet
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "widget.png"), full_page=True)


def test_embedded_widget_floats_on_another_site(page: object, server_url: str) -> None:
    from playwright.sync_api import Page, expect

    assert isinstance(page, Page)
    # A page of another origin (about:blank) embeds the widget: needs CORS on /respond.
    page.set_content(
        "<h1>Someone else's site</h1>"
        f'<script src="{server_url}/static/widget.js" data-endpoint="{server_url}/respond">'
        "</script>"
    )
    panel = page.locator(".cbw-floating .cbw-panel")
    expect(panel).to_be_hidden()

    page.click(".cbw-launcher")
    expect(panel).to_be_visible()
    page.fill(".cbw-input", "thanks!")
    page.click(".cbw-send")
    expect(page.locator(".cbw-bot .cbw-text").first).to_have_text("hello there, how can I help?")

    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "widget-floating.png"))
