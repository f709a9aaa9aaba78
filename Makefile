# The README's commands. Only Python 3.11 and make are assumed: the first target that
# needs it bootstraps uv into .tools/ and installs the locked dependencies into .venv/.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
UV_VERSION := 0.13.8
UV := .tools/bin/uv
VENV := .venv
PY := $(VENV)/bin/python
TEST_WORKERS ?= auto
export UV_PYTHON_DOWNLOADS := never
export UV_PROJECT_ENVIRONMENT := $(VENV)

.PHONY: help install run test lint bench schema messages compilemessages clean

help:
	@echo "make run    - set up and run the whole system on the embedded default"
	@echo "make test   - set up and run the test suite"
	@echo "make lint   - ruff, migrations check, OpenAPI diff, import contract, translations"
	@echo "make bench  - benchmarks against real PostgreSQL/Redis (bench/results/*.json)"
	@echo "make schema - regenerate docs/openapi.yaml;  make messages - refresh locale/"

$(UV):
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' || \
		{ echo "Python 3.11 is required (found $$($(PYTHON) --version))"; exit 1; }
	$(PYTHON) -m venv .tools
	.tools/bin/pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)

$(VENV)/.synced: pyproject.toml uv.lock | $(UV)
	$(UV) sync --frozen --python $(PYTHON)
	@touch $@

install: $(VENV)/.synced

run: install
	DJANGO_SETTINGS_MODULE=$${DJANGO_SETTINGS_MODULE:-xixian_ems.settings.local} \
		$(PY) manage.py runsystem

test: install
	$(PY) -m pytest -n $(TEST_WORKERS) -p no:cacheprovider

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	DJANGO_SETTINGS_MODULE=xixian_ems.settings.local $(PY) manage.py makemigrations --check --dry-run
	@mkdir -p var
	DJANGO_SETTINGS_MODULE=xixian_ems.settings.local $(PY) manage.py spectacular \
		--validate --fail-on-warn --file var/openapi.yaml
	@diff -u docs/openapi.yaml var/openapi.yaml || \
		{ echo "docs/openapi.yaml is stale: run 'make schema' and commit it"; exit 1; }
	$(VENV)/bin/lint-imports
	$(PY) scripts/messages.py check

bench: install
	$(PY) bench/run.py $(BENCH)

schema: install
	DJANGO_SETTINGS_MODULE=xixian_ems.settings.local $(PY) manage.py spectacular \
		--validate --fail-on-warn --file docs/openapi.yaml

# Needs GNU gettext (xgettext) on the developer machine; compiling does not.
messages: install
	$(PY) manage.py makemessages --locale zh_Hans --ignore '.venv/*' --ignore '.tools/*' \
		--ignore 'var/*' --no-obsolete
	$(PY) scripts/messages.py compile

compilemessages: install
	$(PY) scripts/messages.py compile

clean:
	rm -rf $(VENV) .tools var .pytest_cache .ruff_cache
