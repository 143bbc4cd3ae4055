# lifecircle: make demo | make test | make check | make bench
PYTHON ?= python3
SHARED_DATA := $(abspath ../shared/data)
ifneq ($(wildcard $(SHARED_DATA)/pudong),)
export LIFECIRCLE_DATA_DIR ?= $(SHARED_DATA)
endif
STAMP := .install.stamp
POIS := --pois $(LIFECIRCLE_DATA_DIR)/pudong/pois/shanghai_school.csv \
        --pois $(LIFECIRCLE_DATA_DIR)/pudong/pois/shanghai_hospital.csv \
        --pois $(LIFECIRCLE_DATA_DIR)/pudong/pois/shanghai_Theatr_Cinema.csv

.PHONY: install demo test test-all lint typecheck notebooks check data bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m pip install -q -e '.[dev]'
	@touch $(STAMP)

install: $(STAMP)

demo: install
	lifecircle fetch --district pudong $(POIS)
	lifecircle coverage --district pudong $(POIS)

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
