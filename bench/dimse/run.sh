#!/usr/bin/env bash
# Benchmark of dicomgate's DICOM network layer against DCMTK, in one run:
#
#  1. receivers: a 500-instance 512x512 16-bit CT study sent by DCMTK
#     storescu in one association to DCMTK storescp and to `dicomgate serve`
#     (instances/s each, and the ratio; dicomgate fsyncs every instance and
#     its directory entry before answering, storescp does not sync at all).
#     For fairness a third receiver is storescp made durable the only way
#     it can be: `-xcr "sync #p/#f" -xs` runs coreutils sync (fsync of the
#     file) synchronously before each response (the process spawn makes it
#     pessimistic);
#  2. senders: `dicomgate send` vs storescu, both sending the study to
#     storescp (instances/s each, and the ratio);
#  3. memory: peak RSS of `dicomgate serve` (GNU time's maximum resident set
#     size) while receiving one 1 GiB multi-frame instance.
#
# Usage: bench/dimse/run.sh [instances] [multiframe-size] [rounds]
#        defaults: 500 1G 3.  Work files go to $BENCH_DIR (default: a
#        temporary directory on the same disk as /tmp), removed at the end.
# Every DCMTK process runs with TCP_NODELAY=1 (otherwise Nagle's algorithm,
# not the code, is measured). The machine's load is printed: the figures are
# only comparable within one run.
set -euo pipefail

N=${1:-500}
MF=${2:-1G}
ROUNDS=${3:-3}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
WORK=${BENCH_DIR:-$(mktemp -d /tmp/dimse-bench.XXXXXX)}
. "$ROOT/bench/dcmtk.sh" # free_port, wait_port, now, rate, median, start_storescp, PIDS and $WORK removed at exit; TCP_NODELAY=1

need storescu storescp /usr/bin/time bc

echo "== building"
(cd "$ROOT" && go build -o "$WORK/dicomgate" ./cmd/dicomgate && go build -o "$WORK/ctgen" ./bench/ctstudy/cmd/ctgen)
echo "== generating $N instances"
"$WORK/ctgen" -out "$WORK/study" -n "$N"
FILES=("$WORK"/study/*.dcm)

SCP_PORT=$(free_port)
start_storescp "$WORK/scp" "$SCP_PORT"
SYNC_PORT=$(free_port)
start_storescp "$WORK/scpsync" "$SYNC_PORT" -xcr "sync #p/#f" -xs
# dicomgate serve starts afresh (empty spool and index) for every round: with
# the index rows of an earlier round, every C-STORE would find its instance
# known and skip the durable index commit.
DG_PID=
start_dicomgate() {
	if [ -n "$DG_PID" ]; then kill "$DG_PID" 2>/dev/null || true; wait "$DG_PID" 2>/dev/null || true; fi
	rm -rf "$WORK/dg"
	DG_PORT=$(free_port)
	"$WORK/dicomgate" serve --data "$WORK/dg" --dicom-addr "127.0.0.1:$DG_PORT" --platform-addr "127.0.0.1:$(free_port)" --admin-addr "127.0.0.1:$(free_port)" 2>>"$WORK/serve.log" &
	DG_PID=$!
	PIDS+=("$DG_PID")
	wait_port "$DG_PORT"
}
wait_port "$SCP_PORT"
wait_port "$SYNC_PORT"

# timed DIR CMD... empties DIR (the previous receiver's files), syncs, runs
# CMD and prints the N instances it sent per second.
timed() {
	local dir=$1 t0 t1
	shift
	rm -rf "$dir"/*
	sync
	t0=$(now)
	"$@" >/dev/null || { echo "failed: $*" >&2; return 1; }
	t1=$(now)
	rate "$N" "$t0" "$t1"
}

echo "== load: $(cut -d' ' -f1-3 /proc/loadavg), $(nproc) cores"
declare -a R_SCP R_SYNC R_DG S_SCU S_DG
for r in $(seq "$ROUNDS"); do
	start_dicomgate
	R_SCP+=("$(timed "$WORK/scp" storescu -aec STORESCP 127.0.0.1 "$SCP_PORT" "${FILES[@]}")")
	R_SYNC+=("$(timed "$WORK/scp" storescu -aec STORESCP 127.0.0.1 "$SYNC_PORT" "${FILES[@]}")")
	R_DG+=("$(timed "$WORK/scpsync" storescu -aec DICOMGATE 127.0.0.1 "$DG_PORT" "${FILES[@]}")")
	[ "$(ls "$WORK/dg/spool/instances" | wc -l)" -eq "$N" ] || { echo "dicomgate stored $(ls "$WORK/dg/spool/instances" | wc -l) of $N" >&2; exit 1; }
	S_SCU+=("$(timed "$WORK/scp" storescu -aec STORESCP 127.0.0.1 "$SCP_PORT" "${FILES[@]}")")
	S_DG+=("$(timed "$WORK/scp" "$WORK/dicomgate" send --aec STORESCP "127.0.0.1:$SCP_PORT" "$WORK/study")")
	echo "round $r: receive storescp ${R_SCP[-1]}/s storescp+sync ${R_SYNC[-1]}/s dicomgate ${R_DG[-1]}/s | send storescu ${S_SCU[-1]}/s dicomgate ${S_DG[-1]}/s"
done
rsync=$(printf '%s\n' "${R_SYNC[@]}" | median)
rscp=$(printf '%s\n' "${R_SCP[@]}" | median); rdg=$(printf '%s\n' "${R_DG[@]}" | median)
sscu=$(printf '%s\n' "${S_SCU[@]}" | median); sdg=$(printf '%s\n' "${S_DG[@]}" | median)
echo "receive (storescu sender, one association, $N x 512x512x16-bit CT, median of $ROUNDS):"
echo "  storescp (no fsync)              $rscp instances/s"
echo "  storescp + sync(1) per file      $rsync instances/s"
echo "  dicomgate serve (fsync per file) $rdg instances/s"
echo "  ratio dicomgate/storescp         $(echo "scale=2; $rdg / $rscp" | bc -l)"
echo "  ratio dicomgate/storescp+sync    $(echo "scale=2; $rdg / $rsync" | bc -l)"
echo "send (to storescp, median of $ROUNDS):"
echo "  storescu                         $sscu instances/s"
echo "  dicomgate send                   $sdg instances/s"
echo "  ratio dicomgate/storescu         $(echo "scale=2; $sdg / $sscu" | bc -l)"

echo "== peak RSS receiving one $MF multi-frame instance"
rm -rf "$WORK/scp" "$WORK/scpsync" "$WORK/study" "$WORK/dg"
"$WORK/ctgen" -multiframe "$WORK/big.dcm" -size "$MF" >/dev/null
MF_PORT=$(free_port)
/usr/bin/time -v -o "$WORK/time.txt" "$WORK/dicomgate" serve --data "$WORK/dgmf" --dicom-addr "127.0.0.1:$MF_PORT" --platform-addr "127.0.0.1:$(free_port)" --admin-addr "127.0.0.1:$(free_port)" 2>"$WORK/serve-mf.log" &
TPID=$!
wait_port "$MF_PORT"
t0=$(now); storescu -aec DICOMGATE 127.0.0.1 "$MF_PORT" "$WORK/big.dcm"; t1=$(now)
ls "$WORK/dgmf/spool/instances"/*.dcm >/dev/null
pkill -TERM -P "$TPID" 2>/dev/null || true
wait "$TPID" || true
rss=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$WORK/time.txt")
echo "  stored in $(echo "scale=2; $t1 - $t0" | bc -l) s; peak RSS of dicomgate serve: $((rss / 1024)) MiB (target <= 64 MiB)"
