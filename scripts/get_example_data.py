"""Build the README's example image folders on any machine, from the npm registry's packages.

    python scripts/get_example_data.py emoji data/emoji          # 7,572 emoji, 64×64, two styles, tags.csv
    python scripts/get_example_data.py fluent3d data/fluent3d    # 3,391 shaded 3D emoji, 256×256 WebP, tags.csv

`emoji`: the 64×64 PNGs of emoji-datasource-twitter and emoji-datasource-google 16.0.0 (Twemoji, CC BY 4.0;
Noto Emoji, Apache 2.0) in OUT/twemoji and OUT/noto, and OUT/tags.csv (`id,tags`, id = the image's path
without extension) with each image's style, category, sub-category, skin tone, hair, man/woman/person
and cat, read from the packages' own emoji.json. `fluent3d`: the 256×256 WebPs of @lobehub/fluent-emoji-3d 1.1.0
(Microsoft's Fluent Emoji 3D, MIT) in OUT/images, tagged the same way (style `fluent3d`) from
emoji-datasource-twitter's metadata, matched on the code points in each file name; the few files it does not
list stay untagged images of the folder. Each tarball is checked against the registry's SHA-512
before it is read; the folder is built as OUT.incomplete and moved to OUT when whole, and an OUT that
holds files already is refused.
"""
from __future__ import annotations

import argparse
import base64
import csv
import hashlib
import io
import json
import re
import shutil
import sys
import tarfile
import urllib.request
from pathlib import Path

REGISTRY = "https://registry.npmjs.org"
SKIN_TONES = {"1F3FB": "light skin tone", "1F3FC": "medium-light skin tone", "1F3FD": "medium skin tone",
              "1F3FE": "medium-dark skin tone", "1F3FF": "dark skin tone"}
HAIR = re.compile(r"\b(?:RED|CURLY|WHITE|BLOND) HAIR\b|\bBALD\b")
PERSON = re.compile(r"^(MAN|WOMAN|PERSON|BOY|GIRL|CHILD|OLDER (?:MAN|WOMAN|ADULT))\b")
EMOJI_STYLES = {"twemoji": "emoji-datasource-twitter", "noto": "emoji-datasource-google"}
EMOJI_VERSION = "16.0.0"


def npm_tarball(package: str, version: str) -> bytes:
    """The package's tarball, verified against the SHA-512 integrity the registry publishes for it."""
    with urllib.request.urlopen(f"{REGISTRY}/{package}/{version}", timeout=60) as answer:
        dist = json.load(answer)["dist"]
    with urllib.request.urlopen(dist["tarball"], timeout=600) as answer:
        data = answer.read()
    algorithm, expected = dist["integrity"].split("-", 1)
    if algorithm != "sha512" or base64.b64encode(hashlib.sha512(data).digest()).decode() != expected:
        raise SystemExit(f"{package}@{version}: the download does not match the registry's checksum; try again")
    return data


def emoji_tags(entry: dict, tone_codes: str = "") -> list[str]:
    """The tags of one emoji.json entry (or of its skin-tone variant `tone_codes`, e.g. "1F3FB-1F3FD")."""
    name = (entry.get("name") or "").upper()
    tags = [entry["category"].lower(), entry["subcategory"].replace("-", " ")]
    tags += [SKIN_TONES[code] for code in tone_codes.split("-") if code]
    if hair := HAIR.search(name):
        tags.append(hair.group(0).lower())
    if (person := PERSON.match(name)) and entry["category"] == "People & Body":
        tags.append(person.group(1).lower())
    if "CAT" in name.split():
        tags.append("cat")
    return list(dict.fromkeys(tags))


def build_emoji(out: Path) -> int:
    rows = []
    for style, package in EMOJI_STYLES.items():
        vendor = package.rsplit("-", 1)[1]
        print(f"downloading {package}@{EMOJI_VERSION} …", flush=True)
        with tarfile.open(fileobj=io.BytesIO(npm_tarball(package, EMOJI_VERSION))) as tar:
            entries = json.load(tar.extractfile("package/emoji.json"))
            (out / style).mkdir(parents=True, exist_ok=True)
            for entry in entries:
                variants = [("", entry)] + list((entry.get("skin_variations") or {}).items())
                for tone_codes, variant in variants:
                    if not variant.get(f"has_img_{vendor}"):
                        continue
                    try:
                        png = tar.extractfile(f"package/img/{vendor}/64/{variant['image']}").read()
                    except KeyError:  # listed in the metadata, absent from this package
                        continue
                    (out / style / variant["image"]).write_bytes(png)
                    rows.append((f"{style}/{Path(variant['image']).stem}",
                                 ", ".join([style] + emoji_tags(entry, tone_codes))))
    with open(out / "tags.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["id", "tags"])
        writer.writerows(rows)
    return len(rows)


def _code_key(code: str) -> str:
    """A code-point sequence as file names and emoji.json spell it alike (upper case, no FE0F selector)."""
    return code.upper().replace("-FE0F", "")


def build_fluent3d(out: Path) -> int:
    print(f"downloading emoji-datasource-twitter@{EMOJI_VERSION} (for the tags) …", flush=True)
    with tarfile.open(fileobj=io.BytesIO(npm_tarball("emoji-datasource-twitter", EMOJI_VERSION))) as tar:
        entries = json.load(tar.extractfile("package/emoji.json"))
    tags = {}
    for entry in entries:
        variants = [("", entry)] + list((entry.get("skin_variations") or {}).items())
        for tone_codes, variant in variants:
            for code in (variant["unified"], variant.get("non_qualified")):
                if code:
                    tags.setdefault(_code_key(code), emoji_tags(entry, tone_codes))
    print("downloading @lobehub/fluent-emoji-3d@1.1.0 …", flush=True)
    rows, count = [], 0
    (out / "images").mkdir(parents=True, exist_ok=True)
    with tarfile.open(fileobj=io.BytesIO(npm_tarball("@lobehub/fluent-emoji-3d", "1.1.0"))) as tar:
        for member in tar.getmembers():
            if not (member.isfile() and member.name.startswith("package/assets/") and member.name.endswith(".webp")):
                continue
            stem = Path(member.name).stem
            (out / "images" / f"{stem}.webp").write_bytes(tar.extractfile(member).read())
            count += 1
            if _code_key(stem) in tags:
                rows.append((f"images/{stem}", ", ".join(["fluent3d"] + tags[_code_key(stem)])))
    with open(out / "tags.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["id", "tags"])
        writer.writerows(sorted(rows))
    return count


BUILDERS = {"emoji": build_emoji, "fluent3d": build_fluent3d}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("dataset", choices=sorted(BUILDERS))
    parser.add_argument("out", type=Path, help="an empty or new folder")
    args = parser.parse_args(argv)
    out = args.out
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        print(f"{out} already holds files; give a new or empty folder", file=sys.stderr)
        return 2
    # Built beside OUT and moved into place whole, so a failed or interrupted download leaves no half-built
    # OUT; the .incomplete folder is this script's own (one a killed run left is cleared by the next).
    building = out.with_name(out.name + ".incomplete")
    shutil.rmtree(building, ignore_errors=True)
    building.mkdir(parents=True)
    try:
        count = BUILDERS[args.dataset](building)
    except (OSError, tarfile.TarError) as err:  # urllib's URLError is an OSError
        shutil.rmtree(building, ignore_errors=True)
        print(f"could not build {args.dataset} ({getattr(err, 'reason', err)}); check the network reaches "
              f"{REGISTRY}, then run the same command again", file=sys.stderr)
        return 1
    if out.exists():
        out.rmdir()  # empty, checked above
    building.rename(out)
    print(f"{count} images in {out}; train on them with: ganforge train --data {out} --minutes 20")
    return 0


if __name__ == "__main__":
    sys.exit(main())
