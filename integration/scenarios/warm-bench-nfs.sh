#!/bin/bash
# manual: the warm benchmark against a real NFS share with network latency:
# runs integration/benchmarks/warm/run --source dir on an NFSv4.2 mount of a
# tmpfs exported over 127.0.0.1, with netem delaying every packet on lo (so each
# request pays a round trip, as on a real network). The NFS client keeps its
# default 128 KiB readahead. TCG makes every number slow; the ratios are what to
# read. Use the release binary:
#   integration/build-release && CACHECTL=$PWD/.build/release/cachectl \
#     integration/vm/run warm-bench-nfs
# Optional: --env WARM_BENCH_DELAY=500us (per packet, each way; default 500us),
# --env WARM_BENCH_ROUNDS=N (default 3), --env WARM_BENCH_SIZE=2G.
# requires: cachectl
# timeout: 3600
# memory: 6144
# shellcheck source=integration/scenarios/lib.sh
. "$(dirname "$0")/lib.sh"

command -v cachectl >/dev/null || die "cachectl is not on PATH ($PATH)"
size=${WARM_BENCH_SIZE:-2G}
bytes=$(numfmt --from=iec "$size")

export_dir=/srv/export
make_export_dir "$export_dir" "$((bytes / 1048576 + 256))M"
# The benchmark's file, written on the server side before the delay is added.
mkdir -p "$export_dir/cachectl-warm-bench"
head -c "$bytes" /dev/urandom >"$export_dir/cachectl-warm-bench/model.bin" || die "write the model"
start_nfs_server "$export_dir"
mount_nfs /mnt/models "rsize=1048576"
log "NFS read_ahead_kb: $(cat "/sys/class/bdi/$(mountpoint -d /mnt/models)/read_ahead_kb")"

load_modules sch_netem
delay=${WARM_BENCH_DELAY:-500us}
tc qdisc add dev lo root netem delay "$delay" || die "netem on lo"
log "lo: $(tc qdisc show dev lo)"

out=/tmp/warm-bench-nfs.txt  # the console log keeps it too
bash "$(dirname "$0")/../benchmarks/warm/run" --source dir --dir /mnt/models --size "$size" \
  --rounds "${WARM_BENCH_ROUNDS:-3}" --cachectl "$(command -v cachectl)" 2>&1 | tee "$out"
expect_match "the benchmark printed its ratios" "cachectl/cat time ratio" "$(cat "$out")"
finish
