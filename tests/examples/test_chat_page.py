"""The chat web page in a real browser (headless Chromium) against ``sluice run --ui`` of
examples/chat: sign in with test credentials, ask, watch the answer stream in and complete;
drop the socket mid-answer and see the page resume from its last offset with nothing lost or
repeated. The screenshot is kept in test-artifacts/chat-page.png."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from playwright.async_api import Page, Route

from sluice.application.model import TopicSpec
from sluice.kafka import KafkaSettings
from tests.auth.google_tokens import CLIENT_ID, FakeClock, claims, sign
from tests.auth.jwks_server import JwksServer
from tests.examples.browser import chromium, keep_artifact
from tests.examples.support import EXAMPLES, TENANT, Example, sluice_run
from tests.examples.test_chat import expected_answer
from tests.gateway.support import TopicProbe

pytestmark = pytest.mark.kafka

CHAT = EXAMPLES / "chat"


@pytest.fixture
async def chat(jwks: JwksServer, kafka_bootstrap: str, tmp_path: Path) -> AsyncIterator[Example]:
    # Test credentials are checked by the server's test provider: Google's verifier against
    # the local JWKS server, so tokens minted here are valid ones.
    extra = ["--ui", "--test-auth", "google"]
    extra += ["--test-auth-config", f"clientId={CLIENT_ID}"]
    extra += ["--test-auth-config", f"jwksUri={jwks.url}"]
    async with sluice_run(CHAT, kafka_bootstrap, tmp_path, extra) as running:
        yield running


async def _offline(route: Route) -> None:
    await route.abort()  # no internet here: Google's sign-in script cannot load


async def ask(page: Page, question: str) -> None:
    await page.fill("#message", question)
    await page.click("#send")


async def test_sign_in_ask_and_watch_the_answer_stream(
    chat: Example,
    jwks: JwksServer,
    kafka_bootstrap: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    token = sign(jwks.keys[0], claims(FakeClock(), sub="browser-user"))
    page_url = f"{chat.gateway}/ui/{TENANT}/chat?gateway=my-chat"
    async with chromium() as browser:
        page = await browser.new_page(viewport={"width": 1100, "height": 700})
        errors: list[str] = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        await page.route("https://accounts.google.com/**", _offline)
        await page.goto(page_url, wait_until="domcontentloaded")

        # The signed-in gateway offers Google sign-in and test credentials.
        assert await page.input_value("#gateway") == "my-chat"
        assert await page.is_visible("#test-field")
        await page.fill("#test-credentials", token)
        await page.click("#connect")
        await page.wait_for_selector("#connection[data-state=online]", timeout=20_000)

        question = "how do streams work?"
        await ask(page, question)
        answer = page.locator(".message.answer").last
        # Partial answers are shown as they arrive...
        await page.wait_for_selector(".message.answer[data-complete=false]", timeout=20_000)
        partial = await answer.inner_text()
        assert expected_answer(question).startswith(partial)
        assert len(partial) < len(expected_answer(question))
        # ...and the answer completes.
        await page.wait_for_selector(".message.answer[data-complete=true]", timeout=30_000)
        assert await answer.inner_text() == expected_answer(question)
        assert await page.get_attribute(".message.question", "data-state") == "sent"

        # A dropped connection mid-answer: the page reconnects from the last offset it saw,
        # and the answer still completes with every piece exactly once.
        await ask(page, "and after a reconnect?")
        second = page.locator(".message.answer").nth(1)
        await second.wait_for()
        for _ in range(400):  # until at least 3 pieces are shown (at most 20 s)
            if int(await second.get_attribute("data-pieces") or 0) >= 3:
                break
            await asyncio.sleep(0.05)
        assert int(await second.get_attribute("data-pieces") or 0) >= 3
        await page.evaluate("window.sluiceChat.dropConnection()")
        await page.wait_for_selector(
            ".message.answer:nth-of-type(4)[data-complete=true]", timeout=30_000
        )
        assert await second.inner_text() == expected_answer("and after a reconnect?")
        positions = await page.evaluate("window.sluiceChat.state.positions")
        assert positions[0] == "latest"
        assert len(positions) == 2
        assert positions[1] != "latest"  # the offset token of the last record received

        screenshot = tmp_path / "chat-page.png"
        await page.screenshot(path=str(screenshot), full_page=True)
        assert errors == []
    kept = keep_artifact(screenshot)
    with capsys.disabled():  # shown in the test log even when the test passes
        print(f"\nchat page screenshot: {screenshot} (kept as {kept})")

    # The questions were written as the signed-in user: the test principal's subject is the
    # token's sha256. The token itself was neither written nor logged.
    kafka = KafkaSettings(kafka_bootstrap)
    async with TopicProbe(kafka, [TopicSpec("chat-questions")]) as probe:
        questions = await probe.records("chat-questions")
    digest = hashlib.sha256(token.encode()).hexdigest()
    assert [q.value for q in questions] == [question, "and after a reconnect?"]
    assert {q.headers["langstream-client-user-id"] for q in questions} == {digest}
    assert all(token not in str(q) for q in questions)
    assert all(token not in line for line in chat.lines)


async def test_the_open_gateway_needs_no_sign_in(chat: Example) -> None:
    async with chromium() as browser:
        page = await browser.new_page()
        await page.route("https://accounts.google.com/**", _offline)
        await page.goto(f"{chat.gateway}/ui/{TENANT}/chat", wait_until="domcontentloaded")
        assert await page.input_value("#gateway") == "chat"
        assert not await page.is_visible("#token-field")
        # It connects by itself; a session id was made up for this page.
        await page.wait_for_selector("#connection[data-state=online]", timeout=20_000)
        assert len(await page.input_value("#param-sessionId")) == 16
        await ask(page, "hi")
        await page.wait_for_selector(".message.answer[data-complete=true]", timeout=30_000)
        assert await page.inner_text(".message.answer") == expected_answer("hi")
