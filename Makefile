# Every target bootstraps .venv on first use, so each is one command on a fresh machine.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# Everything a developer and CI need: both IdPs, the emulators, the test and lint tools, at the pinned versions.
EXTRAS := all,sandbox,test,dev

.PHONY: demo test check bench bench-scale lint typecheck clean sandbox constraints install-size image

$(STAMP): pyproject.toml constraints.txt
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -c constraints.txt -e '.[$(EXTRAS)]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/astro-scim demo

# Bytecode is cached (connector/ and tests/ get __pycache__, ignored by git) even where the environment sets
# PYTHONDONTWRITEBYTECODE: without it every worker and every Python the tests start compiled the package again,
# and pytest re-rewrote the asserts of every test module (~5 s of CPU per worker, ~35 of the suite's ~230 CPU-s).
test: export PYTHONDONTWRITEBYTECODE :=
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
	$(BIN)/python benchmarks/engines.py --users 5000
	$(BIN)/python benchmarks/drift_scale.py
	$(BIN)/python benchmarks/report_scale.py --sizes 1000,20000
	$(BIN)/python benchmarks/timing.py

# The whole drift as a user runs it, at 20k and 100k users, against its honest bound and a naive reader (~30 min).
bench-scale: $(STAMP)
	$(BIN)/python benchmarks/audit_scale.py

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

# The container image (Containerfile): a wheelhouse of the wheel and its pinned dependencies, then a podman build
# that needs no network. IMAGE_BASE: a Python 3.11 image from a registry; left empty, a Debian bookworm base is made
# from Debian's packages with mmdebstrap (here no registry image can be pulled), once.
IMAGE ?= astro-scim
IMAGE_BASE ?=
DEBIAN_BASE := localhost/astro-scim-base:bookworm
image: $(STAMP)
	rm -rf build/image && mkdir -p build/image
	$(BIN)/pip wheel -q --no-deps -w build/image/dist .
	$(BIN)/pip wheel -q -c constraints.txt -w build/image/dist "$$(ls build/image/dist/astro_scim_connector-*.whl)[all]"
	cp Containerfile .containerignore build/image/
	if [ -z "$(IMAGE_BASE)" ] && ! podman image exists $(DEBIAN_BASE); then \
	  mmdebstrap --variant=apt --include=python3,python3-venv,ca-certificates,passwd bookworm build/image/base.tar \
	  && podman import build/image/base.tar $(DEBIAN_BASE) && rm build/image/base.tar; fi
	podman build --isolation chroot --build-arg BASE=$(or $(IMAGE_BASE),$(DEBIAN_BASE)) \
	  -t $(IMAGE):$$($(BIN)/python -c 'import connector; print(connector.__version__)') -t $(IMAGE):latest \
	  -f build/image/Containerfile build/image

clean:
	rm -rf $(VENV) build .pytest_cache .mypy_cache .ruff_cache
