#!/bin/bash
# manual: the FUSE benchmark with its source on a real NFS share, the case the
# mirror exists for (a share without FS-Cache). Runs
# integration/benchmarks/fuse/run with --source on an NFSv4.2 mount of a tmpfs
# exported over 127.0.0.1, so "direct" reads are NFS reads and "page-cache warm"
# is the NFS client's page cache. TCG makes every number slow; the ratios are
# what to read. Use the release binary:
#   integration/build-release && CACHECTL=$PWD/.build/release/cachectl \
#     integration/vm/run fuse-bench-nfs
# Optional: --env FUSE_BENCH_ROUNDS=N (default 3), --env FUSE_BENCH_SIZE=BYTES.
# requires: cachectl
# timeout: 3600
# memory: 12288
# shellcheck source=integration/scenarios/lib.sh
. "$(dirname "$0")/lib.sh"

command -v cachectl >/dev/null || die "cachectl is not on PATH ($PATH)"
load_modules fuse
size=${FUSE_BENCH_SIZE:-$((2 << 30))}

export_dir=/srv/export
make_export_dir "$export_dir" "$((size / 1048576 + 256))M"
start_nfs_server "$export_dir"
mount_nfs /mnt/models "rsize=1048576"
log "NFS read_ahead_kb: $(cat "/sys/class/bdi/$(mountpoint -d /mnt/models)/read_ahead_kb")"

out=/tmp/fuse-bench-nfs.txt  # the console log keeps it too
bash "$(dirname "$0")/../benchmarks/fuse/run" --source /mnt/models --dir /var/tmp/fusebench \
  --size "$size" --rounds "${FUSE_BENCH_ROUNDS:-3}" --cachectl "$(command -v cachectl)" 2>&1 | tee "$out"
expect_match "the benchmark printed its ratios" "1st re-read / direct 1st re-read" "$(cat "$out")"
finish
