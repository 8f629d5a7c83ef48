# Deepyard: the only commands a person or CI needs.
#   make demo   set up .venv, import MNIST, build the dataset, train LeNet on it, serve the web app
#   make test   set up .venv with the test extras (playwright) and Chromium, run the test suite (what CI runs)
#   make test-slow  the tests marked slow: accuracy gates, the lab walked in a browser (CI runs them too)
#   make lint   ruff + mypy
#   make bench  measured tables (see README)

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
# MNIST: read from the shared folder when it is there, else download it (checking the published MD5s).
MNIST_DIR ?= ../shared/data/mnist
MNIST_SRC := $(if $(wildcard $(MNIST_DIR)/train-images-idx3-ubyte.gz),--from $(MNIST_DIR),--download)

SUDO   := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: demo test test-slow lint bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# System programs: Graphviz's `dot` lays out network drawings; Debian's `chromium` runs the browser tests
# (Playwright drives it through executable_path; Debian/Ubuntu packages; brew install graphviz chromium on macOS).
$(VENV)/.sysdeps: | $(BIN)/python
	@command -v dot >/dev/null 2>&1 || { echo "installing Graphviz"; \
		$(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq graphviz >/dev/null; }
	touch $@

$(VENV)/.sysdeps-test: $(VENV)/.sysdeps
	@command -v chromium >/dev/null 2>&1 || { echo "installing Chromium (browser tests)"; \
		$(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq chromium >/dev/null; }
	touch $@

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(VENV)/.installed $@

demo: $(VENV)/.installed $(VENV)/.sysdeps
	$(BIN)/deepyard dataset import mnist $(MNIST_SRC) --name mnist --reuse
	@$(BIN)/deepyard run list --json | $(BIN)/python -c 'import json, sys; runs = json.load(sys.stdin); \
		sys.exit(not any(r["name"] == "LeNet demo" and r["status"] == "done" for r in runs))' || \
	$(BIN)/deepyard train --dataset mnist --network lenet --epochs 3 --batch-size 64 --solver nesterov --lr 0.05 \
		--policy onecycle --set schedule.pct_start=15 --set solver.weight_decay=5e-4 --name "LeNet demo"
	$(BIN)/deepyard serve

test: $(VENV)/.installed-test $(VENV)/.sysdeps-test
	$(BIN)/pytest -m "not slow" -n auto

test-slow: $(VENV)/.installed-test $(VENV)/.sysdeps-test
	$(BIN)/pytest -m slow

lint: $(VENV)/.installed-test
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/mypy

bench: $(VENV)/.installed-test $(VENV)/.sysdeps-test
	$(BIN)/python bench/datasets.py
	$(BIN)/python bench/train.py
	$(BIN)/python bench/detect.py
	$(BIN)/python bench/infer.py
	$(BIN)/python bench/web.py
	$(BIN)/python bench/cli.py
	$(BIN)/python bench/recipes.py
	$(BIN)/python bench/segment.py
	$(BIN)/python bench/text.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
