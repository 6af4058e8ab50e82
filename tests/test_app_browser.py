"""The web app in a real browser: headless Debian Chromium driven by Playwright.

Chromium comes from Debian's package (``scripts/install_browser.sh``), never from
``playwright install``.  The test uploads a source photo, picks a gallery pose, clicks
Generate, waits for the result and checks it is an image of the pipeline's output size; a
screenshot goes to ``$CFLD_TEST_ARTIFACTS`` (default: the test's tmp folder).  Requests to
anything but the local server are blocked and must not happen.
"""

from __future__ import annotations

import os
import shutil
import socket
import time
from pathlib import Path
from urllib.parse import urlparse

import numpy as np
import pytest
from PIL import Image

from conftest import make_pixel_pipeline

pytestmark = pytest.mark.browser

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run",
                 "--disable-quic"]


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def browser():
    sync_api = pytest.importorskip("playwright.sync_api",
                                   reason="the playwright Python package is not installed")
    if not CHROMIUM.is_file():
        pytest.skip(f"{CHROMIUM} not found: run scripts/install_browser.sh (apt-get install "
                    "chromium) first")
    with sync_api.sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture(scope="module")
def served_app():
    from cfld.app import build_app, launch_app

    pipe = make_pixel_pipeline()
    demo = build_app(pipe, default_steps=2)
    _, url, _ = launch_app(demo, host="127.0.0.1", port=_free_port(), prevent_thread_lock=True,
                           quiet=True)
    yield url, pipe
    demo.close()


def test_generate_in_browser(browser, served_app, tmp_path):
    url, pipe = served_app
    started = time.perf_counter()
    src = tmp_path / "source.png"
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, (256, 176, 3), dtype=np.uint8)).save(src)

    host = urlparse(url).hostname
    outside: list[str] = []

    def guard(route):
        target = urlparse(route.request.url)
        if target.scheme in ("http", "https", "ws", "wss") and target.hostname != host:
            outside.append(route.request.url)
            route.abort()
        else:
            route.continue_()

    page = browser.new_page(viewport={"width": 1280, "height": 1400})
    try:
        page.route("**/*", guard)
        page.goto(url, wait_until="domcontentloaded")
        page.locator("#source input[type=file]").set_input_files(str(src))
        page.locator("#gallery-pose").get_by_text("walking", exact=True).click()
        page.locator("#generate").click()
        img = page.locator("#result img")
        img.wait_for(state="visible", timeout=90_000)
        page.wait_for_function(
            "() => { const i = document.querySelector('#result img');"
            " return i && i.complete && i.naturalWidth > 0; }", timeout=90_000)
        size = img.evaluate("i => [i.naturalWidth, i.naturalHeight]")
        skeleton = page.locator("#result-skeleton img")
        skeleton.wait_for(state="visible", timeout=30_000)
        # The served file decodes as an image of the pipeline's output size.
        body = page.request.get(img.get_attribute("src")).body()
        artifacts = Path(os.environ.get("CFLD_TEST_ARTIFACTS", tmp_path))
        artifacts.mkdir(parents=True, exist_ok=True)
        (tmp_path / "result.bin").write_bytes(body)
        with Image.open(tmp_path / "result.bin") as served:
            served_size = served.size
        shot = artifacts / "app.png"
        page.screenshot(path=str(shot), full_page=True)
    finally:
        page.close()
    h, w = pipe.default_output_size
    assert size == [w, h]
    assert served_size == (w, h)
    assert shot.is_file() and shot.stat().st_size > 0
    assert not outside, f"the app tried to reach outside hosts: {outside}"
    print(f"browser test: {time.perf_counter() - started:.1f} s, screenshot {shot}")
    if artifacts != tmp_path:
        shutil.copy(shot, tmp_path / "app.png")


def test_style_transfer_with_a_painted_mask(browser, served_app, tmp_path):
    """Paint on the reference in the image editor; the painted region becomes the mask."""
    from cfld.animation import gallery_poses

    url, pipe = served_app
    rng = np.random.default_rng(1)
    for name in ("ref", "new"):
        Image.fromarray(rng.integers(0, 255, (256, 176, 3), dtype=np.uint8)).save(
            tmp_path / f"{name}.png")
    gallery_poses()["standing_front"].to_json(tmp_path / "kp.json")
    page = browser.new_page(viewport={"width": 1280, "height": 1500})
    try:
        page.goto(url, wait_until="domcontentloaded")
        page.get_by_role("tab", name="Style transfer").click()
        page.locator("#style-source input[type=file]").set_input_files(str(tmp_path / "new.png"))
        page.locator("#style-ref-pose input[type=file]").set_input_files(
            str(tmp_path / "kp.json"))
        canvas = page.locator("#reference-editor canvas").first
        canvas.wait_for(state="visible", timeout=30_000)
        # The editor fits its canvas to the uploaded background: wait for the zoom to change.
        zoom = page.locator("#reference-editor").get_by_text("%").first
        before = zoom.inner_text()
        page.locator("#reference-editor input[type=file]").set_input_files(
            str(tmp_path / "ref.png"))
        page.wait_for_function(
            "([el, z]) => el.innerText !== z", arg=[zoom.element_handle(), before],
            timeout=30_000)
        page.wait_for_timeout(500)
        page.locator("#reference-editor button[aria-label=Brush]").click()
        box = canvas.bounding_box()
        x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
        page.mouse.move(x - 20, y - 30)
        page.mouse.down()
        for k in range(20):
            page.mouse.move(x - 20 + 2 * k, y - 30 + 3 * k)
        page.mouse.up()
        page.locator("#style-run").click()
        page.wait_for_function(
            "() => { const i = document.querySelector('#style-result img');"
            " return i && i.complete && i.naturalWidth > 0; }", timeout=90_000)
        size = page.locator("#style-result img").evaluate(
            "i => [i.naturalWidth, i.naturalHeight]")
        mask_src = page.locator("#style-mask-used img").get_attribute("src")
        (tmp_path / "mask.bin").write_bytes(page.request.get(mask_src).body())
        artifacts = Path(os.environ.get("CFLD_TEST_ARTIFACTS", tmp_path))
        artifacts.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(artifacts / "app-style.png"), full_page=True)
    finally:
        page.close()
    h, w = pipe.default_output_size
    assert size == [w, h]
    with Image.open(tmp_path / "mask.bin") as m:
        painted = np.asarray(m.convert("L")) > 127
    assert m.size == (176, 256) and 0.005 < painted.mean() < 0.5  # the stroke, not everything
