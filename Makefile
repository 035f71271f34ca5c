# One-command set-up: `make run` and `make test` create .venv and install everything.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export ANONYMIZED_TELEMETRY := False
export GRADIO_ANALYTICS_ENABLED := False

.PHONY: install run test test-fast index eval bench lint clean browser golden postgres

$(STAMP): pyproject.toml Makefile
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	# torch pinned first: an unpinned torch pulls a multi-GB CUDA build.
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e '.[dev]'
	# medspaCy (clinical negation, history and experiencer for reading questions), without
	# its spacy<3.8 pin: it runs on the spaCy 3.8 the rest of the project needs.
	$(BIN)/pip install -q --no-deps medspacy==1.3.1 PyRuSH==1.0.13
	touch $(STAMP)

install: $(STAMP)

browser:
	@command -v chromium >/dev/null 2>&1 || (apt-get update -qq && apt-get install -y -qq chromium >/dev/null)

# Debian's PostgreSQL binaries for the tests, which start their own server in a temporary
# folder on a free port (tests/pg.py).
postgres:
	@ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || (apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null)

index: install
	$(BIN)/advisor index

run: install
	$(BIN)/advisor index --if-needed
	$(BIN)/python app.py

test: install browser postgres
	$(BIN)/python -m pytest

test-fast: install
	$(BIN)/python -m pytest tests/unit

eval: install
	$(BIN)/advisor eval suites --baseline raw --out eval-out

bench: install
	# Run on an idle machine: other load skews every figure. Results go in BENCHMARKS.md.
	$(BIN)/python bench/bench_guardrails.py
	$(BIN)/python bench/bench_batch.py
	$(BIN)/python bench/bench_retrieval.py
	$(BIN)/python bench/bench_pipeline.py --backend embedded,openai --presets default,small --serve default
	$(BIN)/python bench/bench_load.py
	$(BIN)/python bench/bench_store.py

# The golden snapshot (tests/golden): rewrite it after a change of behaviour made on purpose,
# and say in the commit which records changed and why.
golden: install
	$(BIN)/python tests/golden/snapshot.py --write

lint: install
	$(BIN)/ruff check .
	$(BIN)/mypy knowledge guardrails

clean:
	rm -rf $(VENV) .pytest_cache
