#!/bin/bash
set -euo pipefail
cd /app/calc
cat > Makefile <<'MK'
CC       = gcc
CFLAGS   = -std=c11 -Wall -Wextra -O2 -Iinclude
DEPFLAGS = -MMD -MP

SRCS := $(wildcard src/*.c)
OBJS := $(patsubst src/%.c,build/%.o,$(SRCS))
DEPS := $(OBJS:.o=.d)

all: build/app

build/app: $(OBJS)
	$(CC) $(CFLAGS) -o $@ $(OBJS)

build/%.o: src/%.c | build
	$(CC) $(CFLAGS) $(DEPFLAGS) -c $< -o $@

build:
	mkdir -p build

test: build/app
	tests/run_tests.sh build/app

clean:
	rm -rf build

.PHONY: all test clean

-include $(DEPS)
MK
rm -f app
make clean
make -j4
make test
