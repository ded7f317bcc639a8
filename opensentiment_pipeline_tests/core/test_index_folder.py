"""The search index folder is replaced as a whole; a folder the project did not write is never deleted."""

import pytest

from opensentiment_pipeline.core.vectors import search


def test_a_non_empty_folder_without_the_marker_is_refused_and_kept(tmp_path):
    home = tmp_path / "home"  # what a mistyped index_dir could point at
    (home / "Documents").mkdir(parents=True)
    (home / "notes.txt").write_text("keep me")
    with pytest.raises(FileExistsError, match=r"home is not a search index folder \(no \.opensentiment-index "
                                              r"marker\) and holds 2 entries, e.g. \['Documents', 'notes.txt'\]"):
        with search.replacing_folder(home) as tmp:
            (tmp / "vectors.faiss").write_text("new index")
    assert sorted(p.name for p in home.iterdir()) == ["Documents", "notes.txt"]
    assert (home / "notes.txt").read_text() == "keep me"
    assert [p.name for p in tmp_path.iterdir()] == ["home"]  # no temp folder left beside it


def test_a_marked_folder_is_replaced_and_the_new_one_carries_the_marker(tmp_path):
    target = tmp_path / "index"
    with search.replacing_folder(target) as tmp:
        (tmp / "ids.json").write_text("[1]")
    assert sorted(p.name for p in target.iterdir()) == [search.MARKER_FILE, "ids.json"]
    with search.replacing_folder(target) as tmp:
        (tmp / "ids.json").write_text("[2]")
    assert (target / "ids.json").read_text() == "[2]"
    assert [p.name for p in tmp_path.iterdir()] == ["index"]


def test_an_empty_folder_is_replaced(tmp_path):
    target = tmp_path / "index"
    target.mkdir()
    with search.replacing_folder(target) as tmp:
        (tmp / "ids.json").write_text("[]")
    assert (target / search.MARKER_FILE).is_file()


def test_an_old_index_without_the_marker_is_refused_with_how_to_fix_it(tmp_path):
    target = tmp_path / "index"
    target.mkdir()
    (target / search.INDEX_FILE).write_text("built before the marker existed")
    with pytest.raises(FileExistsError, match="delete it yourself and build again"):
        with search.replacing_folder(target):
            pass
    assert (target / search.INDEX_FILE).read_text() == "built before the marker existed"


@pytest.mark.parametrize("kind", ["file", "symlink"])
def test_a_file_or_a_symlink_is_refused(tmp_path, kind):
    real = tmp_path / "real"
    real.mkdir()
    (real / search.MARKER_FILE).write_text("")  # even a link to a marked folder: its target would be left behind
    target = tmp_path / "index"
    if kind == "file":
        target.write_text("data")
    else:
        target.symlink_to(real)
    with pytest.raises(FileExistsError, match="is not a plain folder"):
        with search.replacing_folder(target):
            pass
    assert target.exists() and (real / search.MARKER_FILE).exists()


def test_a_folder_that_loses_its_marker_during_the_build_is_kept(tmp_path):
    target = tmp_path / "index"
    with search.replacing_folder(target) as tmp:
        (tmp / "ids.json").write_text("[1]")
    with pytest.raises(FileExistsError, match="no .opensentiment-index marker"):
        with search.replacing_folder(target) as tmp:
            (target / search.MARKER_FILE).unlink()  # someone pointed another tool at the folder meanwhile
            (target / "theirs.txt").write_text("x")
    assert sorted(p.name for p in target.iterdir()) == ["ids.json", "theirs.txt"]
