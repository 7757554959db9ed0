# Convenience targets; the test command is scripts/test (see README).
IMAGE ?= mta:0.1.0
OVERLAY ?= dev

.PHONY: image render test

image:  ## build the container image
	docker build -f container/Dockerfile -t $(IMAGE) .

render:  ## print the manifests of one overlay: make render OVERLAY=prod
	kubectl kustomize k8s/overlays/$(OVERLAY)

test:  ## lint, types and the whole suite (installs what it needs)
	scripts/test
