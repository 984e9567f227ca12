"""Headless Chromium for the browser tests: Debian's ``chromium`` package driven by Playwright
(which downloads no browser of its own here). ``make test`` installs the package when it is
missing; a machine without it fails the browser tests rather than skipping them."""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from playwright.async_api import Browser, async_playwright

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
_CANDIDATES = ("chromium", "chromium-browser", "google-chrome")


def chromium_path() -> str:
    """The Chromium to drive: ``SLUICE_CHROMIUM`` or the first one on PATH."""
    configured = os.environ.get("SLUICE_CHROMIUM")
    if configured:
        return configured
    for name in _CANDIDATES:
        found = shutil.which(name)
        if found:
            return found
    pytest.fail(
        "no Chromium for the browser tests: install Debian's package "
        "(`apt-get install chromium`; `make test` does it) or set SLUICE_CHROMIUM"
    )


@asynccontextmanager
async def chromium() -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=chromium_path(),
            headless=True,
            # The sandbox needs user namespaces, which containers and root sessions lack.
            args=["--no-sandbox", "--disable-dev-shm-usage"],
        )
        try:
            yield browser
        finally:
            await browser.close()


def keep_artifact(source: Path) -> Path:
    """Copy ``source`` to ``test-artifacts/`` (git-ignored), where it outlives the tmp dir."""
    ARTIFACTS.mkdir(exist_ok=True)
    target = ARTIFACTS / source.name
    shutil.copyfile(source, target)
    return target
