# kept for one more release; see docs/changelog.log.md
def slug(s):
    return s.lower().replace(" ", "-")
