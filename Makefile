# Developer entry points. CI runs `bash .ci/run` (= make test).

GO      ?= go
DOCKER  ?= docker
CHART   := deploy/helm/exfilguard
IMAGE   ?= ghcr.io/exfilguard/exfilguard
# The image tag defaults to the chart's appVersion, as the chart's does.
TAG     ?= $(shell sed -n 's/^appVersion: *"\{0,1\}\([^"]*\)"\{0,1\} *$$/\1/p' $(CHART)/Chart.yaml)

.PHONY: build test image helm-lint helm-test

## build: the static detector binary, ./detector
build:
	CGO_ENABLED=0 $(GO) build -trimpath -o detector ./cmd/detector

## test: the whole test suite, exactly as CI runs it
test:
	bash .ci/run

## image: the container image $(IMAGE):$(TAG) (needs a Docker engine)
image:
	@if ! command -v $(DOCKER) >/dev/null 2>&1; then \
		echo "make image: no '$(DOCKER)' command here. Building the image needs Docker (or set DOCKER= to a compatible CLI such as podman)." >&2; \
		exit 1; \
	fi
	@if ! $(DOCKER) info >/dev/null 2>&1; then \
		echo "make image: '$(DOCKER)' cannot reach a Docker engine (is the daemon running, and may this user use it?). Build the image where one runs: $(DOCKER) build -t $(IMAGE):$(TAG) ." >&2; \
		exit 1; \
	fi
	$(DOCKER) build -t $(IMAGE):$(TAG) .

## helm-lint: helm lint --strict of the chart with each of its ci/ values files
helm-lint:
	@helm=$$(bash .ci/helm.sh) && \
	for f in $(CHART)/ci/*.yaml; do \
		"$$helm" lint --strict $(CHART) -f "$$f" || exit 1; \
	done

## helm-test: the chart's template tests (deploy/helmtest)
helm-test:
	cd deploy/helmtest && EXFILGUARD_HELM=$$(bash ../../.ci/helm.sh) $(GO) test -count=1 ./...
