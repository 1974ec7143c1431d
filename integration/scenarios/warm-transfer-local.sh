#!/bin/bash
# manual: how `cachectl warm` brings a cold local file in, each way it can
# (--transfer copy, splice, map from 6.9) against its default, `cat` and
# `dd bs=16M`: wall and CPU seconds (user + system), medians of the rounds, order
# rotated, caches dropped before each run. ext4 on a zram disk (the guest has no
# other), so the disk is memory and what differs is what each reader costs the CPU.
# Use the release binary:
#   integration/build-release && CACHECTL=$PWD/.build/release/cachectl \
#     integration/vm/run --kernel 6.1 warm-transfer-local
# Optional: --env TRANSFER_SIZE_MB=N (default 256), --env TRANSFER_ROUNDS=N (default 5).
# requires: cachectl
# timeout: 1800
# memory: 2048
# shellcheck source=integration/scenarios/lib.sh
. "$(dirname "$0")/lib.sh"

command -v cachectl >/dev/null || die "cachectl is not on PATH ($PATH)"
mb=${TRANSFER_SIZE_MB:-256} nrounds=${TRANSFER_ROUNDS:-5}
load_modules zram
dev=$(zramctl --find --size "$((mb + 128))M") || die "zramctl"
mkfs.ext4 -q "$dev" || die "mkfs"
{ mkdir -p /mnt/disk && mount "$dev" /mnt/disk; } || die "mount"
file=/mnt/disk/model.bin
make_file "$file" "$mb"
sync

declare -A tools=(
  [default]="cachectl warm --quiet $file"
  [copy]="cachectl warm --quiet --transfer copy $file"
  [splice]="cachectl warm --quiet --transfer splice $file"
  [cat]="cat $file"
  [dd]="dd if=$file of=/dev/null bs=16M status=none"
)
order=(default copy splice cat dd)
if kernel_at_least 6 9; then
  tools[map]="cachectl warm --quiet --transfer map $file"
  order+=(map)
fi
log "$(uname -r), ${mb} MiB, $nrounds rounds; the default reads as: $(cachectl warm --json "$file" | jq -r .strategy)"

results=/tmp/transfer.tsv
: >"$results"
TIMEFORMAT='%R %U %S'
n=${#order[@]}
for ((round = 1; round <= nrounds; round++)); do
  for ((i = 0; i < n; i++)); do
    tool=${order[$(((i + round - 1) % n))]}
    drop_caches
    # shellcheck disable=SC2086  # the command lines are word lists on purpose
    line=$({ time ${tools[$tool]} >/dev/null; } 2>&1)
    printf '%s %s\n' "$tool" "$line" >>"$results"
    echo "round $round $tool: $line"
  done
done

echo "tool       wall-s  cpu-s  (medians of $nrounds; cpu = user + system)"
for tool in "${order[@]}"; do
  wall=$(awk -v t="$tool" '$1 == t { print $2 }' "$results" | sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }')
  cpu=$(awk -v t="$tool" '$1 == t { print $3 + $4 }' "$results" | sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }')
  printf '%-10s %6s %6s\n' "$tool" "$wall" "$cpu"
  expect_gt "$tool ran" "$(grep -c "^$tool " "$results")" 0
done
expect_eq "the file is whole after the runs" "$((mb * 1024 * 1024))" "$(stat -c %s "$file")"

umount /mnt/disk
zramctl --reset "$dev"
finish
