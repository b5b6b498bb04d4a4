"""The explorer page in a real headless Chromium: load, generate with weighted tags, re-roll,
interpolate (strip and slider), download a PNG and regenerate it from its recipe, nearest training
images, bad input shown as a message, a class-conditional two-stage run (stage 1 beside stage 2), and
a projection walked from and checked for nearest training images. A screenshot of each state goes to
tests/artifacts/serve/.

Needs the `playwright` Python package (driving an installed Chromium through executable_path; it
downloads nothing) and a Chromium binary: $GANFORGE_CHROMIUM, or `chromium` on the PATH (Debian's
package, which `make test` installs when run as root). Skips with the reason otherwise.
"""
import base64
import io
import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ganforge.cli import main
from ganforge.config import from_dict
from ganforge.training.trainer import train
from serve_helpers import projection_of, running_server, tag_run

sync_api = pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed")
CHROMIUM = os.environ.get("GANFORGE_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
if not CHROMIUM:
    pytest.skip("no Chromium binary (apt-get install chromium, or set GANFORGE_CHROMIUM)", allow_module_level=True)

ARTIFACTS = Path(__file__).parent / "artifacts" / "serve"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.fixture(scope="module")
def page(tmp_path_factory):
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    run = tag_run(tmp_path_factory)
    stacked = tmp_path_factory.mktemp("stacked") / "class-stacked"
    train(from_dict({"data": "shapes", "resolution": 64, "steps": 2, "batch_size": 8, "dataset": {"size": 16},
                     "condition": "class", "out": str(stacked), "train": {"quiet": True},
                     "model": {"width": 8, "z_dim": 16, "arch": "stacked", "stage1_resolution": 32}}),
          echo=lambda *a: None)
    projection = projection_of(run, tmp_path_factory.mktemp("projection"))
    profile = tmp_path_factory.mktemp("chromium-profile")
    with running_server([run, stacked], [projection]) as (_, url), sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch_persistent_context(
            str(profile), executable_path=CHROMIUM, args=FLAGS, headless=True, accept_downloads=True,
            viewport={"width": 1400, "height": 1000})
        offsite = []
        browser.on("request", lambda r: None if r.url.startswith((url, "data:")) else offsite.append(r.url))
        tab = browser.new_page()
        tab.set_default_timeout(20_000)
        tab.goto(url)
        yield tab
        browser.close()
        assert offsite == [], f"the page reached outside the local server: {offsite}"


def shot(page, name):
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def pixels(data_url):
    """The pixels of a data: URL PNG (two PNGs of one image differ in the recipe they carry)."""
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(data_url.split(",", 1)[1]))))


def message(page):
    return page.locator("#message")


def test_1_loads_the_run_and_its_vocabulary(page):
    sync_api.expect(page.locator("#run-info")).to_contain_text("condition: tags")
    assert page.locator(".tag-row").count() == 22  # the shapes vocabulary
    assert page.locator("fieldset.tag-group legend").all_inner_texts()[0].startswith("colour (one of")
    sync_api.expect(page.locator("#loss-svg polyline")).to_have_count(2)
    sync_api.expect(page.locator("#history-label")).to_have_text("step 20")
    shot(page, "01-loaded")


def set_tag(page, name, percent):
    page.get_by_label(f"use tag {name}", exact=True).check()
    page.get_by_label(f"weight of {name}", exact=True).fill(str(percent))


def test_2_generates_with_weighted_tags_and_rerolls(page):
    set_tag(page, "red", 60)
    set_tag(page, "star", 100)
    page.get_by_label("seed", exact=True).fill("5")
    page.get_by_label("count", exact=True).fill("8")
    page.click("#generate")
    sync_api.expect(page.locator("#results .card")).to_have_count(8)
    labels = page.locator("#results .card .label").all_inner_texts()
    # the groups the request leaves out (size, background) follow the data, drawn by each seed
    assert labels[0].startswith("seed 5 · ") and "red=0.6" in labels[0] and "star" in labels[0], labels[0]
    assert "background" in labels[0] and labels[7].startswith("seed 12 ")
    assert message(page).is_hidden()
    before = page.locator("#results .card img.sample").nth(1).get_attribute("src")
    page.get_by_label("re-roll seed 6", exact=True).click()
    sync_api.expect(page.locator("#results .card .label").nth(1)).not_to_have_text(labels[1])
    assert page.locator("#results .card img.sample").nth(1).get_attribute("src") != before
    rerolled = page.locator("#results .card .label").nth(1).inner_text()
    assert "red=0.6" in rerolled and "star" in rerolled
    shot(page, "02-generated")


def test_2b_every_control_has_a_name_a_screen_reader_and_a_test_find_it_by(page):
    unnamed = page.evaluate("""() => [...document.querySelectorAll("input, select, button, textarea")]
        .filter((c) => !(c.getAttribute("aria-label") || (c.labels && c.labels.length)
                         || (c.tagName === "BUTTON" && c.textContent.trim() && c.textContent.trim().length > 1)))
        .map((c) => c.outerHTML.slice(0, 120))""")
    assert unnamed == []
    assert page.get_by_label("training step shown").count() == 1 and page.get_by_label("tag to add").count() == 1


def test_3_interpolates_as_a_strip_and_a_slider(page):
    cards = page.locator("#results .card")
    assert cards.nth(0).locator(".label").inner_text().startswith("seed 5 ")
    page.get_by_label("interpolate from seed 5", exact=True).click()
    page.get_by_label("interpolate to seed 8", exact=True).click()
    page.get_by_label("steps", exact=True).fill("6")
    page.click("#interpolate")
    strip = page.locator("#strip img")
    sync_api.expect(strip).to_have_count(6)
    sources = [pixels(strip.nth(i).get_attribute("src")) for i in range(6)]
    assert all(not np.array_equal(a, b) for a, b in zip(sources, sources[1:]))  # every step moves
    page.locator("#interp-t").fill("0.5")
    sync_api.expect(page.locator("#interp-view p")).to_contain_text("t 0.50")
    page.locator("#interp-t").fill("1")
    sync_api.expect(page.locator("#interp-view p")).to_contain_text("t 1.00")
    end_a = pixels(page.locator("#results .card img.sample").nth(0).get_attribute("src"))
    end_b = pixels(page.locator("#results .card img.sample").nth(3).get_attribute("src"))
    assert np.array_equal(pixels(page.locator("#interp-view img").get_attribute("src")), end_b)
    assert np.array_equal(sources[0], end_a) and np.array_equal(sources[-1], end_b)
    shot(page, "03-interpolated")


def test_4_downloaded_png_regenerates_from_its_recipe(page, tmp_path):
    with page.expect_download() as info:
        page.locator("#results .card .download").nth(2).click()
    downloaded = tmp_path / info.value.suggested_filename
    info.value.save_as(downloaded)
    assert downloaded.name.endswith("seed7.png")
    recipe = json.loads(Image.open(downloaded).text["ganforge-recipe"])
    assert recipe["request"]["condition"] == {"tags": {"red": 0.6, "star": 1.0}}
    assert recipe["index"] == 2 and recipe["request"]["seed"] == 5 and len(recipe["generator_sha256"]) == 64
    again = tmp_path / "again.png"
    assert main(["sample", "--recipe", str(downloaded), "--out", str(again)]) == 0
    assert np.array_equal(np.asarray(Image.open(downloaded)), np.asarray(Image.open(again)))


def test_5_nearest_training_images(page):
    page.locator("#results .card .nearest-button").first.click()
    sync_api.expect(page.locator("#nearest figure")).to_have_count(7)  # the image and its 6 neighbours
    sync_api.expect(page.locator("#nearest .hint")).to_contain_text("median")
    page.locator("#results .card img.sample").first.click()
    sync_api.expect(page.locator("#focus p")).to_contain_text("seed 5")
    shot(page, "04-nearest")


def test_6_bad_input_is_shown_as_a_message(page):
    page.fill("#tag-filter", "rde")
    page.click("#tag-add")
    page.click("#generate")
    sync_api.expect(message(page)).to_contain_text("unknown tag 'rde'")
    sync_api.expect(message(page)).to_contain_text("red")
    shot(page, "05-bad-tag")
    page.locator(".tag-row[data-tag='rde'] .tag-check").uncheck()
    page.fill("#count", "500")
    page.click("#generate")
    sync_api.expect(message(page)).to_have_text("count must be from 1 to 64, got 500")
    page.fill("#count", "4")
    page.click("#generate")
    sync_api.expect(message(page)).to_be_hidden()
    sync_api.expect(page.locator("#results .card")).to_have_count(4)


def test_7_class_conditional_two_stage_run(page):
    page.select_option("#run-select", "class-stacked")
    sync_api.expect(page.locator("#run-info")).to_contain_text("condition: class, two stages")
    assert page.locator("#condition-tags").is_hidden() and page.locator("#condition-class").is_visible()
    page.select_option("#class-select", "star")
    page.fill("#seed", "0")
    page.click("#generate")
    sync_api.expect(page.locator("#results .card")).to_have_count(4)
    assert page.locator("#results .card .label").all_inner_texts() == [f"seed {i} · star" for i in range(4)]
    low = pixels(page.locator("#results .card img.stage1").first.get_attribute("src"))
    high = pixels(page.locator("#results .card img.sample").first.get_attribute("src"))
    assert low.shape == (32, 32, 3) and high.shape == (64, 64, 3)
    shot(page, "06-two-stage-class")


def test_8_a_projection_is_walked_from_and_checked_against_the_training_data(page):
    page.select_option("#run-select", "run")
    sync_api.expect(page.locator("#projection-list .card")).to_have_count(1)
    assert page.get_by_alt_text("picture of projection 0", exact=True).is_visible()
    reconstruction = pixels(page.get_by_alt_text("reconstruction of projection 0", exact=True).get_attribute("src"))
    page.fill("#seed", "0")
    page.fill("#count", "4")
    page.click("#generate")
    sync_api.expect(page.locator("#results .card")).to_have_count(4)
    page.get_by_label("interpolate from projection 0", exact=True).click()
    page.get_by_label("interpolate to seed 2", exact=True).click()
    sync_api.expect(page.locator("#end-a")).to_contain_text("projection 0")
    page.get_by_label("steps", exact=True).fill("4")
    page.click("#interpolate")
    strip = page.locator("#strip img")
    sync_api.expect(strip).to_have_count(4)
    assert message(page).is_hidden()
    first = pixels(strip.nth(0).get_attribute("src")).astype(int)
    assert np.abs(first - reconstruction.astype(int)).max() <= 1
    last = pixels(strip.nth(3).get_attribute("src")).astype(int)  # seed 2's image, from a batch of another size
    seed_2 = pixels(page.locator("#results .card img.sample").nth(2).get_attribute("src")).astype(int)
    assert np.abs(last - seed_2).max() <= 1
    page.get_by_label("nearest training images of projection 0", exact=True).click()
    sync_api.expect(page.locator("#nearest figure")).to_have_count(7)
    shot(page, "07-projection")
