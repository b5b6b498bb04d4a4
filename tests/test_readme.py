"""The README's generated parts must match the code, and its Quick start must be what CI runs."""
import re
from pathlib import Path

from ganforge.config import markdown_table, preset_names, preset_summary

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def _between(name: str) -> str:
    match = re.search(rf"<!-- {name}:start -->\n(.*?)\n<!-- {name}:end -->", README, re.S)
    assert match, f"README lacks the generated block '{name}'"
    return match.group(1)


def test_config_table_is_generated_from_the_dataclasses():
    assert _between("config-keys") == markdown_table(), "run: python scripts/update_readme.py"


def test_every_preset_is_documented():
    block = _between("presets")
    for name in preset_names():
        assert f"| `{name}` | {preset_summary(name)} |" in block


def test_quick_start_holds_the_two_commands_and_ci_runs_the_second():
    section = README.split("## Quick start", 1)[1]
    commands = re.search(r"```\w*\n(.*?)```", section, re.S).group(1).strip().splitlines()
    assert commands == ["make demo", "make test"]
    assert "make test" in (ROOT / ".ci" / "run").read_text()
