from pathlib import Path

WORK = Path("/app/work")
KEEP = {"notes.txt": "keep me\n", "data.csv": "a,b\n1,2\n", "tmp.log": "not a tmp file\n"}


def test_tmp_files_gone():
    assert list(WORK.glob("*.tmp")) == []


def test_other_files_kept():
    assert sorted(p.name for p in WORK.iterdir()) == sorted(KEEP)
    for name, content in KEEP.items():
        assert (WORK / name).read_text() == content
