# acc-hf: `make demo` runs the whole loop on the bundled samples, `make test` runs the tests. Both build .venv first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: install demo test lint bench gpu-check clean

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

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

test: lint
	$(BIN)/python -m pytest -q

bench: $(STAMP)
	$(BIN)/python bench/compile.py
	$(BIN)/python bench/train.py

# On a CUDA machine: the kernel tests (FA2 varlen, Liger) and the GPU benchmark, FA2 vs sdpa, Liger off/on, to 128k.
# flash-attn builds against the installed torch (or use a prebuilt wheel that matches it).
gpu-check: $(STAMP)
	$(BIN)/python -m pip install -q -c constraints.txt "liger-kernel>=0.7"
	$(BIN)/python -m pip install -q --no-build-isolation "flash-attn>=2.7"
	$(BIN)/python -m pytest -q -rs tests/acc_hf/test_kernels.py tests/acc_hf/test_invariants.py
	$(BIN)/python bench/train.py --lm-seq-len 32768 --long-lengths 32768,65536,131072 \
		--attn-backends sdpa,flash_attention_2 --liger off,on

clean:
	rm -rf $(VENV) outputs .pytest_cache .ruff_cache
