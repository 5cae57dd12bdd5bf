from pathlib import Path


def test_cat_replaced_by_dog():
    text = Path("/app/pets.txt").read_text()
    assert (
        text.rstrip("\n")
        == "I have a dog.\nThe dog sleeps all day.\nMy dog likes fish.\nBirds are loud."
    )
