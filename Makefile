# The two commands of the README. Both create or reuse .venv (see scripts/bootstrap.sh).
#   make demo   run the main job on embedded demo data
#   make test   lint, type-check and test (what .ci/run calls)
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python

.PHONY: demo test venv lint typecheck pytest bench clean

venv:
	@bash scripts/bootstrap.sh >/dev/null

demo: venv
	OMP_NUM_THREADS=1 $(VENV)/bin/editorbot demo $(DEMO_ARGS)

lint: venv
	$(PY) -m ruff check editorbot tests benchmarks
	$(PY) -m ruff format --check editorbot tests benchmarks

typecheck: venv
	$(PY) -m mypy

pytest: venv
	OMP_NUM_THREADS=1 $(PY) -m pytest $(PYTEST_ARGS)

test: lint typecheck pytest

bench: venv
	OMP_NUM_THREADS=1 $(PY) benchmarks/run_all.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
