#!/bin/bash
# stalls.sh - the former name of bench/write_stall.sh (same options; its
# default output is now docs/results/write_stall.md).
exec "$(dirname "$0")/write_stall.sh" "$@"
