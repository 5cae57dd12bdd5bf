import os
import subprocess

import pytest

SRC = "/app/ringbuf/src/ringbuf.c"
INC = "/app/ringbuf/include"
BIN = "/tmp/ringbuf_harness"


@pytest.fixture(scope="module")
def harness():
    # the header must be the original one
    header = open(os.path.join(INC, "ringbuf.h")).read()
    for decl in ("size_t rb_write_overwrite(ringbuf *rb, const void *data, size_t len);",
                 "long rb_find(const ringbuf *rb, unsigned char byte);"):
        assert decl in header
    r = subprocess.run(
        ["gcc", "-std=c11", "-Wall", "-Wextra", "-Werror", "-O1", "-g",
         "-fsanitize=address,undefined", "-fno-sanitize-recover=all",
         "-I", INC, "/tests/harness.c", SRC, "-o", BIN],
        capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    return BIN


@pytest.mark.parametrize("name", ["basic", "wraparound", "overwrite", "binary", "many", "fuzz"])
def test_harness(harness, name):
    env = dict(os.environ, ASAN_OPTIONS="detect_leaks=1:abort_on_error=0", UBSAN_OPTIONS="print_stacktrace=1")
    r = subprocess.run([harness, name], capture_output=True, text=True, timeout=60, env=env)
    assert r.returncode == 0, (r.stdout + r.stderr)[-3000:]
    assert r.stdout.strip() == f"ok {name}"


def test_compiles_without_sanitizers_and_warnings():
    r = subprocess.run(["gcc", "-std=c11", "-Wall", "-Wextra", "-Werror", "-pedantic", "-O2",
                        "-I", INC, "-c", SRC, "-o", "/tmp/ringbuf.o"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
