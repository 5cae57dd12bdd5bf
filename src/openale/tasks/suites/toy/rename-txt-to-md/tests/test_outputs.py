from pathlib import Path

DOCS = Path("/app/docs")
EXPECTED = {"intro": "Welcome.\n", "setup": "Run make.\n", "usage": "Call the tool.\n"}


def test_all_renamed_to_md():
    assert sorted(p.name for p in DOCS.iterdir()) == sorted(n + ".md" for n in EXPECTED)


def test_contents_kept():
    for name, content in EXPECTED.items():
        assert (DOCS / (name + ".md")).read_text() == content
