"""The chat page and the embeddable widget, driven in Chromium against a live server."""

from __future__ import annotations

import csv
import os
import re
import shutil
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
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


@contextmanager
def running(app: object) -> Iterator[str]:
    """The app on a free 127.0.0.1 port, served by uvicorn in a background thread."""
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
def server_url(ranker: FakeRanker, tmp_path: Path) -> Iterator[str]:
    app = create_app(Settings(model_dir=tmp_path, index_dir=tmp_path), ranker=as_ranker(ranker))
    with running(app) as url:
        yield url


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


def test_a_vote_down_survives_a_restart_and_is_exported_for_training(
    page: object, tmp_path: Path, feedback_database: str
) -> None:
    from playwright.sync_api import Page, expect

    assert isinstance(page, Page)
    question = "which package should I install for the network"
    settings = Settings(model_dir=tmp_path, index_dir=tmp_path)
    with running(create_app(settings, ranker=as_ranker(FakeRanker()))) as url:
        page.goto(url)
        page.fill(".cbw-input", question)
        page.click(".cbw-send")
        reply = page.locator(".cbw-bot").first
        expect(reply.locator(".cbw-text")).to_have_text("sudo apt-get install the package you need")
        # The fake's scores are raw overlaps (σ(3) = 0.95): a sure reply, not marked.
        expect(reply).not_to_have_class("cbw-unsure")
        reply.locator(".cbw-vote-down").click()
        expect(reply.locator(".cbw-vote-status")).to_have_text("Thanks!")
        expect(reply.locator(".cbw-vote-down")).to_have_attribute("aria-pressed", "true")
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "widget-vote.png"), full_page=True)

    # Restarted: a new process's app on the same database still has the vote.
    with running(create_app(settings, ranker=as_ranker(FakeRanker()))) as url:
        page.goto(url)
        expect(page.locator(".cbw-input")).to_be_visible()

    out = tmp_path / "votes.csv"
    export = subprocess.run(
        [sys.executable, "-m", "chatbot_cli", "feedback", "export", "--out", str(out)],
        capture_output=True,
        text=True,
        env={**os.environ, "CHATBOT_DATABASE_URL": feedback_database},
    )
    assert export.returncode == 0, export.stderr
    with out.open(newline="") as f:
        rows = list(csv.reader(f))[1:]
    assert rows == [
        [f"{question} __eou__ __eot__", "sudo apt-get install the package you need __eou__", "0"]
    ]


def test_unsure_replies_are_marked_and_the_fallback_shown(page: object, tmp_path: Path) -> None:
    from playwright.sync_api import Page, expect

    assert isinstance(page, Page)
    settings = Settings(
        model_dir=tmp_path, index_dir=tmp_path, min_confidence=0.9, fallback="Tell me more?"
    )
    with running(create_app(settings, ranker=as_ranker(FakeRanker()))) as url:
        page.goto(url)
        page.fill(".cbw-input", "restart network")  # one word in common: σ(1) = 0.73 < 0.9
        page.click(".cbw-send")
        reply = page.locator(".cbw-bot").first
        expect(reply.locator(".cbw-text")).to_have_text("Tell me more?")
        expect(reply).to_have_class(re.compile("cbw-unsure"))
        expect(reply.locator(".cbw-confidence")).to_contain_text("Not sure enough to answer")
        reply.locator("summary").click()
        expect(reply.locator(".cbw-alt").first).to_contain_text("try restarting the network")
        page.screenshot(path=str(ARTIFACTS / "widget-unsure.png"), full_page=True)
