# Hulian: developer and CI entry points. `make help` lists them.
#
# Databases: DATABASE_URL (run, migrate, seed) and TEST_DATABASE_URL (test)
# are taken from the environment; DATABASE_URL also from .env. When unset,
# scripts/local-db.sh finds or sets up a local PostgreSQL with PostGIS and
# prints the URL of `hulian` (the demo database) or `hulian_test`.
# `make test` never uses `hulian`.

SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
# Each recipe is one shell script, so a variable set on one line (the
# database URL) is seen by the next, and any failing line stops it.
.ONESHELL:
.DELETE_ON_ERROR:
.DEFAULT_GOAL := help
MAKEFLAGS += --no-builtin-rules

VENV := .venv
BIN := $(VENV)/bin
PY := $(BIN)/python
STAMP := $(VENV)/.hulian-installed
LOCK := requirements.lock
MYPY_TARGETS := app tests migrations $(wildcard bench)
SEED_ARGS ?= --scale guangming --seed 42
SERVE_HOST ?= 127.0.0.1
SERVE_PORT ?= 8000
ARGS ?=
PYTEST_ARGS ?=

# The demo database URL: $DATABASE_URL, else DATABASE_URL= in .env, else local-db.sh.
define demo_database_url
if [[ -z "$${DATABASE_URL:-}" && -f .env ]]; then
    DATABASE_URL="$$(sed -n -E 's/^[[:space:]]*(export[[:space:]]+)?DATABASE_URL[[:space:]]*=[[:space:]]*["'\'']?([^"'\'']*)["'\'']?[[:space:]]*$$/\2/p' .env | tail -n 1)"
fi
if [[ -z "$${DATABASE_URL:-}" ]]; then
    DATABASE_URL="$$(scripts/local-db.sh hulian | tail -n 1)"
fi
export DATABASE_URL
endef

.PHONY: help venv clients web run test lint fmt openapi migrate migration seed bench lock clean distclean

help: ## list the targets
	@grep -hE '^[a-z][a-zA-Z_-]*:.*## ' $(MAKEFILE_LIST) \
	    | awk 'BEGIN { FS = ":.*## " } { printf "  make %-10s %s\n", $$1, $$2 }'
	echo "Variables: DATABASE_URL, TEST_DATABASE_URL (else scripts/local-db.sh), SEED_ARGS='$(SEED_ARGS)',"
	echo "  SERVE_HOST=$(SERVE_HOST) SERVE_PORT=$(SERVE_PORT) (run), PYTEST_ARGS (test), ARGS (bench), PYTHON (venv)"

venv: $(STAMP) ## create .venv (Python 3.11+) and install the project with the locked versions

# Reinstalls only when pyproject.toml or the lock file changed (or .venv is new).
$(STAMP): pyproject.toml $(LOCK)
	@if ! $(PY) -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
	    python=""
	    for candidate in $${PYTHON:-} python3.11 python3.12 python3.13 python3; do
	        if command -v "$$candidate" >/dev/null 2>&1 \
	            && "$$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
	            python="$$candidate"; break
	        fi
	    done
	    if [[ -z "$$python" ]]; then
	        echo "make venv: Python 3.11 or newer is needed (set PYTHON=/path/to/python3.11)" >&2
	        exit 1
	    fi
	    echo "+ $$python -m venv --clear $(VENV)"
	    "$$python" -m venv --clear $(VENV)
	fi
	echo "+ $(PY) -m pip install -c $(LOCK) -e '.[dev]'"
	$(PY) -m pip install --disable-pip-version-check --progress-bar off -q -c $(LOCK) -e '.[dev]'
	touch $@

# The TypeScript client check's tools (tests/clients), at the locked versions.
CLIENTS := clients/typescript
CLIENTS_STAMP := $(CLIENTS)/node_modules/.hulian-installed

clients: $(CLIENTS_STAMP) ## install the TypeScript client check's tools (npm ci in clients/typescript)

$(CLIENTS_STAMP): $(CLIENTS)/package.json $(CLIENTS)/package-lock.json
	@if ! command -v npm >/dev/null 2>&1; then
	    echo "make clients: npm (Node.js 20.19 or newer) is needed for tests/clients" >&2
	    exit 1
	fi
	echo "+ npm ci --prefix $(CLIENTS)"
	npm ci --prefix $(CLIENTS) --no-audit --no-fund --loglevel=error
	touch $@

# The web app (web/, docs/web.md): npm ci from its lock, then generate the
# client from openapi/openapi.json, type-check and build into web/dist, which
# the server serves at /app/. Rebuilt only when a source or the spec changed.
WEB := web
WEB_STAMP := $(WEB)/node_modules/.hulian-installed
WEB_SOURCES := $(shell find $(WEB)/src $(WEB)/public -type f -not -path '$(WEB)/src/gen/*' 2>/dev/null) \
    $(wildcard $(WEB)/*.html $(WEB)/*.ts $(WEB)/*.json $(WEB)/scripts/*) openapi/openapi.json

web: $(WEB)/dist/index.html ## build the web app into web/dist (npm ci in web/ first)

$(WEB_STAMP): $(WEB)/package.json $(WEB)/package-lock.json
	@if ! command -v npm >/dev/null 2>&1; then
	    echo "make web: npm (Node.js 20.19 or newer) is needed to build the web app" >&2
	    exit 1
	fi
	echo "+ npm ci --prefix $(WEB)"
	npm ci --prefix $(WEB) --no-audit --no-fund --loglevel=error
	touch $@

$(WEB)/dist/index.html: $(WEB_STAMP) $(WEB_SOURCES)
	@echo "+ npm run build --prefix $(WEB)"
	npm run build --prefix $(WEB) --silent

run: venv web ## build the web app, migrate and seed the demo database `hulian`, then serve on 127.0.0.1:8000 (/app/)
	@$(demo_database_url)
	echo "+ python -m app migrate"
	$(PY) -m app migrate
	echo "+ python -m app seed $(SEED_ARGS)"
	$(PY) -m app seed $(SEED_ARGS)
	echo "+ python -m app serve --host $(SERVE_HOST) --port $(SERVE_PORT)"
	exec $(PY) -m app serve --host $(SERVE_HOST) --port $(SERVE_PORT)

# Runs every check, even after one failed, and fails at the end if any did.
test: venv clients web ## ruff, ruff format --check, mypy, then pytest on `hulian_test`
	@if [[ -z "$${TEST_DATABASE_URL:-}" ]]; then
	    TEST_DATABASE_URL="$$(scripts/local-db.sh hulian_test | tail -n 1)"
	fi
	name="$${TEST_DATABASE_URL##*/}"; name="$${name%%\?*}"
	if [[ "$$name" == hulian || "$$name" != *test* ]]; then
	    echo "make test: refusing TEST_DATABASE_URL database '$$name': its name must contain 'test'" >&2
	    exit 1
	fi
	# The browser tests drive Debian's chromium (installed here when missing, as root).
	scripts/browser.sh >/dev/null
	# Anything that reads Settings during the tests gets the test database.
	export TEST_DATABASE_URL DATABASE_URL="$$TEST_DATABASE_URL" APP_ENV=test
	failed=()
	step() {
	    echo "+ $$*"
	    local rc=0
	    "$$@" || rc=$$?
	    if ((rc != 0)); then failed+=("$$* (exit $$rc)"); fi
	    return 0
	}
	step $(BIN)/ruff check .
	step $(BIN)/ruff format --check .
	step $(BIN)/mypy $(MYPY_TARGETS)
	echo "+ pytest (database $$name)"
	rc=0
	$(BIN)/pytest $(PYTEST_ARGS) || rc=$$?
	if ((rc == 5)); then
	    echo "make test: pytest collected no tests (exit 5): that is a failure" >&2
	fi
	if ((rc != 0)); then failed+=("pytest (exit $$rc)"); fi
	if (($${#failed[@]})); then
	    echo "make test: FAILED: $${failed[*]}" >&2
	    exit 1
	fi
	echo "make test: all checks passed"

lint: venv ## ruff check, ruff format --check, mypy
	@rc=0
	echo "+ ruff check ."; $(BIN)/ruff check . || rc=1
	echo "+ ruff format --check ."; $(BIN)/ruff format --check . || rc=1
	echo "+ mypy $(MYPY_TARGETS)"; $(BIN)/mypy $(MYPY_TARGETS) || rc=1
	exit $$rc

fmt: venv ## ruff format and ruff check --fix
	@echo "+ ruff format ."; $(BIN)/ruff format .
	echo "+ ruff check --fix ."; $(BIN)/ruff check --fix .

openapi: venv ## regenerate openapi/openapi.json and openapi/asyncapi.json
	@mkdir -p openapi
	echo "+ python -m app openapi > openapi/openapi.json"
	$(PY) -m app openapi > openapi/openapi.json.tmp
	mv openapi/openapi.json.tmp openapi/openapi.json
	echo "+ python -m app asyncapi > openapi/asyncapi.json"
	$(PY) -m app asyncapi > openapi/asyncapi.json.tmp
	mv openapi/asyncapi.json.tmp openapi/asyncapi.json

migrate: venv ## apply the migrations to the demo database
	@$(demo_database_url)
	echo "+ python -m app migrate"
	$(PY) -m app migrate

seed: venv ## seed the demo district into the demo database (SEED_ARGS=...)
	@$(demo_database_url)
	echo "+ python -m app seed $(SEED_ARGS)"
	$(PY) -m app seed $(SEED_ARGS)

migration: venv ## autogenerate a migration from the models: make migration m="what changed"
	@if [[ -z "$(m)" ]]; then echo 'usage: make migration m="what changed"' >&2; exit 2; fi
	# A scratch database at head, so autogenerate sees only what the models add.
	scratch="$$(scripts/local-db.sh hulian_migration_scratch | tail -n 1)"
	export DATABASE_URL="$$scratch"
	trap 'psql -X -q "$${scratch/postgresql+asyncpg:/postgresql:}" -c "select 1" >/dev/null 2>&1 \
	      && dropdb --if-exists -h 127.0.0.1 -U postgres hulian_migration_scratch || true' EXIT
	$(BIN)/alembic upgrade head
	$(BIN)/alembic revision --autogenerate -m "$(m)"
	echo "Read the new file in migrations/versions/ before committing it."

bench: venv ## run the benchmark: python -m bench $(ARGS)
	@echo "+ python -m bench $(ARGS)"
	$(PY) -m bench $(ARGS)

lock: venv ## rewrite requirements.lock from what .venv holds
	@echo "+ pip freeze --exclude-editable > $(LOCK)"
	{
	    echo "# Exact versions of .venv (pip freeze --exclude-editable), used as pip constraints:"
	    echo "#   pip install -c requirements.lock -e '.[dev]'   (make venv). Regenerate: make lock"
	    $(PY) -m pip freeze --disable-pip-version-check --exclude-editable | grep -viE '^(hulian|-e )'
	} > $(LOCK).tmp
	mv $(LOCK).tmp $(LOCK)
	touch $(STAMP)

clean: ## remove caches and build output (keeps .venv; distclean removes it too)
	@rm -rf .pytest_cache .mypy_cache .ruff_cache build dist *.egg-info openapi/openapi.json.tmp
	rm -rf $(CLIENTS)/generated $(CLIENTS)/dist
	find . -path ./.venv -prune -o -type d -name __pycache__ -exec rm -rf {} +

distclean: clean ## clean, and remove .venv
	@rm -rf $(VENV) $(CLIENTS)/node_modules
