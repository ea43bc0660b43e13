# Shortcuts; each target is one documented command.
STACK ?= small

.PHONY: plan test
plan:  ## Offline plan of a stack under Pulumi mocks: make plan STACK=medium
	uv run python -m infra.plan $(STACK)

test:  ## The whole test suite
	bash scripts/test
