"""The web app in a real browser: headless Debian Chromium driven by Playwright.

Chromium comes from Debian's package (``scripts/install_browser.sh``), never from
``playwright install``.  The tests drive every tab: pose transfer (an example pose, Generate,
the result of the pipeline's output size), the pose editor (a joint moved by a click on the
preview, the table following, a user error shown as a message without a traceback), style
transfer with a painted mask, interpolation and animation.  Screenshots go to
``$CFLD_TEST_ARTIFACTS`` (default: the test's tmp folder).  Requests to anything but the local
server are blocked and must not happen.
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


def _artifacts(tmp_path: Path) -> Path:
    out = Path(os.environ.get("CFLD_TEST_ARTIFACTS", tmp_path))
    out.mkdir(parents=True, exist_ok=True)
    return out


def _shot(page, tmp_path: Path, name: str) -> Path:
    shot = _artifacts(tmp_path) / name
    page.screenshot(path=str(shot), full_page=True)
    assert shot.is_file() and shot.stat().st_size > 0
    if shot.parent != tmp_path:
        shutil.copy(shot, tmp_path / name)
    return shot


def _wait_image(page, selector: str, timeout: int = 90_000) -> list[int]:
    page.wait_for_function(
        f"() => {{ const i = document.querySelector('{selector}');"
        " return i && i.complete && i.naturalWidth > 0; }", timeout=timeout)
    return page.locator(selector).evaluate("i => [i.naturalWidth, i.naturalHeight]")


def _random_photo(path: Path, seed: int) -> Path:
    rng = np.random.default_rng(seed)
    Image.fromarray(rng.integers(0, 255, (256, 176, 3), dtype=np.uint8)).save(path)
    return path


def test_generate_in_browser(browser, served_app, tmp_path):
    url, pipe = served_app
    started = time.perf_counter()
    src = _random_photo(tmp_path / "source.png", 0)

    host = urlparse(url).hostname
    outside: list[str] = []

    def guard(route):
        target = urlparse(route.request.url)
        if target.scheme in ("http", "https", "ws", "wss") and target.hostname != host:
            outside.append(route.request.url)
            route.abort()
        else:
            route.continue_()

    page = browser.new_page(viewport={"width": 1400, "height": 1400})
    try:
        page.route("**/*", guard)
        page.goto(url, wait_until="domcontentloaded")
        assert "procedural" not in page.locator("#header").inner_text()  # not the shipped model
        page.locator("#source input[type=file]").set_input_files(str(src))
        page.locator("#gallery-pose").get_by_text("walking", exact=True).click()
        page.locator("#generate").click()
        size = _wait_image(page, "#result img")
        # The served file decodes as an image of the pipeline's output size.
        body = page.request.get(page.locator("#result img").get_attribute("src")).body()
        (tmp_path / "result.bin").write_bytes(body)
        with Image.open(tmp_path / "result.bin") as served:
            served_size = served.size
        shot = _shot(page, tmp_path, "app.png")
    finally:
        page.close()
    h, w = pipe.default_output_size
    assert size == [w, h]
    assert served_size == (w, h)
    assert not outside, f"the app tried to reach outside hosts: {outside}"
    print(f"browser test: {time.perf_counter() - started:.1f} s, screenshot {shot}")


def _preview_bytes(page, tmp_path: Path, name: str) -> np.ndarray:
    _wait_image(page, "#pose-preview img")
    src = page.locator("#pose-preview img").get_attribute("src")
    (tmp_path / name).write_bytes(page.request.get(src).body())
    with Image.open(tmp_path / name) as im:
        return np.asarray(im.convert("RGB"))


def test_pose_editor_in_browser(browser, served_app, tmp_path, capfd):
    """Fill the editor from an example pose, move a joint by clicking the preview (the table
    follows), type a coordinate, generate from the edited pose; a user error is a message."""
    url, pipe = served_app
    page = browser.new_page(viewport={"width": 1400, "height": 1500})
    try:
        page.goto(url, wait_until="domcontentloaded")
        page.locator("#generate").click()  # no source photo: a message, not a traceback
        page.get_by_text("please upload the source photo").first.wait_for(timeout=30_000)
        page.locator("#gallery-pose").get_by_text("arms_raised", exact=True).click()
        page.wait_for_timeout(1500)
        before = _preview_bytes(page, tmp_path, "before.png")
        page.get_by_text("Keypoints (y, x in the 256×176 frame)").click()  # open the table
        table = page.locator("#pose-table")
        assert "230" not in table.inner_text()
        page.locator("#joint-to-move input").click()
        page.get_by_role("option", name="4 right_wrist").click()
        box = page.locator("#pose-preview img").bounding_box()
        page.mouse.click(box["x"] + box["width"] * 0.5, box["y"] + box["height"] * 0.9)
        page.wait_for_function(  # the click put the right wrist at y = 0.9 * 256
            "() => document.querySelector('#pose-table').innerText.includes('230')",
            timeout=30_000)
        page.wait_for_timeout(500)
        after = _preview_bytes(page, tmp_path, "after.png")
        assert before.shape == after.shape and (before != after).any()
        _shot(page, tmp_path, "app-pose-editor.png")
        page.locator("#source input[type=file]").set_input_files(
            str(_random_photo(tmp_path / "s.png", 3)))
        page.locator("#generate").click()
        size = _wait_image(page, "#result img")
    finally:
        page.close()
    h, w = pipe.default_output_size
    assert size == [w, h]
    assert "Traceback" not in capfd.readouterr().err  # user errors are messages only


def test_interpolation_and_animation_in_browser(browser, served_app, tmp_path):
    url, pipe = served_app
    a, b = _random_photo(tmp_path / "a.png", 4), _random_photo(tmp_path / "b.png", 5)
    page = browser.new_page(viewport={"width": 1400, "height": 1500})
    try:
        page.goto(url, wait_until="domcontentloaded")
        page.get_by_role("tab", name="Interpolation").click()
        page.locator("#interp-a input[type=file]").set_input_files(str(a))
        page.locator("#interp-b input[type=file]").set_input_files(str(b))
        page.locator("#interp-run").click()
        strip = _wait_image(page, "#interp-strip img")
        _shot(page, tmp_path, "app-interpolation.png")
        page.get_by_role("tab", name="Animation").click()
        page.locator("#anim-source input[type=file]").set_input_files(str(a))
        page.locator("#anim-run").click()
        gif = _wait_image(page, "#anim-gif img", timeout=180_000)
        page.wait_for_function(
            "() => document.querySelectorAll('#anim-frames-out img').length >= 9",
            timeout=30_000)
        _shot(page, tmp_path, "app-animation.png")
    finally:
        page.close()
    h, w = pipe.default_output_size
    assert strip[1] == h and gif == [w, h]


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
        _shot(page, tmp_path, "app-style.png")
    finally:
        page.close()
    h, w = pipe.default_output_size
    assert size == [w, h]
    with Image.open(tmp_path / "mask.bin") as m:
        painted = np.asarray(m.convert("L")) > 127
    assert m.size == (176, 256) and 0.005 < painted.mean() < 0.5  # the stroke, not everything
