# Every target bootstraps .venv on first use, so each is one command on a fresh machine.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test check bench lint typecheck clean sandbox

$(STAMP): pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test,dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/astro-scim demo

test: $(STAMP) browser
	$(BIN)/pytest -q -n 2 --dist loadgroup

# Debian's chromium, for the HTML report checked in a real browser (tests/test_report_browser.py): installed when
# missing, as root with apt-get; elsewhere that test skips, or fails when CI is set (.ci/run sets it).
.PHONY: browser
browser:
	@command -v chromium >/dev/null || ! command -v apt-get >/dev/null || [ "$$(id -u)" != 0 ] || \
		{ export DEBIAN_FRONTEND=noninteractive; apt-get install -y -qq chromium || \
		  { apt-get update -qq && apt-get install -y -qq chromium; }; }

check: $(STAMP)
	$(BIN)/ruff check connector tests benchmarks
	$(BIN)/mypy

bench: $(STAMP)
	$(BIN)/python benchmarks/startup.py
	$(BIN)/python benchmarks/sandbox.py
	$(BIN)/python benchmarks/drift_scale.py
	$(BIN)/python benchmarks/timing.py

sandbox: $(STAMP)
	$(BIN)/astro-scim sandbox --write-config build/sandbox.yaml --write-json build/sandbox.json

clean:
	rm -rf $(VENV) build .pytest_cache .mypy_cache .ruff_cache
