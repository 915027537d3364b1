# tokenwatch: two commands on a fresh machine with Python 3.11+
#   make run    install into .venv and start the service on the embedded default
#   make test   install into .venv (with test extras) and run the whole test suite
PYTHON ?= $(shell command -v python3.11 || command -v python3.12 || command -v python3.13 || command -v python3)
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: run test install install-test clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

install: $(BIN)/python
	$(BIN)/pip install --quiet -c constraints.txt -e .

install-test: $(BIN)/python
	$(BIN)/pip install --quiet -c constraints.txt -e '.[test]'

run: install
	$(BIN)/tokenwatch run

test: install-test
	$(BIN)/python -m pytest -q

clean:
	rm -rf $(VENV) data/*.db data/*.db-wal data/*.db-shm
