from pathlib import Path

CACHE = Path("/app/cache")
KEEP = {"index.html": "<p>home</p>\n", "new_data.bin": "fresh\n", "bold_font.ttf": "font\n"}


def test_old_files_gone():
    assert list(CACHE.glob("old_*")) == []


def test_other_files_kept():
    assert sorted(p.name for p in CACHE.iterdir()) == sorted(KEEP)
    for name, content in KEEP.items():
        assert (CACHE / name).read_text() == content
