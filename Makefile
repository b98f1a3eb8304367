# Everything a fresh clone needs: `make run` and `make test` install first.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install run test lint format bench bench-backends clean

install: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev,cpu]'
	touch $(STAMP)

run: install
	$(BIN)/detect image samples/

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: install
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

test: lint
	$(BIN)/python -m pytest

# Images/s of each backend (torch, onnx, openvino, auto) for RT-DETR-L and YOLO11n against `yolo predict`.
bench-backends: install
	$(BIN)/python bench/backends.py

clean:
	rm -rf $(VENV) detect-runs .pytest_cache .ruff_cache
