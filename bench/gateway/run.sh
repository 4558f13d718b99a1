#!/usr/bin/env bash
# Benchmark of a whole delivery through `dicomgate serve` against the time
# DCMTK storescp takes merely to receive the same study, in one run, on
# loopback (issue 5). See bench/gateway/README.md.
#
# Usage: bench/gateway/run.sh [instances] [rounds]
#        defaults: 500 3. Env: SERVE_ARGS (more serve flags),
#        QUIET (serve's --quiet-period, default 1s),
#        BENCH_DIR (work files, default a temporary directory under /tmp,
#        removed at the end), PERF=1 (one more, unmeasured, round under
#        `perf record` and its top functions).
set -euo pipefail

N=${1:-500}
ROUNDS=${2:-3}
QUIET=${QUIET:-1s}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
WORK=${BENCH_DIR:-$(mktemp -d /tmp/gateway-bench.XXXXXX)}
. "$ROOT/bench/dcmtk.sh" # free_port, wait_port, now, median, start_storescp, PIDS and $WORK removed at exit; TCP_NODELAY=1

need storescu storescp bc python3 go
[ "${PERF:-0}" = 1 ] && need perf

QUIET_S=$(python3 -c "import sys,re; m=re.fullmatch(r'([0-9.]+)(ms|s|m)', sys.argv[1]); print(float(m[1])*{'ms':0.001,'s':1,'m':60}[m[2]])" "$QUIET")
CLK_TCK=$(getconf CLK_TCK)
LOGIN=bench@example.org
PATIENT_ID=CTSTUDY-0001 # ctgen's default Patient ID (no issuer)

echo "== building"
(cd "$ROOT" && go build -o "$WORK/dicomgate" ./cmd/dicomgate && go build -o "$WORK/gwbench" ./bench/gateway)
DG=$WORK/dicomgate
GWB=$WORK/gwbench
echo "== generating $N instances"
gen=$(cd "$ROOT" && go run ./bench/ctstudy/cmd/ctgen -n "$N" -out "$WORK/study")
echo "$gen"
STUDY=${gen##* }
FILES=("$WORK"/study/*.dcm)

SCP_PORT=$(free_port)
start_storescp "$WORK/scp" "$SCP_PORT"
wait_port "$SCP_PORT"

# cpu PID prints the process's user+system CPU seconds.
cpu() { awk -v t="$CLK_TCK" '{sub(/.*\) /, ""); print ($12 + $13) / t}' "/proc/$1/stat"; }
# tl KEY prints a value of the current round's timeline.
tl() { awk -F= -v k="$1" '$1 == k {print $2}' "$D/timeline"; }
sub() { LC_ALL=C printf '%.3f' "$(echo "$1 - $2" | bc -l)"; }

# serve_round R [perf] provisions a fresh data directory (a record of the
# bundled platform, the gateway application authorized for it, the
# patient mapped to it), starts serve, sends the study and waits until it
# is delivered. It sets the R_* variables below.
serve_round() {
	D=$WORK/dg$1
	rm -rf "$D"
	mkdir -p "$D"
	local app rec port pport sp args t0 t1 c0 c1 c2
	app=$("$DG" platform app create --data "$D" --name "dicomgate gateway" --out "$D/platform/gateway-app" 2>/dev/null)
	rec=$("$DG" platform record create --data "$D" --login "$LOGIN" --password bench-password --name "CT Synthetic" 2>/dev/null)
	"$DG" platform record authorize --data "$D" --app "$app" --record "$rec" 2>/dev/null
	"$GWB" link -data "$D" -login "$LOGIN" -record "$rec" -patient-id "$PATIENT_ID"
	port=$(free_port)
	pport=$(free_port)
	args=(serve --data "$D" --dicom-addr "127.0.0.1:$port" --platform-addr "127.0.0.1:$pport" --admin-addr "127.0.0.1:$(free_port)"
		--quiet-period "$QUIET" --log-level warn)
	# SERVE_ARGS adds serve flags (e.g. SERVE_ARGS="--delivery-parallel 8").
	read -r -a extra <<<"${SERVE_ARGS:-}"
	args+=("${extra[@]}")
	"$DG" "${args[@]}" 2>"$D/serve.log" &
	sp=$!
	PIDS+=("$sp")
	wait_port "$port"
	wait_port "$pport"
	sync
	c0=$(cpu "$sp")
	t0=$(now)
	storescu -aec DICOMGATE 127.0.0.1 "$port" "${FILES[@]}"
	t1=$(now)
	c1=$(cpu "$sp")
	# The profile covers the delivery only (the quiet period is idle).
	local perfpid=
	if [ "${2:-}" = perf ]; then
		perf record -q -F 499 -g -p "$sp" -o "$WORK/perf.data" >/dev/null 2>&1 &
		perfpid=$!
		perf stat -e syscalls:sys_enter_fsync,syscalls:sys_enter_fdatasync,page-faults -p "$sp" -o "$WORK/perfstat.txt" >/dev/null 2>&1 &
		perfpid="$perfpid $!"
	fi
	"$GWB" wait -data "$D" -study "$STUDY" >"$D/timeline" || { cat "$D/serve.log" >&2; exit 1; }
	c2=$(cpu "$sp")
	R_RSS=$(awk '/VmHWM/ {printf "%.0f", $2 / 1024}' "/proc/$sp/status")
	for p in $perfpid; do kill -INT "$p"; wait "$p" || true; done
	kill "$sp"
	wait "$sp" || true
	[ "$(tl instances)" -eq "$N" ] || { echo "dicomgate delivered $(tl instances) of $N" >&2; exit 1; }

	local delivered routed uploading things lastblob
	delivered=$(tl delivered_at)
	routed=$(tl event_routed)
	uploading=$(tl event_uploading)
	things=$(tl thing_updated)
	lastblob=$(printf '%s\n' "$(tl last_blob_dicom)" "$(tl last_blob_jpeg)" | sort -n | tail -1)
	R_RECV=$(sub "$t1" "$t0")
	R_RAW=$(sub "$delivered" "$t0")
	R_NET=$(sub "$R_RAW" "$QUIET_S")
	R_QUIET=$(sub "$routed" "$(tl last_received)")   # quiet period + scheduler tick
	R_START=$(sub "$uploading" "$routed")             # job claimed, thing looked up
	R_BLOBS=$(sub "$lastblob" "$uploading")           # previews rendered, blobs streamed
	R_PUT=$(sub "$things" "$lastblob")                # PutThings (MIS built, thing committed)
	R_MARK=$(sub "$delivered" "$things")              # instances marked, study delivered
	R_BUSY_D=$(tl blob_busy_dicom)
	R_BUSY_J=$(tl blob_busy_jpeg)
	R_CPU_RECV=$(sub "$c1" "$c0")
	R_CPU_DELIV=$(sub "$c2" "$c1")
	R_MB=$(echo "scale=1; ($(tl bytes_dicom) + $(tl bytes_jpeg)) / 1048576" | bc -l)
	R_BLOBN=$(tl blobs)
}

echo "== load: $(cut -d' ' -f1-3 /proc/loadavg), $(nproc) cores"
declare -a SCP RECV RAW NET RATIO RSS QUIETS STARTS BLOBS PUTS MARKS BUSYD BUSYJ CPUR CPUD
for r in $(seq "$ROUNDS"); do
	rm -rf "$WORK/scp"/*
	sync
	t0=$(now)
	storescu -aec STORESCP 127.0.0.1 "$SCP_PORT" "${FILES[@]}"
	t1=$(now)
	[ "$(ls "$WORK/scp" | wc -l)" -eq "$N" ] || { echo "storescp stored $(ls "$WORK/scp" | wc -l) of $N" >&2; exit 1; }
	SCP+=("$(sub "$t1" "$t0")")
	rm -rf "$WORK/scp"/*
	serve_round "$r"
	RECV+=("$R_RECV") RAW+=("$R_RAW") NET+=("$R_NET") RSS+=("$R_RSS")
	RATIO+=("$(echo "scale=2; $R_NET / ${SCP[-1]}" | bc -l)")
	QUIETS+=("$R_QUIET") STARTS+=("$R_START") BLOBS+=("$R_BLOBS") PUTS+=("$R_PUT") MARKS+=("$R_MARK")
	BUSYD+=("$R_BUSY_D") BUSYJ+=("$R_BUSY_J") CPUR+=("$R_CPU_RECV") CPUD+=("$R_CPU_DELIV")
	echo "round $r: storescp receive ${SCP[-1]} s | dicomgate receive $R_RECV s, first C-STORE to delivered $R_RAW s (net of quiet period $R_NET s, ${RATIO[-1]}x storescp), peak RSS $R_RSS MiB | load $(cut -d' ' -f1 /proc/loadavg)"
	echo "         receive $R_RECV, quiet+tick $R_QUIET, job start $R_START, previews+uploads $R_BLOBS (upload busy: dicom $R_BUSY_D, jpeg $R_BUSY_J), PutThings $R_PUT, mark delivered $R_MARK s; serve CPU: receive $R_CPU_RECV s, delivery $R_CPU_DELIV s; $R_BLOBN blobs, $R_MB MiB"
	rm -rf "$D"
done

m() { printf '%s\n' "$@" | median; }
scp=$(m "${SCP[@]}")
net=$(m "${NET[@]}")
echo
echo "== $N x 512x512 16-bit CT, storescu in one association, median of $ROUNDS (load now: $(cut -d' ' -f1-3 /proc/loadavg), $(nproc) cores)"
echo "  storescp receive (no fsync)                      $scp s"
echo "  dicomgate receive (fsync per instance)           $(m "${RECV[@]}") s"
echo "  dicomgate first C-STORE to delivered, raw        $(m "${RAW[@]}") s"
printf '  %-49s%s s\n' "dicomgate ... net of the $QUIET quiet period" "$net"
echo "  ratio dicomgate net / storescp                   $(m "${RATIO[@]}") (target <= 4; ratio of medians $(echo "scale=2; $net / $scp" | bc -l))"
echo "  peak RSS of dicomgate serve (VmHWM)              $(m "${RSS[@]}") MiB (max $(printf '%s\n' "${RSS[@]}" | sort -n | tail -1) MiB; target <= 256 MiB)"
echo "  where the time goes (medians, s): receive $(m "${RECV[@]}"), quiet period + scheduler tick $(m "${QUIETS[@]}"),"
echo "    job start $(m "${STARTS[@]}"), previews + uploads $(m "${BLOBS[@]}"), PutThings $(m "${PUTS[@]}"), mark delivered $(m "${MARKS[@]}")"
echo "    summed upload time per blob: dicom $(m "${BUSYD[@]}"), jpeg $(m "${BUSYJ[@]}") (4 at a time)"
echo "  serve CPU (median, s): receiving $(m "${CPUR[@]}"), delivering $(m "${CPUD[@]}")"

if [ "${PERF:-0}" = 1 ]; then
	echo
	echo "== profile round (perf record -F 499 -g, not measured)"
	serve_round perf perf
	echo "  this round: first C-STORE to delivered $R_RAW s, previews + uploads $R_BLOBS s"
	perf report -i "$WORK/perf.data" --no-children --sort sym --stdio -g none 2>/dev/null | grep -v '^#' | grep -v '^$' >"$WORK/perf.txt"
	echo "  serve's CPU samples during the delivery, by part (self time):"
	awk '{
		p = $1; sub(/%/, "", p); s = $3
		if ($2 == "[k]") c = "kernel (syscalls, page faults, fsync, scheduling)"
		else if (s ~ /^dicomgate\/previews|^image|^github.com\/disintegration/) c = "preview rendering + JPEG encoding"
		else if (s ~ /sha256|SHA256/) c = "SHA-256 (SHA256Block hashing, both ends)"
		else if (s ~ /^modernc.org/) c = "SQLite (modernc)"
		else if (s ~ /^runtime\.(gc|mark|scan|sweep|tryDefer|greyobject|findObject|heapBits|wbBuf|bgsweep|memclr|mallocgc)|^runtime\.\(\*(mspan|mheap|gcWork|mcentral)/) c = "Go runtime: allocation + GC"
		else if (s ~ /^runtime\./) c = "Go runtime: other (scheduler, memmove...)"
		else if (s ~ /^net\/http|^net\.|^bufio|^crypto\/tls/) c = "net/http + net"
		else if (s ~ /^encoding\/xml|^github.com\/beevik|^dicomgate\/platform\/wire|^dicomgate\/platform\/thing|^dicomgate\/mis/) c = "XML (things, MIS)"
		else if (s ~ /^dicomgate\/platform/) c = "platform server + client"
		else if (s ~ /^dicomgate\/gateway/) c = "gateway"
		else if (s ~ /^syscall|^internal\/poll|^os\./) c = "syscall wrappers"
		else c = "other"
		t[c] += p
	} END { for (c in t) printf "    %6.1f%%  %s\n", t[c], c }' "$WORK/perf.txt" | sort -rn
	echo "  during the delivery: $(awk '/sys_enter_fsync/ {a=$1} /sys_enter_fdatasync/ {b=$1} /page-faults/ {c=$1} END {printf "%s fsync + %s fdatasync calls, %s page faults", a, b, c}' "$WORK/perfstat.txt") for $R_BLOBN blobs"
	echo "  top functions:"
	head -15 "$WORK/perf.txt" | sed 's/^/  /'
fi
