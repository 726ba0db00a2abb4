# The two commands a newcomer needs: `make run` and `make test`. Each sets up .venv itself.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: run test venv sysdeps lint typecheck pytest migrate clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

# Reinstall only when requirements change.
$(VENV)/.installed: requirements.txt requirements-dev.txt | $(BIN)/python
	$(BIN)/pip install --quiet -r requirements-dev.txt
	touch $@

venv: $(VENV)/.installed

# The offline voice speaks with espeak-ng (a system package). Install it when we can (root + apt),
# otherwise say how; the app itself reports a clear error where speech is needed.
sysdeps:
	@command -v espeak-ng >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq espeak-ng >/dev/null; \
	  else \
	    echo "espeak-ng is missing: install it (sudo apt-get install espeak-ng, or brew install espeak-ng) for the offline voice"; \
	  fi; }

run: venv sysdeps
	DEBUG=$${DEBUG:-1} $(BIN)/python manage.py migrate --noinput -v 0
	DEBUG=$${DEBUG:-1} $(BIN)/python manage.py seed_demo
	@echo ""
	@echo "  Voice Receptionist is running at http://$(HOST):$(PORT)/"
	@echo "  Log in as demo@example.com / demo12345 (admin: http://$(HOST):$(PORT)/admin/)"
	@echo ""
	DEBUG=$${DEBUG:-1} $(BIN)/daphne -b $(HOST) -p $(PORT) receptionist.asgi:application

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: venv
	DEBUG=1 $(BIN)/mypy .

pytest: venv sysdeps
	$(BIN)/pytest $(PYTEST_ARGS)

test: lint typecheck pytest

migrate: venv
	DEBUG=$${DEBUG:-1} $(BIN)/python manage.py migrate --noinput -v 0

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
