# compose/make.mk — the docker compose deployment (the Naylence stickiness example on fame-go).
# Included from the root Makefile (`include compose/make.mk`), which defines BIN and `build`.
# Every target runs scripts/docker-install.sh first (installs Debian's docker.io +
# docker-compose and starts dockerd when missing; a no-op otherwise).
#
#   make start [STACK_PROFILE=strict|overlay|direct|open|cluster]  build, generate compose/.secrets, up -d, wait healthy
#   make run            the math client once: three results and the replica that served it
#   make run-verbose    the same with FAME_SHOW_ENVELOPES=true
#   make stop           compose down
#   make clean-compose  stop and delete compose/.secrets, compose/.env, compose/build
#   make compose-test   start, run, run-verbose, replica-1 failover, stop (leaves nothing running)

COMPOSE_STACK := BIN=$(BIN) $(if $(STACK_PROFILE),FAME_STACK_PROFILE=$(STACK_PROFILE)) ./scripts/compose-stack.sh

.PHONY: docker-install start run run-verbose stop clean-compose compose-test

docker-install:
	@./scripts/docker-install.sh

start: build docker-install
	@$(COMPOSE_STACK) start

run: docker-install
	@$(COMPOSE_STACK) run

run-verbose: docker-install
	@FAME_SHOW_ENVELOPES=true $(COMPOSE_STACK) run

stop: docker-install
	@$(COMPOSE_STACK) stop

clean-compose: docker-install
	@$(COMPOSE_STACK) clean

compose-test: build docker-install
	@BIN=$(BIN) $(if $(STACK_PROFILE),FAME_STACK_PROFILE=$(STACK_PROFILE)) ./scripts/compose-test.sh
