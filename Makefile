# tillbridge: `make demo` and `make test` are all a fresh machine needs (Python 3.11+).
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# Exact versions of everything `.[dev,test]` installs, so two machines get the same ones;
# `make lock` regenerates it (deploy/lock.py).
CONSTRAINTS := constraints.txt

.PHONY: install demo test test-fast lint typecheck bench soak docs clean dashboard \
        deploy-tools deploy-checks browser-tools lock

$(STAMP): pyproject.toml $(CONSTRAINTS)
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip -c $(CONSTRAINTS)
	$(BIN)/python -m pip install --quiet -e '.[dev,test]' -c $(CONSTRAINTS)
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/tillbridge demo

test: $(STAMP) deploy-tools browser-tools
	$(BIN)/ruff check .
	$(MAKE) --no-print-directory typecheck
	$(BIN)/python -m pytest -q --durations=15

test-fast: $(STAMP)
	$(BIN)/python -m pytest -q -m "not integration"

lint: $(STAMP)
	$(BIN)/ruff check .

# mypy needs the import names (tillbridge.streams, ...) as folders: links in build/typecheck.
typecheck: $(STAMP)
	@mkdir -p build/typecheck/tillbridge && touch build/typecheck/tillbridge/__init__.py
	@for d in streams connectors schemas devstack; do ln -sfn ../../../$$d build/typecheck/tillbridge/$$d; done
	@ln -sfn ../../bench build/typecheck/bench
	cd build/typecheck && ../../$(BIN)/mypy --config-file ../../pyproject.toml -p tillbridge -p bench

bench: $(STAMP)
	$(BIN)/python -m bench

# Not part of `make test`: the stack at a steady rate for SOAK_MINUTES (default 30).
SOAK_MINUTES ?= 30
soak: $(STAMP)
	$(BIN)/python -m bench.soak --minutes $(SOAK_MINUTES)

docs: $(STAMP)
	$(BIN)/python -m tillbridge.streams.ops.readme_tables README.md

# The Grafana dashboard is generated (deploy/grafana/build.py); tests fail when it is stale.
dashboard: $(STAMP)
	$(BIN)/python deploy/grafana/build.py

# promtool checks deploy/alerts.yml (tests/test_deploy_alerts.py). Debian ships it only in the
# `prometheus` package (19 MB download, 5-15 s with apt-get update), installed here as root
# when missing; otherwise this says why and the tests that need promtool skip, naming it.
# On a host run by systemd the package also starts a Prometheus service on :9090.
deploy-tools:
	@command -v promtool >/dev/null 2>&1 && exit 0; \
	if [ "$$(id -u)" != 0 ]; then \
	  echo "deploy-tools: promtool missing, and installing it needs root" \
	       "(apt-get install prometheus); its tests skip"; exit 0; fi; \
	if ! command -v apt-get >/dev/null 2>&1; then \
	  echo "deploy-tools: promtool missing and no apt-get here; its tests skip"; exit 0; fi; \
	mkdir -p build; echo "deploy-tools: installing promtool (Debian package prometheus)"; \
	if (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
	      --no-install-recommends prometheus) >build/deploy-tools.log 2>&1; then \
	  promtool --version 2>&1 | head -1; \
	else echo "deploy-tools: apt-get could not install prometheus" \
	          "(build/deploy-tools.log); its tests skip"; fi

# The operator page's browser test (tests/integration/test_operator_page.py) drives Debian's
# chromium through chromedriver; installed here as root when missing (about 100 MB with
# apt-get update); otherwise this says why and the test skips, naming what is missing.
browser-tools:
	@command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1 && exit 0; \
	if [ "$$(id -u)" != 0 ]; then \
	  echo "browser-tools: chromium or chromedriver missing, and installing them needs root" \
	       "(apt-get install chromium chromium-driver); the browser test skips"; exit 0; fi; \
	if ! command -v apt-get >/dev/null 2>&1; then \
	  echo "browser-tools: chromium missing and no apt-get here; the browser test skips"; exit 0; fi; \
	mkdir -p build; echo "browser-tools: installing chromium chromium-driver (Debian)"; \
	if (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
	      --no-install-recommends chromium chromium-driver) >build/browser-tools.log 2>&1; then \
	  chromium --version 2>&1 | head -1; \
	else echo "browser-tools: apt-get could not install chromium" \
	          "(build/browser-tools.log); the browser test skips"; fi

# The deployment files alone: alert rules (promtool), dashboard, compose file, Kubernetes.
deploy-checks: $(STAMP) deploy-tools
	@if command -v promtool >/dev/null 2>&1; then \
	  promtool check rules deploy/alerts.yml && promtool test rules deploy/alerts.test.yml; \
	else echo "deploy-checks: promtool missing: rule checks skipped"; fi
	$(BIN)/python deploy/grafana/build.py --check
	$(BIN)/python -m pytest -q tests/test_deploy_alerts.py tests/test_deploy_dashboard.py \
	    tests/test_deploy_compose.py tests/test_deploy_k8s.py tests/test_deploy_lock.py

# The newest versions pyproject.toml allows, resolved in a fresh virtualenv, pinned into
# constraints.txt (commit it). Not part of `make test`: it asks PyPI for new releases.
LOCK_VENV := build/lock-venv
lock:
	rm -rf $(LOCK_VENV)
	$(PYTHON) -m venv $(LOCK_VENV)
	$(LOCK_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(LOCK_VENV)/bin/python -m pip install --quiet -e '.[dev,test]'
	$(LOCK_VENV)/bin/python deploy/lock.py > $(CONSTRAINTS).new
	mv $(CONSTRAINTS).new $(CONSTRAINTS)
	rm -rf $(LOCK_VENV)
	@echo "constraints.txt regenerated: review the diff and commit it"

clean:
	rm -rf $(VENV) .tillbridge build *.egg-info .pytest_cache .ruff_cache
