"""Tags of images in a folder: a CSV of `id,tags` or a .txt sidecar beside each image.

Syntax of one image's tags (the same for a condition a user types): tags separated by commas, tabs
or newlines, each optionally suffixed
  `:N`  a count, as in the anime-face tag files (`blue hair:3`). A count is evidence that the tag
        applies, not how strongly, so any N ≥ 1 gives weight 1.0 — the multi-hot input of the usual
        tag-conditional GANs; N = 0 drops the tag.
  `=w`  an explicit weight in [0, 1] (`lake=0.3`: the share of the image a feature covers), kept as
        given; w = 0 drops the tag.
A suffix that is not a number is part of the tag (`re:zero`). A tag given twice keeps its largest weight.

The CSV: one line per image, `id,tags` (the id ends at the first comma or tab; a first line whose
tags read `tags` is a header). An id is the image's file name without extension (`0` for 0.jpg), or
its relative path with or without extension (`cats/0`). Images without tags and ids without images
are counted, not fatal; a file that names no image at all is. A line (or sidecar) that cannot be read —
no id, a bad count or weight, more than dataset.max_tags_per_image tags, a tag longer than
dataset.max_tag_chars, a sidecar that is not UTF-8 — is skipped and counted like a broken image, the
first few named; a file none of whose lines can be read is an error. A sidecar that resolves outside
the data folder (a symlink to /etc/passwd, say) is not read: it is skipped and counted. dataset.max_tags
and dataset.max_tags_per_image bound what a hostile file can make the networks grow to.
"""
from __future__ import annotations

import difflib
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from ..config import DatasetOptions
from ..errors import DataError

Tags = dict[str, float]  # one image's tags → weight in (0, 1]

DEFAULT_FILE = "tags.csv"
SIDECARS = "sidecar .txt files"  # FolderTags.source when the tags come from sidecars
SIDECAR_SUFFIX = ".txt"
SEPARATORS = re.compile(r"[,\t\r\n]")
SUFFIX = re.compile(r"^(.*?)\s*([:=])\s*([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)$")
SHOWN_CHARS = 60  # of an id or token quoted in a message: a hostile file's megabyte-long one is cut


class TagSyntaxError(DataError):
    """One image's tags that cannot be read: a tags file or sidecar skips and counts them (`problem`)."""

    def __init__(self, where: str, problem: str, fix: str):
        super().__init__(f"{where}: {problem}; {fix}")
        self.problem = problem


def shown(text: str) -> str:
    """`text` to quote in a message, cut to SHOWN_CHARS with its length when longer."""
    if len(text) <= SHOWN_CHARS:
        return text
    return f"{text[:SHOWN_CHARS]}… ({len(text):,} characters)"


def normalise(tag: str, lowercase: bool) -> str:
    """Whitespace collapsed; with `lowercase`, also lower-case with _ and - as spaces (Blue_Hair → blue hair)."""
    if lowercase:
        tag = re.sub(r"[_\-]", " ", tag).lower()
    return " ".join(tag.split())


def parse_tags(text: str, lowercase: bool, where: str, limit: int = 0, max_chars: int = 0) -> Tags:
    """'blue hair:3, lake=0.3' → {'blue hair': 1.0, 'lake': 0.3}; `where` starts error messages (TagSyntaxError);
    more than `limit` tags, or a tag longer than `max_chars` characters, is one (0: no limit)."""
    tags: Tags = {}
    for token in SEPARATORS.split(text):
        if limit and len(tags) > limit:
            raise TagSyntaxError(where, f"more than {limit} tags for one image",
                                 "raise dataset.max_tags_per_image if that is meant, or fix the file")
        token = token.strip().strip('"').strip()
        if not token:
            continue
        name, weight = token, 1.0
        match = SUFFIX.match(token)
        if match:
            name, mark, number = match.groups()
            if mark == ":":
                if not number.isdigit():
                    raise TagSyntaxError(where, f"count '{shown(token)}' is not a whole number",
                                         "write tag:N for a count or tag=w for a weight in [0, 1]")
                weight = 1.0 if number.strip("0") else 0.0  # not int(): a 5,000-digit count would overflow it
            else:
                weight = float(number)
                if not 0.0 <= weight <= 1.0:
                    raise TagSyntaxError(where, f"weight of '{shown(name)}' is {shown(number)}",
                                         "weights after '=' must be in [0, 1]")
        name = normalise(name, lowercase)
        if not name:
            raise TagSyntaxError(where, f"'{shown(token)}' has a count or weight but no tag name",
                                 "write e.g. 'blue hair:3'")
        if max_chars and len(name) > max_chars:
            raise TagSyntaxError(where, f"a tag of {len(name):,} characters, over dataset.max_tag_chars = {max_chars}",
                                 "shorten it, or raise dataset.max_tag_chars")
        if weight > 0:
            tags[name] = max(weight, tags.get(name, 0.0))
    return tags


def is_sidecar(path: Path, image_stems: set[Path]) -> bool:
    """A .txt beside an image of the same stem holds that image's tags; it is not a skipped file."""
    return path.suffix.lower() == SIDECAR_SUFFIX and path.with_suffix("") in image_stems


def find_tag_file(folder: Path, options: DatasetOptions) -> Path | None:
    """dataset.tags_file (as given, else inside the folder), or the folder's tags.csv; None: use sidecars."""
    if not options.tags_file:
        default = folder / DEFAULT_FILE
        return default if default.is_file() else None
    given = Path(options.tags_file).expanduser()
    for candidate in (given, folder / given):
        if candidate.is_file():
            return candidate
    raise DataError(f"tags file '{options.tags_file}' not found (looked in the working directory and {folder}); "
                    f"fix dataset.tags_file, or leave it empty to use {folder / DEFAULT_FILE} or .txt sidecars")


@dataclass
class Malformed:
    """Tag lines or sidecars that could not be read: skipped and counted, the first few named."""
    count: int = 0
    examples: list[str] = field(default_factory=list)  # "line 3: no image id before the tags"

    SHOWN = 3

    def add(self, where: str, problem: str) -> None:
        self.count += 1
        if len(self.examples) < self.SHOWN:
            self.examples.append(f"{where}: {problem}")

    def places(self) -> str:
        """'line 3, line 7, …': where the first few are."""
        wheres = [example.split(": ", 1)[0] for example in self.examples]
        return ", ".join(wheres) + (", …" if self.count > len(wheres) else "")


def read_tag_file(path: Path, options: DatasetOptions) -> tuple[list[tuple[int, str, Tags]], Malformed]:
    """The CSV's (line number, id, tags) rows, and the lines skipped as malformed."""
    try:
        text = path.read_text(encoding="utf-8-sig")  # -sig: spreadsheets often start CSVs with a BOM
    except UnicodeDecodeError:
        raise DataError(f"tags file {path} is not UTF-8 text; save it as a UTF-8 CSV of id,tags lines") from None
    except OSError as err:
        raise DataError(f"cannot read tags file {path} ({err.strerror}); make it readable") from None
    if "\0" in text:
        raise DataError(f"tags file {path} is binary, not a CSV; give a text file of id,tags lines")
    rows, malformed, first = [], Malformed(), None
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        image_id, *tail = re.split(r"[,\t]", line, maxsplit=1)
        rest = tail[0] if tail else ""  # an id alone: an image with no tags
        image_id = image_id.strip().strip('"').strip()
        if not rows and not malformed.count and rest.strip().strip('"').strip().lower() == "tags":
            continue  # the header
        try:
            if not image_id:
                raise TagSyntaxError(f"line {number}", "no image id before the tags", "each line is 'id,tags'")
            rows.append((number, image_id, parse_tags(rest, options.tags_lowercase, f"line {number}",
                                                      options.max_tags_per_image, options.max_tag_chars)))
        except TagSyntaxError as err:
            malformed.add(f"line {number}", err.problem)
            first = first or err
    if first and not rows:  # nothing to skip to: the first line's problem and its fix
        raise DataError(f"tags file {path} {first}"
                        + (f" (all {malformed.count} of its lines are malformed)" if malformed.count > 1 else ""))
    return rows, malformed


@dataclass
class FolderTags:
    """Each loaded image's tags (in load order), and what did not match."""
    source: str                         # the tags file, or "sidecar .txt files"
    tags: list[Tags]
    untagged: int                       # images with no tag (after tags_keep / tags_top)
    unknown_ids: list[str] = field(default_factory=list)  # ids in the tags file that name no image
    vocabulary_before: int = 0          # distinct tags before tags_keep / tags_top
    outside: int = 0                    # sidecars not read: they resolve outside the data folder
    dropped: list[tuple[str, int]] = field(default_factory=list)  # (tag, images) removed by tags_keep / tags_top
    malformed: Malformed = field(default_factory=Malformed)       # lines (or sidecars) skipped

    SHOWN_DROPPED = 8

    def summary(self) -> str:
        distinct = len({tag for tags in self.tags for tag in tags})
        kept = f"{distinct} of {self.vocabulary_before}" if distinct != self.vocabulary_before else str(distinct)
        text = f"{kept} tags from {self.source} (untagged images: {self.untagged}"
        if self.unknown_ids:
            text += f", ids without an image: {len(self.unknown_ids)}"
        if self.outside:
            text += f", sidecars outside the folder skipped: {self.outside}"
        if self.malformed.count:
            text += f", malformed {self.malformed_kind} skipped: {self.malformed.count} ({self.malformed.places()})"
        if self.dropped:
            listed = ", ".join(f"{tag} {count}" for tag, count in self.dropped[:self.SHOWN_DROPPED])
            more = f", … {len(self.dropped) - self.SHOWN_DROPPED} more" if len(self.dropped) > self.SHOWN_DROPPED else ""
            text += f"; dropped by tags_keep/tags_top: {listed}{more}"
        return text + ")"

    @property
    def malformed_kind(self) -> str:
        return "sidecars" if self.source == SIDECARS else "tag lines"

    def info(self) -> dict:
        info = {"source": self.source, "untagged": self.untagged, "unknown_ids": len(self.unknown_ids),
                "unknown_id_examples": [shown(i) for i in self.unknown_ids[:5]],
                "dropped": [tag for tag, _ in self.dropped]}
        if self.outside:
            info["sidecars_outside"] = self.outside
        if self.malformed.count:
            info.update(malformed=self.malformed.count, malformed_examples=self.malformed.examples)
        return info


def load_folder_tags(folder: Path, images: list[str], options: DatasetOptions) -> FolderTags | None:
    """Tags for `images` (relative paths of the loaded images); None when the folder has no tags."""
    tag_file = find_tag_file(folder, options)
    outside = 0
    if tag_file is not None:
        rows, malformed = read_tag_file(tag_file, options)
        per_image, unknown = _match_ids(tag_file, images, rows)
        source = str(tag_file)
    else:
        sidecars = [(folder / image).with_suffix(SIDECAR_SUFFIX) for image in images]
        if not any(path.is_file() for path in sidecars):
            return None
        inside = [_inside(path, folder) for path in sidecars]
        outside = sum(path.is_file() and not ok for path, ok in zip(sidecars, inside))
        malformed = Malformed()
        per_image = [_read_sidecar(path, Path(image).with_suffix(SIDECAR_SUFFIX).as_posix(), options, malformed)
                     if ok else {} for path, image, ok in zip(sidecars, images, inside)]
        unknown, source = [], SIDECARS
    counts = Counter(tag for tags in per_image for tag in tags)
    per_image = select(per_image, options.tags_keep, options.tags_top, options.tags_lowercase)
    kept = {tag for tags in per_image for tag in tags}
    if len(kept) > options.max_tags:
        raise DataError(f"{source} holds {len(kept)} distinct tags, over dataset.max_tags = {options.max_tags} (each "
                        f"tag widens both networks); keep the most frequent with dataset.tags_top=N, or raise "
                        f"dataset.max_tags")
    dropped = sorted(((tag, n) for tag, n in counts.items() if tag not in kept), key=lambda item: (-item[1], item[0]))
    return FolderTags(source=source, tags=per_image, untagged=sum(not tags for tags in per_image),
                      unknown_ids=unknown, vocabulary_before=len(counts), dropped=dropped, outside=outside,
                      malformed=malformed)


def _inside(path: Path, folder: Path) -> bool:
    """Whether `path`, links followed, stays inside `folder` (a missing path counts as inside: nothing to read)."""
    try:
        return path.resolve().is_relative_to(folder.resolve())
    except (OSError, RuntimeError):  # a symlink loop
        return False


def select(per_image: list[Tags], keep: str, top: int, lowercase: bool) -> list[Tags]:
    """Only the tags named in `keep` (comma list; empty: all), then only the `top` most frequent (0: all)."""
    counts = Counter(tag for tags in per_image for tag in tags)
    allowed = set(counts)
    if keep:
        wanted = [normalise(tag, lowercase) for tag in keep.split(",") if tag.strip()]
        for tag in wanted:
            if tag not in counts:
                raise DataError(f"dataset.tags_keep names '{tag}', which no image has; "
                                f"{closest_hint(tag, list(counts), lowercase)}")
        allowed = set(wanted)
    if top:
        allowed = set(sorted(allowed, key=lambda tag: (-counts[tag], tag))[:top])  # ties: alphabetical
    return [{tag: weight for tag, weight in tags.items() if tag in allowed} for tags in per_image]


def closest_hint(tag: str, known: list[str], lowercase: bool = True) -> str:
    """'closest known tags: blue hair, blond hair' (difflib), or a pointer to the vocabulary."""
    by_form = {normalise(name, lowercase): name for name in known}
    close = difflib.get_close_matches(normalise(tag, lowercase), list(by_form), n=3, cutoff=0.5)
    if close:
        return "closest known tags: " + ", ".join(by_form[form] for form in close)
    return "see the tag vocabulary with `ganforge data inspect`"


def _read_sidecar(path: Path, name: str, options: DatasetOptions, malformed: Malformed) -> Tags:
    """One image's sidecar tags; {} when it has none, or when it is malformed (then counted under `name`)."""
    if not path.is_file():
        return {}
    try:
        return parse_tags(path.read_text(encoding="utf-8-sig"), options.tags_lowercase, name,
                          options.max_tags_per_image, options.max_tag_chars)
    except TagSyntaxError as err:
        malformed.add(name, err.problem)
    except UnicodeDecodeError:
        malformed.add(name, "not UTF-8 text")
    except OSError as err:
        raise DataError(f"cannot read tag sidecar {path} ({err.strerror}); make it readable") from None
    return {}


def _match_ids(tag_file: Path, images: list[str], rows: list[tuple[int, str, Tags]]) -> tuple[list[Tags], list[str]]:
    """Each image's tags from the CSV rows, and the ids that name no image."""
    names: dict[str, set[int]] = {}  # every way an id may name an image → the images it names
    for index, image in enumerate(images):
        relative = Path(image)
        for key in {image, relative.with_suffix("").as_posix(), relative.name, relative.stem}:
            names.setdefault(key, set()).add(index)
    per_image: list[Tags] = [{} for _ in images]
    line_of: dict[int, int] = {}
    unknown = []
    for number, image_id, tags in rows:
        matches = names.get(image_id.replace("\\", "/").removeprefix("./"), set())
        if not matches:
            unknown.append(image_id)
            continue
        if len(matches) > 1:
            named = ", ".join(sorted(images[i] for i in matches)[:3])
            raise DataError(f"tags file {tag_file} line {number}: id '{shown(image_id)}' names {len(matches)} images "
                            f"({named}); use the image's relative path as its id")
        (index,) = matches
        if index in line_of:
            raise DataError(f"tags file {tag_file} line {number}: id '{shown(image_id)}' names {images[index]}, "
                            f"which line {line_of[index]} already tags; give each image one line")
        line_of[index], per_image[index] = number, tags
    if not line_of:
        ids = ", ".join(repr(shown(row[1])) for row in rows[:3]) or "none"
        examples = ", ".join(repr(Path(image).stem) for image in images[:3])
        raise DataError(f"tags file {tag_file} names none of the {len(images)} images (its ids: {ids}; "
                        f"image ids: {examples}); an id is the image's file name without extension")
    return per_image, unknown


OTHER = "other"  # the class of images that carry none of a group's tags


def group_labels(tags: list[list[str]], group: str, lowercase: bool = True) -> tuple[list[int], list[int], list[str]]:
    """Class labels from one group of mutually exclusive tags ("light skin tone, …, dark skin tone"): an
    image's class is the group tag it carries, `other` when it carries none. Images carrying several
    are left out (no single answer). Returns (kept image indices, their labels, class names)."""
    wanted = [normalise(tag, lowercase) for tag in group.split(",") if tag.strip()]
    known = {tag for image in tags for tag in image}
    for tag in wanted:
        if tag not in known:
            raise DataError(f"--tags names '{tag}', which no image has; {closest_hint(tag, sorted(known), lowercase)}")
    if len(set(wanted)) < 2:
        raise DataError(f"--tags {group!r} needs at least two different tags, e.g. "
                        f"--tags 'light skin tone, dark skin tone'")
    names = sorted(set(wanted)) + [OTHER]
    index = {name: i for i, name in enumerate(names)}
    kept, labels = [], []
    for i, image in enumerate(tags):
        found = [tag for tag in image if tag in index and tag != OTHER]
        if len(found) <= 1:
            kept.append(i)
            labels.append(index[found[0] if found else OTHER])
    return kept, labels, names
