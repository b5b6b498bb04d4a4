"""RunDir is the only code that spells a run directory's file and folder names."""
import ast
from pathlib import Path

import pytest

from ganforge.rundir import CheckpointDir, RunDir

PACKAGE = Path(__file__).resolve().parents[1] / "ganforge"
OWNER = PACKAGE / "rundir.py"
# Names no other module may write in code (a substring of any string literal or f-string part).
FILE_NAMES = ("config.yaml", "run.json", "metrics.jsonl", "metrics.before", "loss_curve.png", "run.lock",
              "conditions.json", "conditions.safetensors", "model.safetensors", "state.safetensors",
              "state.json", "manifest.json", "step-", "sample-step", "generator-step")
# Folder names, too common as words to ban outright: banned as an operand of `/` (a path join) or of
# a path method taking a name (joinpath, with_name, glob).
FOLDER_NAMES = ("samples", "checkpoints", "eval", "best", "stage1", "tensorboard", "exports")
PATH_METHODS = {"joinpath", "with_name", "glob", "rglob"}
# Spellings that stay, each for a reason: (module, literal).
ALLOWED = {
    ("ganforge/metrics/evaluate.py", "eval"),  # the reference-feature cache's folder, not a run's
}


def _docstrings(tree: ast.AST) -> set[int]:
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                found.add(id(body[0].value))
    return found


def _is_help(node: ast.AST, parents: dict) -> bool:
    """A string inside a `help=` / `description=` argument or a config field's help text (_f's second argument)."""
    while node in parents:
        parent = parents[node]
        if isinstance(parent, ast.keyword) and parent.arg in ("help", "description"):
            return True
        if (isinstance(parent, ast.Call) and isinstance(parent.func, ast.Name) and parent.func.id == "_f"
                and len(parent.args) > 1 and parent.args[1] is node):
            return True
        node = parent
    return False


def spellings(source: str) -> list[tuple[int, str]]:
    """(line, literal) of every run-directory name spelled in `source` outside docstrings and help text."""
    tree = ast.parse(source)
    parents = {child: node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)}
    docstrings = _docstrings(tree)
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Constant) or not isinstance(node.value, str) or id(node) in docstrings:
            continue
        if _is_help(node, parents):
            continue
        parent = parents.get(node)
        if isinstance(parent, ast.JoinedStr):  # an f-string's literal part: judge the f-string's place
            parent = parents.get(parent)
        text = node.value
        if any(name in text for name in FILE_NAMES):
            found.append((node.lineno, text))
        elif text.strip("/") in FOLDER_NAMES:
            joined = isinstance(parent, ast.BinOp) and isinstance(parent.op, ast.Div)
            method = (isinstance(parent, ast.Call) and isinstance(parent.func, ast.Attribute)
                      and parent.func.attr in PATH_METHODS)
            if joined or method:
                found.append((node.lineno, text))
    return found


def test_no_module_but_rundir_spells_a_run_file_name():
    offenders = [f"{module}:{line}: {text!r}"
                 for path in sorted(PACKAGE.rglob("*.py")) if path != OWNER
                 for module in [path.relative_to(PACKAGE.parent).as_posix()]
                 for line, text in spellings(path.read_text()) if (module, text) not in ALLOWED]
    assert not offenders, "run-directory names outside rundir.py (ask RunDir):\n" + "\n".join(offenders)


@pytest.mark.parametrize("code", [
    'path = root / "metrics.jsonl"',
    'path = root / f"step-{step:06d}"',
    'path = run_dir / "checkpoints" / name',
    'grids = folder.glob("step-*.png")',
    'path = Path(run).joinpath("samples")',
    'open(os.path.join(run, "run.json"))',
])
def test_the_scan_catches_a_new_spelling(code):
    assert spellings(code)


@pytest.mark.parametrize("code", [
    'def f():\n    """Reads metrics.jsonl."""',
    'p.add_argument("--out", help="default RUN/samples/sample-step<N>.png")',
    'row = {"step": 1, "eval": result}',
    'if parts[3] == "samples": pass',
])
def test_the_scan_allows_docstrings_help_and_plain_words(code):
    assert not spellings(code)


def test_history_truncates_to_a_step_and_keeps_a_backup(tmp_path):
    paths = RunDir(tmp_path)
    rows = [{"step": s, "d_loss": 1.0} for s in (1, 2, 3)]
    paths.append_history(rows)
    with paths.history_file.open("a") as f:
        f.write('{"step": 4, "d_lo')  # torn by a crash mid-write
    assert paths.read_history() == rows
    assert paths.truncate_history(rows, 3) == (paths.history_backup(3), 1)  # the torn line goes
    backup, dropped = paths.truncate_history(rows[:2], 2)
    assert dropped == 1 and paths.read_history() == rows[:2]
    assert [r["step"] for r in RunDir(tmp_path).read_history()] == [1, 2]
    assert backup.read_text().count("\n") == 3  # the file as it was before
    assert paths.truncate_history(rows[:2], 2) is None  # nothing to drop: untouched


def test_eval_results_one_schema_from_history_and_old_eval_files(tmp_path):
    paths = RunDir(tmp_path)
    paths.append_history([{"step": 5, "d_loss": 1.0}])
    assert paths.record_eval(5, {"fid": 3.0}) == {"step": 5, "eval": {"fid": 3.0}}
    old = tmp_path / "eval"
    old.mkdir()
    (old / "step-000002-inception.json").write_text('{"step": 2, "fid": 9.0}')
    (old / "step-000003-inception.json").write_text('{"step": 3, "fi')  # damaged: skipped
    assert paths.eval_results() == [{"step": 2, "eval": {"step": 2, "fid": 9.0}}, {"step": 5, "eval": {"fid": 3.0}}]


def test_checkpoints_are_listed_by_step_and_best_is_not_one_of_them(tmp_path):
    paths = RunDir(tmp_path)
    for name in (paths.checkpoint(20).path, paths.checkpoint(3).path, paths.best.path,
                 paths.checkpoints / ".tmp-step-000030"):
        name.mkdir(parents=True)
    assert paths.list_checkpoints() == [(3, paths.checkpoint(3).path), (20, paths.checkpoint(20).path)]
    assert isinstance(paths.best, CheckpointDir) and paths.best.state.parent == paths.best.path
    assert paths.sample_grid(7).name != paths.sample_grid(7, stage1=True).parent.name
