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

.PHONY: install browser demo test test-all image test-containers clean

$(VENV)/.installed: requirements.lock pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -qq --upgrade pip==24.2
	$(BIN)/python -m pip install -qq -r requirements.lock
	$(BIN)/python -m pip install -qq --no-deps -e .
	touch $@

install: $(VENV)/.installed

demo: install  ## generate the sample export and run the whole pipeline on it
	test -f $(SAMPLE)/observations.csv || $(BIN)/inatvision sample-export $(SAMPLE)
	$(BIN)/inatvision run --export $(SAMPLE) --root $(ROOT)

browser:  ## Debian's chromium: the tests render the reports as a browser shows them
	command -v chromium >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }

test: install browser  ## the CI suite (slow tests excluded)
	$(BIN)/python -m pytest -q -n 2 --dist loadfile

test-all: install browser  ## every test but the container scenarios
	$(BIN)/python -m pytest -q -n 2 --dist loadfile -m "not containers"

IMAGE ?= localhost/inatvision:dev
image:  ## the pipeline image, built here from Debian's packages and this machine's Python 3.10
	kubeflow/local_image.sh build $(IMAGE)

test-containers: install image  ## the compiled spec, every step in a podman container of the image
	kubeflow/local_image.sh build localhost/inatvision:deps --target deps  # the bad image: no package (cached)
	INATVISION_IMAGE=$(IMAGE) $(BIN)/python -m pytest -q -m containers tests/test_containers.py

clean:
	rm -rf $(ROOT) $(SAMPLE)
