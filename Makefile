# Two commands matter on a fresh machine: `make demo` and `make test`.
# Both create .venv on first use (make setup).
PY      := .venv/bin/python
PIP     := .venv/bin/pip -q --disable-pip-version-check
export PYTHONUNBUFFERED := 1
export PREFECT_SERVER_ANALYTICS_ENABLED := false

.PHONY: setup demo test test-fast lint typecheck audit bench bench-gpu clean

.venv/.installed: pyproject.toml constraints.txt
	python3 -m venv .venv
	$(PIP) install --upgrade pip
	# torch first, pinned: the local CPU build; then the project under the same pins
	$(PIP) install -c constraints.txt torch==2.13.0
	$(PIP) install -c constraints.txt -e ".[test]"
	touch $@

setup: .venv/.installed

demo: setup
	.venv/bin/stf demo

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
