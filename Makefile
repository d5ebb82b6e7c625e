# Every target bootstraps .venv on first use, so each is one command on a fresh machine.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# Everything a developer and CI need: both IdPs, the emulators, the test and lint tools, at the pinned versions.
EXTRAS := all,sandbox,test,dev

.PHONY: demo test check bench lint typecheck clean sandbox constraints install-size

$(STAMP): pyproject.toml constraints.txt
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -c constraints.txt -e '.[$(EXTRAS)]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/astro-scim demo

test: $(STAMP)
	$(BIN)/pytest -q -n 2 --dist loadgroup

check: $(STAMP)
	$(BIN)/ruff check connector tests benchmarks
	$(BIN)/mypy

bench: $(STAMP)
	$(BIN)/python benchmarks/startup.py
	$(BIN)/python benchmarks/sandbox.py
	$(BIN)/python benchmarks/drift_scale.py
	$(BIN)/python benchmarks/timing.py

# Unpacked size of the core, [all] and [all,sandbox] installs of the built wheel, each in a fresh venv.
install-size:
	$(PY) benchmarks/install_size.py

sandbox: $(STAMP)
	$(BIN)/astro-scim sandbox --write-config build/sandbox.yaml --write-json build/sandbox.json

# Re-pin constraints.txt: the newest versions pyproject allows, resolved in a fresh venv (run after changing
# a dependency; commit the result). The project itself is left out: it is what the pins are for.
constraints:
	rm -rf build/constraints-venv
	$(PY) -m venv build/constraints-venv
	build/constraints-venv/bin/pip install -q --upgrade pip
	build/constraints-venv/bin/pip install -q '.[$(EXTRAS)]'
	{ echo "# Exact versions of the full install (.[$(EXTRAS)]), tested together. Regenerate: make constraints"; \
	  build/constraints-venv/bin/pip freeze --exclude astro-scim-connector; } > constraints.txt
	rm -rf build/constraints-venv

clean:
	rm -rf $(VENV) build .pytest_cache .mypy_cache .ruff_cache
