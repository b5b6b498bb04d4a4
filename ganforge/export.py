"""`export_run`: a run's generator as one file that other programs load without ganforge (TorchScript for
torch.jit.load, ONNX for onnxruntime), with a JSON manifest beside it (FILE.json).

The exported module is the generator samples come from (`Run.sampling_generator`: the moving average of
G where the run keeps one), in eval mode, traced on the CPU. It is called as G(z) for an unconditional
run and G(z, y) for a conditional one, with any batch size N:
  z  float32 (N, z_dim), standard normal;
  y  one condition per z, as `Conditions.encode` gives it: int64 (N,) class ids (an index into the
     manifest's names), or float32 (N, dim) tag weights over the manifest's names, or (N, dim) sentence
     embeddings by the manifest's encoder;
and returns float32 (N, C, H, W) images in [-1, 1] (every family's G ends in tanh), or (N, 2) points of
a 2-D point run. Conditions drawn like the training data's (`Run.generator_of_z`) stay in ganforge: a caller
of the file gives y.

Before the file is moved into place it is loaded back and run on CHECK_N latents (a batch size other
than the traced one) against torch; a difference over TOLERANCE is an error, so a written file is one
that reproduces the run.
"""
from __future__ import annotations

import importlib.util
import json
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch
from torch import nn

from . import __version__
from .errors import ConfigError, GanforgeError
from .fileio import atomic_path, sha256_of, write_atomic
from .registry import Registry

WRITTEN_BY = "ganforge export"   # the manifest's mark: only files it vouches for are overwritten
MANIFEST_FORMAT = 1
TRACE_N, CHECK_N = 2, 5          # different, so that the check shows the batch size is not baked in
TOLERANCE = 1e-4                 # on pixels in [-1, 1]: far below one uint8 level (2/255)
ONNX_OPSET = 17                  # onnxruntime 1.12 (2022) on runs it; nothing here needs a newer op


@dataclass(frozen=True)
class Exporter:
    suffix: str
    write: Callable[[nn.Module, tuple, list[str], Path], None]   # (G, example inputs, input names, file)
    load: Callable[[Path], Callable[..., torch.Tensor]]            # the written file, callable on tensors
    packages: tuple[str, ...] = ()                                 # imported by write/load beyond torch


exporters: Registry[Exporter] = Registry("export format")


def _quietly(action: Callable[[], object]) -> object:
    # torch 2.13 marks torch.jit and the TorchScript-based ONNX exporter deprecated on every call; they are
    # what the formats need. The tracer's own warnings are left out too: the check after writing runs the
    # file at another batch size and catches what a trace got wrong.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        warnings.filterwarnings("ignore", message="Constant folding", category=UserWarning)  # an ONNX pass skipped
        return action()


def _write_torchscript(G, example, names, path):
    traced = _quietly(lambda: torch.jit.trace(G, example))
    _quietly(lambda: torch.jit.save(traced, str(path)))


def _load_torchscript(path):
    module = _quietly(lambda: torch.jit.load(str(path), map_location="cpu"))
    return lambda *inputs: module(*inputs)


def _write_onnx(G, example, names, path):
    import onnx

    batch = {name: {0: "n"} for name in [*names, "images"]}
    _quietly(lambda: torch.onnx.export(G, example, str(path), dynamo=False, opset_version=ONNX_OPSET,
                                       input_names=names, output_names=["images"], dynamic_axes=batch))
    onnx.checker.check_model(str(path))


def _load_onnx(path):
    import onnxruntime

    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    names = [node.name for node in session.get_inputs()]
    return lambda *inputs: torch.from_numpy(session.run(None, dict(zip(names, (t.numpy() for t in inputs))))[0])


exporters.register("torchscript")(Exporter(".pt", _write_torchscript, _load_torchscript))
exporters.register("onnx")(Exporter(".onnx", _write_onnx, _load_onnx, packages=("onnx", "onnxruntime")))


@dataclass(frozen=True)
class Exported:
    path: Path
    manifest: Path
    step: int
    generator: str       # "ema" (the average of G's weights) or "G"
    difference: float    # largest |file − torch| over the check's outputs


def manifest_path(target: Path) -> Path:
    """The manifest beside an exported file: FILE.json (generator-step10.onnx → generator-step10.onnx.json)."""
    return target.with_name(target.name + ".json")


def export_run(run_dir: str | Path, format: str, out: str | Path | None = None,
               checkpoint: str = "latest") -> Exported:
    """Write the run's sampling generator as `format` (an `exporters` name) to `out` (default
    RUN/exports/generator-step<N><suffix>; an existing folder: that name inside it), then its manifest.
    Refuses an `out` (or manifest) that exists and that ganforge export did not write."""
    from .run import load_run
    from .rundir import RunDir

    exporter = exporters.get(format)
    missing = [name for name in exporter.packages if importlib.util.find_spec(name) is None]
    if missing:
        raise ConfigError(f"--format {format} needs the {' and '.join(missing)} package"
                          f"{'s' if len(missing) > 1 else ''}: pip install 'ganforge[export]'")
    run = load_run(run_dir, checkpoint=checkpoint, device="cpu")
    default = RunDir(run.path).export_file(run.step, exporter.suffix)
    target = Path(out) if out else default
    if target.is_dir() or str(out or "").endswith(("/", "\\")):
        target = target / default.name
    _refuse_foreign(target)

    G = run.sampling_generator.eval()
    names = ["z"] if run.conditions is None else ["z", "y"]
    with atomic_path(target) as tmp, torch.no_grad():
        exporter.write(G, _inputs(run, TRACE_N, seed=1), names, tmp)
        difference = _check(G, exporter.load(tmp), _inputs(run, CHECK_N, seed=0), target)
        digest = sha256_of(tmp)
    manifest = _manifest(run, format, target, digest, checkpoint, names)
    write_atomic(manifest_path(target), lambda f: f.write(json.dumps(manifest, indent=1, ensure_ascii=False).encode()))
    return Exported(target, manifest_path(target), run.step, manifest["generator"], difference)


def _refuse_foreign(target: Path) -> None:
    """An existing file is replaced only when its manifest says ganforge export wrote exactly these bytes."""
    manifest = manifest_path(target)
    if not target.exists() and not manifest.exists():
        return
    try:
        found = json.loads(manifest.read_text())
        ours = found.get("written_by") == WRITTEN_BY and (not target.exists() or found.get("sha256") == sha256_of(target))
    except (OSError, ValueError, AttributeError):  # no manifest, not JSON, or JSON but not an object
        ours = False
    if not ours:
        what = (f"--out {target} exists" if target.exists() else f"--out {target}: {manifest} exists")
        raise ConfigError(f"{what} and was not written by ganforge export (no manifest beside it vouches for these bytes); "
                          f"move it away or give another --out")


def _inputs(run, n: int, seed: int) -> tuple[torch.Tensor, ...]:
    """n standard-normal z of `seed`, and for a conditional run n conditions drawn like the training data's."""
    generator = torch.Generator().manual_seed(seed)
    z = torch.randn(n, run.z_dim, generator=generator)
    return (z,) if run.conditions is None else (z, run.conditions.prior(n, generator))


def _check(G: nn.Module, exported, inputs: tuple[torch.Tensor, ...], target: Path) -> float:
    """The largest |file − torch| on `inputs`; an error (and no file) when shapes differ or it exceeds TOLERANCE."""
    expected, got = G(*inputs), exported(*inputs)
    report = "nothing was written; report it, with the run's config, as a ganforge bug"
    if got.shape != expected.shape:
        raise GanforgeError(f"the file written for {target} gives {tuple(got.shape)} for {len(inputs[0])} latents, "
                            f"torch {tuple(expected.shape)} (the network does not trace); {report}")
    difference = float((got - expected).abs().max())
    if not difference <= TOLERANCE:  # NaN too
        raise GanforgeError(f"the file written for {target} differs from the run's generator by {difference:.2g} "
                            f"(more than {TOLERANCE:g}); {report}")
    return difference


# What y holds, by condition kind (the module docstring has the shapes).
_CONDITION_VALUES = {"class": "int64 (N,) class ids: indices into names",
                     "tags": "float32 (N, dim) tag weights over names",
                     "text": "float32 (N, dim) sentence embeddings by encoder"}


def _manifest(run, format: str, target: Path, digest: str, checkpoint: str, names: list[str]) -> dict:
    from .data.kinds import data_kinds

    shape = list(run.info["data_shape"])
    images = data_kinds.get(run.info["data_kind"]).images
    manifest = {
        "written_by": WRITTEN_BY, "format": MANIFEST_FORMAT, "ganforge_version": __version__,
        "file": target.name, "sha256": digest, "export_format": format,
        **({"onnx_opset": ONNX_OPSET} if format == "onnx" else {}),
        "run": str(run.path.resolve()), "step": run.step, "checkpoint": checkpoint,
        "generator": "ema" if run.ema_generator is not None else "G",
        "inputs": names, "z_dim": run.z_dim, "data_kind": run.info["data_kind"], "sample_shape": shape,
        **({"channels": shape[0], "image_size": shape[1:], "output": "float32 (N, C, H, W) images in [-1, 1]"}
           if images else {"output": "float32 (N, 2) points"}),
        "condition": None,
    }
    if run.conditions is not None:
        c = run.conditions
        manifest["condition"] = {"kind": c.kind, "dim": c.dim, "names": c.names, "y": _CONDITION_VALUES[c.kind],
                                 **({"encoder": c.encoder} if c.kind == "text" else {})}
    return manifest
