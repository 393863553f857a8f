"""Headless Chromium driven over the DevTools protocol (aiohttp's websocket client, already
installed with MLflow): open a page, wait for what a reader would see, click, take screenshots.
For pages that need JavaScript and clicks (MLflow's UI); a static page needs only
`chromium --dump-dom` (tests/report/test_browser.py)."""

from __future__ import annotations

import asyncio
import base64
import itertools
import json
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Page:
    """One browser tab: evaluate JavaScript, wait for a condition, screenshot."""

    def __init__(self, socket_: aiohttp.ClientWebSocketResponse) -> None:
        self.socket = socket_
        self.ids = itertools.count(1)

    async def send(self, method: str, **params: Any) -> dict:
        number = next(self.ids)
        await self.socket.send_json({"id": number, "method": method, "params": params})
        while True:
            message = json.loads((await self.socket.receive()).data)
            if message.get("id") == number:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return message.get("result", {})

    async def evaluate(self, expression: str) -> Any:
        result = await self.send(
            "Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True
        )
        if "exceptionDetails" in result:
            raise RuntimeError(f"{expression[:80]}: {result['exceptionDetails']}")
        return result["result"].get("value")

    async def wait_for(self, expression: str, timeout: float = 60) -> Any:
        """The expression's value once it is truthy; on timeout, an AssertionError with the
        page's visible text."""
        deadline = time.monotonic() + timeout
        guarded = (
            f"(() => {{ try {{ const v = ({expression}); return v instanceof Node ? true : v; }} "
            "catch (e) { return null; } })()"
        )
        while time.monotonic() < deadline:
            value = await self.evaluate(guarded)
            if value:
                return value
            await asyncio.sleep(0.5)
        text = await self.evaluate("document.body ? document.body.innerText : ''")
        raise AssertionError(f"waited {timeout} s for {expression!r}; page says: {text[:1500]}")

    async def open(self, url: str, width: int = 1280, height: int = 900) -> None:
        await self.resize(width, height)
        await self.send("Page.navigate", url=url)

    async def resize(self, width: int, height: int) -> None:
        """The window's size in CSS pixels (the page reflows as a resized window's would)."""
        await self.send(
            "Emulation.setDeviceMetricsOverride",
            width=width,
            height=height,
            deviceScaleFactor=1,
            mobile=False,
        )

    async def screenshot(self, path: Path) -> Path:
        shot = await self.send("Page.captureScreenshot", format="png")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(shot["data"]))
        return path


async def with_page(work) -> Any:  # noqa: ANN001 - async (Page) -> Any
    """Start headless Chromium, run `await work(page)` on a blank tab, close the browser."""
    port = _free_port()
    profile = tempfile.mkdtemp(prefix="chromium-")
    process = subprocess.Popen(
        [
            CHROMIUM,
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            f"--remote-debugging-port={port}",
            f"--user-data-dir={profile}",
            "about:blank",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        async with aiohttp.ClientSession() as session:
            deadline = time.monotonic() + 60
            while True:
                try:
                    async with session.get(f"http://127.0.0.1:{port}/json/list") as answer:
                        tabs = [t for t in await answer.json() if t["type"] == "page"]
                    if tabs:
                        break
                except aiohttp.ClientError:
                    pass
                if time.monotonic() > deadline:
                    raise AssertionError("chromium's DevTools endpoint did not come up in 60 s")
                await asyncio.sleep(0.3)
            async with session.ws_connect(
                tabs[0]["webSocketDebuggerUrl"], max_msg_size=0
            ) as socket_:
                page = Page(socket_)
                await page.send("Page.enable")
                await page.send("Runtime.enable")
                return await work(page)
    finally:
        process.terminate()
        process.wait(30)
        shutil.rmtree(profile, ignore_errors=True)
