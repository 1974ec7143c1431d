#!/bin/bash
# manual: what a warm leaves in the page cache behind an NFS file, and how fast it
# is read next. The kernel's readahead builds large folios where the client supports
# them, and larger the longer one stream runs; WILLNEED's readahead allocates the
# smallest (force_page_cache_ra). This warms the same file with cachectl's default,
# with each variant in FOLIOS_VARIANTS and with cat, then counts the folios behind it
# (fusebench folios: pages, pages in 4 KiB folios, large folios, KiB per folio) and
# times a page-cache re-read in 1 MiB reads (what a model loader does next), round
# after round. NFSv4.2 of a tmpfs over 127.0.0.1, rsize=1M, netem delay on lo.
# Use the release binary:
#   integration/build-release && CACHECTL=$PWD/.build/release/cachectl \
#     integration/vm/run --kernel 6.12 warm-folios-nfs
# Optional: --env FOLIOS_SIZE_MB=N (default 256), --env FOLIOS_ROUNDS=N (default 3),
# --env FOLIOS_DELAY=2ms (per packet, each way), --env "FOLIOS_VARIANTS=--no-hints;..."
# (cachectl warm flags, separated by ";").
# requires: cachectl
# timeout: 3600
# memory: 4096
# shellcheck source=integration/scenarios/lib.sh
. "$(dirname "$0")/lib.sh"

command -v cachectl >/dev/null || die "cachectl is not on PATH ($PATH)"
mb=${FOLIOS_SIZE_MB:-256}
bench=/tmp/fusebench
cc -O2 -o "$bench" "$(dirname "$0")/../benchmarks/fuse/fusebench.c" -lm -llz4 || die "build fusebench"

export_dir=/srv/export
make_export_dir "$export_dir" "$((mb + 64))M"
make_file "$export_dir/model.bin" "$mb"
start_nfs_server "$export_dir"
mount_nfs /mnt/models "rsize=1048576"
load_modules sch_netem
tc qdisc add dev lo root netem delay "${FOLIOS_DELAY:-2ms}" || die "netem on lo"
file=/mnt/models/model.bin
log "NFS read_ahead_kb $(cat "/sys/class/bdi/$(mountpoint -d /mnt/models)/read_ahead_kb"); $(tc qdisc show dev lo)"

# warm LABEL CMD...: evict, fill the page cache with CMD, then census and re-read.
warm() {
  local label=$1 start end
  shift
  "$bench" evict "$file" || die "evict"
  start=$(date +%s.%N)
  "$@" >/dev/null || die "$label"
  end=$(date +%s.%N)
  printf 'FOLIOS %-58s fill %6.2f s | %s | re-read %s\n' "$label" "$(echo "$end - $start" | bc)" \
    "$("$bench" folios "$file" $((mb << 20)))" "$("$bench" read "$file")"
}
IFS=';' read -ra variants <<<"${FOLIOS_VARIANTS:---no-hints;--layout contiguous --no-hints;--jobs 4 --chunk 1M --layout contiguous --no-hints}"
log "strategy by default: $(cachectl warm --json "$file" | jq -r '.strategy')"
for round in $(seq "${FOLIOS_ROUNDS:-3}"); do
  log "round $round"
  warm "cachectl (default)" cachectl warm --quiet "$file"
  for variant in "${variants[@]}"; do
    # shellcheck disable=SC2086  # a variant is a list of flags
    warm "cachectl $variant" cachectl warm --quiet $variant "$file"
  done
  warm "cat" cat "$file"
done
expect_eq "the file is still whole" "$((mb << 20))" "$(stat -c %s "$file")"
finish
