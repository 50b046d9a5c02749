# rollforge: `make demo` and `make test` are all a fresh clone needs.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
STAMP := $(VENV)/.installed
DEV_STAMP := $(VENV)/.installed-dev
BENCH_STAMP := $(VENV)/.installed-bench
CHROMIUM := /usr/bin/chromium
DEMO_OUT := demo-output

.PHONY: demo test lint bench bench-large bench-ceiling install install-dev browser clean example

$(STAMP): pyproject.toml
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q -e .
	touch $@

$(DEV_STAMP): pyproject.toml
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q -e '.[all]'
	touch $(STAMP) $@

install: $(STAMP)
install-dev: $(DEV_STAMP) browser

# Debian's Chromium for the review app's browser tests (Playwright's own download does not work offline).
browser:
	@test -x $(CHROMIUM) || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null)

demo: $(STAMP)
	$(VENV)/bin/rollforge build examples/rollouts -o $(DEMO_OUT)/releases

lint: $(DEV_STAMP)
	$(VENV)/bin/ruff check src tests benchmarks
	$(VENV)/bin/ruff format --check src tests benchmarks
	$(VENV)/bin/mypy

test: install-dev lint
	$(VENV)/bin/pytest -q

# The harness measures the process tree with psutil (a dev extra); BENCH_ARGS adds options (run.py --help).
$(BENCH_STAMP): $(STAMP)
	$(PIP) install -q 'psutil>=5.9'
	touch $@

bench: $(BENCH_STAMP)
	$(PY) benchmarks/run.py $(BENCH_ARGS)

bench-large: $(BENCH_STAMP)
	$(PY) benchmarks/run.py --large $(BENCH_ARGS)

# The most any run on rollforge's decoder and conversion could gain over the tutorial (ceiling.py).
bench-ceiling: $(BENCH_STAMP)
	$(PY) benchmarks/ceiling.py $(BENCH_ARGS)

example: $(STAMP)
	$(VENV)/bin/rollforge example -o examples/rollouts

clean:
	rm -rf $(DEMO_OUT) .pytest_cache .mypy_cache .ruff_cache
