# mk/uring.mk — the integration suite on each I/O backend (docs/io.md).
#   make integration-io                      epoll, poll and uring in turn
#   make integration-io IO_BACKENDS=uring    one backend
#   make integration-io PYTEST_ARGS='-k pipeline'
# The harness (tests/integration/conftest.py) adds --io=$PERCORE_IO to every
# percore it starts.
IO_BACKENDS ?= epoll poll uring
PYTEST_ARGS ?=

.PHONY: integration-io
integration-io: all
	@status=0; for io in $(IO_BACKENDS); do \
	    echo "==== integration tests, --io=$$io"; \
	    if [ -f tests/run-integration.sh ]; then \
	        PERCORE_IO=$$io bash tests/run-integration.sh $(O) $(PYTEST_ARGS) || status=1; \
	    else \
	        PERCORE_IO=$$io PERCORE_SERVER=$(O)/percore PERCORE_BUILD=$(O) \
	            /usr/bin/python3 -m pytest -q -p no:cacheprovider tests/integration $(PYTEST_ARGS) || status=1; \
	    fi; \
	done; exit $$status
