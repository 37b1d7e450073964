# Two commands matter: `make demo` (the bot playing an election day against the
# built-in Telegram emulator) and `make test`. Both install what they need.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint install bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/siaga demo

# Two pytest-xdist workers, one per core of the CI machine; each has its own PostgreSQL database (tests/pg.py).
test: $(STAMP) lint
	$(BIN)/python -m pytest -q -n 2 $(PYTEST_ARGS)

# The rule set is in pyproject.toml ([tool.ruff], [tool.mypy]).
lint: $(STAMP)
	$(BIN)/ruff format --check --quiet .
	$(BIN)/ruff check --quiet .
	$(BIN)/mypy

clean:
	rm -rf $(VENV) *.egg-info .pytest_cache .hypothesis
