"""The browser check of ``textgym serve --web``: headless Chromium plays an episode of CustomerService on the
page (OpenEnv's Gradio interface) by clicking its valid-action buttons, and a screenshot is saved.

The page's own Reset button starts the episode; beforehand one ``POST /web/reset`` with a seed fixes the env's
random stream, so a local copy of the env (``reset(seed)`` then ``reset()``) knows the task. The local copy's
oracle picks each move, the browser clicks it, and every observation the page shows is checked against the
local one. Needs Chromium (Debian: ``apt-get install chromium``); speaks the DevTools protocol through the
``websockets`` package that OpenEnv brings, so nothing else is installed.

    python docs/web_check.py [--out docs/serve_web.png]
"""

from __future__ import annotations

import argparse
import base64
import json
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import gymnasium as gym
import requests
from websockets.sync.client import connect

import textgym  # noqa: F401 - registers the envs

ENV_ID = "textgym/CustomerService-v0"
SEED = 11


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(check: Any, timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            value = check()
        except (requests.ConnectionError, KeyError, IndexError):
            value = None
        if value:
            return value
        time.sleep(0.2)
    raise TimeoutError(f"timed out waiting for {what}")


class Browser:
    """One headless Chromium page, driven over the DevTools protocol."""

    def __init__(self, width: int = 1500, height: int = 2300) -> None:
        self.port = free_port()
        self.profile = tempfile.mkdtemp(prefix="textgym-chromium-")
        self.process = subprocess.Popen(
            [
                shutil.which("chromium") or "chromium",
                "--headless=new",
                "--no-sandbox",
                "--disable-gpu",
                f"--remote-debugging-port={self.port}",
                f"--user-data-dir={self.profile}",
                f"--window-size={width},{height}",
                "about:blank",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        targets = wait_for(
            lambda: requests.get(f"http://127.0.0.1:{self.port}/json", timeout=2).json(),
            30,
            "Chromium's DevTools endpoint",
        )
        page = next(t for t in targets if t["type"] == "page")
        self.ws = connect(page["webSocketDebuggerUrl"], max_size=None).__enter__()  # closed by close()
        self.calls = 0

    def send(self, method: str, **params: Any) -> dict:
        self.calls += 1
        self.ws.send(json.dumps({"id": self.calls, "method": method, "params": params}))
        while True:
            message = json.loads(self.ws.recv(timeout=60))
            if message.get("id") == self.calls:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return message["result"]

    def js(self, expression: str) -> Any:
        result = self.send("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        return result["result"].get("value")

    def click_text(self, selector: str, text: str) -> bool:
        """Click the first element matching ``selector`` whose visible text is ``text``."""
        return self.js(f"""(() => {{ const e = [...document.querySelectorAll({json.dumps(selector)})]
            .find(e => e.innerText.trim() === {json.dumps(text)}); if (e) e.click(); return !!e; }})()""")

    def screenshot(self, path: Path) -> None:
        path.write_bytes(base64.b64decode(self.send("Page.captureScreenshot", format="png")["data"]))

    def close(self) -> None:
        self.ws.close()
        self.process.terminate()
        self.process.wait(timeout=20)
        shutil.rmtree(self.profile, ignore_errors=True)


def observation_shown(browser: Browser) -> str | None:
    return browser.js(
        "(() => { const e = document.querySelector('#textgym-observation'); "
        "return e ? e.innerText : null; })()"
    )


def play(url: str, out: Path, shot_at: int = 4) -> tuple[int, float, bool]:
    """Play one oracle episode on the page; returns (steps, return, success). Screenshots: after ``shot_at``
    steps (the valid-action buttons showing) to ``out``, and at the end to ``out`` with an ``_end`` suffix."""
    local = gym.make(ENV_ID)
    local.reset(seed=SEED)
    observation, info = local.reset()
    requests.post(f"{url}/web/reset", json={"seed": SEED}, timeout=30).raise_for_status()
    browser = Browser()
    try:
        browser.send("Page.navigate", url=f"{url}/web/")
        wait_for(lambda: browser.click_text("button", "Reset"), 60, "the page's Reset button")
        wait_for(lambda: observation_shown(browser) == observation, 30, "the first observation")
        steps, total = 0, 0.0
        while True:
            action = local.unwrapped.oracle_action()
            observation, reward, terminated, truncated, info = local.step(action)
            wait_for(lambda: browser.click_text("label", action), 30, f"the button {action!r}")
            wait_for(
                lambda: observation_shown(browser) == observation, 30, f"the observation after {action!r}"
            )
            steps, total = steps + 1, total + reward
            if steps == shot_at:
                time.sleep(1.0)  # let the page finish drawing
                browser.screenshot(out)
            if terminated or truncated:
                break
        time.sleep(1.0)
        browser.screenshot(out.with_name(f"{out.stem}_end{out.suffix}"))
    finally:
        browser.close()
    return steps, total, bool(info["success"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "serve_web.png")
    args = parser.parse_args()
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    server = subprocess.Popen(
        [str(Path(sys.executable).parent / "textgym"), "serve", ENV_ID, "--web", "--port", str(port)],
        stdout=subprocess.DEVNULL,
    )
    try:
        wait_for(lambda: requests.get(f"{url}/health", timeout=2).ok, 120, "the server")
        steps, total, success = play(url, args.out)
    finally:
        server.send_signal(signal.SIGINT)
        server.wait(timeout=30)
    print(
        f"played {ENV_ID} on the page: {steps} steps, return {total:.2f}, success {success}; "
        f"screenshot {args.out}"
    )


if __name__ == "__main__":
    main()
