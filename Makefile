# Two commands do all the set-up on a fresh clone: `make demo` and `make test`.
VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: demo test env

env: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml scripts/setup_env.sh
	bash scripts/setup_env.sh $(VENV)

demo: $(VENV)/.installed
	$(PY) -m rsnet.demo

test: $(VENV)/.installed
	$(PY) -m pytest -q
