# The one entry point: CI calls these same targets.
SHELL := /bin/bash
CARGO ?= cargo
PG_URL ?= postgres://postgres@127.0.0.1:5432/test
DEV := deploy/dev

.PHONY: run build test test-postgres test-gateway test-contract lint fmt openapi bench clean

## run: start the auth-server (:9000) and the resource-api (:9001) on embedded SQLite
run: build
	@mkdir -p data
	@echo "auth-server  http://localhost:9000  (docs: /docs)"
	@echo "resource-api http://localhost:9001  (docs: /docs)"
	@trap 'kill $$(jobs -p) 2>/dev/null; wait' INT TERM EXIT; \
	  ./target/debug/auth-server --config $(DEV)/auth-server.toml & \
	  ./target/debug/resource-api --config $(DEV)/resource-api.toml & \
	  wait -n

build:
	$(CARGO) build --workspace --bins

## test: every test, on SQLite (a fresh database per test)
test:
	$(CARGO) test --workspace

## test-postgres: the same tests on the PostgreSQL at $(PG_URL) (a fresh database per test)
test-postgres:
	TEST_DATABASE_URL=$(PG_URL) $(CARGO) test --workspace

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

fmt:
	$(CARGO) fmt --all

## openapi: regenerate the committed specs from the code
openapi: build
	./target/debug/auth-server openapi > openapi/auth-server.json
	./target/debug/resource-api openapi > openapi/resource-api.json

## bench: release binaries, loopback load, a peer side by side; writes bench/results.md
bench:
	bash bench/run.sh

## test-contract: generated TypeScript and Python SDKs, newman and schemathesis against the live services
test-contract:
	bash tests/contract/run.sh

## test-gateway: PostgreSQL + two auth-servers + two APIs behind nginx, through the gateway only
test-gateway:
	bash tests/gateway/run.sh

clean:
	rm -rf data target
