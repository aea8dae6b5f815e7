# One command runs the system (`make dev`), one runs every test (`make test`). See README.md.
SHELL := /bin/bash
.DEFAULT_GOAL := help

.PHONY: help install services build lint migrate seed dev test bench demo clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

install: ## pnpm (pinned) and the workspace's dependencies
	@bash infra/dev/ensure-pnpm.sh
	@pnpm install --frozen-lockfile --reporter=append-only

services: ## start local Redis, PostgreSQL, Mosquitto when not running (installs them if missing)
	@bash infra/dev/services.sh

build: install ## compile every package and app (tsc -b)
	@pnpm run build

lint: install ## Biome over the whole tree (biome.jsonc); part of make test
	@pnpm run lint

migrate: build services ## create the database if needed and apply migrations
	@node packages/db/dist/src/cli.js migrate

seed: migrate ## a demo device model and a few devices with entity ids
	@node packages/db/dist/src/cli.js seed

dev: seed ## run the whole system locally with embedded defaults
	@bash infra/dev/run.sh

test: build services lint ## lint, then every test, against the real Redis, PostgreSQL and Mosquitto
	@bash infra/dev/test.sh

bench: build services ## every benchmark under bench/ (prints numbers; asserts nothing)
	@bash bench/run-all.sh

demo: ## publish demo log lines for the seeded devices (needs `make dev` running)
	@node bench/dist/demo-publisher.js

clean: ## remove build output
	@rm -rf apps/*/dist packages/*/dist bench/dist
