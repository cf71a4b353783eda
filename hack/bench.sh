#!/usr/bin/env bash
# make bench: every benchmark of docs/benchmarks.md, printed as Markdown. The load test
# pins the server and the load generator to different cores.
set -euo pipefail
cd "$(dirname "$0")/.."
assets=$(hack/envtest-assets.sh | tail -n 1)
export KUBEBUILDER_ASSETS=$assets

echo "## Run of $(date -u +%Y-%m-%dT%H:%MZ) on $(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs))"
echo
echo '### Handlers (go test -bench, -benchmem)'
echo
echo '```'
go test -run '^$' -bench . -benchmem -benchtime "${BENCH_TIME:-2s}" -count "${BENCH_COUNT:-3}" ./webhook/ | grep -E '^Benchmark'
echo '```'

make -s build
tmp=$(mktemp -d)
trap 'kill $server 2>/dev/null || true; rm -rf "$tmp"' EXIT
(cd test/bench && go build -o "$tmp/bench" .)
"$tmp/bench" certs "$tmp"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
taskset -c 0 "$tmp/bench" server "127.0.0.1:$port" "$tmp" &
server=$!
sleep 1
taskset -c 1 "$tmp/bench" load "127.0.0.1:$port" "$tmp"
kill $server

"$tmp/bench" e2e
echo
echo '### Our webhook pair against a floor pair, one create at a time (bench pair)'
echo
for i in 1 2 3; do "$tmp/bench" pair; done
echo
echo '### Admission modes in one API server, one create at a time (bench modes)'
echo
for i in 1 2 3; do "$tmp/bench" modes; done
"$tmp/bench" scale "${BENCH_SCALE:-100,1000,1000,1000,5000}" "$PWD/bin/tidb-backup-guard"
