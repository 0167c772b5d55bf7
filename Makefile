# The study's entry points. `make help` lists them. Every target installs what it needs first.
SHELL := /bin/bash
.SHELLFLAGS := -eo pipefail -c
.DEFAULT_GOAL := help

PYTHON_BASE ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
export PYTHONUNBUFFERED := 1
# pip on these machines names each local index it skips; those lines are noise.
PIP_QUIET := grep -v "is ignored: it is neither a file nor a directory" || true

SWEEP ?=
SWEEP_ID ?=
WORKERS ?=
GPUS ?=
AGENTS ?=
DRY_RUN ?=
RUNS ?= results/runs
FIGURES ?= figures

.PHONY: help install test bench train sweep agents figures clean

help: ## List the targets
	@grep -hE '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*?## "}; {printf "  make %-12s %s\n", $$1, $$2}'

install: $(STAMP) ## Create .venv from python3 and install the pinned requirements

$(STAMP): requirements.txt
	@test -x $(PY) || $(PYTHON_BASE) -m venv $(VENV)
	@echo "installing requirements into $(VENV) (first time: several minutes, torch is large)"
	@$(PY) -m pip install -q --disable-pip-version-check -r requirements.txt 2>&1 | $(PIP_QUIET)
	@$(PY) -c "import torch, torchvision, wandb, sweeps, seaborn" && touch $(STAMP)

test: install ## Run the test suite (CPU, W&B disabled)
	WANDB_MODE=disabled $(PY) -m pytest

bench: install ## Benchmarks: ms per training step against torch.nn modules
	$(PY) -m experiments.bench

train: install ## One palindrome run, e.g. make train ARGS="--model=lstm --T=20"
	$(PY) -m experiments.palindrome $(ARGS)

clean: ## Remove generated files (keeps .venv, data/ and results/)
	rm -rf runs wandb figures artifacts .pytest_cache
