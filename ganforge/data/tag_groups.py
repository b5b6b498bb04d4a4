"""One-of tag groups: sets of tags of which an image carries at most one (skin tone, hair colour, style).

A tag-conditional run embeds each group on its own and learns "unspecified" (none of the group's
tags) as a value of its own (models/conditioning.py), so that a request may name some groups only;
the tags in no group are free, multi-label tags. Where the groups come from, by `dataset.tag_groups`:
  ""         the groups the source declares (a folder's `tag_groups.txt`, one 'name: tag, tag, …' line
             per group; shapes: colour, shape, size, background), else inferred (`infer_groups`);
  "none"     no groups: every tag is free (one averaged embedding of all of an image's tags);
  a declaration, the syntax of tag_groups.txt with ";" between groups:
             "skin tone: light skin tone, dark skin tone; hair: red hair, blond hair".
"""
from __future__ import annotations

from collections import Counter
from pathlib import Path

from ..errors import DataError
from .tags import closest_hint, normalise

Groups = dict[str, list[str]]  # group name → its tags, in the order declared (inferred: by frequency)

FILE = "tag_groups.txt"
NONE = "none"
UNSPECIFIED = "unspecified"  # the value of a group for an image that carries none of its tags
SHOWN_NAME_TAGS = 2          # an inferred group without a shared word is named by its first tags
# Inference's tolerances. A shared last word says the tags are meant as alternatives, so a few images
# with two of them (an emoji of two people of different skin tones: 520 of the emoji's 3,750 toned
# images) do not break the group; their condition then shares the group between its tags.
MOST_WITH_TWO = 0.2          # rule 1: the most images carrying two or more of a group's tags, as a share of those carrying any
LEAST_COVERED = 0.9          # rule 2: the fewest tagged images a group without a shared word must tag
RULE2_TAGS = 200             # rule 2 looks among this many most frequent tags: its greedy search is quadratic


def parse_groups(text: str, where: str, lowercase: bool = True) -> Groups:
    """'skin tone: light skin tone, dark skin tone; hair: red hair, bald' (or one group per line)."""
    groups: Groups = {}
    for number, line in enumerate(text.replace(";", "\n").splitlines(), start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        name, colon, members = line.partition(":")
        tags = [normalise(tag, lowercase) for tag in members.split(",") if tag.strip()]
        if not colon or not name.strip() or len(set(tags)) < 2:
            raise DataError(f"{where}: group {number} ('{line[:60]}') is not 'name: tag, tag, …' with at least two "
                            f"different tags; write e.g. 'hair: red hair, blond hair'")
        if name.strip() in groups:
            raise DataError(f"{where}: group '{name.strip()}' is declared twice; give each group one line")
        groups[name.strip()] = list(dict.fromkeys(tags))
    return groups


def check_groups(groups: Groups, tags: list[list[str]], where: str, lowercase: bool = True) -> None:
    """Every declared tag is one the images carry, and in one group only."""
    known = {tag for image in tags for tag in image}
    owner: dict[str, str] = {}
    for name, members in groups.items():
        for tag in members:
            if tag not in known:
                raise DataError(f"{where}: group '{name}' names '{tag}', which no image carries (after "
                                f"dataset.tags_keep/tags_top); {closest_hint(tag, sorted(known), lowercase)}")
            if tag in owner:
                raise DataError(f"{where}: '{tag}' is in groups '{owner[tag]}' and '{name}'; a tag belongs to one group")
            owner[tag] = name


def infer_groups(tags: list[list[str]]) -> Groups:
    """Groups read off the tags, by two rules:
    1. tags that end in the same word form a group named by their common ending ("red hair, blond hair"
       → hair; "light skin tone, dark skin tone" → skin tone), as tag sets for faces write them, unless
       more than MOST_WITH_TWO of the images carrying any of them carry two or more (then they stay free);
    2. of the RULE2_TAGS most frequent tags left, tags no image carries two of and that together tag at
       least LEAST_COVERED of the tagged images form a group (style: twemoji, noto; a category per
       image), built greedily from the most frequent tag."""
    counts = Counter(tag for image in tags for tag in image)
    by_frequency = sorted(counts, key=lambda t: (-counts[t], t))
    groups: Groups = {}
    by_last_word: dict[str, list[str]] = {}
    for tag in by_frequency:
        if " " in tag:
            by_last_word.setdefault(tag.rsplit(" ", 1)[1], []).append(tag)
    with_any, with_two = Counter(), Counter()  # per last word: images carrying one or more, two or more
    for image in tags:
        words = Counter(tag.rsplit(" ", 1)[1] for tag in set(image) if " " in tag)
        with_any.update(words.keys())
        with_two.update(word for word, n in words.items() if n >= 2)
    for word, members in by_last_word.items():
        if len(members) >= 2 and with_two[word] <= MOST_WITH_TWO * with_any[word]:
            groups[_common_ending(members)] = members
    grouped = {tag for members in groups.values() for tag in members}
    candidates = [tag for tag in by_frequency if tag not in grouped][:RULE2_TAGS]
    kept = set(candidates)
    together: dict[str, set[str]] = {tag: set() for tag in candidates}  # the candidates each one meets on an image
    for image in tags:
        present = kept.intersection(image)
        for tag in present:
            together[tag].update(present - {tag})
    tagged = sum(bool(image) for image in tags)
    for first in candidates:
        if first in grouped:
            continue
        members, blocked = [first], set(together[first])
        for tag in candidates:
            if tag not in grouped and tag not in members and tag not in blocked:
                members.append(tag)
                blocked |= together[tag]
        if len(members) >= 2 and sum(counts[m] for m in members) >= LEAST_COVERED * tagged:
            name = ", ".join(members[:SHOWN_NAME_TAGS]) + (", …" if len(members) > SHOWN_NAME_TAGS else "")
            groups[name] = members
            grouped.update(members)
    return groups


def _common_ending(members: list[str]) -> str:
    words = [tag.split() for tag in members]
    ending: list[str] = []
    while all(len(w) > len(ending) for w in words) and len({tuple(w[len(w) - len(ending) - 1:]) for w in words}) == 1:
        ending = words[0][len(words[0]) - len(ending) - 1:]
    return " ".join(ending)


def read_group_file(folder: Path, lowercase: bool = True) -> Groups | None:
    """The groups a folder's tag_groups.txt declares; None when it has none."""
    path = folder / FILE
    if not path.is_file():
        return None
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as err:
        raise DataError(f"cannot read {path} ({err}); make it a readable UTF-8 text file of 'name: tag, tag' "
                        f"lines, or delete it") from None
    return parse_groups(text, str(path), lowercase)


def resolve_groups(option: str, tags: list[list[str]], declared: Groups | None, declared_by: str,
                   lowercase: bool = True) -> tuple[Groups, str]:
    """The groups of these tags, by `dataset.tag_groups` (`option`), and where they came from.
    `declared`: the groups the source gives (a folder's tag_groups.txt, shapes' attributes), said to be
    `declared_by`."""
    option = option.strip()
    if option.lower() == NONE:
        return {}, "none (dataset.tag_groups = none)"
    if option:
        groups, source = parse_groups(option, "dataset.tag_groups", lowercase), "dataset.tag_groups"
    elif declared:
        groups, source = declared, declared_by
    else:
        return infer_groups(tags), "inferred: tags sharing their last word, or splitting the images"
    check_groups(groups, tags, source, lowercase)
    return dict(groups), source


def group_counts(groups: Groups, tags: list[list[str]]) -> dict[str, dict[str, int]]:
    """Per group, the images carrying each of its tags, and `unspecified`: those carrying none."""
    counts = Counter(tag for image in tags for tag in image)
    out = {}
    for name, members in groups.items():
        member_set = set(members)
        out[name] = {tag: counts[tag] for tag in members}
        out[name][UNSPECIFIED] = sum(not member_set.intersection(image) for image in tags)
    return out
