from pathlib import Path

PHOTOS = Path("/app/photos")
EXPECTED = {
    "beach": "fake image: beach\n",
    "cat": "fake image: cat\n",
    "sunset": "fake image: sunset\n",
}


def test_all_renamed_to_jpg():
    assert sorted(p.name for p in PHOTOS.iterdir()) == sorted(n + ".jpg" for n in EXPECTED)


def test_contents_kept():
    for name, content in EXPECTED.items():
        assert (PHOTOS / (name + ".jpg")).read_text() == content
