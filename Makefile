# Quick start: `make demo` and `make test`. Every target installs what it needs,
# idempotently: a fresh machine gets everything, a warm one skips straight on.
SHELL := /bin/bash
VENV  := .venv
PY    := $(VENV)/bin/python
ALE   := $(VENV)/bin/ale
STAMP := .make
SUDO  := $(shell [ "$$(id -u)" -eq 0 ] || echo sudo)
PYTEST_ARGS ?=
DEMO_ARGS ?=

.PHONY: setup system docker venv images test test-fast demo bench lint clean

setup: system docker venv images

system:
	@if ! command -v dockerd >/dev/null || ! command -v debootstrap >/dev/null \
	    || ! command -v pg_ctlcluster >/dev/null; then \
	  echo "installing docker.io, debootstrap and postgresql (the control plane's store tests)"; \
	  $(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq \
	    docker.io debootstrap postgresql >/dev/null; \
	fi

docker: system
	@scripts/ensure-docker.sh

venv: $(STAMP)/venv

# torch first, pinned: that version is on disk; letting a dependency pull
# "torch" would download gigabytes of CUDA wheels.
$(STAMP)/venv: pyproject.toml
	@test -x $(PY) || python3 -m venv $(VENV)
	$(VENV)/bin/pip install -q torch==2.13.0
	$(VENV)/bin/pip install -q -e '.[dev]'
	@mkdir -p $(STAMP) && touch $@

images: venv docker
	$(ALE) images bootstrap

test: setup
	$(VENV)/bin/pytest $(PYTEST_ARGS)

test-fast: setup
	$(VENV)/bin/pytest -m "not slow" $(PYTEST_ARGS)

# The closed loop: base model on held-out toy tasks, SFT + IPA per examples/quickstart.toml,
# held-out again; report in runs/demo, numbers in benchmarks/results/rl.json (~20-30 min).
demo: setup
	$(PY) scripts/demo.py $(DEMO_ARGS)

bench: setup
	$(PY) benchmarks/sandbox_bench.py
	$(PY) benchmarks/bench_harness.py
	cd benchmarks && ../$(PY) agent_bench.py
	$(PY) benchmarks/server_bench.py
	$(PY) benchmarks/rl_trainer_bench.py
	$(PY) benchmarks/rl_rollout_bench.py
	$(PY) benchmarks/rl_async_bench.py
	$(PY) benchmarks/rl_ipa_vs_grpo.py
	$(PY) benchmarks/safety_bench.py

lint: venv
	$(VENV)/bin/ruff check src tests benchmarks scripts
	$(VENV)/bin/ruff format --check src tests benchmarks scripts

clean:
	-$(ALE) sandbox gc
	rm -rf $(STAMP)
