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

SWEEP ?=#            sweep YAML for `make sweep`
OVERRIDES ?=#        overrides applied to the sweep, e.g. sweeps/tiny/overrides.yaml (the tiny profile)
SWEEP_ID ?=#         entity/project/id for `make agents`
BACKEND ?= auto#     auto | local | wandb
WORKERS ?=#          local parallel runs (default: one per GPU, else one per core)
GPUS ?=#             e.g. 0,1,2,3 (default: every visible GPU)
AGENTS ?=#           W&B agents on a CPU-only machine
DRY_RUN ?=#          1: print the commands, run nothing
OUT ?= runs#         where local run records go
RUNS ?= results/runs# records the figures are drawn from
FIGURES ?= figures#  where figures, tables and macros go
PROFILE ?= cpu#      study size: cpu (default, 40-60 min on 2 cores by host) | gpu | tiny
NOTEBOOK ?= analysis/gan.ipynb# where `make notebook` writes the executed notebook
REPORT_DIR ?= .#     where report.pdf is written
STUDENT_ID ?=#       for `make submission`
DEVICE ?=#           `make gpu-check`: auto (default) or cpu
SWEEP_FLAGS = --backend=$(BACKEND) --out=$(OUT) $(if $(WORKERS),--workers=$(WORKERS)) $(if $(GPUS),--gpus=$(GPUS)) \
	$(if $(OVERRIDES),--overrides=$(OVERRIDES)) \
	$(if $(AGENTS),--agents=$(AGENTS)) $(if $(DRY_RUN),--dry_run=True)

.PHONY: help install study test bench bench-sweep gpu-check train sweep agents data classifier gan figures notebook report results \
	submission clean

help: ## List the targets
	@grep -hE '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*?## "}; {printf "  make %-12s %s\n", $$1, $$2}'

study: install ## THE MAIN JOB: sweeps, classifier, GAN, figures, notebook, report (PROFILE=cpu|gpu|tiny)
	$(PY) -m experiments.study --profile=$(PROFILE) --backend=$(BACKEND) --out=$(OUT) --figures=$(FIGURES) \
		--notebook=$(NOTEBOOK) --report_dir=$(REPORT_DIR) $(if $(WORKERS),--workers=$(WORKERS)) \
		$(if $(GPUS),--gpus=$(GPUS)) $(if $(AGENTS),--agents=$(AGENTS))

install: $(STAMP) ## Create .venv from python3 and install the pinned requirements

$(STAMP): requirements.txt
	@test -x $(PY) || $(PYTHON_BASE) -m venv $(VENV)
	@echo "installing requirements into $(VENV) (first time: several minutes, torch is large)"
	@$(PY) -m pip install -q --disable-pip-version-check -r requirements.txt 2>&1 | $(PIP_QUIET)
	@$(PY) -W ignore -c "import torch, torchvision, wandb, sweeps, seaborn" && touch $(STAMP)
	@$(PY) -m models.step_kernel  # builds the models' C loops with the machine's C compiler (else: their Python loops)

test: install ## Lint (ruff), then the test suite (CPU; W&B disabled but for a local stand-in of its server)
	$(PY) -m ruff check .
	WANDB_MODE=disabled $(PY) -m pytest -n 2 --dist worksteal --durations=10

bench: install ## Benchmarks: ms per step against torch.nn, GAN epoch against torchvision's loader (-> results/bench.txt)
	$(PY) -m experiments.bench --gan=True --dataset=True | tee results/bench.txt.tmp
	mv results/bench.txt.tmp results/bench.txt
	$(PY) -m analysis.readme_tables

bench-sweep: install ## A sweep through the local pool and through W&B agents (a local stand-in), side by side: SWEEP=, OVERRIDES=
	$(PY) -m experiments.sweep_bench $(if $(SWEEP),--sweep=$(SWEEP) --overrides=$(OVERRIDES))

gpu-check: install ## On a GPU: LSTM steps/s with 1, 2, 4, 8 processes per GPU and a GAN epoch (docs/scale-out.md); DEVICE=cpu: toy size
	$(PY) -m experiments.gpu_check $(if $(DEVICE),--device=$(DEVICE))

train: install ## One palindrome run, e.g. make train ARGS="--model=lstm --T=20"
	$(PY) -m experiments.palindrome $(ARGS)

sweep: install ## Run a sweep: make sweep SWEEP=sweeps/length_lstm.yaml [BACKEND=local|wandb WORKERS=n GPUS=0,1 DRY_RUN=1]
	@test -n "$(SWEEP)" || { echo "error: name the sweep, e.g. make sweep SWEEP=sweeps/length_lstm.yaml" >&2; exit 2; }
	$(PY) -m experiments.infra.sweep --sweep=$(SWEEP) $(SWEEP_FLAGS)

agents: install ## Join existing W&B sweeps: make agents SWEEP_ID=entity/project/id[,...] GPUS=0,1
	@test -n "$(SWEEP_ID)" || { echo "error: name the sweep, e.g. make agents SWEEP_ID=entity/project/id" >&2; exit 2; }
	$(PY) -m experiments.infra.sweep --join=$(SWEEP_ID) $(SWEEP_FLAGS)

data: install ## Acquire and verify MNIST into data/MNIST/raw
	$(PY) -m experiments.mnist_data

classifier: install ## Train (once; cached) the MNIST classifier that judges the GAN
	$(PY) -m experiments.mnist_classifier --out=$(OUT)

gan: classifier ## Train the GAN: make gan ARGS="--epochs=20"
	$(PY) -m experiments.gan --out=$(OUT) $(ARGS)

figures: install ## Figures, tables and macros for the report from RUNS (default: results/runs)
	$(PY) -m analysis.figures --runs=$(RUNS) --out=$(FIGURES)

notebook: install ## Execute analysis/gan.ipynb headless against the GAN run in RUNS, saved with outputs
	$(PY) -m analysis.notebook --gan_run=$(RUNS) --out=$(NOTEBOOK)

report: figures ## Compile report.pdf (needs TeX: apt-get install latexmk texlive-latex-recommended texlive-fonts-recommended)
	$(PY) -m analysis.build_report --figures=$(FIGURES) --outdir=$(REPORT_DIR)

results: install ## Pack the records in OUT into results/ (the committed reference) with their provenance, and the README's run times
	$(PY) -m analysis.pack_results --runs=$(OUT) --profile=$(PROFILE)
	$(PY) -m analysis.readme_tables

submission: install ## The hand-in zip, the number on the report's title page: make submission STUDENT_ID=12345678
	@test -n "$(STUDENT_ID)" || { echo "error: give your student number: make submission STUDENT_ID=12345678" >&2; exit 2; }
	$(MAKE) --no-print-directory figures
	$(PY) -m analysis.submission --student_id="$(STUDENT_ID)" --figures=$(FIGURES)

clean: ## Remove generated files (keeps .venv, data/ and results/)
	rm -rf runs wandb figures artifacts .pytest_cache
