# spinrl: two set-up commands on a fresh machine, `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
STAMP := $(VENV)/.installed

.PHONY: demo test bench lint docs serve-docs clean

# The venv is rebuilt when pyproject.toml changes. torch 2.13.0 goes in first, so that no dependency
# picks another version. Which build pip takes depends on the index: PyPI's Linux wheel is the CUDA build
# (several GB); TORCH_INDEX=https://download.pytorch.org/whl/cpu takes the CPU build instead.
TORCH_INDEX ?=
$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	$(PIP) install --quiet torch==2.13.0 $(if $(TORCH_INDEX),--index-url $(TORCH_INDEX))
	$(PIP) install --quiet -e ".[mujoco,box2d,atari,mpi,bench,video,dev,docs,ray,tune,track]"
	touch $(STAMP)

venv: $(STAMP)

demo: $(STAMP)
	$(PY) -m spinrl.demo

test: $(STAMP)
	$(PY) -m pytest -q tests

bench: $(STAMP)
	$(PY) benchmarks/run_all.py

# The site is built with --strict so that a broken link or a failing API-reference import fails the build.
docs: $(STAMP)
	$(VENV)/bin/mkdocs build --strict

serve-docs: $(STAMP)
	$(VENV)/bin/mkdocs serve

lint: $(STAMP)
	$(VENV)/bin/ruff check spinrl tests benchmarks examples
	$(VENV)/bin/ruff format --check spinrl tests benchmarks examples

clean:
	rm -rf $(VENV) build *.egg-info
