# Two commands matter on a fresh machine: `make demo` and `make test`.
# Both create .venv on first use: `make demo` installs only what the demo needs (the
# core package), `make test` (make setup) adds the test tools, flows and notebook runner;
# `make notebooks` adds JupyterLab (the `viz` extra) and opens the notebooks on demo-out.
PY      := .venv/bin/python
PIP     := .venv/bin/pip -q --disable-pip-version-check
export PYTHONUNBUFFERED := 1
export PREFECT_SERVER_ANALYTICS_ENABLED := false

.PHONY: setup setup-demo demo notebooks test test-fast lint typecheck audit bench bench-gpu clean

# the core package only: what `stf run` and `stf demo` need
.venv/.core: pyproject.toml constraints.txt
	python3 -m venv .venv
	$(PIP) install --upgrade pip
	# torch first, pinned: the local CPU build; then the project under the same pins
	$(PIP) install -c constraints.txt torch==2.13.0
	$(PIP) install -c constraints.txt -e .
	touch $@

# + test tools, Prefect flows and the notebook runner
.venv/.installed: .venv/.core
	$(PIP) install -c constraints.txt -e ".[test]"
	touch $@

setup: .venv/.installed

setup-demo: .venv/.core

demo: setup-demo
	.venv/bin/stf --log-file demo-out/demo.log demo

# JupyterLab on the notebooks, reading the run in demo-out/ (STF_DEMO_OUT overrides)
notebooks: setup-demo
	$(PIP) install -c constraints.txt -e ".[notebooks,viz]"
	STF_DEMO_OUT="$${STF_DEMO_OUT:-$(CURDIR)/demo-out}" .venv/bin/jupyter lab notebooks/

test: setup
	$(PY) -m pytest -q

test-fast: setup
	$(PY) -m pytest -q -m "not slow"

lint: setup
	.venv/bin/ruff check pipeline flows tests benchmarks
	.venv/bin/ruff format --check pipeline flows tests benchmarks

typecheck: setup
	.venv/bin/mypy

audit: setup
	# fails on a known vulnerability; an unreachable service is a printed warning
	$(PY) .ci/audit.py .venv/bin/pip-audit

bench: setup
	$(PY) -m benchmarks.run

# Every GPU measurement in <= 8 min (CPU dry run without CUDA); results under $OUT.
# No setup dependency: the GPU machine has no network, use its own torch (GPU_PY=python3).
GPU_PY ?= $(if $(wildcard $(PY)),$(PY),python3)
bench-gpu:
	$(GPU_PY) -m benchmarks.gpu_check --out "$${OUT:-gpu-check-out}" $(GPU_CHECK_ARGS)

clean:
	rm -rf demo-out demo-world .pytest_cache .mypy_cache .ruff_cache
