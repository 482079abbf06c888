# tillbridge: `make demo` and `make test` are all a fresh machine needs (Python 3.11+).
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: install demo test test-fast lint typecheck bench soak docs clean dashboard

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev,test]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/tillbridge demo

test: $(STAMP)
	$(BIN)/ruff check .
	$(MAKE) --no-print-directory typecheck
	$(BIN)/python -m pytest -q

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

clean:
	rm -rf $(VENV) .tillbridge build *.egg-info .pytest_cache .ruff_cache
