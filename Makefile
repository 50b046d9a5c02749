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

.PHONY: demo demo-loop test test-clients lint bench bench-large bench-ceiling install install-dev browser clean example

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

# The loop proved on a toy task (docs/loop.md): a tiny model trained from scratch on biased demos, then two
# rounds of `rollforge iterate` (SFT on its own successes), the control (rewards shuffled), and DPO. One torch
# thread: a tiny model trains several times faster on one than on two busy cores.
LOOP_OUT := demo-loop
demo-loop: $(DEV_STAMP)
	rm -rf $(LOOP_OUT)
	$(VENV)/bin/rollforge example --task reverse -o $(LOOP_OUT)
	OMP_NUM_THREADS=1 $(VENV)/bin/rollforge train sft --model $(LOOP_OUT)/untrained --data $(LOOP_OUT)/demos.jsonl \
		-o $(LOOP_OUT)/base --config $(LOOP_OUT)/base_config.yaml
	$(VENV)/bin/rollforge iterate $(LOOP_OUT)/loop.yaml
	$(VENV)/bin/rollforge iterate $(LOOP_OUT)/loop.yaml -o $(LOOP_OUT)/control --control
	$(VENV)/bin/rollforge compare $(LOOP_OUT)/control/rounds/2/heldout.jsonl $(LOOP_OUT)/loop/rounds/2/heldout.jsonl
	$(VENV)/bin/rollforge iterate $(LOOP_OUT)/loop_dpo.yaml

lint: $(DEV_STAMP)
	$(VENV)/bin/ruff check src tests benchmarks
	$(VENV)/bin/ruff format --check src tests benchmarks
	$(VENV)/bin/mypy

test: install-dev lint
	$(VENV)/bin/pytest -q

# LLaMA-Factory in a venv of its own: it pins transformers<=5.6, trl<=0.24 and datasets<=4.0 (older than the train
# extra's) and imports torchaudio unconditionally. PyPI's torchaudio is a CUDA build that does not load beside the
# CPU torch 2.13 of .venv (and has no 2.13 release); torch 2.9.1, torchvision 0.24.1 and torchaudio 2.9.1 from
# PyPI import together and run on the CPU (about 8 GB installed, a few minutes).
LF_VENV := .venv-clients/llamafactory
LF_STAMP := $(LF_VENV)/.installed

$(LF_STAMP):
	rm -rf $(LF_VENV) && $(PYTHON) -m venv $(LF_VENV)
	$(LF_VENV)/bin/pip install -q --upgrade pip
	$(LF_VENV)/bin/pip install -q torch==2.9.1 torchvision==0.24.1
	$(LF_VENV)/bin/pip install -q torch==2.9.1 torchaudio==2.9.1 llamafactory==0.9.5
	touch $@

# Releases through the trainers' own loaders that cannot share .venv (tests/test_llamafactory.py).
test-clients: $(DEV_STAMP) $(LF_STAMP)
	ROLLFORGE_LLAMAFACTORY_VENV=$(LF_VENV) $(VENV)/bin/pytest -q -rs tests/test_llamafactory.py

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
	rm -rf $(DEMO_OUT) $(LOOP_OUT) .pytest_cache .mypy_cache .ruff_cache .venv-clients
