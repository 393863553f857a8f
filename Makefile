# mnistlab: `make help` lists the targets.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# The data beside the project where it is there (as in CI); else mnistlab's own default,
# ./data, which it creates and downloads into (a folder named by MNISTLAB_DATA must exist).
ifneq ($(wildcard ../shared/data/MNIST/raw),)
export MNISTLAB_DATA ?= $(abspath ../shared/data)
endif
STAMP := $(VENV)/.installed

STUDY ?= paper

.PHONY: help system-deps install compare study report test test-slow test-all lint format ui bench clean

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q -c constraints.txt -e '.[dev,ray]'
	touch $(STAMP)

system-deps: ## Debian packages: a CJK font for names in figures and PDF, chromium for the browser test
	@if command -v apt-get >/dev/null; then \
	  SUDO=$$([ "$$(id -u)" = 0 ] || echo sudo); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq fonts-noto-cjk chromium; \
	else echo "No apt-get: install a CJK font (Noto Sans CJK) and Chromium with your package manager."; fi

install: $(STAMP) ## Create .venv and install mnistlab with its dev and ray extras

compare: $(STAMP) ## The whole study: train experiments/$(STUDY).toml, analyse, report
	$(BIN)/mnistlab study experiments/$(STUDY).toml
	$(BIN)/mnistlab report $(STUDY)
	@echo "Report: reports/$(STUDY)/index.html and reports/$(STUDY)/report.pdf"
	@echo "Runs:   make ui, then open http://127.0.0.1:5000 (Model training, top left)"

study: $(STAMP) ## Train the runs of experiments/$(STUDY).toml that are not finished yet
	$(BIN)/mnistlab study experiments/$(STUDY).toml

report: $(STAMP) ## Re-render reports/$(STUDY)/ from the runs already in MLflow (no training)
	$(BIN)/mnistlab report $(STUDY)

test: $(STAMP) ## Fast unit tests
	$(BIN)/python -m pytest -q -m "not slow"

test-slow: $(STAMP) ## Only the slow tests: real MNIST epochs, processes, Ray, kill -9
	$(BIN)/python -m pytest -q -m slow

test-all: $(STAMP) ## All tests, fast and slow
	$(BIN)/python -m pytest -q

lint: $(STAMP) ## Ruff lint and format check
	$(BIN)/ruff check mnistlab tests bench
	$(BIN)/ruff format --check mnistlab tests bench

format: $(STAMP) ## Ruff format and autofix
	$(BIN)/ruff format mnistlab tests bench
	$(BIN)/ruff check --fix mnistlab tests bench

bench: $(STAMP) ## Training speed vs the paper's loop and the matmul peak, then the waits around it (BENCH_ARGS=--quick)
	$(BIN)/python bench/bench.py $(BENCH_ARGS)
	$(BIN)/python bench/waits.py $(BENCH_ARGS)

ui: $(STAMP) ## MLflow UI on the default store (http://127.0.0.1:5000)
	@echo "Open http://127.0.0.1:5000 and choose 'Model training' at the top left (MLflow 3 starts on GenAI)."
	@# Create the store under mnistlab's lock first: MLflow creating it beside a study races.
	$(BIN)/python -c "from mnistlab.store.store import open_store; open_store('sqlite:///$(abspath mlflow.db)')"
	$(BIN)/mlflow ui --backend-store-uri sqlite:///$(abspath mlflow.db) --host 127.0.0.1 --port 5000

clean: ## Remove caches (keeps mlflow.db, reports and .venv)
	rm -rf .pytest_cache .ruff_cache build *.egg-info
	find . -name __pycache__ -prune -exec rm -rf {} +
