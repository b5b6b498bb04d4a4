"""The journey a user takes with the folder default recipe: inspect a folder, train on it with no
--preset (so folder64), sample a grid, evaluate FID with the real Inception weights, and serve the run
to a real headless Chromium that generates once. Skips the eval without weights, the page without Chromium."""
import os
import shutil
import re
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from PIL import Image, ImageDraw

from ganforge.cli import main
from ganforge.metrics.errors import WeightsError
from ganforge.metrics.weights_file import find_inception_weights

CHROMIUM = os.environ.get("GANFORGE_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"]


def shapes_folder(folder: Path, n: int = 64) -> Path:
    folder.mkdir()
    for i in range(n):
        image = Image.new("RGB", (64, 64), "white")
        draw = ImageDraw.Draw(image)
        x = 6 + i % 28
        (draw.ellipse if i % 2 else draw.rectangle)([x, x, x + 24, x + 20], fill=((i * 37) % 256, (i * 91) % 256, (i * 53) % 256))
        image.save(folder / f"{i:03d}.png")
    return folder


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_folder_default_journey(tmp_path, monkeypatch, capsys):
    try:  # the real weights where set-up put them, found before the cache moves to tmp_path
        monkeypatch.setenv("GANFORGE_INCEPTION_WEIGHTS", str(find_inception_weights()))
        weights = True
    except WeightsError:
        weights = False
    monkeypatch.setenv("GANFORGE_CACHE", str(tmp_path / "cache"))  # decoded-image caches
    folder = shapes_folder(tmp_path / "pictures")
    run = tmp_path / "run"

    assert main(["data", "inspect", str(folder)]) == 0
    assert "64" in capsys.readouterr().out

    assert main(["train", "--data", str(folder), "--steps", "10", "--out", str(run), "--quiet",
                 "--set", "train.sample_every=5", "--set", "train.checkpoint_every=10"]) == 0
    assert "training with --preset folder64" in capsys.readouterr().out
    assert (run / "checkpoints" / "step-000010").is_dir() and (run / "config.yaml").stat().st_size > 0

    grid = tmp_path / "grid.png"
    assert main(["sample", str(run), "--n", "16", "--out", str(grid)]) == 0
    assert grid.stat().st_size > 0 and Image.open(grid).size[0] >= 4 * 64

    if weights:
        assert main(["eval", str(run), "--n", "50", "--n-ref", "50"]) == 0
        assert "fid" in capsys.readouterr().out.lower()

    if not CHROMIUM:
        pytest.skip("no Chromium binary for the page step (apt-get install chromium, or set GANFORGE_CHROMIUM)")
    sync_api = pytest.importorskip("playwright.sync_api")
    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "ganforge.cli", "serve", str(run), "--port", str(port)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(100):  # the server loads the checkpoint before it listens
            try:
                urllib.request.urlopen(url, timeout=1)
                break
            except OSError:
                time.sleep(0.2)
        with sync_api.sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS, headless=True)
            page = browser.new_page()
            errors = []
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.on("response", lambda r: errors.append(f"{r.status} {r.url}") if r.status >= 400 else None)
            page.set_default_timeout(20_000)
            page.goto(url)
            page.click("#generate")
            sync_api.expect(page.locator("#results .card img.sample").first).to_have_attribute("src", re.compile("^data:image/png"))
            browser.close()
        assert errors == []
    finally:
        server.terminate()
        _, stderr = server.communicate(timeout=10)
    assert "Traceback" not in stderr
