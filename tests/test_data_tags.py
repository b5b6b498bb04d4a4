"""Tags of image folders: CSV and sidecar syntax, spelling merges, selection, counting, errors."""
import pytest
from PIL import Image

from ganforge.cli import main
from ganforge.config import DatasetOptions
from ganforge.data import load_dataset
from ganforge.data.tags import parse_tags
from ganforge.errors import ConfigError, DataError


def images(folder, *names):
    for name in names:
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (8, 8), "red").save(path)


@pytest.fixture
def options(tmp_path):
    return DatasetOptions(cache_dir=str(tmp_path / "cache"))


def tags_of(data):
    weights = data.tag_weights or [[1.0] * len(tags) for tags in data.tags]
    return [dict(zip(tags, w)) for tags, w in zip(data.tags, weights)]


def test_parse_counts_weights_and_names_with_colons():
    assert parse_tags("blue hair:3\tlong hair:12", True, "x") == {"blue hair": 1.0, "long hair": 1.0}
    assert parse_tags("lake=0.3, mountain = .6\nre:zero, sky:0, sea=0", True, "x") == \
        {"lake": 0.3, "mountain": 0.6, "re:zero": 1.0}
    assert parse_tags("Blue_Hair=0.5, blue-hair=0.8,  BLUE   hair=0.2", True, "x") == {"blue hair": 0.8}
    assert parse_tags("Blue_Hair, blue hair", False, "x") == {"Blue_Hair": 1.0, "blue hair": 1.0}
    with pytest.raises(DataError, match=r"req: weight of 'lake' is 1.5; weights after '=' must be in \[0, 1\]"):
        parse_tags("lake=1.5", True, "req")
    with pytest.raises(DataError, match=r"count 'lake:2.5' is not a whole number"):
        parse_tags("lake:2.5", True, "req")
    with pytest.raises(DataError, match="has a count or weight but no tag name"):
        parse_tags(":3", True, "req")


def test_csv_with_header_tabs_counts_weights_and_unmatched_ids(tmp_path, options):
    folder = tmp_path / "faces"
    images(folder, "0.png", "1.png", "2.jpg", "3.png", "4.png")
    (folder / "tags.csv").write_text(
        "id,tags\n"
        "0,blue hair:3\tlong hair:12\n"
        "1,Blue_Hair, smile=0.6,  blue  hair\n"
        '2.jpg,"red eyes, long_hair:0"\n'
        "3\n"
        "ghost,smile\n")
    data = load_dataset(str(folder), 8, 3, options)
    assert len(data.data) == 5 and data.info["skipped"] == {}  # tags.csv is not a skipped image
    assert tags_of(data) == [{"blue hair": 1.0, "long hair": 1.0}, {"blue hair": 1.0, "smile": 0.6},
                             {"red eyes": 1.0}, {}, {}]
    assert data.info["tags"] == {"source": str(folder / "tags.csv"), "untagged": 2, "unknown_ids": 1,
                                 "unknown_id_examples": ["ghost"], "dropped": []}
    assert data.info["summary"].endswith(f"; 4 tags from {folder / 'tags.csv'} (untagged images: 2, "
                                         f"ids without an image: 1)")
    assert data.labels is None


def test_csv_without_header_relative_path_ids_and_exact_spelling(tmp_path, options):
    folder = tmp_path / "photos"
    images(folder, "a/x.png", "b/x.png", "top.png")
    (folder / "tags.csv").write_text("a/x,Blue_Hair\nb/x.png\tblue hair\ttall\ntop,tall\n")
    data = load_dataset(str(folder), 8, 3, DatasetOptions(cache_dir=options.cache_dir, tags_lowercase=False))
    assert tags_of(data) == [{"Blue_Hair": 1.0}, {"blue hair": 1.0, "tall": 1.0}, {"tall": 1.0}]
    assert data.tag_weights is None  # every weight is 1


def test_keep_list_then_top_n(tmp_path, options):
    folder = tmp_path / "faces"
    images(folder, *(f"{i}.png" for i in range(4)))
    (folder / "tags.csv").write_text("0,a,b,c\n1,a,b\n2,b,d\n3,c,d\n")  # a 2, b 3, c 2, d 2
    top = DatasetOptions(cache_dir=options.cache_dir, tags_top=2)
    assert load_dataset(str(folder), 8, 3, top).tags == [["a", "b"], ["a", "b"], ["b"], []]  # ties: alphabetical
    kept = DatasetOptions(cache_dir=options.cache_dir, tags_keep="D, c,A", tags_top=2)
    data = load_dataset(str(folder), 8, 3, kept)
    assert data.tags == [["a", "c"], ["a"], [], ["c"]]  # kept a, c, d; the two most frequent of those: a, c
    # What was dropped is named, most frequent first, with the images that carried it.
    assert (f"; 2 of 4 tags from {folder / 'tags.csv'} (untagged images: 1; dropped by tags_keep/tags_top: b 3, d 2)"
            in data.info["summary"])
    assert data.info["tags"]["dropped"] == ["b", "d"]
    with pytest.raises(DataError, match=r"tags_keep names 'bb', which no image has; closest known tags: b"):
        load_dataset(str(folder), 8, 3, DatasetOptions(cache_dir=options.cache_dir, tags_keep="bb"))


def test_sidecar_txt_files(tmp_path, options):
    folder = tmp_path / "pics"
    images(folder, "a.png", "b.png", "sub/c.jpg")
    (folder / "a.txt").write_text("red\nBig-Star:2, sky=0.25\n")
    (folder / "sub" / "c.txt").write_text("red")
    (folder / "notes.txt").write_text("not beside any image")
    data = load_dataset(str(folder), 8, 3, options)
    assert tags_of(data) == [{"red": 1.0, "big star": 1.0, "sky": 0.25}, {}, {"red": 1.0}]
    assert data.info["skipped"] == {"not images": 1}  # notes.txt; the sidecars are not counted
    assert data.info["tags"]["source"] == "sidecar .txt files" and data.info["tags"]["untagged"] == 1


def test_folder_without_tags_has_none(tmp_path, options):
    images(tmp_path / "plain", "a.png")
    data = load_dataset(str(tmp_path / "plain"), 8, 3, options)
    assert data.tags is None and "tags" not in data.info


def test_tags_are_reread_on_a_cache_hit(tmp_path, options):
    folder = tmp_path / "faces"
    images(folder, "0.png", "1.png")
    (folder / "tags.csv").write_text("0,smile\n")
    assert load_dataset(str(folder), 8, 3, options).tags == [["smile"], []]
    (folder / "tags.csv").write_text("0,smile\n1,frown\n")
    again = load_dataset(str(folder), 8, 3, options)
    assert again.info["cache"] == "hit" and again.tags == [["smile"], ["frown"]]


def test_explicit_tags_file_outside_the_folder(tmp_path, options):
    images(tmp_path / "faces", "0.png")
    (tmp_path / "labels.csv").write_text("0,smile\n")
    explicit = DatasetOptions(cache_dir=options.cache_dir, tags_file=str(tmp_path / "labels.csv"))
    assert load_dataset(str(tmp_path / "faces"), 8, 3, explicit).tags == [["smile"]]
    missing = DatasetOptions(cache_dir=options.cache_dir, tags_file="nope.csv")
    with pytest.raises(DataError, match=r"tags file 'nope.csv' not found .*fix dataset.tags_file"):
        load_dataset(str(tmp_path / "faces"), 8, 3, missing)


@pytest.mark.parametrize("content, message", [
    ("0,lake=2\n", r"tags.csv line 1: weight of 'lake' is 2; weights after '=' must be in \[0, 1\]"),
    (",smile\n,frown\n", r"tags.csv line 1: no image id before the tags; .* \(all 2 of its lines are malformed\)"),
    ("0,smile\n0.png,frown\n", r"tags.csv line 2: id '0.png' names 0.png, which line 1 already tags"),
    ("7,smile\n8,frown\n", r"tags.csv names none of the 2 images \(its ids: '7', '8'; image ids: '0', '1'\)"),
    ("", r"tags.csv names none of the 2 images \(its ids: none"),
])
def test_malformed_tag_files_are_one_line_errors(tmp_path, options, content, message):
    folder = tmp_path / "faces"
    images(folder, "0.png", "1.png")
    (folder / "tags.csv").write_text(content)
    with pytest.raises(DataError, match=message):
        load_dataset(str(folder), 8, 3, options)


def test_binary_tag_file_and_ambiguous_ids(tmp_path, options):
    folder = tmp_path / "faces"
    images(folder, "a/x.png", "b/x.png")
    (folder / "tags.csv").write_bytes(b"\x89PNG\r\n\x1a\n\0\0\0")
    with pytest.raises(DataError, match=r"tags.csv is (binary|not UTF-8)"):
        load_dataset(str(folder), 8, 3, options)
    (folder / "tags.csv").write_text("x,smile\n")
    with pytest.raises(DataError, match=r"id 'x' names 2 images \(a/x.png, b/x.png\); use the image's relative path"):
        load_dataset(str(folder), 8, 3, options)


def test_tag_options_are_for_folders_only():
    with pytest.raises(ConfigError, match="dataset.tags_file applies to image folders, not to shapes"):
        load_dataset("shapes", 32, 3, DatasetOptions(size=10, tags_file="tags.csv"))


def test_data_inspect_shows_the_vocabulary_and_what_did_not_match(tmp_path, capsys):
    folder = tmp_path / "faces"
    images(folder, "0.png", "1.png", "2.png")
    (folder / "tags.csv").write_text("0,smile,hat\n1,smile\nghost,hat\n")
    assert main(["data", "inspect", str(folder), "--cache-dir", str(tmp_path / "cache")]) == 0
    out = capsys.readouterr().out
    assert "tags (2): smile 2, hat 1" in out
    assert f"tags from {folder / 'tags.csv'}; untagged images: 1; tag ids without an image: 1 (e.g. ghost)" in out
