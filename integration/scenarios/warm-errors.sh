#!/bin/bash
# `cachectl warm` when the disk fails under it: a device-mapper `error` target
# replaces the blocks of one file mid-way, so reading it gives EIO. That file must
# be reported (naming the path and EIO), the other files still warmed to 100%, and
# the exit status 1, by the default and by each way of reading (--transfer). Also
# `--into disk` leaves little in RAM.
# requires: cachectl
# timeout: 240
# shellcheck source=integration/scenarios/lib.sh
. "$(dirname "$0")/lib.sh"

load_modules zram dm-mod
dev=$(zramctl --find --size 128M) || die "zramctl"
sectors=$(blockdev --getsz "$dev")
echo "0 $sectors linear $dev 0" | dmsetup create --noudevsync warmtest || die "dmsetup create"
dmsetup mknodes warmtest  # no udev in the guest: make /dev/mapper/warmtest ourselves
mkfs.ext4 -q -b 4096 /dev/mapper/warmtest || die "mkfs"
{ mkdir -p /mnt/disk && mount /dev/mapper/warmtest /mnt/disk; } || die "mount"
make_file /mnt/disk/a-broken.gguf 16
make_file /mnt/disk/b-fine.gguf 8
make_file /mnt/disk/c-fine.gguf 4
sync

# The physical 4 KiB blocks in the middle of a-broken.gguf: 64 blocks at 2 MiB in.
first=$(filefrag -v -b4096 /mnt/disk/a-broken.gguf | awk '$1 == "0:" { sub(/\.\..*/, "", $4); print $4 }')
[[ $first =~ ^[0-9]+$ ]] || die "filefrag did not give the first physical block ($first)"
bad_start=$(((first + 512) * 8)) bad_len=$((64 * 8))
dmsetup suspend --noudevsync warmtest
dmsetup load --noudevsync warmtest <<TABLE || die "dmsetup load"
0 $bad_start linear $dev 0
$bad_start $bad_len error
$((bad_start + bad_len)) $((sectors - bad_start - bad_len)) linear $dev $((bad_start + bad_len))
TABLE
dmsetup resume --noudevsync warmtest
out=/tmp/warm.json
# eio LABEL [ARGS...]: warm the directory cold with ARGS and check the report.
eio() {
  local label=$1
  shift
  drop_caches
  cachectl warm --json "$@" /mnt/disk >"$out" 2>/tmp/warm.err
  local rc=$?
  expect_eq "$label: exit status when one file fails" 1 "$rc"
  expect_eq "$label: failed in JSON" true "$(json_get "$out" .failed)"
  expect_match "$label: the broken file's error names EIO" "EIO" "$(json_get "$out" '.files[] | select(.path | endswith("a-broken.gguf")) | .error')"
  expect_match "$label: stderr names the broken file" "a-broken.gguf" "$(cat /tmp/warm.err)"
  expect_eq "$label: b-fine.gguf warmed" 8388608 "$(json_get "$out" '.files[] | select(.path | endswith("b-fine.gguf")) | .resident_after')"
  expect_eq "$label: c-fine.gguf warmed" 4194304 "$(json_get "$out" '.files[] | select(.path | endswith("c-fine.gguf")) | .resident_after')"
}
# The default (splice), then each way of reading this kernel can take: mapping
# hangs on a read error before 6.9 (commit 631426ba1d45).
eio default
log "the default read as: $(json_get "$out" .strategy)"
eio "--transfer copy" --transfer copy
eio "--transfer splice" --transfer splice
if kernel_at_least 6 9; then eio "--transfer map" --transfer map; fi

# --into disk reads everything but leaves (almost) nothing in RAM.
drop_caches
cachectl warm --json --into disk /mnt/disk/b-fine.gguf >"$out" || die "warm --into disk"
expect_eq "--into disk read the whole file" 8388608 "$(json_get "$out" .bytes_read)"
expect_eq "--into disk left it out of RAM" 0 "$(json_get "$out" '.files[0].resident_after')"

umount /mnt/disk
dmsetup remove --noudevsync warmtest
zramctl --reset "$dev"
finish
