# Two commands a user needs: `make quickstart` and `make test`. Both create .venv first.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: quickstart test test-slow notebooks benchmark clean

$(STAMP): requirements.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -r requirements.txt
	$(BIN)/pip install -q --no-deps -e .
	touch $(STAMP)

quickstart: $(STAMP)
	$(BIN)/gemini-tf train --output-dir saved_models/quickstart
	$(BIN)/gemini-tf evaluate --model saved_models/quickstart

test: $(STAMP)
	$(BIN)/python -m pytest -q

test-slow: $(STAMP)
	$(BIN)/python -m pytest -q -m slow

notebooks: $(STAMP)
	$(BIN)/python -m gemini_tf.notebooks notebooks/01_quickstart.ipynb

benchmark: $(STAMP)
	$(BIN)/python benchmarks/shapes_itm.py --preset tiny

clean:
	rm -rf $(VENV) build *.egg-info
