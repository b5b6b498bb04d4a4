"""`ganforge compare`: studies of variants × seeds on ring8 with tiny MLPs, their records and their report."""
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml

from ganforge.cli import main
from ganforge.config import build_config
from ganforge.errors import ConfigError
from ganforge.metrics import InceptionV3, evaluate
from ganforge.metrics import weights
from ganforge.study import plan, runner
from ganforge.study import figures
from ganforge.study.figures import _changing_keys
from ganforge.study.writeup import _matched_steps
from ganforge.study.plan import Study, load_study, plan_study
from ganforge.study.results import Summary, best_of, collect, fmt_summary, lead_beyond_noise
from ganforge.checkpoint import list_checkpoints
from ganforge.rundir import RunDir

TINY = ["--data", "ring8", "--set", "batch_size=64", "--set", "model.mlp_hidden=32", "--set", "train.log_every=10",
        "--quiet"]
N = 1000


def tables(markdown: str) -> dict[str, list[list[str]]]:
    """Markdown tables by the text of their first header cell: header row first, then the rows."""
    found, current = {}, None
    for line in markdown.splitlines():
        if not line.startswith("|"):
            current = None
            continue
        cells = [c.strip() for c in line.strip().strip("|").split(" | ")]
        if current is None:
            current = found.setdefault(cells[0], [])
            if current:  # a second table with the same first header: keep both apart
                current = found.setdefault(cells[0] + "#2", [])
        if set(line) - set("|- "):
            current.append(cells)
    return found


def column(table: list[list[str]], first_cell: str, header: str) -> str:
    row = next(r for r in table[1:] if r[0] == first_cell)
    return row[table[0].index(header)]


def record(root, name: str) -> dict:
    return json.loads((root / "members" / f"{name}.json").read_text())


def member_eval(root, name: str) -> dict:
    """The study's evaluation of a member: the last eval row its run directory keeps."""
    return RunDir(root / "runs" / name).eval_results()[-1]["eval"]


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    """2 objectives × 2 seeds, 60 steps, evaluating during training too (eval rows)."""
    root = tmp_path_factory.mktemp("compare") / "study"
    assert main(["compare", *TINY, "--set", "steps=60", "--set", "train.sample_every=20", "--set", "eval.every=30",
                 "--vary", "objective=dcgan,wgan-gp", "--seeds", "2", "--n", str(N), "--out", str(root)]) == 0
    return root


NAMES = ["objective=dcgan-seed0", "objective=dcgan-seed1", "objective=wgan-gp-seed0", "objective=wgan-gp-seed1"]


# ------------------------------------------------------------------------------------------- the plan


def test_vary_flags_form_a_grid_of_validated_members(tmp_path):
    base = build_config(overrides=[{"data": "ring8", "steps": 5}])
    study = plan_study(tmp_path / "s", base, ["objective=dcgan,lsgan", "optim.lr_d=1e-4,2e-4"], seeds=2)
    members = study.members()
    assert [m.name for m in members[:3]] == ["objective=dcgan,optim.lr_d=1e-4-seed0",
                                             "objective=dcgan,optim.lr_d=1e-4-seed1",
                                             "objective=dcgan,optim.lr_d=2e-4-seed0"]
    assert len(members) == 8 and len({m.name for m in members}) == 8
    assert {(m.config.objective, m.config.optim.lr_d, m.config.seed) for m in members} == {
        (o, lr, s) for o in ("dcgan", "lsgan") for lr in (1e-4, 2e-4) for s in (0, 1)}
    assert all(m.config.steps == 5 and m.run_dir == tmp_path / "s" / "runs" / m.name for m in members)
    assert study.metrics == ["mixture_modes"] and study.n == plan.default_n("auto")  # the 2-D default
    assert plan.default_n("cpu") == 2000  # sized to the device: 10,000 Inception passes take ~10 min on a CPU
    # Seed by seed: every variant's seed 0 trains before any seed 1.
    assert [m.seed for m in study.training_order()] == [0, 0, 0, 0, 1, 1, 1, 1]
    assert not (tmp_path / "s").exists()  # planning writes nothing


def test_a_vary_value_holding_commas_goes_in_brackets(tmp_path):
    base = build_config(overrides=[{"data": "shapes", "resolution": 32, "steps": 5}])
    study = plan_study(tmp_path / "s", base, ["loss.augment=[color,translation],translation,[]"])
    assert [m.config.loss.augment for m in study.members()] == ["color,translation", "translation", ""]
    for bad, message in (("loss.augment=[color,translation", "never closed"),
                         ("loss.augment=[[color]]", "must pair and not nest")):
        with pytest.raises(ConfigError, match=re.escape(message)):
            plan.Vary.parse(bad)


@pytest.mark.parametrize("flags, message", [
    (["--vary", "objective=dcgan,nope"], "member objective=nope-seed0: unknown objective 'nope'"),
    (["--vary", "optim.lr_x=1e-4"], "unknown config key 'optim.lr_x'"),
    (["--vary", "steps=5,abc"], "member steps=abc-seed0: steps must be a int"),
    (["--vary", "model.arch=dcgan"], "builds image networks"),
    (["--vary", "objective"], "needs the form key=value1,value2"),
    (["--vary", "objective=dcgan,,wgan"], "empty value"),
    (["--vary", "objective=dcgan,dcgan"], "lists the value 'dcgan' twice"),
    (["--vary", "seed=1,2"], "use --seeds N"),
    (["--vary", "objective=dcgan", "--vary", "objective=wgan"], "given twice"),
    (["--seeds", "0"], "must be at least 1"),
    (["--metrics", "fid"], "metric 'fid' measures images, and these data are 2-D points: choose from mixture_modes"),
    (["--metrics", "fidd"], "unknown metric 'fidd'"),
    (["--features", "classifier:no-such.safetensors"], "no file no-such.safetensors"),
])
def test_invalid_plans_fail_before_anything_trains(tmp_path, capsys, flags, message):
    out = tmp_path / "study"
    assert main(["compare", *TINY, "--set", "steps=5", *flags, "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1
    assert not out.exists()


def test_default_metrics_fit_the_data_and_features(tmp_path, monkeypatch):
    monkeypatch.setenv("GANFORGE_CACHE", str(tmp_path))
    monkeypatch.delenv("GANFORGE_INCEPTION_WEIGHTS", raising=False)
    assert plan.default_metrics("points", "inception", {"modes": 8}) == ["mixture_modes"]
    assert plan.default_metrics("image", "inception", {}) == ["fid", "kid", "is", "pr"]  # all fail alike
    pool3_only = {k: v for k, v in InceptionV3(pretrained=False).state_dict().items() if not k.startswith("fc.")}
    weights.save_converted(pool3_only, weights.weights_dir() / weights.TORCHSCRIPT.converted_name, {})
    assert plan.default_metrics("image", "inception", {}) == ["fid", "kid", "pr"]  # IS needs the classifier
    assert plan.default_metrics("image", "classifier:c.safetensors", {}) == ["fid", "kid", "is", "coverage"]
    assert plan.default_metrics("image", "classifier:c.safetensors", {"modes": 1000}) == ["modes"]


def test_a_folder_holding_a_study_is_not_planned_over(study, capsys):
    assert main(["compare", *TINY, "--vary", "objective=dcgan", "--out", str(study)]) == 2
    assert f"continue it with --resume {study}" in capsys.readouterr().err


# ------------------------------------------------------------------------------------------- the study


def test_every_member_trains_in_its_own_run_directory_with_the_plan_saved(study):
    plan = json.loads((study / "study.json").read_text())
    assert plan["vary"] == [["objective", ["dcgan", "wgan-gp"]]] and plan["seeds"] == [0, 1]
    assert plan["metrics"] == ["mixture_modes"] and plan["n"] == N and plan["base"]["steps"] == 60
    assert sorted(p.name for p in (study / "runs").iterdir()) == NAMES
    for name in NAMES:
        rec = record(study, name)
        assert rec["state"] == "evaluated" and rec["step"] == 60 and rec["stopped_by"] == "steps"
        assert (study / "runs" / name / "checkpoints" / "step-000060").is_dir()
    saved = yaml.safe_load((study / "runs" / NAMES[3] / "config.yaml").read_text())
    assert (saved["objective"], saved["seed"], saved["steps"]) == ("wgan-gp", 1, 60)


def test_member_table_shows_each_members_own_evaluation(study):
    members = tables((study / "report.md").read_text())["member"]
    for name in NAMES:
        own = evaluate(study / "runs" / name, n=N, seed=0, progress=False)  # a point run's own metric
        assert member_eval(study, name) == own
        assert column(members, name, "modes ↑") in (str(own["modes"]), f"**{own['modes']}** ★")
        assert column(members, name, "high_quality ↑").strip("*★ ") == f"{own['high_quality']:.4g}"


def test_variant_rows_are_mean_and_std_over_seeds(study):
    variants = tables((study / "report.md").read_text())["variant"]
    results = collect(load_study(study))
    for variant, seeds in (("objective=dcgan", NAMES[:2]), ("objective=wgan-gp", NAMES[2:])):
        for metric in ("modes", "high_quality"):
            values = [member_eval(study, name)[metric] for name in seeds]
            mean, std = statistics.fmean(values), statistics.stdev(values)
            summary = next(v for v in results.variants if v.label == variant).metric(metric)
            assert summary.mean == pytest.approx(mean) and summary.count == 2
            assert (summary.std or 0.0) == pytest.approx(std)
            assert column(variants, variant, f"{metric} ↑").strip("*★ ") == fmt_summary(Summary(mean, std, 2))
        assert column(variants, variant, "seeds done") == "2/2"


def test_best_member_and_best_variant_are_marked(study):
    found = tables((study / "report.md").read_text())
    results = collect(load_study(study))
    for metric in ("modes", "high_quality"):
        values = {name: member_eval(study, name)[metric] for name in NAMES}
        best = {n for n, v in values.items() if v == max(values.values())}
        marked = {n for n in NAMES if column(found["member"], n, f"{metric} ↑").endswith("★")}
        assert marked == best
        summaries = {v.label: v.metric(metric) for v in results.variants}
        means = {label: summary.mean for label, summary in summaries.items()}
        if len(set(means.values())) > 1:
            winner, loser = max(means, key=means.get), min(means, key=means.get)
            beyond = means[winner] - means[loser] > max(summaries[winner].std, summaries[loser].std)
            # ★ only for a lead larger than the seed spread; otherwise the report says it is within noise.
            assert column(found["variant"], winner, f"{metric} ↑").endswith("★") == beyond
            assert not column(found["variant"], loser, f"{metric} ↑").endswith("★")
            assert (f"{metric} ↑: {winner} leads, within noise" in (study / "report.md").read_text()) == (not beyond)


def test_a_lead_counts_only_beyond_the_seed_spread():
    assert lead_beyond_noise({"a": Summary(10.0, 1.0, 2), "b": Summary(20.0, 2.0, 2)}, "fid") == ({"a"}, None)
    assert lead_beyond_noise({"a": Summary(10.0, 1.0, 2), "b": Summary(11.5, 2.0, 2)}, "fid") == (
        {"a"}, "within the seed spread")
    assert lead_beyond_noise({"a": Summary(10.0, None, 1), "b": Summary(50.0, None, 1)}, "fid") == ({"a"}, "one seed")
    assert lead_beyond_noise({"a": Summary(10.0, 0.0, 2), "b": Summary(10.0, 0.0, 2)}, "fid") == ({"a", "b"}, "a tie")
    # the runner-up is the closest rival, whichever side of the leader it is measured from
    assert lead_beyond_noise({"a": Summary(0.9, 0.01, 2), "b": Summary(0.85, 0.1, 2), "c": Summary(0.1, 0.0, 2)},
                             "recall") == ({"a"}, "within the seed spread")


def test_best_of_follows_each_metrics_direction():
    assert best_of({"a": 10.0, "b": 5.0}, "fid") == {"b"}
    assert best_of({"a": 10.0, "b": 5.0}, "class_kl") == {"b"}
    assert best_of({"a": 10, "b": 5}, "modes") == {"a"}
    assert best_of({"a": 0.9, "b": 0.9, "c": 0.1}, "recall") == {"a", "b"}  # ties all win
    assert best_of({"a": 10.0, "b": 5.0}, "mystery") == set()  # direction unknown: nobody
    assert best_of({"a": 10.0}, "fid") == set()  # nothing to compare with
    assert fmt_summary(Summary(1.5, 0.7071, 2)) == "1.5 ± 0.71" and fmt_summary(Summary(60.0, 0.0, 2)) == "60"


def test_matched_steps_fall_back_to_the_early_grids_when_the_paces_differ():
    def member(steps):
        config = SimpleNamespace(train=SimpleNamespace(sample_every=250))
        return SimpleNamespace(trained=True, samples={s: Path(f"{s}.png") for s in steps},
                               member=SimpleNamespace(config=config))

    fast = member([0, 1, 2, 5, 10, 20, 50, 100, 200, 250, 500, 750, 1000, 1079])
    assert _matched_steps(SimpleNamespace(members=[fast, member([0, 1, 2, 5, 10, 20, 50, 100, 200, 250, 500, 510])])
                          ) == [250, 500]
    assert _matched_steps(SimpleNamespace(members=[fast, member([0, 1, 2, 5, 10, 19])])) == [1, 2, 5, 10]


def test_html_report_is_self_contained_with_pictures(study):
    page = (study / "report.html").read_text()
    assert "http://" not in page and 'src="file' not in page
    assert "<script" not in page and "<link" not in page and "url(" not in page
    sources = re.findall(r'src="([^"]*)"', page)
    assert sources and all(s.startswith("data:image/png;base64,") for s in sources)
    # Samples at 3 matched steps × 2 variants, last samples by variant, 4 last samples, metrics bars,
    # training and eval curves.
    assert len(sources) == 6 + 1 + 4 + 3
    assert "Metrics during training" in page and (study / "report" / "eval_curves.png").is_file()


def test_last_samples_picture_shows_each_variants_lowest_seed_at_its_last_step(study, tmp_path, monkeypatch):
    from PIL import Image

    opened, real_open = [], Image.open
    monkeypatch.setattr(Image, "open", lambda path, *a, **k: opened.append(Path(path)) or real_open(path, *a, **k))
    drawn = figures._last_samples(collect(load_study(study)), tmp_path / "samples.png")
    last = [max((study / "runs" / name / "samples").glob("step-*.png")) for name in (NAMES[0], NAMES[2])]
    assert opened == last and last[0].name == "step-000060.png"
    with real_open(drawn) as picture:
        assert picture.width > 1.5 * picture.height  # the two variants side by side
    assert "report/samples.png" in (study / "report.md").read_text()


def test_markdown_report_references_pictures_by_relative_path(study):
    text = (study / "report.md").read_text()
    paths = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", text)
    assert "runs/objective=dcgan-seed0/samples/step-000020.png" in paths and "report/curves.png" in paths
    assert all((study / p).is_file() for p in paths)


def test_report_only_rebuilds_the_same_report_from_disk(study, monkeypatch):
    before = (study / "report.md").read_text()
    (study / "report.md").unlink()
    (study / "report.html").unlink()
    monkeypatch.setattr(runner, "train", None)  # nothing may train
    assert main(["compare", "--report-only", str(study)]) == 0
    assert (study / "report.md").read_text() == before and (study / "report.html").is_file()


def test_resume_skips_finished_members(study, monkeypatch, capsys):
    def must_not_train(*args, **kwargs):
        raise AssertionError("a finished member was trained again")

    def must_not_evaluate(*args, **kwargs):
        raise AssertionError("a finished member was evaluated again")

    files = [p for p in (study / "runs").rglob("*") if p.is_file()] + list((study / "members").iterdir())
    stamps = {p: p.stat().st_mtime_ns for p in files}
    monkeypatch.setattr(runner, "train", must_not_train)
    monkeypatch.setattr(runner, "evaluate_member", must_not_evaluate)
    assert main(["compare", "--resume", str(study)]) == 0
    assert capsys.readouterr().out.count("done earlier, skipped") == 4
    assert {p: p.stat().st_mtime_ns for p in files} == stamps


@pytest.mark.parametrize("flags", [["--seeds", "3"], ["--seed", "0"], ["--minutes", "1", "--quiet"]])
def test_resume_keeps_the_saved_plan(study, capsys, flags):
    assert main(["compare", "--resume", str(study), *flags]) == 2
    named = [f for f in flags if f.startswith("--") and f != "--quiet"]  # --quiet changes only the output
    assert capsys.readouterr().err.strip().endswith(f"drop {', '.join(named)}")


def test_resume_takes_quiet_for_this_session_only(study, capsys):
    plan_before = (study / "study.json").read_text()
    assert main(["compare", "--resume", str(study), "--quiet"]) == 0  # every member is done: nothing trains
    assert (study / "study.json").read_text() == plan_before
    loaded = plan.load_study(study)
    assert loaded.quiet is None and "quiet" not in json.loads(plan_before)


# ------------------------------------------------------------------------------------------- failures and budgets


def test_diverging_member_is_reported_and_the_others_finish(tmp_path):
    root = tmp_path / "study"
    assert main(["compare", *TINY, "--set", "steps=20", "--vary", "optim.lr_d=2e-4,1e30", "--n", "200",
                 "--out", str(root)]) == 0
    assert record(root, "optim.lr_d=2e-4-seed0")["state"] == "evaluated"
    failed = record(root, "optim.lr_d=1e30-seed0")
    assert failed["state"] == "failed" and "NaN/Inf" in failed["error"] and "traceback" not in failed
    found = tables((root / "report.md").read_text())
    assert column(found["variant"], "optim.lr_d=1e30", "seeds done") == "0/1"
    assert column(found["variant"], "optim.lr_d=1e30", "modes ↑") == "—"
    assert "training failed: losses became NaN/Inf" in column(found["member"], "optim.lr_d=1e30-seed0", "notes")
    assert "optim.lr_d=1e30-seed0 failed at training" in (root / "report.html").read_text()


def test_crashed_member_is_recorded_then_retried_on_request(tmp_path, monkeypatch):
    real_train = runner.train

    def crashing_lsgan(config, run_dir, resume=False, echo=print):  # crashes after writing its run
        result = real_train(config, run_dir, resume=resume, echo=echo)
        if "lsgan" in str(run_dir):
            raise RuntimeError("boom")
        return result

    root = tmp_path / "study"
    monkeypatch.setattr(runner, "train", crashing_lsgan)
    assert main(["compare", *TINY, "--set", "steps=20", "--vary", "objective=dcgan,lsgan", "--n", "200",
                 "--out", str(root)]) == 0
    crashed = record(root, "objective=lsgan-seed0")
    assert crashed["error"] == "RuntimeError: boom" and "raise RuntimeError" in crashed["traceback"]
    assert record(root, "objective=dcgan-seed0")["state"] == "evaluated"
    assert "<details><summary>traceback of objective=lsgan-seed0" in (root / "report.html").read_text()

    monkeypatch.setattr(runner, "train", real_train)
    assert main(["compare", "--resume", str(root)]) == 0
    assert record(root, "objective=lsgan-seed0")["state"] == "failed"  # not retried unasked
    done_before = (root / "members" / "objective=dcgan-seed0.json").stat().st_mtime_ns
    lsgan_run = root / "runs" / "objective=lsgan-seed0"
    note = lsgan_run / "notes.txt"
    note.write_text("mine")
    assert main(["compare", "--resume", str(root), "--retry-failed"]) == 0
    assert record(root, "objective=lsgan-seed0")["state"] == "evaluated"
    assert note.read_text() == "mine"  # the retry restarts in place: nothing it did not write is deleted
    assert (lsgan_run / "metrics.before-step000000.jsonl").is_file()  # and the failed attempt's history stays
    assert (root / "members" / "objective=dcgan-seed0.json").stat().st_mtime_ns == done_before


def test_minutes_stop_each_member_by_its_training_time(tmp_path):
    root = tmp_path / "study"
    minutes = 0.03
    assert main(["compare", *TINY, "--set", "steps=100000", "--minutes", str(minutes), "--n", "200",
                 "--out", str(root)]) == 0
    rec = record(root, "base-seed0")
    assert rec["stopped_by"] == "time" and 0 < rec["step"] < 100000
    history = RunDir(root / "runs" / "base-seed0").read_history()
    rows = [row for row in history if "eval" not in row]
    assert history[-1] == {"step": rec["step"], "eval": member_eval(root, "base-seed0")}  # the study's evaluation
    # One run under the trainer's own budget: a row every log_every steps, and one at the step it stopped.
    steps = [row["step"] for row in rows]
    assert steps[:-1] == list(range(10, steps[-1], 10)) and steps[-1] == rec["step"]
    assert minutes * 60 <= rows[-1]["wall_time"] <= 1.5 * minutes * 60
    assert "stopped by the time budget" in (root / "report.md").read_text()


@pytest.mark.parametrize("minutes", [0.5, None])
def test_the_time_budget_is_the_trainers_stop_policy_not_chunked_resumes(tmp_path, monkeypatch, minutes):
    """A member trains in one call whose config carries the study's budget as train.minutes; the trainer
    stops by it (stopped_by 'time'), and the record says so. Without --minutes the config's own is kept."""
    from ganforge.training.trainer import TrainResult

    calls = []

    def fake_train(config, run_dir, resume=False, echo=print):
        calls.append((config.train.minutes, resume))
        run_dir.mkdir(parents=True)
        return TrainResult(run_dir, 123, stopped_by="time" if config.train.minutes > 0 else "steps")

    monkeypatch.setattr(runner, "train", fake_train)
    monkeypatch.setattr(runner, "evaluate_member", lambda study, member, echo=None: ({"modes": 8}, {}))
    base = build_config(overrides=[{"data": "ring8", "steps": 100000, "train": {"minutes": 0.0}}])
    study = plan_study(tmp_path / "s", base, ["objective=dcgan,lsgan"], minutes=minutes)
    assert runner.run_study(study, echo=lambda *a: None) is False
    budget = minutes if minutes is not None else 0.0
    assert calls == [(budget, False), (budget, False)]  # one call per member, no resumes in between
    for member in study.members():
        rec = study.read_record(member)
        assert rec == {"state": "evaluated", "step": 123, "stopped_by": "time" if minutes else "steps",
                       "eval_errors": {}}
        assert RunDir(member.run_dir).eval_results() == [{"step": 123, "eval": {"modes": 8}}]


def test_image_metrics_without_inception_weights_fail_alone(tmp_path, monkeypatch):
    monkeypatch.setenv("GANFORGE_CACHE", str(tmp_path / "cache"))  # no weights there
    monkeypatch.delenv("GANFORGE_INCEPTION_WEIGHTS", raising=False)
    root = tmp_path / "study"
    assert main(["compare", "--steps", "6", "--batch-size", "8", "--set", "model.width=4", "--set", "model.z_dim=8",
                 "--set", "dataset.size=64", "--set", "train.log_every=3", "--quiet", "--n", "16",
                 "--out", str(root)]) == 0
    rec = record(root, "base-seed0")
    assert rec["state"] == "evaluated" and sorted(rec["eval_errors"]) == ["fid", "is", "kid", "pr"]
    assert all("no Inception weights" in m and "fetch-weights" in m for m in rec["eval_errors"].values())
    text = (root / "report.md").read_text()
    assert column(tables(text)["member"], "base-seed0", "fid ↓") == "failed"
    assert "fid, kid, is, pr failed (every evaluated member): no Inception weights" in text


def test_one_failing_metric_leaves_the_others(monkeypatch, tmp_path):
    def fake_evaluate(source, metrics, **kwargs):
        if "fid" in metrics:
            raise ConfigError("no weights for fid")
        return {"n": 10, "kid": 0.5}

    monkeypatch.setattr("ganforge.metrics.evaluate", fake_evaluate)
    study = Study(root=tmp_path, base={}, vary=[], seeds=[0], metrics=["fid", "kid"], n=10, features="inception")
    member = plan.Member("m", "base", (), 0, tmp_path / "runs" / "m", build_config())
    assert runner.evaluate_member(study, member) == ({"n": 10, "kid": 0.5}, {"fid": "no weights for fid"})


def test_every_changing_numeric_row_key_is_plotted():
    rows = [{"step": s, "d_loss": 1.0 / s, "g_loss": s, "lr_d": 2e-4, "balance_d_steps": s % 3, "img_per_s": None,
             "note": "text"} for s in (10, 20, 30)]
    rows.append({"step": 30, "eval": {"modes": 3}})
    assert _changing_keys([rows]) == ["d_loss", "g_loss", "balance_d_steps"]


# ------------------------------------------------------------------------------------------- parallel members


def test_members_trained_in_parallel_match_those_trained_one_by_one(study, tmp_path, capfd):
    """--jobs 2: each member in its own process (their output is read at the file descriptor), with the
    same records as the sequential fixture."""
    root = tmp_path / "parallel"
    assert main(["compare", *TINY, "--set", "steps=60", "--set", "train.sample_every=20", "--set", "eval.every=30",
                 "--vary", "objective=dcgan,wgan-gp", "--seeds", "2", "--n", str(N), "--jobs", "2",
                 "--out", str(root)]) == 0
    for name in NAMES:
        assert record(root, name) == record(study, name)
    out = capfd.readouterr().out
    assert all(f"{name}: finished 60 steps" in out for name in NAMES)  # each trainer line names its member
    assert main(["compare", "--resume", str(root), "--jobs", "2"]) == 0
    assert capfd.readouterr().out.count("done earlier, skipped") == 4


def test_a_failing_member_in_parallel_is_recorded_and_the_other_finishes(tmp_path):
    root = tmp_path / "study"
    assert main(["compare", *TINY, "--set", "steps=20", "--vary", "optim.lr_d=2e-4,1e30", "--n", "200",
                 "--jobs", "2", "--out", str(root)]) == 0
    assert record(root, "optim.lr_d=2e-4-seed0")["state"] == "evaluated"
    failed = record(root, "optim.lr_d=1e30-seed0")
    assert failed["state"] == "failed" and "NaN/Inf" in failed["error"]


def test_ctrl_c_stops_parallel_members_with_checkpoints_and_starts_no_more(tmp_path):
    root = tmp_path / "study"
    running = [root / "runs" / f"objective={o}-seed0" for o in ("dcgan", "lsgan")]
    command = [sys.executable, "-m", "ganforge", "compare", *TINY, "--set", "steps=1000000",
               "--set", "train.checkpoint_every=1000000", "--vary", "objective=dcgan,lsgan,hinge,wgan",
               "--n", "100", "--jobs", "2", "--out", str(root)]
    proc = subprocess.Popen(command, cwd=Path(__file__).resolve().parents[1], start_new_session=True,
                            env={**os.environ, "OMP_NUM_THREADS": "1"}, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 60
        while not all((run / "metrics.jsonl").is_file() for run in running):
            assert time.monotonic() < deadline and proc.poll() is None, "the two members never started"
            time.sleep(0.2)
        os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C in a terminal does: the whole process group
        out, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 130, out
    for run in running:
        assert list_checkpoints(run), f"{run.name} stopped without a checkpoint"
        assert f"{run.name}: interrupted" in out
    assert not (root / "members").exists()  # neither finished; nothing recorded as trained or failed
    assert not any((root / "runs" / f"objective={o}-seed0").exists() for o in ("hinge", "wgan"))  # never started
    members = tables((root / "report.md").read_text())["member"]
    assert [column(members, f"objective={o}-seed0", "state") for o in ("dcgan", "lsgan", "hinge", "wgan")] == [
        "incomplete", "incomplete", "pending", "pending"]


def test_jobs_must_be_positive(tmp_path, capsys):
    assert main(["compare", *TINY, "--set", "steps=5", "--jobs", "0", "--out", str(tmp_path / "s")]) == 2
    assert "--jobs 0 must be at least 1" in capsys.readouterr().err
    assert not (tmp_path / "s").exists()


@pytest.mark.parametrize("jobs, cores, threads", [(1, 2, 2), (2, 2, 1), (3, 2, 1), (4, 16, 4)])
def test_parallel_members_share_the_cores(jobs, cores, threads):
    assert runner.threads_per_job(jobs, cores) == threads


# ------------------------------------------------------------------------------------------- beside the papers


def test_ring_study_is_shown_beside_the_published_figures(study):
    found = tables((study / "report.md").read_text())["method"]
    assert found[0] == ["method", "source", "modes", "high quality (%)"]
    results = collect(load_study(study))
    for variant in results.variants:
        quality = variant.metric("high_quality")
        ours = fmt_summary(Summary(quality.mean * 100, quality.std * 100, quality.count))
        assert column(found, variant.label, "high quality (%)") == ours
        assert column(found, variant.label, "modes") == fmt_summary(variant.metric("modes"))
    veegan = next(row for row in found if row[:2] == ["VEEGAN", "VEEGAN paper"])
    assert veegan[2:] == ["8", "52.9"]
    assert ["PacGAN4", "PacGAN paper", "7.8", "95.9"] in found and ["WGAN-GP", "GDPP paper", "6.8", "59.6"] in found


def test_published_figures_are_named_by_the_data():
    from ganforge.study.published import PUBLISHED, benchmark_of, columns

    assert benchmark_of("ring8") == "8-Gaussian ring" and benchmark_of("grid25") == "25-Gaussian grid"
    assert benchmark_of("stacked-mnist:../shared/data/mnist") == "Stacked MNIST"
    assert benchmark_of("mnist:../shared/data/mnist") is None and benchmark_of("shapes") is None
    assert columns("Stacked MNIST") == ["modes", "modes_kl"]
    grid = {row.method: row.figures for row in PUBLISHED["25-Gaussian grid"]}
    assert grid["GAN"] == {"modes": 3.3, "high_quality": 0.5} and grid["PacGAN4"]["modes"] == 24.8


def test_a_study_off_the_benchmarks_has_no_published_table(tmp_path):
    root = tmp_path / "study"
    assert main(["compare", *TINY, "--set", "steps=10", "--vary", "data=ring8,grid25",
                 "--n", "100", "--out", str(root)]) == 0
    assert "Published figures" not in (root / "report.md").read_text()  # two data sets: no one benchmark


# ------------------------------------------------------------------------------------------- two stages


def test_two_stage_members_show_stage1_beside_stage2(tmp_path, monkeypatch):
    monkeypatch.setenv("GANFORGE_CACHE", str(tmp_path / "cache"))  # Inception metrics fail alone, fast
    monkeypatch.delenv("GANFORGE_INCEPTION_WEIGHTS", raising=False)
    root = tmp_path / "study"
    assert main(["compare", "--resolution", "128", "--set", "model.arch=stacked", "--set", "model.stage1_resolution=32",
                 "--steps", "4", "--batch-size", "4", "--set", "model.width=4", "--set", "model.z_dim=8",
                 "--set", "dataset.size=16", "--set", "train.log_every=2", "--set", "train.sample_every=2",
                 "--set", "train.sample_count=4", "--quiet", "--n", "8", "--out", str(root)]) == 0
    found = tables((root / "report.md").read_text())
    assert found["step#2"][0] == ["step", "base stage 1", "base stage 2"]  # "step" also heads the matched samples
    for row, step in zip(found["step#2"][1:], (2, 4)):
        assert row[0] == str(step)
        assert f"(runs/base-seed0/samples/stage1/step-{step:06d}.png)" in row[1]
        assert f"(runs/base-seed0/samples/step-{step:06d}.png)" in row[2]
    assert "Stage 1 and stage 2" in (root / "report.html").read_text()


def test_also_adds_a_baseline_variant_beside_the_grid(tmp_path):
    root = tmp_path / "study"
    assert main(["compare", *TINY, "--set", "steps=10", "--vary", "objective=dcgan,lsgan",
                 "--also", "objective=hinge; model.mlp_hidden=8", "--n", "100", "--out", str(root)]) == 0
    assert record(root, "objective=hinge,model.mlp_hidden=8-seed0")["state"] == "evaluated"
    assert sorted(p.stem for p in (root / "members").iterdir()) == [
        "objective=dcgan-seed0", "objective=hinge,model.mlp_hidden=8-seed0", "objective=lsgan-seed0"]
    hidden = yaml.safe_load((root / "runs" / "objective=hinge,model.mlp_hidden=8-seed0" / "config.yaml").read_text())
    assert hidden["model"]["mlp_hidden"] == 8 and hidden["objective"] == "hinge"
    assert load_study(root).also == [(("objective", "hinge"), ("model.mlp_hidden", "8"))]
    report = (root / "report.md").read_text()
    assert "objective=hinge, model.mlp_hidden=8" in report
    with pytest.raises(ConfigError, match="--also 'objective' needs the form key=value"):
        plan_study(tmp_path / "other", build_config(), [], also=["objective"])


def test_reference_features_are_computed_once_for_all_members(tmp_path, monkeypatch, capsys):
    from ganforge.config import DatasetOptions
    from ganforge.data import load_dataset
    from ganforge.metrics.classifier import save_classifier, train_classifier

    monkeypatch.setenv("GANFORGE_CACHE", str(tmp_path / "cache"))
    shapes = load_dataset("shapes", 32, 3, DatasetOptions(size=300))
    classifier, _ = train_classifier(shapes, holdout=100, epochs=1, progress=False)
    save_classifier(classifier, tmp_path / "clf.safetensors")
    root = tmp_path / "study"
    assert main(["compare", "--data", "shapes", "--steps", "2", "--batch-size", "8", "--set", "model.width=4",
                 "--set", "dataset.size=300", "--set", "train.log_every=1", "--quiet", "--seeds", "2",
                 "--vary", "objective=dcgan,lsgan", "--metrics", "fid", "--n", "120",
                 "--features", f"classifier:{tmp_path / 'clf.safetensors'}", "--out", str(root)]) == 0
    out = capsys.readouterr().out
    assert out.count("once for all members") == 1 and "reference features: 120 images (computed)" in out
    # Feature passes print plain progress lines (at most one a tenth, one a batch of 64) under --quiet:
    # the reference's and each member's.
    assert out.count(": 64/120 images\n") == 5 and out.count(": 120/120 images\n") == 5
    assert len(list((tmp_path / "cache" / "eval").glob("*.npz"))) == 1  # one reference, whatever the seeds
    evals = [member_eval(root, p.stem) for p in (root / "members").glob("*.json")]
    assert len(evals) == 4 and all(e["ref_cache"] == "hit" and e["n_ref"] == 120 for e in evals)
