# The documented way to do everything. `make demo` and `make test` are the two set-up commands.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
PORT ?= 8000
STAMP := $(VENV)/.installed
export DJANGO_SETTINGS_MODULE ?= config.settings.dev

.PHONY: install demo test test-fast quality format migrate clean

$(STAMP): pyproject.toml
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "Python 3.11 est requis ($(PYTHON) introuvable)."; exit 1; }
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

migrate: install
	@mkdir -p var
	$(BIN)/passnum migrate --noinput

demo: migrate
	$(BIN)/passnum seed_demo
	@echo "Plateforme de démonstration : http://127.0.0.1:$(PORT)/"
	$(BIN)/passnum runserver 127.0.0.1:$(PORT)

# The whole suite: on DATABASE_URL when set (PostgreSQL in CI), on SQLite otherwise.
test: install
	DJANGO_SETTINGS_MODULE=config.settings.test $(BIN)/pytest -n $${PYTEST_WORKERS:-auto} --dist loadgroup

quality: install
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .
	DJANGO_SETTINGS_MODULE=config.settings.test $(BIN)/passnum makemigrations --check --dry-run

format: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

clean:
	rm -rf $(VENV) var/*.sqlite3* .pytest_cache
