# Sourced by the benchmark scripts: a release `hisp` in $hisp, a scratch
# directory in $work, and background processes listed in $pids, all killed
# and removed on exit.
swift build -c release --product hisp >/dev/null
hisp=$PWD/.build/release/hisp
work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT
# KEEP=1 keeps the scratch directory and the processes for a look afterwards.
if [ -n "${KEEP:-}" ]; then trap - EXIT; fi
