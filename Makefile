# `make run`: set up and serve the demo on SQLite.  `make test`: lint, type-check, check the
# direction of imports, and run the whole suite on SQLite and on a throwaway PostgreSQL (the
# portal's tests in Debian's Chromium, the served configuration behind Debian's nginx, both
# installed when missing).
# `make bench`: the performance figures.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: install run test lint bench soak clean

# The reseller client library (clients/python, imported as codeshelf_client) beside the server:
# its tests in tests/client run it against the real server.
$(STAMP): pyproject.toml constraints.txt clients/python/pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -c constraints.txt -e '.[dev]' \
		-e ./clients/python
	touch $(STAMP)

install: $(STAMP)

# A fresh secret on first run; never committed (.env is in .gitignore).
.env:
	@$(PYTHON) -c "import secrets; print('CODESHELF_SECRET_KEY=' + secrets.token_urlsafe(32))" > .env
	@echo "generated CODESHELF_SECRET_KEY into .env"

run: install .env
	$(BIN)/codeshelf demo
	@echo "serving on http://$(HOST):$(PORT) (API docs: http://$(HOST):$(PORT)/docs)"
	$(BIN)/codeshelf serve --host $(HOST) --port $(PORT)

lint: install
	$(BIN)/ruff check src tests bench clients examples
	$(BIN)/ruff format --check src tests bench clients examples
	@# mypy strict on codeshelf and codeshelf_client (pyproject.toml), then on the examples.
	$(BIN)/mypy
	$(BIN)/mypy --strict examples
	$(BIN)/lint-imports --no-cache

test: lint
	@# pytest exits 5 when it collects no test: that is not a failure of the code.
	CODESHELF_PG_BINDIR="$$(scripts/ensure-postgres.sh)" \
	CODESHELF_REDIS_SERVER="$$(scripts/ensure-redis.sh)" \
	CODESHELF_CHROMIUM="$$(scripts/ensure-chromium.sh)" \
	CODESHELF_NGINX="$$(scripts/ensure-nginx.sh)" \
		$(BIN)/pytest -n 2 -p no:cacheprovider \
		|| [ $$? -eq 5 ]

bench: install
	CODESHELF_PG_BINDIR="$$(scripts/ensure-postgres.sh)" $(BIN)/python -m bench.run

# `make soak`: a crash soak on a throwaway PostgreSQL (SOAK_SECONDS, default 600; see docs/soak.md).
soak: install
	CODESHELF_PG_BINDIR="$$(scripts/ensure-postgres.sh)" nice -n 10 $(BIN)/python -m bench.soak

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache .hypothesis
