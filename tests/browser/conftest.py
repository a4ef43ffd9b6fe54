"""Fixtures of the browser tests: the whole product on the simulated source (producer, inserter,
minute job and API as `cryptochart` subprocesses), and headless Chromium on the page it serves.

The stack gets its own database and topics, so the sidebar lists only the symbols it streams and
no other test's leftovers; each process logs to ``tests/artifacts/browser-<command>.log``.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import (
    Browser,
    ConsoleMessage,
    Error,
    Page,
    ViewportSize,
    WebSocket,
    sync_playwright,
)

from bench.chromium import CHROMIUM, CHROMIUM_ARGS
from cryptochart.core.settings import Settings
from cryptochart.devservices.ports import free_port
from tests.conftest import provisioned
from tests.pipeline import wait_for

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "tests" / "artifacts"
DIST = ROOT / "frontend" / "dist"
# What the simulated producer streams: an hour of history, then live seconds.
SIM_SYMBOLS = ("BTCUSDT", "ETHUSDT", "SOLUSDT", "XRPUSDT")
HISTORY_SECONDS = 3600
HOUR_OF_MINUTES = HISTORY_SECONDS // 60 - 1  # 1m candles of that hour; the oldest may be partial
DESKTOP: ViewportSize = {"width": 1400, "height": 850}
PHONE: ViewportSize = {"width": 390, "height": 844}
STARTUP_TIMEOUT = 45.0


@dataclass
class Stack:
    """The running product: its settings and the API's address."""

    settings: Settings
    port: int
    logs: dict[str, Path] = field(default_factory=dict)
    api: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def get(self, path: str, **params: str | int) -> httpx.Response:
        return httpx.get(f"{self.url}{path}", params=params, timeout=10)

    def start_api(self) -> subprocess.Popen[bytes]:
        """`cryptochart serve` on the stack's port (again, after stop_api)."""
        self.api = _start(
            self.settings, self.logs, "serve", "--port", str(self.port), "--log-level", "warning"
        )
        return self.api

    def stop_api(self) -> None:
        """SIGTERM to the API, and wait until it has exited."""
        assert self.api is not None
        self.api.terminate()
        self.api.wait(20)

    def log_tails(self, lines: int = 15) -> str:
        """The last lines of every process's log, for failure messages."""
        out = []
        for name, path in self.logs.items():
            text = path.read_text(errors="replace").splitlines()[-lines:]
            out.append(f"--- {name} ({path})\n" + "\n".join(text))
        return "\n".join(out)


def _own_settings(settings: Settings, database_factory: Callable[[str], str]) -> Settings:
    """The session's settings with a database and topics of the browser tests' own."""
    url = database_factory(f"browser_{settings.db_flavour}")
    return provisioned(settings, url, settings.db_flavour)  # type: ignore[arg-type]


def _start(settings: Settings, logs: dict[str, Path], *args: str) -> subprocess.Popen[bytes]:
    """`cryptochart <args>` with ``settings``; stderr to a log file, so a full pipe never
    stalls it."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"browser-{args[0]}.log"
    logs[args[0]] = path
    with path.open("ab") as log:  # a restarted process goes on in the same log
        return subprocess.Popen(
            [sys.executable, "-m", "cryptochart.cli", *args],
            env=settings.as_env(),
            stdout=log,
            stderr=subprocess.STDOUT,
        )


def _has_bars(stack: Stack, symbol: str, interval: str, count: int) -> bool:
    response = stack.get("/api/v1/klines", symbol=symbol, interval=interval, limit=1000)
    return response.status_code == 200 and len(response.json()) >= count


def _wait_up(
    stack: Stack, processes: list[subprocess.Popen[bytes]], check: Callable[[], bool], what: str
) -> None:
    """Wait for ``check``; fail with the processes' logs if it times out or one has exited."""
    try:
        wait_for(check, STARTUP_TIMEOUT, what)
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n{stack.log_tails()}") from None
    for process in processes:
        assert process.poll() is None, f"{process.args!r} exited\n{stack.log_tails()}"


def _ready(stack: Stack) -> bool:
    try:
        return stack.get("/ready").status_code == 200
    except httpx.HTTPError:
        return False


@pytest.fixture(scope="package")
def stack(settings: Settings, database_factory: Callable[[str], str]) -> Iterator[Stack]:
    """Producer (sim, an hour of history), inserter, minute job and API, until the API is
    ready and the hour of 1m candles is there."""
    assert (DIST / "index.html").is_file(), "build the page first: cd frontend && npm run build"
    for old in [*ARTIFACTS.glob("failed-*.png"), *ARTIFACTS.glob("browser-*.log")]:
        old.unlink()
    ours = _own_settings(settings, database_factory)
    stack = Stack(ours, free_port())
    processes = [
        stack.start_api(),
        _start(ours, stack.logs, "insert"),
        _start(ours, stack.logs, "aggregate"),
        _start(
            ours,
            stack.logs,
            "produce",
            "--source",
            "sim",
            "--symbols",
            ",".join(SIM_SYMBOLS),
            "--history",
            str(HISTORY_SECONDS),
        ),
    ]
    try:
        _wait_up(stack, processes, lambda: _ready(stack), "the API's /ready")
        for symbol in SIM_SYMBOLS:
            has_hour = partial(_has_bars, stack, symbol, "1m", HOUR_OF_MINUTES)
            _wait_up(stack, processes, has_hour, f"{HOUR_OF_MINUTES} 1m bars of {symbol}")
        yield stack
    finally:
        processes[0] = stack.api or processes[0]  # the API may have been restarted
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(10)


@pytest.fixture(scope="package")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        yield chromium
        chromium.close()


@dataclass
class Console:
    """Console errors and uncaught exceptions of a page."""

    errors: list[str] = field(default_factory=list)

    def on_console(self, message: ConsoleMessage) -> None:
        if message.type == "error":
            where = message.location
            self.errors.append(f"console.error: {message.text} ({where.get('url')})")

    def on_page_error(self, error: Error) -> None:
        self.errors.append(f"pageerror: {error.name}: {error.message}")

    def assert_clean(self, allowed: Callable[[str], bool] = lambda _: False) -> None:
        unexpected = [e for e in self.errors if not allowed(e)]
        assert unexpected == [], "the page logged errors:\n" + "\n".join(unexpected)


Frame = dict[str, Any]


@dataclass
class SocketLog:
    """The frames the page's WebSockets received, decoded."""

    sockets: list[WebSocket] = field(default_factory=list)
    frames: list[Frame] = field(default_factory=list)

    def on_socket(self, socket: WebSocket) -> None:
        self.sockets.append(socket)
        socket.on("framereceived", lambda payload: self.frames.append(_decode(payload)))


def _decode(payload: str | bytes) -> Frame:
    frame: Frame = json.loads(payload)
    return frame


@dataclass
class BrowserPage:
    """A page on the stack's API, with its console and WebSocket frames watched."""

    page: Page
    console: Console
    socket: SocketLog
    stack: Stack

    def open(self, query: str = "") -> None:
        """Load the page at ``/<query>``; frames of earlier loads are forgotten."""
        self.socket.sockets.clear()
        self.socket.frames.clear()
        self.page.goto(f"{self.stack.url}/{query}")

    def wait_for_frame(self, match: Callable[[Frame], bool], timeout: float = 10_000) -> Frame:
        """The first frame ``match`` accepts, received already or from now on (ms timeout)."""
        seen = next((f for f in self.socket.frames if match(f)), None)
        if seen is not None:
            return seen
        if not self.socket.sockets:  # not opened yet: the page's script opens it after load
            self.page.wait_for_event("websocket", timeout=timeout)
        payload = self.socket.sockets[-1].wait_for_event(
            "framereceived", lambda p: match(_decode(p)), timeout=timeout
        )
        return _decode(payload)


@contextmanager
def _page(
    browser: Browser, stack: Stack, request: pytest.FixtureRequest, **options: Any
) -> Iterator[BrowserPage]:
    """A dark page in UTC+1 with ``options`` (viewport, touch); on failure its screenshot goes
    to tests/artifacts."""
    context = browser.new_context(
        color_scheme="dark", timezone_id="Europe/Berlin", locale="en-GB", **options
    )
    context.set_default_timeout(15_000)
    page = context.new_page()
    console = Console()
    page.on("console", console.on_console)
    page.on("pageerror", console.on_page_error)
    sockets = SocketLog()
    page.on("websocket", sockets.on_socket)
    try:
        yield BrowserPage(page, console, sockets, stack)
    finally:
        report = getattr(request.node, "rep_call", None)
        if report is not None and report.failed:
            ARTIFACTS.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=ARTIFACTS / f"failed-{request.node.name}.png")
        context.close()


@pytest.fixture
def chart_page(
    browser: Browser, stack: Stack, request: pytest.FixtureRequest
) -> Iterator[BrowserPage]:
    """The page on a desktop-sized screen."""
    with _page(browser, stack, request, viewport=DESKTOP) as view:
        yield view


@pytest.fixture
def phone_page(
    browser: Browser, stack: Stack, request: pytest.FixtureRequest
) -> Iterator[BrowserPage]:
    """The page on a phone's screen, touch only."""
    with _page(
        browser,
        stack,
        request,
        viewport=PHONE,
        device_scale_factor=3,
        is_mobile=True,
        has_touch=True,
    ) as view:
        yield view
