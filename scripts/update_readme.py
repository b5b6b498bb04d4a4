"""Regenerate the README's config-key and preset tables from the code."""
import re
from pathlib import Path

from ganforge.config import markdown_table, preset_names, preset_summary

readme = Path(__file__).resolve().parents[1] / "README.md"
presets = "\n".join(["| preset | what it is |", "| --- | --- |"]
                    + [f"| `{name}` | {preset_summary(name)} |" for name in preset_names()])
text = readme.read_text()
for name, body in (("config-keys", markdown_table()), ("presets", presets)):
    text = re.sub(rf"(<!-- {name}:start -->\n)(?:.*?\n)?(<!-- {name}:end -->)",
                  lambda m: m.group(1) + body + "\n" + m.group(2), text, flags=re.S)
readme.write_text(text)
