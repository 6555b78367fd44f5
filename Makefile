# Two commands do the whole set-up on a fresh machine: `make demo` and `make test`.
VENV := .venv
PY := $(VENV)/bin/python
PORT ?= 8000
DEMO_PHOTOS := data/demo-photos
DEMO_INDEX := data/demo/index.pkl

.PHONY: demo test benchmark browser

$(VENV)/.installed: requirements.txt requirements-precompute.txt requirements-dev.txt
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet -r requirements-dev.txt
	touch $@

## demo: gather demo photos, index them and serve the gallery on http://127.0.0.1:$(PORT)
demo: $(VENV)/.installed
	$(PY) -m precompute.demo $(DEMO_PHOTOS)
	$(PY) -m precompute $(DEMO_PHOTOS) --out $(DEMO_INDEX)
	LOOKALIKE_INDEX=$(DEMO_INDEX) $(VENV)/bin/gunicorn --preload --threads 4 --bind 127.0.0.1:$(PORT) "app:create_app()"

## test: the whole test suite, browser tests included
test: $(VENV)/.installed browser
	$(PY) -m pytest

## browser: Debian's Chromium for the browser tests (Playwright never downloads its own)
browser:
	@command -v chromium >/dev/null || (apt-get update -q && apt-get install -y -q chromium)

## benchmark: speed against same-run baselines, one table (see benchmarks/README.md)
benchmark: $(VENV)/.installed
	$(PY) -m benchmarks
