"""benchmarks/tag_steering.py's variants: the --tag-groups declaration reaches every groups+… variant
(so the same variants run on another folder, fluent3d say), and the other variants keep their own."""
import argparse
import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def load_script():
    spec = importlib.util.spec_from_file_location("tag_steering", ROOT / "benchmarks" / "tag_steering.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_tag_groups_option_replaces_the_emoji_groups_in_grouped_variants_only():
    script = load_script()
    args = argparse.Namespace(tag_groups="skin tone: light skin tone, dark skin tone")
    assert "dataset.tag_groups=skin tone: light skin tone, dark skin tone" in script.overrides("groups+classifier10", args)
    assert "conditioning.classifier_weight=10" in script.overrides("groups+classifier10", args)
    assert "dataset.tag_groups=none" in script.overrides("averaged", args)
    assert script.overrides("unconditional", args) == ["condition=none", script.NO_COLOUR]
    default = argparse.Namespace(tag_groups=script.EMOJI_GROUPS)
    assert f"dataset.tag_groups={script.EMOJI_GROUPS}" in script.overrides("groups", default)
    assert not any("{" in o for name in script.VARIANTS for o in script.overrides(name, default))
