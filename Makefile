# The two commands of README: `make run` and `make test`. Everything else is a step of theirs.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: run test setup migrate lint clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

setup: $(STAMP)

migrate: setup
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py createcachetable

# Where the processes keep their metrics (docs/metrics.md); emptied before they start.
METRICS_DIR := $(or $(PROMETHEUS_MULTIPROC_DIR),var/prometheus)

run: migrate
	$(BIN)/python manage.py seed_demo
	mkdir -p "$(METRICS_DIR)" && find "$(METRICS_DIR)" -maxdepth 1 -name '*.db' -delete
	@echo "Jobsite: http://127.0.0.1:8000/  (Ctrl-C stops the web server and the cluster)"
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/honcho start -f Procfile

test: migrate
	$(BIN)/pytest

lint: setup
	$(BIN)/ruff check .

clean:
	rm -rf $(VENV) var/ .pytest_cache
