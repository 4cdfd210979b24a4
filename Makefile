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
	$(BIN)/gemini-tf train --preset small --fusion grounded --phrase-evidence --learning-rate 1e-3 --train-scenes 12000 --epochs 6 --output-dir saved_models/quickstart
	$(BIN)/gemini-tf evaluate --model saved_models/quickstart

test: $(STAMP)
	$(BIN)/ruff check gemini_tf tests benchmarks
	$(BIN)/ruff format --check gemini_tf tests benchmarks
	$(BIN)/python -m pytest -q -n 2 --dist loadgroup

test-slow: $(STAMP)
	$(BIN)/python -m pytest -q -m slow -n 2 --dist loadgroup

# Re-run every notebook in place at full size (commits real outputs).
notebooks: $(STAMP)
	cd notebooks && for nb in *.ipynb; do ../$(BIN)/jupyter-execute --inplace --timeout=1800 "$$nb" || exit 1; done

benchmark: $(STAMP)
	$(BIN)/python benchmarks/shapes_itm.py --preset tiny
	$(BIN)/python benchmarks/deploy.py --model saved_models/quickstart

clean:
	rm -rf $(VENV) build *.egg-info
