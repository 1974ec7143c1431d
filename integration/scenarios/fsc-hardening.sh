#!/bin/bash
# fsc enable/disable when interrupted or run twice at once, on real NFS:
#   -> two `fsc enable` on two shares at the same time (3 rounds): fstab keeps
#      fsc on both (the flock on /etc/fstab.lock), both mounts have FSC yes
#      (each with fsc=UNIQ: the two are one export with the same options).
#      On 6.1 only one can: its NFSv4 client leaves UNIQ out of the cache volume
#      key (dmesg: "NFS: Cache volume key already in use", the key without it),
#      so there the other run fails, says so, and puts its fstab entry and mount
#      back (kernel-specific, checked as such);
#   -> SIGTERM right after fstab changed: the step finishes (or rolls back)
#      before the signal ends the process; fstab and the mount agree;
#   -> SIGKILL right after the unmount: the next run mounts the share from its
#      fstab entry instead of refusing "nothing is mounted".
# requires: cachectl
# timeout: 600
. "$(dirname "$0")/lib.sh"

load_modules zram
make_zram_ext4 /var/cache/fscache 256M >/dev/null
write_cachefilesd_conf /etc/cachefilesd.conf /var/cache/fscache
start_cachefilesd /etc/cachefilesd.conf || die "cachefilesd did not start"
make_export_dir /srv/export 64M
make_file /srv/export/a.bin 1
start_nfs_server /srv/export
# Two shares of the one server in the guest, each with a superblock of its own
# (nosharecache: otherwise the second mount reuses the first one's superblock
# and its fsc setting, and the NFS client trunks 127.0.0.2 onto 127.0.0.1).
cat >/etc/fstab <<'EOF2'
# two shares
127.0.0.1:/ /mnt/a nfs4 ro,vers=4.2,nosharecache 0 0
127.0.0.1:/	/mnt/b	nfs4	ro,vers=4.2,nosharecache	0 0
EOF2
mkdir -p /mnt/a /mnt/b
mount /mnt/a || die "mount /mnt/a"
mount /mnt/b || die "mount /mnt/b"
log "two shares mounted: $(findmnt -n -o TARGET,SOURCE -t nfs4 | tr '\n' ' ')"
fsc_of() { awk -v dev="$(mountpoint -d "$1")" 'NR > 1 && $4 == dev { print $NF }' /proc/fs/nfsfs/volumes; }
fstab_fsc() { awk -v m="$1" '$2 == m { print ($4 ~ /(^|,)fsc(=[^,]*)?(,|$)/) ? "yes" : "no" }' /etc/fstab; }

# --- two at once ---------------------------------------------------------------------------
for round in 1 2 3; do
  log "round $round: two fsc enable at once"
  timeout 120 cachectl fsc enable /mnt/a --json >/tmp/a.json &
  pa=$!
  timeout 120 cachectl fsc enable /mnt/b --json >/tmp/b.json &
  pb=$!
  wait "$pa"; ra=$?; wait "$pb"; rb=$?
  [[ $ra == 0 && $rb == 0 ]] || log "round $round: $(cat /tmp/a.json /tmp/b.json)"
  if [[ $CACHECTL_VM_KERNEL == 6.1 ]]; then
    expect_eq "round $round (6.1): fstab and the mount agree on each share" \
      "$(fsc_of /mnt/a) $(fsc_of /mnt/b)" "$(fstab_fsc /mnt/a) $(fstab_fsc /mnt/b)"
    expect_eq "round $round (6.1): one run exits 0, the other 1" "0 1" "$(printf '%s\n' "$ra" "$rb" | sort | xargs)"
    expect_eq "round $round (6.1): FSC yes on one mount" "no yes" "$(printf '%s\n' "$(fsc_of /mnt/a)" "$(fsc_of /mnt/b)" | sort | xargs)"
    expect_match "round $round (6.1): the failed run names the dropped fsc=UNIQ" 'left fsc=cachectl-mnt-[ab] out of the volume key' \
      "$(cat /tmp/a.json /tmp/b.json)"
  else
    expect_eq "round $round: fstab has fsc on both" "yes yes" "$(fstab_fsc /mnt/a) $(fstab_fsc /mnt/b)"
    expect_eq "round $round: both runs exit 0" "0 0" "$ra $rb"
    expect_eq "round $round: FSC yes on both" "yes yes" "$(fsc_of /mnt/a) $(fsc_of /mnt/b)"
  fi
  timeout 120 cachectl fsc disable /mnt/a /mnt/b >/tmp/dis.json 2>&1 || die "fsc disable (round $round): $(cat /tmp/dis.json)"
done
expect_match "other lines kept byte for byte (tabs)" $'127.0.0.1:/\t/mnt/b\tnfs4\tro,vers=4.2,nosharecache\t0 0' "$(cat /etc/fstab)"

# Every packet on lo waits 50 ms from here on: a remount takes seconds, so the
# signals below land inside it, not after it.
load_modules sch_netem
tc qdisc add dev lo root netem delay 50ms || die "netem on lo"

# --- SIGTERM right after fstab changed ---------------------------------------------------------
cachectl fsc enable /mnt/a --json >/tmp/term.json 2>/dev/null &
pid=$!
for _ in $(seq 2000); do [[ $(fstab_fsc /mnt/a) == yes ]] && break; sleep 0.005; done
sent=no
kill -TERM "$pid" 2>/dev/null && sent=yes
wait "$pid"; rc=$?
log "SIGTERM after the fstab change: sent while running: $sent, exit $rc"
expect_eq "SIGTERM: sent while the step ran" yes "$sent"
expect_eq "SIGTERM: the process ends by SIGTERM (after the step)" 143 "$rc"
expect_cmd "SIGTERM: /mnt/a is mounted" mountpoint -q /mnt/a
expect_eq "SIGTERM: fstab and the mount agree" "$(fstab_fsc /mnt/a)" "$(fsc_of /mnt/a)"

# --- SIGKILL right after the unmount ----------------------------------------------------------
cachectl fsc disable /mnt/a --json >/tmp/kill.json 2>/dev/null &
pid=$!
hit=no
for _ in $(seq 4000); do
  if ! mountpoint -q /mnt/a; then kill -KILL "$pid"; hit=yes; break; fi
  kill -0 "$pid" 2>/dev/null || break
  sleep 0.002
done
wait "$pid" 2>/dev/null
log "SIGKILL between the unmount and the mount: $hit; mounted now: $(mountpoint -q /mnt/a && echo yes || echo no)"
cachectl fsc disable /mnt/a --json >/tmp/rerun.json
expect_eq "after SIGKILL: the rerun exits 0" 0 "$?"
expect_cmd "after SIGKILL: /mnt/a is mounted again" mountpoint -q /mnt/a
expect_eq "after SIGKILL: FSC off as asked" "no no" "$(fstab_fsc /mnt/a) $(fsc_of /mnt/a)"
expect_eq "SIGKILL landed between the unmount and the mount" yes "$hit"
expect_match "after SIGKILL: the rerun says it mounted from fstab" 'fstab' "$(cat /tmp/rerun.json)"
tc qdisc del dev lo root
finish
