# tokenwatch: two commands on a fresh machine with Python 3.11+
#   make run    install into .venv and start the service on the embedded default
#   make test   install into .venv (with test extras), type-check (mypy) and run the whole test suite
# Installing happens only when pyproject.toml or constraints.txt changed since the last install
# (stamp files in .venv); the install is editable, so code changes need none.
PYTHON ?= $(shell command -v python3.11 || command -v python3.12 || command -v python3.13 || command -v python3)
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
STAMP_TEST := $(VENV)/.installed-test
# test processes (pytest-xdist; most tests wait on real I/O, so 3 on 2 cores); a test file stays in one process
TEST_WORKERS ?= 3

.PHONY: run test install install-test clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): pyproject.toml constraints.txt | $(BIN)/python
	$(BIN)/pip install --quiet -c constraints.txt -e .
	touch $@

# the test extras include everything `run` needs, so they satisfy both stamps
$(STAMP_TEST): pyproject.toml constraints.txt | $(BIN)/python
	$(BIN)/pip install --quiet -c constraints.txt -e '.[test]'
	touch $@ $(STAMP)

install: $(STAMP)

# the end-to-end alert run: a whole service in real time; alone, not beside the parallel suite
SERIAL_TESTS ?= tests/alerts/test_alerts_end_to_end.py

install-test: $(STAMP_TEST)

run: install
	$(BIN)/tokenwatch run

test: install-test
	$(BIN)/mypy
	$(BIN)/python -m pytest -q -n $(TEST_WORKERS) --dist loadfile --deselect $(SERIAL_TESTS)
	$(BIN)/python -m pytest -q $(SERIAL_TESTS)

clean:
	rm -rf $(VENV) data/*.db data/*.db-wal data/*.db-shm
