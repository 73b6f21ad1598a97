# mk/memcached-suite.mk — `make memcached-suite`: memcached 1.6.18's own
# test suite (t/*.t, Perl) against build/percore, by
# scripts/memcached-suite.sh (downloads Debian's source once, checks its
# sha256, runs the files known to pass, each bounded in time). Optional, for
# developers and CI: not part of `make test`.
#   make memcached-suite                      the files known to pass
#   make memcached-suite SUITE_ARGS=--all     every file but the skipped ones
#   make memcached-suite SUITE_ARGS="getset cas"   some files
#   make memcached-suite SUITE_ARGS=--tls     the TLS files, ssl_*.t
#   make memcached-suite SUITE_ARGS=--over-tls  every file over TLS
#                                             (memcached's make test_tls)

SUITE_ARGS ?=

.PHONY: memcached-suite
memcached-suite: $(O)/percore
	@bash scripts/memcached-suite.sh --bin $(O)/percore $(SUITE_ARGS)
