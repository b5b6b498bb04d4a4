"""ganforge export: the run's sampling generator as TorchScript or ONNX, giving the run's own samples."""
import json

import pytest
import torch

from ganforge import __version__, load_run
from ganforge.cli import build_parser, main
from ganforge.config import from_dict
from ganforge.errors import ConfigError
from ganforge.export import exporters, export_run, manifest_path
from ganforge.fileio import sha256_of
from ganforge.training.trainer import train

# EMA on, so the export must be the average of G's weights, not G.
TINY = {"data": "shapes", "resolution": 32, "batch_size": 8, "steps": 3,
        "model": {"width": 8, "z_dim": 16, "ema_decay": 0.9}, "train": {"quiet": True, "sample_count": 4}}


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    folder = tmp_path_factory.mktemp("export")
    made = {}
    for name, condition, model in (("plain", "none", {}), ("classes", "class", {}),
                                   # the other image family, and float conditions
                                   ("resnet-tags", "tags", {"arch": "resnet", "resnet_blocks": 1, "width": 4})):
        data = {**TINY, "condition": condition, "out": str(folder / name), "model": {**TINY["model"], **model},
                "dataset": {"size": 64, "cache_dir": str(folder / "cache")}}
        made[name] = train(from_dict(data), echo=lambda *a: None).run_dir
    return made


def inputs(run, n=6):
    """z, and for a conditional run one condition per z: every class in turn, or the data's own tag rows."""
    generator = torch.Generator().manual_seed(7)
    z = torch.randn(n, run.z_dim, generator=generator)
    if run.conditions is None:
        return (z,)
    if run.conditions.kind == "class":
        return z, torch.arange(n) % run.conditions.dim
    return z, run.conditions.prior(n, generator)


@torch.no_grad()
def expected(run, args):
    assert run.ema_generator is not None and run.sampling_generator is run.ema_generator
    return run.sampling_generator(*args)  # what `ganforge sample` draws from


@pytest.mark.parametrize("name", ["plain", "classes", "resnet-tags"])
def test_torchscript_gives_the_run_s_samples(runs, name, tmp_path, capsys):
    out = tmp_path / "g.pt"
    assert main(["export", str(runs[name]), "--format", "torchscript", "--out", str(out)]) == 0
    assert f"to {out}" in capsys.readouterr().out
    run = load_run(runs[name])
    args = inputs(run)
    with torch.no_grad():
        got = torch.jit.load(str(out))(*args)
    assert got.shape == (6, 3, 32, 32)
    assert torch.allclose(got, expected(run, args), atol=1e-6)
    assert got.abs().max() <= 1


@pytest.mark.parametrize("name", ["plain", "classes", "resnet-tags"])
def test_onnx_gives_the_run_s_samples_in_onnxruntime(runs, name, tmp_path):
    onnxruntime = pytest.importorskip("onnxruntime", reason="the ganforge[export] extra is not installed")
    out = export_run(runs[name], "onnx", out=tmp_path / "g.onnx").path
    run = load_run(runs[name])
    args = inputs(run)
    session = onnxruntime.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    feed = {node.name: tensor.numpy() for node, tensor in zip(session.get_inputs(), args)}
    assert list(feed) == (["z"] if run.conditions is None else ["z", "y"])
    got = torch.from_numpy(session.run(None, feed)[0])
    assert torch.allclose(got, expected(run, args), atol=1e-4)


def test_the_manifest_says_how_to_call_the_file_and_where_it_came_from(runs):
    done = export_run(runs["classes"], "torchscript")  # default: RUN/exports/generator-step<N>.pt
    assert done.path == runs["classes"] / "exports" / "generator-step3.pt" and done.generator == "ema"
    manifest = json.loads(manifest_path(done.path).read_text())
    assert manifest["written_by"] == "ganforge export" and manifest["ganforge_version"] == __version__
    assert manifest["sha256"] == sha256_of(done.path) and manifest["file"] == "generator-step3.pt"
    assert manifest["run"] == str(runs["classes"].resolve()) and manifest["step"] == 3
    assert (manifest["z_dim"], manifest["channels"], manifest["image_size"]) == (16, 3, [32, 32])
    assert manifest["inputs"] == ["z", "y"]
    assert manifest["condition"]["kind"] == "class"
    assert manifest["condition"]["names"] == load_run(runs["classes"]).conditions.names
    plain = json.loads(manifest_path(export_run(runs["plain"], "torchscript").path).read_text())
    assert plain["condition"] is None and plain["inputs"] == ["z"]


def test_an_unknown_format_is_one_line_with_a_guess(runs, capsys):
    assert main(["export", str(runs["plain"]), "--format", "onx"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "unknown export format 'onx'; choose one of: onnx, torchscript; did you mean 'onnx'?" in err


def test_a_file_export_did_not_write_is_never_overwritten_and_its_own_is(runs, tmp_path, capsys):
    foreign = tmp_path / "model.pt"
    foreign.write_bytes(b"someone's weights")
    assert main(["export", str(runs["plain"]), "--format", "torchscript", "--out", str(foreign)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "was not written by ganforge export" in err
    assert foreign.read_bytes() == b"someone's weights" and not manifest_path(foreign).exists()

    ours = tmp_path / "g.pt"
    export_run(runs["plain"], "torchscript", out=ours)
    export_run(runs["plain"], "torchscript", out=ours)  # its own file, as the manifest vouches: replaced
    ours.write_bytes(b"edited since")  # no longer what the manifest describes
    with pytest.raises(ConfigError, match="was not written by ganforge export"):
        export_run(runs["plain"], "torchscript", out=ours)


def test_onnx_without_its_packages_names_the_extra(runs, monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "onnxruntime" else real(name, *a))
    with pytest.raises(ConfigError, match=r"^--format onnx needs the onnxruntime package: "
                                          r"pip install 'ganforge\[export\]'$"):
        export_run(runs["plain"], "onnx")


def test_the_help_names_every_registered_format():
    sub = next(a for a in build_parser()._actions if a.dest == "command").choices["export"]
    help_text = next(a for a in sub._actions if a.dest == "format").help
    assert all(name in help_text for name in exporters.names())


def test_a_file_that_does_not_reproduce_the_run_is_not_written(runs, tmp_path, monkeypatch):
    from dataclasses import replace

    from ganforge.errors import GanforgeError
    from ganforge.export import Exporter

    real: Exporter = exporters.get("torchscript")
    off = replace(real, load=lambda path: (lambda *inputs: real.load(path)(*inputs) + 1e-3))
    monkeypatch.setitem(exporters._entries, "torchscript", off)
    with pytest.raises(GanforgeError, match=r"differs from the run's generator by 0\.001 .*nothing was written"):
        export_run(runs["plain"], "torchscript", out=tmp_path / "g.pt")
    assert list(tmp_path.iterdir()) == []  # neither the file nor a temporary nor a manifest
