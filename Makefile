# acc-hf: `make demo` runs the whole loop on the bundled samples, `make test` runs the tests. Both build .venv first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: install demo comparison test lint bench gpu-kit gpu-check clean

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	# torch first and pinned: an unpinned torch pulls gigabytes of CUDA packages on a CPU machine
	$(BIN)/python -m pip install -q -c constraints.txt torch==2.13.0
	$(BIN)/python -m pip install -q -c constraints.txt -e ".[train,dev]"
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/acc demo --out outputs/demo

comparison: $(STAMP)
	$(BIN)/acc comparison --out outputs/comparison

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

test: lint
	$(BIN)/python -m pytest -q

bench: $(STAMP)
	$(BIN)/python bench/compile.py
	$(BIN)/python bench/train.py

# The GPU check runs on a machine with CUDA and no network (Python 3.12 and its own torch): `make gpu-kit` here
# downloads the wheels it lacks (constraints-gpu.txt) into .gpu-kit/; `make gpu-check` there installs them with
# --no-index into GPU_SITE, then runs the CUDA tests and the attention / Liger benchmark table at 32k-128k tokens.
GPU_PYTHON ?= python3
GPU_SITE ?= /tmp/acc-gpu-site
GPU_KIT := .gpu-kit

gpu-kit: $(STAMP)
	$(BIN)/python bench/gpu_kit.py build --kit $(GPU_KIT)

gpu-check:
	$(GPU_PYTHON) bench/gpu_kit.py install --kit $(GPU_KIT) --target $(GPU_SITE)
	PYTHONPATH=$(GPU_SITE):. $(GPU_PYTHON) bench/gpu_kit.py preflight
	PYTHONPATH=$(GPU_SITE):. HF_HUB_OFFLINE=1 $(GPU_PYTHON) -m pytest -q -rs -p no:cacheprovider \
		tests/acc_hf/test_kernels.py tests/acc_hf/test_invariants.py
	PYTHONPATH=$(GPU_SITE):. HF_HUB_OFFLINE=1 $(GPU_PYTHON) bench/train.py --gpu-table --deadline-s 300

clean:
	rm -rf $(VENV) outputs .pytest_cache .ruff_cache
