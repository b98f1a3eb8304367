# Everything a fresh clone needs: `make run` and `make test` install first.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install run test coverage lint format docs clean bench-batch bench-backends bench-process bench-gpu

install: $(STAMP)

# A fresh install downloads about 7 GB (torch among it): say so first, then let pip show what it fetches.
$(STAMP): pyproject.toml
	@echo "Installing detect and its dependencies into $(VENV)/: about 7 GB of disk, 2-3 minutes or more"
	@echo "(free disk here: $$(df -hP . 2>/dev/null | awk 'NR==2 {print $$4}'))."
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --progress-bar on -e '.[dev,cpu,ray]'
	@touch $(STAMP)
	@echo "Installed: $(BIN)/detect"

# The main job. --offline-fallback: without internet (no weights in the cache) the models run from
# their configs with random weights, loudly, so the first run still works; with weights it changes nothing.
run: install
	$(BIN)/detect compare samples/ --offline-fallback


lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: install
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

# One worker per core, a test file at a time each; seeded models and exports are built once per run
# and shared by the workers (conftest.built_once).
test: lint
	$(BIN)/python -m pytest -n auto --dist loadfile

# What the suite covers, line by line (the same tests, with coverage).
coverage: install
	$(BIN)/python -m pytest -n auto --dist loadfile --cov=detect_cli --cov-report=term

# Batch throughput vs ultralytics' own predict, pipeline vs bare model forward, peak RSS 50 vs 1000 images.
bench-batch: install
	$(BIN)/python bench/batch.py

# Images/s of each backend (torch, onnx, openvino, auto) for RT-DETR-L and YOLO11n against `yolo predict`, and RT-DETR-L INT8 vs bf16;
# then ms per picture on the export runtime against the boxes over --conf and the pictures per call (bench/latency.py).
bench-backends: install
	$(BIN)/python bench/backends.py
	$(BIN)/python bench/latency.py

# On a CUDA machine (installs nothing): the gpu tests, fp16 against fp32, detect --half vs yolo predict half=True.
bench-gpu:
	PYTHON=$(BIN)/python bench/gpu.sh

# Whole-process races against `yolo predict` (start-up included): one picture, and 32 (.pt and its own export).
bench-process: install
	$(BIN)/python bench/process.py

# The documentation site, offline, into site/; --strict: a broken link or a missing page fails it.
docs: install
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --site-dir site

clean:
	rm -rf $(VENV) detect-runs site .pytest_cache .ruff_cache

.PHONY: bench-video
bench-video: install  ## end-to-end video fps vs model-only fps (bench/video.py)
	$(BIN)/python bench/video.py
