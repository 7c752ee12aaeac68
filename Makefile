# kimia: two binaries over one shared layer.
#   make build      bin/kimia (BuildKit), bin/kimia-bud (Buildah), bin/kimia-sbom (their SBOM helper)
#   make test       unit and end-to-end tests (needs hack/setup.sh first)
#   make check      gofmt, go vet, unit tests

SHELL := /bin/bash
GO ?= go
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
# Buildah needs cgo (rootless re-exec) and these tags: seccomp support,
# containers/image's pure-Go OpenPGP, and no btrfs graph driver (no
# headers needed). The same tags are used for vet and tests, so that
# `go test ./...` sees all code.
BUILDAH_TAGS := seccomp containers_image_openpgp exclude_graphdriver_btrfs
comma := ,
space := $() $()
export GOFLAGS := -tags=$(subst $(space),$(comma),$(BUILDAH_TAGS))
# The end-to-end tests (test/e2e) build only with the e2e tag, so that
# `go test ./...` is the unit suite; vet sees them too.
E2E_TAGS := -tags=$(subst $(space),$(comma),$(BUILDAH_TAGS) e2e)
LDFLAGS := -s -w -X github.com/rapidfort/kimia/flags.Version=$(VERSION)

.PHONY: build test unit e2e check vet fmt docs clean FORCE

build: bin/kimia bin/kimia-bud bin/kimia-sbom bin/buildkitd

# kimia runs the pinned buildkitd found next to itself; buildctl is for the
# benchmark and debugging. hack/install-buildkit.sh builds both once per
# version into the cache and prints the directory.
bin/buildkitd: FORCE
	@dir=$$(hack/install-buildkit.sh) && mkdir -p bin && for f in buildkitd buildctl; do \
		cmp -s "$$dir/$$f" bin/$$f || cp "$$dir/$$f" bin/$$f; done

# kimia needs none of Buildah's tags; with containers_image_openpgp set,
# syft's image library (stereoscope) would link containers/image and
# containers/storage into the BuildKit binary.
bin/kimia: FORCE
	GOFLAGS= CGO_ENABLED=0 $(GO) build -trimpath -ldflags "$(LDFLAGS)" -o $@ ./cmd/kimia

bin/kimia-bud: FORCE
	CGO_ENABLED=1 $(GO) build -trimpath -ldflags "$(LDFLAGS)" -o $@ ./cmd/kimia-bud

# The SBOM helper both binaries start (attest/sbom): the only binary with
# syft, built as kimia is (no Buildah tags).
bin/kimia-sbom: FORCE
	GOFLAGS= CGO_ENABLED=0 $(GO) build -trimpath -ldflags "-s -w -X main.Version=$(VERSION)" -o $@ ./cmd/kimia-sbom

fmt:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "not gofmt-formatted:"; echo "$$out"; exit 1; fi

vet:
	$(GO) vet $(E2E_TAGS) ./...

unit:
	$(GO) test -count=1 ./...

e2e: build
	KIMIA_BIN_DIR=$(CURDIR)/bin $(GO) test $(E2E_TAGS) -count=1 -timeout 60m ./test/e2e/ $(E2E_FLAGS)

test: fmt vet unit e2e

check: fmt vet unit

docs:
	$(GO) run ./hack/gendocs > docs/cli-reference.md

clean:
	rm -rf bin
