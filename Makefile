# o365-mail-connector — see README.md.
BINARY   := o365-mail-connector
VERSION  ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS  := -s -w -X main.version=$(VERSION)
GO       ?= go
HELM_VERSION := v3.17.3
TOOLS    := $(CURDIR)/.tools
JS       := tools/js

.PHONY: build test unit vet fmt-check lint run demo bench reliability fuzz js-deps templates bpmn helm-check helm generate clean

build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags "$(LDFLAGS)" -o bin/$(BINARY) ./cmd/$(BINARY)

## test: everything CI checks (format, vet, race tests, template and BPMN validation).
## js-deps first: the FEEL differential test needs feelin from tools/js.
test: fmt-check vet js-deps unit templates bpmn

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go' -not -path './.tools/*')); \
	if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi

vet:
	$(GO) vet ./...

unit:
	$(GO) test -race -count=1 -timeout 15m ./...

lint: fmt-check vet

## run: the worker against $$ZEEBE_ADDRESS (all settings from the environment)
run:
	$(GO) run ./cmd/$(BINARY) run

## demo: the embedded sandbox (in-process Zeebe gateway, Graph and identity simulators)
demo:
	$(GO) run ./cmd/$(BINARY) sandbox

## bench: load command against the in-process gateway and Graph, with the bare-client baseline
bench:
	$(GO) run ./cmd/loadtest
	$(GO) test -run '^$$' -bench . -benchmem ./internal/feel/ ./internal/graph/

## reliability: the long reliability scenarios
reliability:
	O365_LONG=1 $(GO) test -race -count=1 -timeout 30m -run 'Reliability' ./...

## fuzz: each fuzz target for FUZZTIME (default 60s)
FUZZTIME ?= 60s
fuzz:
	@grep -rHo --include='*_test.go' '^func Fuzz[A-Za-z0-9_]*' internal | sort | while IFS=: read -r file fn; do \
		pkg=./$$(dirname $$file); name=$${fn#func }; \
		echo "== $$pkg $$name"; \
		$(GO) test -run '^$$' -fuzz "^$$name$$" -fuzztime $(FUZZTIME) $$pkg || exit 1; \
	done

js-deps: $(JS)/node_modules/.installed
$(JS)/node_modules/.installed: $(JS)/package.json $(JS)/package-lock.json
	cd $(JS) && npm ci --no-audit --no-fund --loglevel=error
	touch $@

templates: js-deps
	cd $(JS) && npm run --silent validate-templates

bpmn: js-deps
	cd $(JS) && npm run --silent lint-bpmn

$(TOOLS)/helm:
	GOBIN=$(TOOLS) $(GO) install helm.sh/helm/v3/cmd/helm@$(HELM_VERSION)

helm-check: $(TOOLS)/helm
	HELM=$(TOOLS)/helm sh deploy/helm/check.sh

generate:
	$(GO) generate ./...

clean:
	rm -rf bin $(TOOLS)
