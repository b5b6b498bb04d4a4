"""The measured studies of studies/*.yaml, end to end on tiny budgets: the plan from the study config,
members trained in parallel, the final evaluation, and the report beside the published figures."""
import json
from pathlib import Path

import pytest
import yaml

from ganforge.cli import main
from ganforge.rundir import RunDir

STUDIES = Path(__file__).resolve().parents[1] / "studies"
MNIST = Path(__file__).resolve().parents[2] / "shared" / "data" / "mnist"


def member_eval(root, name: str) -> dict:
    """The study's evaluation of a member: the last eval row its run directory keeps."""
    return RunDir(root / "runs" / name).eval_results()[-1]["eval"]


def report_table(root: Path, first_header: str) -> list[list[str]]:
    """The report.md table whose first header cell is `first_header`: header row, then rows."""
    table: list[list[str]] = []
    for line in (root / "report.md").read_text().splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split(" | ")] if line.startswith("|") else None
        if table and cells is None:
            break
        if cells and (table or cells[0] == first_header) and set(line) - set("|- "):
            table.append(cells)
    return table


@pytest.mark.parametrize("config", sorted(STUDIES.glob("*.yaml")), ids=lambda p: p.stem)
def test_study_configs_leave_each_objectives_defaults_alone(config):
    """The objective is what a study varies: a study config that fixed a learning rate or n_critic would
    give every objective the same one."""
    data = yaml.safe_load(config.read_text())
    assert not data.get("optim") and not data.get("loss") and "objective" not in data
    assert main(["config", "--config", str(config)]) == 0


@pytest.mark.slow
def test_short_ring_study_reports_beside_the_published_figures(tmp_path):
    root = tmp_path / "ring8"
    assert main(["compare", "--config", str(STUDIES / "mode-collapse-ring8.yaml"), "--set", "steps=30",
                 "--set", "train.log_every=10", "--set", "train.sample_every=10", "--vary", "objective=dcgan,wgan-gp",
                 "--seeds", "2", "--n", "1000", "--jobs", "2", "--quiet", "--out", str(root)]) == 0
    records = {p.stem: json.loads(p.read_text()) for p in (root / "members").glob("*.json")}
    assert sorted(records) == ["objective=dcgan-seed0", "objective=dcgan-seed1", "objective=wgan-gp-seed0",
                               "objective=wgan-gp-seed1"]
    assert all(r["state"] == "evaluated" and r["step"] == 30 for r in records.values())
    text = (root / "report.md").read_text()
    assert "## Published figures: 8-Gaussian ring" in text
    table = report_table(root, "method")
    assert table[0] == ["method", "source", "modes", "high quality (%)"]
    assert ["GAN", "VEEGAN paper", "1", "99.3"] in table and ["Unrolled GAN", "VEEGAN paper", "7.6", "35.6"] in table
    ours = {row[0]: row for row in table if row[1].startswith("this study")}
    assert sorted(ours) == ["objective=dcgan", "objective=wgan-gp"]
    modes = [member_eval(root, f"objective=dcgan-seed{s}")["modes"] for s in (0, 1)]
    assert ours["objective=dcgan"][2].split(" ± ")[0] == f"{sum(modes) / 2:.4g}"


@pytest.mark.slow
@pytest.mark.skipif(not MNIST.is_dir(), reason=f"no MNIST files in {MNIST}")
def test_stacked_mnist_study_end_to_end(tmp_path):
    """A quick digit classifier, then the four classic objectives on Stacked MNIST for a few steps:
    each member's modes (of 1,000) and KL, and the table beside the published figures."""
    clf = tmp_path / "clf.safetensors"
    assert main(["train-classifier", "--data", f"mnist:{MNIST}", "--out", str(clf), "--train-size", "1000",
                 "--holdout", "500", "--epochs", "1", "--quiet"]) == 0
    root = tmp_path / "stacked"
    assert main(["compare", "--config", str(STUDIES / "stacked-mnist.yaml"), "--data", f"stacked-mnist:{MNIST}",
                 "--steps", "3", "--set", "model.width=4", "--set", "dataset.size=256", "--batch-size", "16",
                 "--set", "train.log_every=1", "--set", "optim.critic_burst=0",
                 "--vary", "objective=dcgan,wgan,wgan-gp,lsgan", "--features", f"classifier:{clf}", "--n", "500",
                 "--jobs", "2", "--quiet", "--out", str(root)]) == 0
    plan = json.loads((root / "study.json").read_text())
    assert plan["metrics"] == ["modes"] and plan["features"] == f"classifier:{clf}"
    for objective in ("dcgan", "wgan", "wgan-gp", "lsgan"):
        result = json.loads((root / "members" / f"objective={objective}-seed0.json").read_text())
        assert result["state"] == "evaluated" and result["step"] == 3
        result = member_eval(root, f"objective={objective}-seed0")
        assert 1 <= result["modes"] <= 500 and result["modes_kl"] > 0
    table = report_table(root, "method")
    assert table[0] == ["method", "source", "modes", "KL"]
    assert ["PacDCGAN2", "PacGAN paper", "1000", "0.06"] in table and ["WGAN", "GDPP paper", "961", "0.14"] in table


EMOJI = Path(__file__).resolve().parents[2] / "shared" / "data" / "emoji"


@pytest.mark.slow
@pytest.mark.skipif(not EMOJI.is_dir(), reason=f"no emoji folder at {EMOJI}")
def test_emoji_objectives_study_with_its_fully_connected_floor(tmp_path):
    """The emoji study's plan as the README runs it (objectives + --also the mlp floor, time budget), on a
    budget of seconds and classifier features instead of Inception."""
    from ganforge.config import DatasetOptions
    from ganforge.data import load_dataset
    from ganforge.metrics.classifier import save_classifier, train_classifier

    clf = tmp_path / "clf.safetensors"
    classifier, _ = train_classifier(load_dataset("shapes", 32, 3, DatasetOptions(size=300)), holdout=100, epochs=1,
                                     progress=False)
    save_classifier(classifier, clf)
    root = tmp_path / "emoji"
    assert main(["compare", "--config", str(STUDIES / "emoji-objectives.yaml"), "--data", str(EMOJI),
                 "--set", "model.width=4", "--set", "model.mlp_hidden=16", "--batch-size", "8",
                 "--vary", "objective=dcgan,hinge", "--also", "model.arch=mlp; objective=dcgan", "--minutes", "0.01",
                 "--metrics", "fid", "--n", "50", "--features", f"classifier:{clf}", "--quiet", "--out", str(root)]) == 0
    records = {p.stem: json.loads(p.read_text()) for p in (root / "members").glob("*.json")}
    assert sorted(records) == ["model.arch=mlp,objective=dcgan-seed0", "objective=dcgan-seed0", "objective=hinge-seed0"]
    assert all(r["state"] == "evaluated" and r["stopped_by"] == "time" and member_eval(root, name)["fid"] > 0
               for name, r in records.items())
    floor = yaml.safe_load((root / "runs" / "model.arch=mlp,objective=dcgan-seed0" / "config.yaml").read_text())
    assert floor["model"]["arch"] == "mlp" and floor["resolution"] == 64
    assert "model.arch=mlp, objective=dcgan" in (root / "report.md").read_text()
