import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

ORIG = Path("/app/calc")
OBJS = {"main.o", "parse.o", "format.o", "util.o"}
OLD_SRC = 200  # seconds in the past
OLD_BUILD = 100


def make(proj, *args, check=True):
    r = subprocess.run(["make", *args], cwd=proj, capture_output=True, text=True, timeout=60)
    if check:
        assert r.returncode == 0, r.stdout + r.stderr
    return r


@pytest.fixture()
def proj(tmp_path):
    dst = tmp_path / "calc"
    shutil.copytree(ORIG, dst, ignore=shutil.ignore_patterns("build", "app", "*.o", "*.d"))
    return dst


def age(proj):
    """Every source older than every build output, both well in the past."""
    now = time.time()
    for path in proj.rglob("*"):
        if path.is_file():
            t = now - (OLD_BUILD if "build" in path.relative_to(proj).parts else OLD_SRC)
            os.utime(path, (t, t))
    return now - OLD_BUILD


def touch(path):
    now = time.time()
    os.utime(path, (now, now))


def rebuilt(proj, threshold):
    """Files under build/ written after the aging."""
    return {p.name for p in (proj / "build").iterdir() if p.is_file() and p.stat().st_mtime > threshold + 1}


def built(proj):
    make(proj)
    return age(proj)


def objects_rebuilt(proj, threshold):
    return {n for n in rebuilt(proj, threshold) if n.endswith(".o")}


def test_full_build(proj):
    make(proj)
    names = {p.name for p in (proj / "build").iterdir()}
    assert OBJS | {"app"} <= names
    r = subprocess.run([str(proj / "build" / "app")], input="1000 2000\n-1\n", capture_output=True, text=True)
    assert r.stdout == "count: 3\ntotal: 2,999\n"
    out = make(proj, "-B", "-n").stdout
    for flag in ("-std=c11", "-Wall", "-Wextra", "-O2", "-Iinclude"):
        assert flag in out


def test_nothing_changed_nothing_rebuilt(proj):
    t = built(proj)
    make(proj)
    assert rebuilt(proj, t) == set()
    make(proj)
    assert rebuilt(proj, t) == set()


def test_changed_source_rebuilds_only_its_object(proj):
    t = built(proj)
    touch(proj / "src" / "format.c")
    make(proj)
    assert objects_rebuilt(proj, t) == {"format.o"}
    assert "app" in rebuilt(proj, t)


def test_direct_header_dependency(proj):
    t = built(proj)
    touch(proj / "include" / "config.h")
    make(proj)
    assert objects_rebuilt(proj, t) == {"main.o", "format.o"}
    assert "app" in rebuilt(proj, t)


def test_transitive_header_dependency(proj):
    t = built(proj)
    touch(proj / "include" / "util.h")  # included by util.c, and by parse.h (main.c, parse.c)
    make(proj)
    assert objects_rebuilt(proj, t) == {"main.o", "parse.o", "util.o"}


def test_parse_header(proj):
    t = built(proj)
    touch(proj / "include" / "parse.h")
    make(proj)
    assert objects_rebuilt(proj, t) == {"main.o", "parse.o"}


def test_new_include_is_tracked(proj):
    src = proj / "src" / "format.c"
    src.write_text(src.read_text().replace('#include "format.h"\n', '#include "format.h"\n#include "util.h"\n'))
    make(proj)
    t = age(proj)
    touch(proj / "include" / "util.h")
    make(proj)
    assert objects_rebuilt(proj, t) == {"main.o", "parse.o", "util.o", "format.o"}


def test_removed_header_does_not_break_build(proj):
    (proj / "include" / "extra.h").write_text("#define EXTRA 1\n")
    src = proj / "src" / "util.c"
    original = src.read_text()
    src.write_text('#include "extra.h"\n' + original)
    make(proj)
    t = age(proj)
    src.write_text(original)
    (proj / "include" / "extra.h").unlink()
    make(proj)
    assert objects_rebuilt(proj, t) == {"util.o"}


def test_new_source_file_is_built(proj):
    make(proj)
    t = age(proj)
    (proj / "src" / "extra.c").write_text("int extra_answer(void);\nint extra_answer(void) { return 42; }\n")
    make(proj)
    assert objects_rebuilt(proj, t) == {"extra.o"}
    assert "app" in rebuilt(proj, t)
    nm = subprocess.run(["nm", str(proj / "build" / "app")], capture_output=True, text=True).stdout
    assert "extra_answer" in nm


def test_make_test(proj):
    r = make(proj, "test")
    assert "small.in" in r.stdout
    assert (proj / "build" / "app").exists()
    cfg = proj / "include" / "config.h"
    cfg.write_text(cfg.read_text().replace("#define THOUSANDS_SEP ','", "#define THOUSANDS_SEP '.'"))
    r = make(proj, "test", check=False)
    assert r.returncode != 0
    assert "FAIL" in r.stdout


def test_clean(proj):
    make(proj)
    make(proj, "clean")
    assert not (proj / "build").exists()
    assert {p.name for p in (proj / "src").iterdir()} == {"main.c", "parse.c", "format.c", "util.c"}
    make(proj)
    assert (proj / "build" / "app").exists()


def test_parallel_build(proj):
    for _ in range(3):
        make(proj, "clean")
        make(proj, "-j8")
        r = subprocess.run([str(proj / "build" / "app")], input="5 5\n", capture_output=True, text=True)
        assert r.stdout == "count: 2\ntotal: 10\n"


def test_sources_untouched():
    assert "THOUSANDS_SEP ','" in (ORIG / "include" / "config.h").read_text()
    assert (ORIG / "tests" / "cases" / "big.out").read_text() == "count: 5\ntotal: 1,235,478\n"
