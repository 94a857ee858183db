# Two commands for a fresh machine: `make demo` and `make test` (each sets everything up first).
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.10 2>/dev/null || echo $$HOME/.pyenv/versions/3.10.13/bin/python)
VENV := .venv
BIN := $(VENV)/bin
ROOT ?= ./inatvision-root
SAMPLE ?= ./sample-export
export TF_USE_LEGACY_KERAS := 1
export TF_CPP_MIN_LOG_LEVEL := 2
export PYTHONWARNINGS := ignore

.PHONY: install demo test test-all clean

$(VENV)/.installed: requirements.lock pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip==24.2
	$(BIN)/python -m pip install -q -r requirements.lock
	$(BIN)/python -m pip install -q --no-deps -e .
	touch $@

install: $(VENV)/.installed

demo: install  ## generate the sample export and run the whole pipeline on it
	test -f $(SAMPLE)/observations.csv || $(BIN)/inatvision sample-export $(SAMPLE)
	$(BIN)/inatvision run --export $(SAMPLE) --root $(ROOT)

test: install  ## the CI suite (slow tests excluded)
	$(BIN)/python -m pytest -q -n 2 --dist loadfile

test-all: install
	$(BIN)/python -m pytest -q -n 2 --dist loadfile -m ""

clean:
	rm -rf $(ROOT) $(SAMPLE)
