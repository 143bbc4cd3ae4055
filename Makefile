# lifecircle: make demo | make test | make check | make bench
PYTHON ?= python3
SHARED_DATA := $(abspath ../shared/data)
ifneq ($(wildcard $(SHARED_DATA)/pudong),)
export LIFECIRCLE_DATA_DIR ?= $(SHARED_DATA)
endif
STAMP := .install.stamp
# make demo's outputs: coverage and gaps share one folder (same parameters); the plan, planned for one
# category, gets its own (a folder never mixes runs made with different parameters)
DEMO_OUT := data/processed/demo
# the demo writes each report in English (gaps_report.html) and Chinese (gaps_report.zh.html)
LANGS := --lang en --lang zh
POIS := --pois $(LIFECIRCLE_DATA_DIR)/pudong/pois/shanghai_school.csv \
        --pois $(LIFECIRCLE_DATA_DIR)/pudong/pois/shanghai_hospital.csv \
        --pois $(LIFECIRCLE_DATA_DIR)/pudong/pois/shanghai_Theatr_Cinema.csv

.PHONY: sysdeps install demo test test-all lint typecheck notebooks check data bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m pip install -q -e '.[dev]'
	@touch $(STAMP)

install: $(STAMP) sysdeps

# Debian packages the tests and maps use: headless Chromium (HTML report test) and a CJK font
sysdeps:
	@if ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null \
	    || ! fc-list 2>/dev/null | grep -qi "Noto Sans CJK"; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
	      chromium chromium-driver fonts-noto-cjk >/dev/null; \
	  else \
	    echo "install chromium chromium-driver fonts-noto-cjk (apt) for the report test"; \
	  fi; \
	fi

demo: install
	lifecircle fetch --district pudong $(POIS)
	lifecircle coverage --district pudong $(POIS) $(LANGS) --out $(DEMO_OUT) --overwrite
	lifecircle gaps --district pudong $(POIS) $(LANGS) --out $(DEMO_OUT) --overwrite
	lifecircle plan --district pudong $(POIS) --category elderly_care --max-sites 5 $(LANGS) \
	  --out $(DEMO_OUT)-plan --overwrite

data: install
	lifecircle fetch --district pudong $(POIS)

test: install
	$(PYTHON) -m pytest --doctest-modules lifecircle tests --nbmake notebooks

test-all: install
	$(PYTHON) -m pytest -m "" --doctest-modules lifecircle tests --nbmake notebooks

lint: install
	$(PYTHON) -m ruff check lifecircle tests notebooks scripts
	$(PYTHON) -m ruff format --check lifecircle tests scripts

typecheck: install
	$(PYTHON) -m mypy

notebooks: install
	$(PYTHON) -m pytest --nbmake notebooks

check: lint typecheck test

bench: install
	-$(PYTHON) -m pip install -q -e '.[bench]'  # pandana, for comparison only; optional
	$(PYTHON) scripts/bench.py --out docs/benchmarks.md

clean:
	rm -rf data/processed/* data/raw/* .pytest_cache .mypy_cache .ruff_cache $(STAMP)
	@touch data/raw/.gitkeep data/processed/.gitkeep
