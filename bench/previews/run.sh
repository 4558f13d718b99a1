#!/usr/bin/env bash
# bench/previews/run.sh measures the preview renderer:
#  1. Go benchmarks: preview+thumbnail of one 512x512 16-bit CT instance on
#     one core (ns/op, B/op, allocs/op), and its stages.
#  2. studybench: a generated 500-instance CT study rendered on all cores,
#     in the same run as Orthanc's /instances/{id}/preview over the same
#     study (Orthanc started by hand on free loopback ports, storage in a
#     temporary directory, study uploaded through its REST API).
set -euo pipefail
cd "$(dirname "$0")/../.."
if ! command -v /usr/sbin/Orthanc >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq orthanc >/dev/null
    # The package starts its own service on the default ports; the
    # benchmark runs its own instance and needs no other.
    service orthanc stop >/dev/null 2>&1 || true
  else
    echo "Orthanc missing: apt-get install -y orthanc" >&2
    exit 1
  fi
fi
GOMAXPROCS=1 go test ./bench/previews -run '^$' -bench . -benchtime "${BENCHTIME:-200x}" -count 1
# ns/op above is wall time, inflated when the machine is shared; CPU time per
# op is the difference of user+sys time between a short and a long run.
go test -c -o /tmp/previews-bench.test ./bench/previews
cpu() { /usr/bin/time -f "%U %S" env GOMAXPROCS=1 /tmp/previews-bench.test -test.run '^$' -test.bench "$1" -test.benchtime "$2" 2>&1 >/dev/null | tail -1 | awk '{print $1+$2}'; }
for b in '^BenchmarkPreviewAndThumbnail$' '^BenchmarkThumbnail$'; do
  short=$(cpu "$b" 20x); long=$(cpu "$b" 520x)
  awk -v s="$short" -v l="$long" -v b="$b" 'BEGIN { printf "%s CPU time per op: %.2f ms\n", b, (l-s)/500*1000 }'
done
go run ./bench/previews/studybench -n "${INSTANCES:-500}" -rounds "${ROUNDS:-3}"
