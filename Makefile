# Two commands do all the set-up on a fresh clone: `make demo` and `make test`.
VENV ?= .venv
PY := $(VENV)/bin/python
# PyTorch's and oneDNN's AVX2 kernels on any x86-64 CPU, AVX-512 ones included
AVX2 := ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2

.PHONY: demo test test-quick lint env

env: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml scripts/setup_env.sh
	bash scripts/setup_env.sh $(VENV)

demo: $(VENV)/.installed
	$(PY) -m rsnet.demo

# lint, the whole suite (two pytest-xdist workers, a test file each at a time: the Ray and Slurm
# tests spend much of their time waiting), then the float32-against-float64 tests on AVX2 kernels
test: $(VENV)/.installed lint
	$(PY) -m pytest -q -n 2 --dist loadfile --no-loadscope-reorder
	$(AVX2) $(PY) -m pytest -q -m numerics

# ruff's lint and format check, configured in pyproject.toml
lint: $(VENV)/.installed
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

# for the edit loop: the suite without the tests marked slow (Ray, Slurm, training)
test-quick: $(VENV)/.installed
	$(PY) -m pytest -q -n 2 --dist loadfile --no-loadscope-reorder -m "not slow"
