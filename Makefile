# The one entry point: CI calls these same targets.
SHELL := /bin/bash
CARGO ?= cargo
PG_URL ?= postgres://postgres@127.0.0.1:5432/test
DEV := deploy/dev

.PHONY: run build test test-postgres test-gateway test-contract test-images test-fuzz test-fault lint check-axum-deps fmt openapi bench clean

## run: start the auth-server (:9000) and the resource-api (:9001) on embedded SQLite
run: build
	@mkdir -p data
	@echo "auth-server  http://localhost:9000  (docs: /docs)"
	@echo "resource-api http://localhost:9001  (docs: /docs)"
	@echo "scouting-api http://localhost:9002  (a second resource-api, for referrals)"
	@# Ctrl-C or SIGTERM stops the three services and ends quietly; if one exits on its own, the
	@# others are stopped and make reports the failure.
	@trap 'kill $$(jobs -p) 2>/dev/null; wait; exit 0' INT TERM; \
	  ./target/debug/auth-server --config $(DEV)/auth-server.toml & \
	  ./target/debug/resource-api --config $(DEV)/resource-api.toml & \
	  ./target/debug/resource-api --config $(DEV)/scouting-api.toml & \
	  wait -n; status=$$?; kill $$(jobs -p) 2>/dev/null; wait; exit $$status

build:
	$(CARGO) build --bins

## test: every test, on SQLite (a fresh database per test); token-verifier also as an axum
## user builds it (the workspace build has all its features on)
test:
	$(CARGO) test
	$(CARGO) test -p token-verifier --no-default-features --features axum

## test-postgres: the same tests on the PostgreSQL at $(PG_URL) (a fresh database per test)
test-postgres:
	TEST_DATABASE_URL=$(PG_URL) $(CARGO) test

lint: check-axum-deps
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings
	$(CARGO) clippy -p token-verifier --all-targets --no-default-features --features axum -- -D warnings
	$(CARGO) clippy -p token-verifier --all-targets --no-default-features -- -D warnings
	$(CARGO) clippy -p token-verifier --all-targets --features fuzzing -- -D warnings

## check-axum-deps: fails if poem is in an axum user's build (examples/axum-api, token-verifier/axum)
check-axum-deps:
	CARGO=$(CARGO) bash tests/no-poem-in-axum-build.sh

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

## test-images: deploy/Dockerfile's images built (from release binaries) and run as compose runs them, in a private dockerd (root)
test-images:
	bash tests/images/run.sh

## test-fuzz: the cargo-fuzz targets (token request parsing, JWS header/claims checks, JWKS
## parsing), FUZZ_SECONDS (60) each from the committed corpus in fuzz/corpus; 0 crashes
test-fuzz:
	bash fuzz/run.sh

## test-fault: auth-server and API on two network-namespace hosts, the link between them
## slowed, lossy, cut and restored (root: ip netns, tc, nftables)
test-fault:
	bash tests/fault/run.sh

clean:
	rm -rf data target
