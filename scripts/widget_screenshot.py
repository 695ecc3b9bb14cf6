"""Screenshot of the chat widget serving a real model: ask questions, save a PNG.

Starts the service in this process (the real ranker, warmed up), drives the chat page in
Debian's Chromium through Playwright, asks each ``--question`` in turn and saves the page.

    .venv/bin/python scripts/widget_screenshot.py --model artifacts/ubuntu/model \\
        --index artifacts/ubuntu/index --out docs/ubuntu_widget.png \\
        --question "my wifi stopped working after the upgrade to 12.04"
"""

from __future__ import annotations

import argparse
import re
import socket
import sys
import threading
import time
from pathlib import Path

CHROMIUM = "/usr/bin/chromium"
LAUNCH_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, required=True)
    parser.add_argument("--index", type=Path, required=True)
    parser.add_argument("--question", action="append", required=True)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()

    import uvicorn
    from playwright.sync_api import expect, sync_playwright

    from service.app import create_app
    from service.settings import Settings

    app = create_app(Settings(model_dir=args.model, index_dir=args.index, max_batch_size=4))
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    try:
        import urllib.request

        for _ in range(600):  # the model loads and compiles its shapes first
            try:
                if urllib.request.urlopen(f"{url}/readyz").status == 200:
                    break
            except OSError:
                pass
            time.sleep(0.5)
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=LAUNCH_ARGS)
            page = browser.new_page(viewport={"width": 900, "height": 900})
            page.goto(url)
            for n, question in enumerate(args.question):
                page.fill(".cbw-input", question)
                page.click(".cbw-send")
                replies = page.locator(".cbw-bot .cbw-text")
                expect(replies).to_have_count(n + 1, timeout=30_000)
                # The bubble shows a typing mark until the reply is in: wait for words.
                expect(replies.nth(n)).to_have_text(re.compile(r"\w"), timeout=30_000)
            args.out.parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(args.out), full_page=True)
            browser.close()
    finally:
        server.should_exit = True
        thread.join(10)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
