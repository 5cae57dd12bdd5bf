from myapp.util.text import slug


def test_slug():
    assert slug("Hello, World") == "hello-world"
