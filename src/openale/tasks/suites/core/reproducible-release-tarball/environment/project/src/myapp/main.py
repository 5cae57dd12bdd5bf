from myapp.util.text import slug


def main() -> None:
    print(slug("Hello, World"))


if __name__ == "__main__":
    main()
