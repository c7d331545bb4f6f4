"""The voice studio in a real browser: Debian's chromium, driven by Playwright.

Every test reaches the page through a stand-in for Home Assistant's ingress (a path prefix the
server never chose), so a single absolute URL in the page breaks them. The browser's fake
microphone plays a speech-like WAV file, which is what the recording test records.
"""

import json
import os
import re
import tomllib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from playwright.async_api import (
    Browser,
    BrowserContext,
    Locator,
    Page,
    Route,
    async_playwright,
    expect,
)
from wyoming.client import AsyncTcpClient
from wyoming.info import Describe, Info

from .conftest import RecordingEngine, read_until
from .support.clips import write_clip, write_silence
from .support.http_server import HttpUnderTest, http_serving
from .support.ingress_proxy import ingress_proxy

CHROMIUM = Path("/usr/bin/chromium")
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}
HOME_HOST = "studio.home.arpa"
WAIT_MS = 30_000
"""Longest wait for page state: a check or a sentence of speech takes well under a second,
but a loaded CI machine may be slow."""

expect.set_options(timeout=WAIT_MS)


@pytest.fixture(scope="module")
def microphone_wav(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """What the fake microphone hears: 8 s of speech-like sound, looped."""
    return write_clip(tmp_path_factory.mktemp("mic") / "mic.wav", seconds=8.0, sample_rate=48_000)


@pytest_asyncio.fixture(scope="module")
async def browser(microphone_wav: Path) -> AsyncIterator[Browser]:
    """One headless chromium for the module (each test gets a fresh context)."""
    if not CHROMIUM.exists():
        reason = f"{CHROMIUM} is not installed (apt install chromium)"
        if os.environ.get("WYOMING_XTTS_REQUIRE_BROWSER") == "1":
            pytest.fail(f"{reason}, and WYOMING_XTTS_REQUIRE_BROWSER=1 asks for it")
        pytest.skip(reason)
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(
            executable_path=str(CHROMIUM),
            headless=True,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--autoplay-policy=no-user-gesture-required",
                "--use-fake-ui-for-media-stream",
                "--use-fake-device-for-media-stream",
                f"--use-file-for-fake-audio-capture={microphone_wav}",
                # A name on the home network: a page there is not a secure context.
                f"--host-resolver-rules=MAP {HOME_HOST} 127.0.0.1",
            ],
        )
        yield launched
        await launched.close()


@dataclass
class Studio:
    """A server with its studio reached through the ingress stand-in."""

    url: str
    """The proxied page, `http://127.0.0.1:PORT/api/hassio_ingress/TOKEN/`."""

    server: HttpUnderTest


@pytest_asyncio.fixture
async def studio(engine: RecordingEngine, tmp_path: Path) -> AsyncIterator[Studio]:
    async with (
        http_serving(engine, tmp_path / "server") as server,
        ingress_proxy(server.base_url) as url,
    ):
        yield Studio(url, server)


@dataclass
class PageLog:
    """Script errors and Content-Security-Policy violations seen by a page."""

    problems: list[str] = field(default_factory=list)

    def watch(self, page: Page) -> Page:
        page.on("pageerror", lambda error: self.problems.append(f"script error: {error}"))
        page.on(
            "console",
            lambda message: (
                self.problems.append(f"console: {message.text}")
                if "Content Security Policy" in message.text
                else None
            ),
        )
        return page


@pytest_asyncio.fixture
async def browsing(browser: Browser) -> AsyncIterator[Callable[..., Awaitable[Page]]]:
    """Opens pages in fresh contexts (own cookies); fails the test on a script error or a
    CSP violation in any of them."""
    contexts: list[BrowserContext] = []
    log = PageLog()

    async def new_page(viewport: dict[str, int] = DESKTOP, **options: Any) -> Page:
        context = await browser.new_context(viewport=viewport, **options)  # type: ignore[arg-type]
        contexts.append(context)
        await context.grant_permissions(["microphone"])
        return log.watch(await context.new_page())

    yield new_page
    for context in contexts:
        await context.close()
    assert not log.problems, log.problems


async def open_studio(page: Page, url: str) -> None:
    await page.goto(url)
    await expect(page.locator("body[data-ready]")).to_be_attached()


async def screenshot(page: Page, name: str) -> None:
    """Writes docs screenshots when STUDIO_SCREENSHOTS names a directory."""
    directory = os.environ.get("STUDIO_SCREENSHOTS")
    if directory:
        Path(directory).mkdir(parents=True, exist_ok=True)
        await page.screenshot(path=str(Path(directory) / name))


async def api_json(page: Page, url: str) -> Any:
    """GET through the page's context (its cookies, the same proxy)."""
    response = await page.request.get(url)
    return await response.json()


async def voice_names(page: Page, studio: Studio) -> list[str]:
    return [voice["name"] for voice in (await api_json(page, studio.url + "api/voices"))["voices"]]


async def wyoming_info(port: int) -> Info:
    client = AsyncTcpClient("127.0.0.1", port)
    await client.connect()
    try:
        await client.write_event(Describe().event())
        events = await read_until(client, "info")
    finally:
        await client.disconnect()
    return Info.from_event(events[-1])


async def wyoming_voice_names(port: int) -> list[str]:
    info = await wyoming_info(port)
    return [voice.name for program in info.tts for voice in program.voices]


async def wyoming_speakers(port: int, voice_name: str) -> list[str]:
    """The speakers (styles) Home Assistant is offered for one voice."""
    info = await wyoming_info(port)
    (voice,) = [voice for voice in info.tts[0].voices if voice.name == voice_name]
    return [speaker.name for speaker in voice.speakers or []]


async def side_played(page: Page, side: str, voice: str, style: str | None = None) -> None:
    """Wait until a side's player has received the voice's speech (in `style`, when given)
    and knows its length."""
    await page.wait_for_function(
        "([side, voice, style]) => { const a = document.querySelector(`#side-${side} audio`);"
        " const asked = new URL(a.src).searchParams;"
        " return asked.get('voice') === voice && asked.get('style') === style"
        " && (a.ended || a.duration > 0); }",
        arg=[side, voice, style],
        timeout=WAIT_MS,
    )


def card(page: Page, name: str) -> Locator:
    return page.locator(f'#profiles .card[data-voice="{name}"]')


def clip_entry(page: Page, file_name: str) -> Locator:
    return page.locator("#clips .clip", has=page.locator(".clip-name", has_text=file_name))


async def start_new_voice(page: Page, name: str) -> None:
    await page.get_by_role("button", name="New voice").click()
    await expect(page.locator("#nv-name")).to_be_focused()
    await page.locator("#nv-name").fill(name)


@pytest.mark.slow
async def test_a_voice_made_from_an_uploaded_clip_can_be_heard_edited_and_removed(
    studio: Studio, browsing: Callable[..., Awaitable[Page]], tmp_path: Path
) -> None:
    page = await browsing()
    voices_dir = studio.server.voices_dir
    recording = write_clip(tmp_path / "kitchen.wav", seconds=8.0)
    await open_studio(page, studio.url)
    await expect(card(page, "alice")).to_be_visible()

    # The clip is checked and its verdict shown before anything is saved.
    await start_new_voice(page, "grandma")
    await page.locator("#nv-description").fill("Grandma")
    await page.locator("#nv-file").set_input_files(recording)
    entry = clip_entry(page, "kitchen.wav")
    await expect(entry).to_have_class(re.compile(r"\bok\b"))
    await expect(entry.locator(".verdict")).to_have_text(re.compile(r"\d\.\d s"))
    assert not (voices_dir / "grandma").exists()
    save = page.get_by_role("button", name="Save voice")
    await expect(save).to_be_enabled()

    # The cleaned clip can be heard before saving.
    await entry.get_by_role("button", name="Play the cleaned kitchen.wav").click()
    await expect(entry.get_by_role("button", name="Stop kitchen.wav")).to_be_visible()
    await entry.get_by_role("button", name="Stop kitchen.wav").click()

    await save.click()
    await expect(card(page, "grandma")).to_be_visible()
    await expect(card(page, "grandma")).to_contain_text("Grandma")
    await expect(page.locator("#message-area")).to_contain_text("grandma")
    assert (voices_dir / "grandma" / "voice.toml").is_file()
    assert "grandma" in await voice_names(page, studio)
    assert "grandma" in await wyoming_voice_names(studio.server.wyoming_port)

    # Listen: the preview streams and plays.
    await card(page, "grandma").get_by_role("button", name="Listen to grandma").click()
    await expect(page.locator("#side-a-voice")).to_have_value("grandma")
    await page.locator("#sentence").fill("Hello, this is grandma speaking.")
    await page.get_by_role("button", name="Play A").click()
    await side_played(page, "a", "grandma")
    await expect(page.locator(".message.error")).to_have_count(0)

    # Edit: description and temperature are saved into the profile.
    await card(page, "grandma").get_by_role("button", name="Edit grandma").click()
    dialog = page.locator("#edit-dialog")
    await expect(dialog).to_be_visible()
    await page.locator("#ed-description").fill("Grandma at the seaside")
    await page.locator("#ed-temperature").fill("0.5")
    await dialog.get_by_role("button", name="Save changes").click()
    await expect(dialog).to_be_hidden()
    await expect(card(page, "grandma")).to_contain_text("Grandma at the seaside")
    saved = tomllib.loads((voices_dir / "grandma" / "voice.toml").read_text())
    assert saved["description"] == "Grandma at the seaside"
    assert saved["synthesis"]["temperature"] == 0.5
    assert "top_k" not in saved["synthesis"], "untouched settings must stay on the defaults"
    listed = await api_json(page, studio.url + "api/voices")
    grandma = next(voice for voice in listed["voices"] if voice["name"] == "grandma")
    assert grandma["synthesis"]["temperature"] == 0.5

    # Compare: side B speaks grandma faster, and that setting is kept for her.
    await page.locator("#side-b-voice").select_option("grandma")
    await expect(page.locator("#side-b-temperature")).to_have_value("0.5")
    await page.locator("#side-b-speed").fill("1.2")
    await page.get_by_role("button", name="Play B").click()
    await side_played(page, "b", "grandma")
    played = await page.locator("#side-b audio").get_attribute("src")
    assert played is not None and "speed=1.2" in played
    store = page.locator("#side-b").get_by_role("button", name="Save these settings to grandma")
    await store.click()
    await expect(page.locator("#message-area")).to_contain_text("side B are saved")
    saved = tomllib.loads((voices_dir / "grandma" / "voice.toml").read_text())
    assert saved["synthesis"] == {"temperature": 0.5, "speed": 1.2}

    # Make default.
    await card(page, "grandma").get_by_role("button", name="Edit grandma").click()
    await dialog.get_by_role("button", name="Make default").click()
    await expect(dialog.get_by_role("button", name="Make default")).to_be_disabled()
    await expect(card(page, "grandma").locator(".badge.default")).to_be_visible()
    await expect(card(page, "alice").locator(".badge.default")).to_have_count(0)
    assert (await api_json(page, studio.url + "api/studio"))["default_voice"] == "grandma"

    # Remove: the confirmation names the voice and Cancel is where focus lands.
    await dialog.get_by_role("button", name="Remove…").click()
    confirm = page.locator("#confirm-dialog")
    await expect(confirm).to_be_visible()
    await expect(confirm).to_contain_text("“grandma”")
    await expect(confirm.get_by_role("button", name="Cancel")).to_be_focused()
    await page.keyboard.press("Enter")
    await expect(confirm).to_be_hidden()
    assert (voices_dir / "grandma").is_dir()
    await dialog.get_by_role("button", name="Remove…").click()
    await confirm.get_by_role("button", name="Remove", exact=True).click()
    await expect(card(page, "grandma")).to_have_count(0)
    await expect(dialog).to_be_hidden()
    assert not (voices_dir / "grandma").exists()
    assert "grandma" not in await voice_names(page, studio)


def style_entry(page: Page, voice: str, style: str) -> Locator:
    return card(page, voice).locator(f'.style[data-style="{style}"]')


@pytest.mark.slow
async def test_a_style_is_added_from_a_checked_clip_heard_and_removed_after_a_confirmation(
    studio: Studio, browsing: Callable[..., Awaitable[Page]], tmp_path: Path
) -> None:
    page = await browsing()
    voices_dir = studio.server.voices_dir
    port = studio.server.wyoming_port
    # A style that cannot be used (its only clip is silent) is already there.
    write_silence(voices_dir / "alice" / "calm" / "hush.wav", seconds=8.0)
    party = write_clip(tmp_path / "party.wav", seconds=8.0, seed=5)
    await open_studio(page, studio.url)

    calm = style_entry(page, "alice", "calm")
    await expect(calm).to_have_class(re.compile(r"\bbroken\b"))
    await expect(calm.locator(".badge.broken")).to_have_text("Cannot be used")
    await expect(calm.locator(".problems .error")).to_contain_text(
        re.compile(r"hush\.wav.*(silen|speech)", re.IGNORECASE)
    )
    await expect(
        calm.get_by_role("button", name="Listen to the style calm of alice")
    ).to_be_disabled()

    # The style form is the new voice's: the clip is checked, with its verdict, before saving.
    await card(page, "alice").get_by_role("button", name="Add a style to alice").click()
    form = page.locator("#new-style")
    await expect(form.get_by_role("heading", name="New style for “alice”")).to_be_visible()
    await expect(page.locator("#st-name")).to_be_focused()
    await page.locator("#st-name").fill("cheerful")
    await page.locator("#st-file").set_input_files(party)
    entry = page.locator("#st-clips .clip", has=page.locator(".clip-name", has_text="party.wav"))
    await expect(entry).to_have_class(re.compile(r"\bok\b"))
    await expect(entry.locator(".verdict")).to_have_text(re.compile(r"\d\.\d s"))
    await expect(clip_entry(page, "party.wav")).to_have_count(0)  # not the new voice's list
    # Its recorder records into its own meter.
    await form.get_by_role("button", name="Record with the microphone").click()
    await expect(page.locator("#st-recorder")).to_be_visible()
    await expect(page.locator("#st-record-sentence")).to_have_text(re.compile(r"\w+ \w+ \w+"))
    await page.wait_for_function(
        "() => document.querySelector('#st-record-level').value > 0.1", timeout=WAIT_MS
    )
    await form.get_by_role("button", name="Cancel").click()
    await expect(page.locator("#st-recorder")).to_be_hidden()
    await expect(page.locator("#st-clips .clip")).to_have_count(1)
    assert not (voices_dir / "alice" / "cheerful").exists()

    await form.get_by_role("button", name="Save style").click()
    cheerful = style_entry(page, "alice", "cheerful")
    await expect(cheerful.locator("h5")).to_be_focused()
    await expect(form).to_be_hidden()
    await expect(cheerful.locator(".card-clips li")).to_contain_text("clip1.wav")
    await expect(cheerful.locator(".card-clips .badge.ok")).to_have_text("Checked: good")
    await expect(page.locator("#message-area")).to_contain_text("“cheerful”")
    assert (voices_dir / "alice" / "cheerful" / "clip1.wav").is_file()
    assert "cheerful" in await wyoming_speakers(port, "alice")
    await page.evaluate("window.scrollTo(0, 0)")
    await screenshot(page, "studio-voices.png")

    # Listen: only usable styles are offered, and the speech is asked for in the style.
    side_b_styles = page.locator("#side-b-style option")
    await expect(side_b_styles).to_have_text(["Plain", "cheerful"])
    await cheerful.get_by_role("button", name="Listen to the style cheerful of alice").click()
    await expect(page.locator("#side-a-voice")).to_have_value("alice")
    await expect(page.locator("#side-a-style")).to_have_value("cheerful")
    await page.locator("#sentence").fill("What a lovely day!")
    await page.get_by_role("button", name="Play A").click()
    await side_played(page, "a", "alice", "cheerful")
    await expect(page.locator(".message.error")).to_have_count(0)

    # Remove: the confirmation names the style, Cancel has focus, Remove removes.
    await cheerful.get_by_role("button", name="Remove the style cheerful of alice").click()
    confirm = page.locator("#confirm-dialog")
    await expect(confirm).to_contain_text("“cheerful”")
    await expect(confirm.get_by_role("button", name="Cancel")).to_be_focused()
    await confirm.get_by_role("button", name="Remove", exact=True).click()
    await expect(confirm).to_be_hidden()
    await expect(cheerful).to_have_count(0)
    await expect(card(page, "alice")).to_be_visible()
    assert not (voices_dir / "alice" / "cheerful").exists()
    assert (voices_dir / "alice" / "voice.toml").is_file()
    assert "cheerful" not in await wyoming_speakers(port, "alice")
    await expect(side_b_styles).to_have_text(["Plain"])

    # Side A still asks for the removed style: the server's sentence says why it cannot.
    await page.get_by_role("button", name="Play A").click()
    answer = await page.request.get(
        f"{studio.url}api/speech?voice=alice&style=cheerful&text=What+a+lovely+day%21&format=mp3"
    )
    assert answer.status == 404
    expected = (await answer.json())["error"]["message"]
    assert "cheerful" in expected
    await expect(page.locator(".message.error p")).to_have_text(expected)


@pytest.mark.slow
async def test_unusable_clips_are_refused_with_their_reason_and_nothing_can_be_saved_from_them(
    studio: Studio, browsing: Callable[..., Awaitable[Page]], tmp_path: Path
) -> None:
    page = await browsing()
    short = write_clip(tmp_path / "short.wav", seconds=2.0)
    quiet = write_silence(tmp_path / "quiet.wav", seconds=8.0)
    good = write_clip(tmp_path / "good.flac", seconds=9.0, seed=3)
    uploads_dir = studio.server.data_dir / "studio-uploads"
    await open_studio(page, studio.url)
    await start_new_voice(page, "tester")
    save = page.get_by_role("button", name="Save voice")

    await page.locator("#nv-file").set_input_files(short)
    entry = clip_entry(page, "short.wav")
    await expect(entry).to_have_class(re.compile(r"\bbad\b"))
    await expect(entry.locator(".verdict")).to_have_text(re.compile(r"short\.wav.*\b2\.0 s\b.*\."))
    await expect(save).to_be_disabled()
    await expect(page.locator("#save-hint")).to_have_text("Add at least one usable recording.")

    await page.locator("#nv-file").set_input_files(quiet)
    entry = clip_entry(page, "quiet.wav")
    await expect(entry).to_have_class(re.compile(r"\bbad\b"))
    await expect(entry.locator(".verdict")).to_have_text(
        re.compile(r"quiet\.wav.*(silen|speech).*\.", re.IGNORECASE)
    )
    await expect(save).to_be_disabled()

    # A usable clip beside them is what makes saving possible (the unusable ones are left out).
    await page.locator("#nv-file").set_input_files(good)
    await expect(clip_entry(page, "good.flac")).to_have_class(re.compile(r"\bok\b"))
    await expect(save).to_be_enabled()
    await page.locator("#nv-clips-box").evaluate("(box) => box.scrollIntoView({block: 'start'})")
    await screenshot(page, "studio-new-voice.png")

    # Removing a clip drops it on the server too.
    assert len(list(uploads_dir.iterdir())) == 3
    await clip_entry(page, "short.wav").get_by_role("button", name="Remove short.wav").click()
    await expect(clip_entry(page, "short.wav")).to_have_count(0)
    assert len(list(uploads_dir.iterdir())) == 2
    assert not (studio.server.voices_dir / "tester").exists()


@pytest.mark.slow
async def test_a_recording_from_the_microphone_stops_by_itself_and_is_checked(
    studio: Studio, browsing: Callable[..., Awaitable[Page]]
) -> None:
    page = await browsing()

    async def shorter_recordings(route: Route) -> None:
        # The server's limit is 30 s; 7 s keeps the test short and still proves the stop.
        answer = await route.fetch()
        described = await answer.json()
        described["limits"]["record_max_s"] = 7
        await route.fulfill(response=answer, body=json.dumps(described))

    await page.route(re.compile(r"/api/studio$"), shorter_recordings)
    await open_studio(page, studio.url)
    await start_new_voice(page, "microphone")
    await page.get_by_role("button", name="Record with the microphone").click()
    await expect(page.locator("#recorder")).to_be_visible()
    await expect(page.locator("#record-sentence")).to_have_text(re.compile(r"\w+ \w+ \w+"))
    await page.wait_for_function(
        "() => document.querySelector('#record-level').value > 0.1", timeout=WAIT_MS
    )
    await expect(page.locator("#record-time")).to_have_text("0:03")

    async with page.expect_response(re.compile(r"/api/uploads$"), timeout=WAIT_MS) as uploaded:
        await expect(page.locator("#recorder")).to_be_hidden(timeout=WAIT_MS)
    upload = await (await uploaded.value).json()
    assert re.fullmatch(r"recording-1\.(webm|ogg|m4a)", upload["name"]), upload
    assert 5.5 <= upload["duration_s"] <= 8.0, upload
    assert upload["ok"], upload
    await expect(page.locator("#message-area")).to_contain_text("stopped after 7 s")
    entry = clip_entry(page, upload["name"])
    await expect(entry).to_have_class(re.compile(r"\bok\b"))
    await expect(entry.locator(".verdict")).to_have_text(upload["verdict"])
    await expect(page.get_by_role("button", name="Save voice")).to_be_enabled()


async def tab_to(page: Page, selector: str, presses: int = 40) -> None:
    """Press Tab until `selector` has focus (fails after `presses`)."""
    for _ in range(presses):
        await page.keyboard.press("Tab")
        if await page.evaluate(f"document.activeElement.matches({selector!r})"):
            return
    raise AssertionError(f"Tab never reached {selector}")


async def focus_ring(page: Page) -> str:
    return str(await page.evaluate("getComputedStyle(document.activeElement).outlineStyle"))


@pytest.mark.slow
async def test_the_studio_works_with_the_keyboard_alone_and_on_a_phone(
    studio: Studio, browsing: Callable[..., Awaitable[Page]], tmp_path: Path
) -> None:
    page = await browsing()
    # Playwright intercepts file choosers once something listens for them; listening from the
    # start keeps the first chooser from racing that switch (it would open a real dialog).
    page.on("filechooser", lambda _: None)
    recording = write_clip(tmp_path / "keys.wav", seconds=8.0)
    await open_studio(page, studio.url)

    await tab_to(page, "#new-voice-open")
    assert await focus_ring(page) != "none"
    await page.keyboard.press("Enter")
    await expect(page.locator("#nv-name")).to_be_focused()
    await page.keyboard.type("keys")
    await tab_to(page, "#nv-file")
    assert await focus_ring(page) != "none"
    async with page.expect_file_chooser() as chooser:
        await page.keyboard.press("Space")
    await (await chooser.value).set_files(recording)
    await expect(clip_entry(page, "keys.wav")).to_have_class(re.compile(r"\bok\b"))
    await tab_to(page, "#sentence")
    await page.keyboard.press("Control+A")
    await page.keyboard.type("Typed with keys.")
    await expect(page.locator("#sentence")).to_have_value("Typed with keys.")

    phone = await browsing(PHONE, is_mobile=True, has_touch=True, device_scale_factor=2)
    await open_studio(phone, studio.url)
    await phone.get_by_role("button", name="New voice").click()
    await phone.locator("#nv-file").set_input_files(recording)
    await expect(clip_entry(phone, "keys.wav")).to_have_class(re.compile(r"\bok\b"))
    assert await phone.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    # One column: side B sits below side A, not beside it.
    side_a = await phone.locator("#side-a").bounding_box()
    side_b = await phone.locator("#side-b").bounding_box()
    assert side_a is not None and side_b is not None
    assert side_b["y"] >= side_a["y"] + side_a["height"]
    small = await phone.evaluate(
        "[...document.querySelectorAll('button')]"
        ".filter((b) => b.offsetParent !== null && b.getBoundingClientRect().height < 44)"
        ".map((b) => b.textContent)"
    )
    assert small == [], f"buttons too small to touch: {small}"
    await phone.locator("#nv-name").fill("grandma")
    await phone.evaluate("window.scrollTo(0, 0)")
    await screenshot(phone, "studio-phone.png")


async def test_a_failure_is_shown_as_the_servers_sentence(
    studio: Studio, browsing: Callable[..., Awaitable[Page]]
) -> None:
    page = await browsing()
    await open_studio(page, studio.url)
    message = page.locator(".message.error p")

    async def server_says(query: str) -> str:
        response = await page.request.get(f"{studio.url}api/speech?{query}")
        assert response.status >= 400
        return str((await response.json())["error"]["message"])

    await expect(page.locator("#side-a-voice")).to_have_value("alice")
    await page.locator("#sentence").fill("")
    await page.get_by_role("button", name="Play A").click()
    expected = await server_says("voice=alice&text=&format=mp3")
    await expect(message).to_have_text(expected)
    assert re.fullmatch(r"[A-Z].*[.!]", expected), expected

    # The voice disappears behind the page's back (another tab, the command line).
    await page.request.delete(f"{studio.url}api/voices/alice")
    await page.locator("#sentence").fill("Are you still there?")
    await page.get_by_role("button", name="Play A").click()
    expected = await server_says("voice=alice&text=Are+you+still+there%3F&format=mp3")
    assert "alice" in expected
    await expect(message).to_have_text(expected)


@pytest.mark.slow
async def test_when_voices_cannot_be_changed_the_page_says_why_and_still_plays_them(
    studio: Studio, browsing: Callable[..., Awaitable[Page]]
) -> None:
    page = await browsing()
    reason = "The voices directory /share/voices cannot be written (Read-only file system)."

    async def read_only(route: Route) -> None:
        # A read-only mount cannot be made here (tests run as root, who writes anyway), so the
        # server's description of itself is what says so.
        answer = await route.fetch()
        described = await answer.json()
        described.update(writable=False, not_writable_reason=reason)
        await route.fulfill(response=answer, body=json.dumps(described))

    await page.route(re.compile(r"/api/studio$"), read_only)
    await open_studio(page, studio.url)
    await expect(page.locator("#not-writable")).to_contain_text(reason)
    await expect(page.get_by_role("button", name="New voice")).to_be_disabled()
    await expect(card(page, "alice").get_by_role("button", name="Edit alice")).to_be_disabled()
    await expect(page.locator("#side-a .store")).to_be_disabled()
    await page.get_by_role("button", name="Play A").click()
    await side_played(page, "a", "alice")


@pytest.mark.slow
async def test_over_plain_http_on_the_home_network_files_work_and_recording_says_why_not(
    studio: Studio, browsing: Callable[..., Awaitable[Page]], tmp_path: Path
) -> None:
    # Home Assistant is often reached as http://homeassistant.local:8123: no HTTPS, so the
    # browser withholds the microphone and every other secure-context-only API.
    page = await browsing()
    await open_studio(page, studio.url.replace("127.0.0.1", HOME_HOST))
    assert await page.evaluate("() => window.isSecureContext") is False
    await start_new_voice(page, "homenet")
    await page.locator("#nv-file").set_input_files(write_clip(tmp_path / "lan.wav", seconds=8.0))
    await expect(clip_entry(page, "lan.wav")).to_have_class(re.compile(r"\bok\b"))
    await page.get_by_role("button", name="Record with the microphone").click()
    await expect(page.locator(".message.error")).to_contain_text("HTTPS")
    await page.get_by_role("button", name="Save voice").click()
    await expect(card(page, "homenet")).to_be_visible()


@pytest.mark.slow
async def test_with_a_token_the_studio_opens_only_after_signing_in(
    engine: RecordingEngine, browsing: Callable[..., Awaitable[Page]], tmp_path: Path
) -> None:
    async with (
        http_serving(engine, tmp_path / "server", token="s3cret") as server,
        ingress_proxy(server.base_url) as url,
    ):
        page = await browsing()
        response = await page.goto(url)
        assert response is not None and response.status == 401
        token = page.get_by_label("Access token")
        await expect(token).to_be_focused()
        failure = page.get_by_text("That token is not right.")
        await expect(failure).to_be_hidden()
        assert (await page.request.get(url + "api/voices")).status == 401

        await token.fill("wrong")
        await page.get_by_role("button", name="Open the studio").click()
        await expect(failure).to_be_visible()
        assert page.url.endswith("/?failed=1")
        assert page.url.startswith(url)

        await page.get_by_label("Access token").fill("s3cret")
        await page.get_by_role("button", name="Open the studio").click()
        await expect(page.locator("body[data-ready]")).to_be_attached()
        await expect(card(page, "alice")).to_be_visible()
        assert "alice" in [v["name"] for v in (await api_json(page, url + "api/voices"))["voices"]]
