"""ganforge serve's API without a browser: input checks, per-seed images that tabs cannot mix, recipes
that regenerate exactly, every kind of run (unconditional, class, tags, text, two-stage), and a small
load test with concurrent clients."""
import base64
import io
import json
import shutil
import threading
import urllib.error
import urllib.request

import numpy as np
import pytest
import torch
from PIL import Image

from ganforge.cli import main
from ganforge.config import from_dict
from ganforge.models.latent import seeded_draw, slerp
from ganforge.report.grids import to_uint8
from ganforge.run import load_run
from ganforge.serve.recipe import KEY, make_recipe, regenerate
from ganforge.serve.render import Explorer
from ganforge.serve.request import parse_request
from ganforge.training.trainer import train
from serve_helpers import projection_of, running_server, tag_run

RED_STAR = {"tags": {"red": 0.6, "star": 1}}


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    with running_server([tag_run(tmp_path_factory)]) as (server, url):
        yield server, url


def call(url, path, body=None, raw: bytes | None = None):
    """(status, decoded JSON) of a GET (body None) or POST."""
    data = raw if raw is not None else None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url + path, data, {"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def pixels(data_url):
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(data_url.split(",", 1)[1]))))


def generate(url, **body):
    status, data = call(url, "/api/generate", {"run": "run", **body})
    assert status == 200, data
    return data


@pytest.mark.parametrize("body, message", [
    ({"count": 0}, "count must be from 1 to 64, got 0"),
    ({"count": 65}, "count must be from 1 to 64, got 65"),
    ({"seed": -1}, "seed must be from 0 to"),
    ({"seed": 1.5}, "seed must be a whole number"),
    ({"seed": "3"}, "seed must be a whole number"),
    ({"psi": float("nan")}, "psi (truncation ψ) must be a number from 0 to 2, got nan"),
    ({"psi": 3}, "psi (truncation ψ) must be from 0 to 2, got 3"),
    ({"condition": {"tags": {"rde": 1}}}, "unknown tag 'rde'; closest known tags: red"),
    ({"condition": {"tags": {"red": -0.5, "star": 1}}}, "weight of 'red' is -0.5; weights after '=' must be in [0, 1]"),
    ({"condition": {"tags": {"red": 1.5}}}, "weight of 'red' is 1.5; weights after '=' must be in [0, 1]"),
    ({"condition": {"tags": {"red": "lots"}}}, "the weight of tag 'red' must be a number, got 'lots'"),
    ({"condition": {"tags": {"red": 0}}}, "gives no tag a weight above 0"),
    ({"condition": {"tags": {"../../etc/passwd": 1}}}, "unknown tag"),
    ({"condition": {"class": "star"}}, "was trained with condition=tags; ask with tags, not class"),
    ({"condition": {"tags": {"red": 1}, "text": "x"}}, "condition must be null or one of"),
    ({"path": "/etc/passwd"}, "unknown field(s) path"),
    ({"interpolate": {"seed": 2, "ts": [0, 1.5]}}, "each interpolate.ts position must be from 0 to 1, got 1.5"),
    ({"interpolate": {"seed": 2, "ts": []}}, "interpolate.ts must be a list of 1 to 64"),
])
def test_bad_input_is_a_400_naming_the_field(served, body, message):
    status, data = call(served[1], "/api/generate", {"run": "run", **body})
    assert status == 400 and message in data["error"] and "\n" not in data["error"]


def test_no_request_names_a_file(served):
    url = served[1]
    assert call(url, "/api/generate", {"run": "../run", "seed": 0})[0] == 404
    assert call(url, "/api/generate", {"run": "/tmp", "seed": 0})[0] == 404
    for path in ("/static/../run.py", "/static/%2e%2e/server.py", "/api/runs/..", "/api/runs/run/samples/..%2fconfig.yaml",
                 "/api/runs/run/samples/7", "/etc/passwd"):
        status, data = call(url, path)
        assert status == 404 and "error" in data, path
    rebound = urllib.request.Request(url + "/api/runs", headers={"Host": f"evil.example:{served[0].server_address[1]}"})
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(rebound)
    assert refused.value.code == 403 and "answers requests to 127.0.0.1:" in json.loads(refused.value.read())["error"]
    assert call(url, "/api/generate", raw=b"{not json")[0] == 400
    status, data = call(url, "/api/generate", raw=b"[1, 2]")
    assert status == 400 and "JSON object" in data["error"]


def test_each_image_belongs_to_its_seed(served):
    url = served[1]
    batch = generate(url, seed=10, count=6, psi=0.8, condition=RED_STAR)
    alone = generate(url, seed=13, count=1, psi=0.8, condition=RED_STAR)
    assert np.array_equal(pixels(batch["images"][3]["png"]), pixels(alone["images"][0]["png"]))
    assert not np.array_equal(pixels(batch["images"][0]["png"]), pixels(batch["images"][1]["png"]))
    labels = [image["label"] for image in batch["images"]]
    # the groups RED_STAR leaves out (size, background) follow the data, drawn by each seed
    assert all("red=0.6" in label and "star" in label and "background" in label for label in labels), labels
    assert labels[3] == alone["images"][0]["label"] and len(set(labels)) > 1
    drawn = generate(url, seed=10, count=6)  # no condition: drawn like the training data's, per seed
    assert len({image["label"] for image in drawn["images"]}) > 1


def test_truncation_pulls_towards_the_mean_image(served):
    url = served[1]
    whole = {"tags": {"red": 0.6, "star": 1, "small": 1, "yellow background": 1}}  # every group named
    at_zero = [pixels(generate(url, seed=s, psi=0, condition=whole)["images"][0]["png"]) for s in (1, 2)]
    assert np.array_equal(*at_zero)  # ψ = 0: every seed gives the condition's mean image
    full = [pixels(generate(url, seed=s, psi=1, condition=RED_STAR)["images"][0]["png"]) for s in (1, 2)]
    assert not np.array_equal(*full)


def test_interpolation_ends_are_the_endpoints(served):
    url = served[1]
    blue = {"tags": {"blue": 1, "circle": 1}}
    strip = generate(url, seed=3, condition=RED_STAR, interpolate={"seed": 9, "condition": blue, "ts": [0, 0.5, 1]})
    a = generate(url, seed=3, condition=RED_STAR)["images"][0]
    b = generate(url, seed=9, condition=blue)["images"][0]
    assert np.array_equal(pixels(strip["images"][0]["png"]), pixels(a["png"]))
    assert np.array_equal(pixels(strip["images"][2]["png"]), pixels(b["png"]))
    halves = strip["images"][1]["label"].split(" + ")  # each end's request, its other groups from the data
    assert halves[0].startswith("0.50·(") and "red=0.6" in halves[0] and "star" in halves[0], halves
    assert halves[1].startswith("0.50·(") and "blue, circle" in halves[1], halves


def test_slerp_keeps_the_norm_of_equal_norm_ends():
    a, b = torch.tensor([[3.0, 0.0]]), torch.tensor([[0.0, 3.0]])
    middle = slerp(a, b, torch.tensor([0.5]))
    assert torch.allclose(middle.norm(), torch.tensor(3.0))
    assert torch.allclose(middle, torch.tensor([[2.1213, 2.1213]]), atol=1e-4)
    same = slerp(a, a, torch.tensor([0.3]))  # parallel ends: a straight line, no division by zero
    assert torch.equal(same, a)


def test_concurrent_tabs_get_their_own_images(served):
    url = served[1]
    asks = [{"seed": 100 + i, "count": 3, "psi": 0.5 + i / 20,
             "condition": RED_STAR if i % 2 else {"tags": {"blue": 1, "square": 0.5}}} for i in range(8)]
    serial = [[pixels(image["png"]) for image in generate(url, **ask)["images"]] for ask in asks]
    results, errors = [None] * 32, []

    def client(k):
        try:
            for round_ in range(4):
                i = (k + round_) % 8
                results[k * 4 + round_] = (i, [pixels(image["png"]) for image in generate(url, **asks[i])["images"]])
        except Exception as err:  # reported below: an assertion in a thread would be lost
            errors.append(err)

    threads = [threading.Thread(target=client, args=(k,)) for k in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert not errors and all(results)
    for i, images in results:
        assert all(np.array_equal(x, y) for x, y in zip(images, serial[i]))


def test_run_details_history_and_sample_grids(served):
    url = served[1]
    status, run = call(url, "/api/runs/run")
    assert status == 200 and run["condition"] == "tags" and "red" in run["names"] and run["step"] == 20
    assert [row["step"] for row in run["losses"]] == [5, 10, 15, 20] and run["sample_steps"] == [0, 1, 2, 5, 10, 20]
    with urllib.request.urlopen(url + "/api/runs/run/samples/10") as response:
        assert response.headers["Content-Type"] == "image/png" and response.read()[:4] == b"\x89PNG"
    with urllib.request.urlopen(url + "/") as response:
        page = response.read().decode()
    assert "/static/app.js" in page and "http" not in page.replace("http-equiv", "")  # nothing from elsewhere


def test_history_with_non_finite_values_is_still_json(tmp_path):
    from ganforge.serve.nearest import FeatureSpace
    from ganforge.serve.server import ServedRun

    served = ServedRun("x", tiny_run(tmp_path, "none").run.path, FeatureSpace())
    served.run.history += [{"step": 3, "d_loss": float("nan"), "g_loss": 1.0},
                           {"step": 3, "eval": {"fid": float("inf"), "kid": 0.5, "features": "inception"}}]
    details = json.loads(json.dumps(served.details(), allow_nan=False))
    assert all(row["step"] != 3 for row in details["losses"])
    assert details["evals"] == [{"step": 3, "fid": None, "kid": 0.5, "features": "inception"}]


def test_nearest_training_images(served):
    url = served[1]
    request = generate(url, seed=4, count=2, condition=RED_STAR)["request"]
    status, found = call(url, "/api/nearest", {"run": "run", "request": request, "index": 1, "k": 4})
    assert status == 200 and len(found["images"]) == 4 and found["distances"] == sorted(found["distances"])
    assert found["yardstick"] > 0 and pixels(found["images"][0]).shape == (32, 32, 3) and found["features"] == "pixels"
    generated = pixels(generate(url, seed=5, condition=RED_STAR)["images"][0]["png"]).astype(np.float64)
    rms = [np.sqrt(((pixels(image) - generated) ** 2).mean()) for image in found["images"]]
    assert np.allclose(rms, found["distances"], atol=1e-2)  # what the page reports is the RMS pixel distance
    status, data = call(url, "/api/nearest", {"run": "run", "request": request, "index": 2})
    assert status == 400 and "index must be from 0 to 1, got 2" in data["error"]


def save_download(data, index, path):
    path.write_bytes(base64.b64decode(data["images"][index]["png"].split(",", 1)[1]))
    return path


def test_recipe_regenerates_exactly_and_refuses_other_weights(served, tmp_path, capsys):
    url = served[1]
    data = generate(url, seed=21, count=5, psi=0.7, condition=RED_STAR,
                    interpolate={"seed": 2, "condition": {"tags": {"blue": 1}}, "ts": [0, 0.2, 0.4, 0.6, 1]})
    image = save_download(data, 3, tmp_path / "image.png")
    assert main(["sample", "--recipe", str(image)]) == 0
    again = tmp_path / "image-regenerated.png"
    assert np.array_equal(np.asarray(Image.open(image)), np.asarray(Image.open(again)))
    assert "regenerated image 3 of seed 21" in capsys.readouterr().out
    moved = tmp_path / "moved-run"
    shutil.copytree(served[0].runs["run"].run.path, moved)
    assert main(["sample", "--recipe", str(image), "--run", str(moved), "--out", str(tmp_path / "moved.png")]) == 0
    assert np.array_equal(np.asarray(Image.open(image)), np.asarray(Image.open(tmp_path / "moved.png")))

    recipe = json.loads(Image.open(image).text[KEY])
    recipe["generator_sha256"] = "0" * 64
    info = __import__("PIL.PngImagePlugin", fromlist=["PngInfo"]).PngInfo()
    info.add_text(KEY, json.dumps(recipe))
    Image.open(image).save(tmp_path / "tampered.png", pnginfo=info)
    assert main(["sample", "--recipe", str(tmp_path / "tampered.png"), "--out", str(tmp_path / "x.png")]) == 2
    err = capsys.readouterr().err
    assert "differ from the recipe's" in err and err.count("\n") == 1 and not (tmp_path / "x.png").exists()

    Image.new("RGB", (4, 4)).save(tmp_path / "plain.png")
    assert main(["sample", "--recipe", str(tmp_path / "plain.png")]) == 2
    assert "carries no ganforge recipe" in capsys.readouterr().err
    assert main(["sample", "--recipe", str(image), "--tags", "red"]) == 2
    assert "drop --tags" in capsys.readouterr().err
    assert main(["sample"]) == 2
    assert "give the run directory to sample from" in capsys.readouterr().err


def test_a_batchnorm_folder_run_serves_and_regenerates(tmp_path, capsys):
    """folder64 (every `train --data FOLDER` run) has BatchNorm in G, whose 0-dim num_batches_tracked
    the weights digest must hash too."""
    folder = tmp_path / "pictures"
    folder.mkdir()
    for i in range(8):
        Image.new("RGB", (64, 64), (30 * i, 255 - 30 * i, 90)).save(folder / f"{i}.png")
    run = tmp_path / "run"
    assert main(["train", "--data", str(folder), "--preset", "folder64", "--steps", "2", "--batch-size", "8",
                 "--set", "model.width=8", "--set", f"dataset.cache_dir={tmp_path / 'cache'}", "--quiet",
                 "--out", str(run)]) == 0
    assert any(key.endswith("num_batches_tracked") for key in load_run(run).sampling_generator.state_dict())
    with running_server([run]) as (_, url):
        data = generate(url, seed=3, count=2)
    image = save_download(data, 1, tmp_path / "image.png")
    assert main(["sample", "--recipe", str(image), "--out", str(tmp_path / "again.png")]) == 0
    assert np.array_equal(np.asarray(Image.open(image)), np.asarray(Image.open(tmp_path / "again.png")))


def test_load_eight_clients(served):
    """A small version of benchmarks/serve_load.py: 8 concurrent clients, 160 requests, no errors."""
    url = served[1]
    failures = []

    def client(k):
        for i in range(20):
            status, data = call(url, "/api/generate", {"run": "run", "seed": k * 100 + i, "count": 2})
            if status != 200 or len(data["images"]) != 2:
                failures.append((status, data))

    threads = [threading.Thread(target=client, args=(k,)) for k in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert failures == [] and not any(thread.is_alive() for thread in threads)


def tiny_run(tmp_path, condition, resolution=32, **model):
    cfg = from_dict({"data": "shapes", "resolution": resolution, "steps": 2, "batch_size": 8, "dataset": {"size": 16},
                     "condition": condition, "out": str(tmp_path / condition), "train": {"quiet": True},
                     "model": {"width": 8, "z_dim": 16, **model}})
    train(cfg, echo=lambda *a: None)
    return Explorer(load_run(cfg.out))


def test_unconditional_and_class_runs(tmp_path):
    plain = tiny_run(tmp_path, "none")
    rendered = plain.render(parse_request({"seed": 1, "count": 2}))
    assert rendered.images.shape == (2, 3, 32, 32) and rendered.labels == ["", ""] and rendered.stage1 is None
    with pytest.raises(Exception, match="trained without a condition; ask for none"):
        plain.render(parse_request({"seed": 1, "condition": {"tags": {"red": 1}}}))
    classes = tiny_run(tmp_path, "class")
    assert classes.render(parse_request({"seed": 1, "count": 2, "condition": {"class": "star"}})).labels == ["star"] * 2
    with pytest.raises(Exception, match="unknown class 'stra'"):
        classes.render(parse_request({"seed": 1, "condition": {"class": "stra"}}))
    between = classes.render(parse_request({"seed": 1, "condition": {"class": "star"},
                                            "interpolate": {"seed": 2, "condition": {"class": "circle"}, "ts": [0, 1]}}))
    assert between.labels == ["star", "circle"]


def test_two_stage_run_gives_both_stages(tmp_path):
    stacked = tiny_run(tmp_path, "tags", resolution=64, arch="stacked", stage1_resolution=32)
    assert stacked.two_stage
    request = parse_request({"seed": 1, "count": 3, "condition": {"tags": {"red": 1}}})
    rendered = stacked.render(request)
    assert rendered.images.shape == (3, 3, 64, 64) and rendered.stage1.shape == (3, 3, 32, 32)
    G = stacked.generator
    conditions = stacked.run.conditions
    z, red = seeded_draw(2, 16, conditions, conditions.encode("red"))  # seed 2: "red", the rest from the data
    low, high = G.base.stages(torch.cat((z, G.embed(red)), 1))
    close = lambda a, b: (a.int() - b.int()).abs().max() <= 1  # a batch of 1 against one of 3: rounding may differ
    assert close(to_uint8(high)[0], rendered.images[1]) and close(to_uint8(low)[0], rendered.stage1[1])
    for stage, images in ((1, rendered.stage1), (2, rendered.images)):  # each stage's recipe gives that stage back
        recipe = make_recipe(stacked, request.to_dict(), 2, stage)
        assert torch.equal(regenerate(recipe), images[2])


@pytest.mark.slow  # loading the sentence encoder takes 10-20 s here
def test_text_run(tmp_path):
    pytest.importorskip("sentence_transformers", reason="the ganforge[text] extra is not installed")
    texts = tiny_run(tmp_path, "text")
    rendered = texts.render(parse_request({"seed": 1, "count": 2, "condition": {"text": "a small red star"}}))
    assert rendered.images.shape == (2, 3, 32, 32) and all(label for label in rendered.labels)


def test_serve_command_warns_off_loopback_and_names_a_busy_port(tmp_path_factory, monkeypatch, capsys):
    import socket

    import ganforge.serve.server as server_module

    run = tag_run(tmp_path_factory)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert main(["serve", str(run), "--port", str(port)]) == 2
    err = capsys.readouterr().err
    assert f"cannot listen on 127.0.0.1:{port}" in err and "choose another --port" in err and err.count("\n") == 1

    class Bound:  # stands in for the real server: the test must not listen off loopback
        runs, server_address = {"run": None}, ("0.0.0.0", 7860)

        def __init__(self, *args):
            pass

        def serve_forever(self):
            pass

        def server_close(self):
            pass

    monkeypatch.setattr(server_module, "ExplorerServer", Bound)
    assert main(["serve", str(run), "--host", "0.0.0.0"]) == 0
    captured = capsys.readouterr()
    assert "warning: listening on 0.0.0.0" in captured.err and "http://0.0.0.0:7860/" in captured.out


def test_nearest_in_classifier_features(tmp_path_factory, tmp_path, capsys):
    from ganforge.metrics.classifier import ClassifierNet, load_classifier, save_classifier
    from ganforge.serve.nearest import FeatureSpace
    from ganforge.serve.server import ServedRun, nearest

    torch.manual_seed(0)
    path = tmp_path / "clf.safetensors"
    save_classifier(ClassifierNet(["a", "b"], channels=3, input_size=16, widths=(4, 8, 8), feature_dim=16).eval(), path)
    served = ServedRun("run", tag_run(tmp_path_factory), FeatureSpace(f"classifier:{path}"))
    request = {"seed": 1, "count": 1, "condition": RED_STAR}
    found = nearest(served, {"run": "run", "request": request, "k": 3})
    assert found["features"] == f"classifier:{path}" and found["distances"] == sorted(found["distances"])
    network = load_classifier(path)
    with torch.no_grad():
        generated = network(served.explorer.render(parse_request(request)).images)[0]
        neighbours = network(torch.from_numpy(np.stack([pixels(x) for x in found["images"]])).permute(0, 3, 1, 2))[0]
    assert torch.allclose(torch.cdist(generated, neighbours)[0], torch.tensor(found["distances"]), atol=1e-2)

    assert main(["serve", str(tag_run(tmp_path_factory)), "--features", "bogus"]) == 2
    err = capsys.readouterr().err
    assert "bogus" in err and err.count("\n") == 1


# -- projections (`ganforge serve --projection DIR`) ------------------------------------------------------
@pytest.fixture(scope="module")
def projected(tmp_path_factory):
    run = tag_run(tmp_path_factory)
    root = tmp_path_factory.mktemp("projections")
    folders = [projection_of(run, root / f"p{i}", seed=i) for i in range(2)]
    with running_server([run], projections=folders) as (server, url):
        yield server, url, folders


def png_pixels(path):
    return np.asarray(Image.open(path)).astype(int)


def test_the_run_lists_its_projections(projected):
    status, details = call(projected[1], "/api/runs/run")
    assert status == 200
    listed = details["projections"]
    assert [(p["id"], p["name"]) for p in listed] == [(0, "proj"), (1, "proj")]
    for entry, folder in zip(listed, projected[2]):
        redrawn = pixels(entry["reconstruction"]).astype(int)
        assert np.abs(redrawn - png_pixels(folder / "reconstruction.png")).max() <= 1
        assert pixels(entry["picture"]).shape == (32, 32, 3) and entry["label"]  # a tag run: its held condition


def test_a_walk_from_a_projection_starts_at_its_reconstruction(projected, tmp_path, capsys):
    url, folders = projected[1], projected[2]
    data = generate(url, projection=0, interpolate={"seed": 3, "ts": [0, 0.5, 1]})
    assert data["request"] == {"projection": 0, "count": 3, "psi": 1.0,
                               "interpolate": {"seed": 3, "condition": None, "ts": [0.0, 0.5, 1.0]}}
    first, last = (pixels(data["images"][i]["png"]).astype(int) for i in (0, 2))
    assert np.abs(first - png_pixels(folders[0] / "reconstruction.png")).max() <= 1
    assert np.array_equal(last, pixels(generate(url, seed=3)["images"][0]["png"]))
    to_other = generate(url, seed=3, interpolate={"projection": 1, "ts": [0, 1]})
    assert np.abs(pixels(to_other["images"][1]["png"]).astype(int)
                  - png_pixels(folders[1] / "reconstruction.png")).max() <= 1

    # its z is not in the request, so the PNG carries no recipe, and says so
    image = save_download(data, 1, tmp_path / "walk.png")
    assert KEY not in Image.open(image).text
    assert main(["sample", "--recipe", str(image)]) == 2
    err = capsys.readouterr().err
    assert "carries no recipe: it was made from a projection" in err and err.count("\n") == 1


def test_nearest_training_images_of_a_projection(projected):
    status, found = call(projected[1], "/api/nearest", {"run": "run", "request": {"projection": 1}, "k": 3})
    assert status == 200 and len(found["images"]) == 3 and found["distances"] == sorted(found["distances"])


@pytest.mark.parametrize("body, message", [
    ({"projection": 2}, "run 'run' has no projection 2; its projections: 0 to 1"),
    ({"projection": -1}, "projection must be from 0 to"),
    ({"projection": "0"}, "projection must be a whole number"),
    ({"projection": "../../etc/passwd"}, "projection must be a whole number"),
    ({"projection": 0, "seed": 1}, "projection replaces seed and condition"),
    ({"projection": 0, "count": 2}, "a projection is one image: count must be 1"),
    ({"seed": 1, "interpolate": {"projection": 7, "ts": [0, 1]}}, "run 'run' has no projection 7"),
    ({"seed": 1, "interpolate": {"projection": 0, "condition": {"tags": {"red": 1}}, "ts": [0]}},
     "interpolate.projection replaces interpolate.seed and interpolate.condition"),
])
def test_a_bad_projection_is_a_400_naming_it(projected, body, message):
    status, data = call(projected[1], "/api/generate", {"run": "run", **body})
    assert status == 400 and message in data["error"] and "\n" not in data["error"]


def test_a_projection_of_other_weights_is_refused_at_start_up(projected, tmp_path, capsys):
    other = tiny_run(tmp_path, "tags").run.path
    assert main(["serve", str(other), "--port", "0", "--projection", str(projected[2][0])]) == 2
    err = capsys.readouterr().err
    assert "was made with run" in err and "no served run has those weights" in err and err.count("\n") == 1
    assert main(["serve", str(other), "--port", "0", "--projection", str(tmp_path)]) == 2
    assert "holds no latent.safetensors" in capsys.readouterr().err
