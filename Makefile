# Two commands for a newcomer:
#   make demo   set up .venv, build a small archive from package photos, index it, answer a query
#   make test   set up .venv and run the test suite
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.mien-installed

.PHONY: demo test setup clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/mien demo --workdir demo-out

test: $(STAMP)
	$(PY) -m pytest -q

clean:
	rm -rf demo-out .pytest_cache
