# bench/dcmtk.sh: shell functions the benchmark scripts share (sourced by
# bench/dimse/run.sh and bench/gateway/run.sh): loopback ports, timing,
# medians, a DCMTK storescp receiver, and the clean-up at exit: the
# processes in the PIDS array are stopped and the sourcing script's work
# directory $WORK (set before sourcing) is removed.
#
# Every DCMTK process inherits TCP_NODELAY=1: without it Nagle's algorithm,
# not the code, is measured.
export TCP_NODELAY=1

PIDS=()
cleanup() {
	for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	rm -rf "$WORK"
}
trap cleanup EXIT

# need TOOL... fails unless every tool is on the PATH.
need() {
	for t in "$@"; do
		command -v "$t" >/dev/null || { echo "missing $t" >&2; exit 1; }
	done
}

# free_port prints a TCP port free on 127.0.0.1 now.
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }

# wait_port PORT waits up to 10 s for a listener on 127.0.0.1:PORT.
wait_port() { for _ in $(seq 100); do (echo >/dev/tcp/127.0.0.1/"$1") 2>/dev/null && return 0; sleep 0.1; done; echo "port $1 never opened" >&2; exit 1; }

# now prints the wall clock in seconds with nanoseconds.
now() { date +%s.%N; }

# rate N T0 T1 prints N / (T1 - T0).
rate() { echo "scale=1; $1 / ($3 - $2)" | bc -l; }

# median reads numbers, one a line, and prints their median.
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

# start_storescp DIR PORT [OPTION...] starts DCMTK storescp (AE STORESCP)
# writing into DIR, and adds it to PIDS.
start_storescp() {
	local dir=$1 port=$2
	shift 2
	mkdir -p "$dir"
	storescp -aet STORESCP -od "$dir" "$@" "$port" >/dev/null 2>&1 &
	PIDS+=($!)
}
