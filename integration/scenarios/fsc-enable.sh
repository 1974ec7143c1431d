#!/bin/bash
# The main FS-Cache flow through cachectl on the guest's real kernel:
#   an NFS share mounted without fsc, with an fstab entry (and comments)
#   -> `cachectl cache setup` (bad thresholds first: nothing written; then the
#      real one; a second run reports changed:false)
#   -> `cachectl fsc enable` refused while a process sits in the share
#   -> `cachectl fsc enable --readahead 16M`: fstab gets fsc (comments kept,
#      backup made), FSC yes, readahead set; a second run is changed:false
#   -> reads after drop_caches are served from the cache (cachectl cache status:
#      cache reads rise, in the unit it names; NFS READs stay near zero)
#   -> `cachectl mounts`, `cachectl doctor`
#   -> cachefilesd killed by SIGABRT: cachectl's supervisor starts it again, the
#      cache binds again and the mounted share reads from it again
#   -> `fsc enable --nconnect 4 --rsize 128K`: one fstab entry gets both, the new
#      mount shows them in mountinfo, the readahead window stays; with a second
#      mount of the server holding the connections, nconnect 8 is rolled back
#   -> `cachectl fsc disable` removes only fsc
#   -> with the NFS server stopped, `fsc enable` refuses and leaves the mount
#      and fstab as they were.
# requires: cachectl
# timeout: 300
. "$(dirname "$0")/lib.sh"

command -v cachectl >/dev/null || die "cachectl is not on PATH ($PATH)"
load_modules zram
make_zram_ext4 /var/cache/fscache 512M >/dev/null
make_export_dir /srv/export 256M
make_file /srv/export/model.bin 32
start_nfs_server /srv/export
cat >/etc/fstab <<EOF2
# /etc/fstab of the test guest
# <file system> <mount point> <type> <options> <dump> <pass>

# the model share (read-only)
127.0.0.1:/ /mnt/models nfs4 ro,vers=4.2 0 0
EOF2
cp /etc/fstab /tmp/fstab.orig
mount_nfs /mnt/models ro
expect_eq "share starts without FS-Cache" no "$(nfs_volume_fsc)"
rm -f /etc/cachefilesd.conf

# --- cache setup ---------------------------------------------------------------------
cachectl cache setup --dir /var/cache/fscache --brun 5 --bcull 7 --json >/tmp/bad.json 2>/tmp/bad.err
expect_eq "bad thresholds exit 2" 2 "$?"
expect_match "the error names the field" 'invalid brun' "$(cat /tmp/bad.err)"
expect_eq "bad thresholds wrote no file" no "$([[ -e /etc/cachefilesd.conf ]] && echo yes || echo no)"

cachectl cache setup --dir /var/cache/fscache --tag models --json >/tmp/setup1.json
expect_eq "cache setup exit 0" 0 "$?"
expect_eq "cache setup changed" true "$(json_get /tmp/setup1.json .changed)"
expect_eq "the kernel lists the cache as active" active "$(json_get /tmp/setup1.json .cache_state)"
expect_match "config has the dir" 'dir /var/cache/fscache' "$(cat /etc/cachefilesd.conf)"
expect_match "cachefilesd runs" '[0-9]' "$(pidof cachefilesd)"
expect_match "cachefilesd's messages are kept" 'Bound cache' "$(cat /run/cachectl/cachefilesd.log)"
pid1=$(pidof cachefilesd)
cachectl cache setup --dir /var/cache/fscache --tag models --json >/tmp/setup2.json
expect_eq "second cache setup changed" false "$(json_get /tmp/setup2.json .changed)"
expect_eq "daemon not restarted" "$pid1" "$(pidof cachefilesd)"
cachectl cache setup --dir /var/cache/fscache --tag models --brun 20 --bcull 15 --bstop 10 --check --diff >/tmp/check.txt
expect_match "--check --diff shows the change" '\+brun 20%' "$(cat /tmp/check.txt)"
expect_match "--check left the file" 'brun 10%' "$(cat /etc/cachefilesd.conf)"

# --- busy mount ----------------------------------------------------------------------
(cd /mnt/models && exec sleep 120) &
sleeper=$!
sleep 0.3
cachectl fsc enable /mnt/models --json >/tmp/busy.json
expect_eq "busy mount: exit 1" 1 "$?"
expect_eq "busy mount: names the sleeper" "$sleeper" "$(json_get /tmp/busy.json '.mounts[0].busy[0].pid')"
expect_cmd "busy mount: fstab unchanged" cmp /etc/fstab /tmp/fstab.orig
expect_eq "busy mount: still without fsc" no "$(nfs_volume_fsc)"
kill "$sleeper"; wait "$sleeper" 2>/dev/null

# --- enable ------------------------------------------------------------------------------
cachectl fsc enable /mnt/models --readahead 16M --diff --json >/tmp/enable1.json
expect_eq "fsc enable exit 0" 0 "$?"
log "enable: $(cat /tmp/enable1.json)"
expect_eq "fsc enable changed" true "$(json_get /tmp/enable1.json .changed)"
expect_eq "FSC column says yes" yes "$(nfs_volume_fsc)"
expect_eq "report says fsc after" true "$(json_get /tmp/enable1.json '.mounts[0].fsc_after')"
expect_match "fstab entry has fsc" '127\.0\.0\.1:/ /mnt/models nfs4 ro,vers=4\.2,fsc 0 0' "$(cat /etc/fstab)"
expect_match "fstab comments kept" '# the model share \(read-only\)' "$(cat /etc/fstab)"
expect_cmd "fstab backup is the old file" cmp /etc/fstab.cachectl.bak /tmp/fstab.orig
expect_match "diff in the report" '\+127' "$(json_get /tmp/enable1.json '.mounts[0].fstab_diff')"
dev=$(mountpoint -d /mnt/models)
expect_eq "readahead set" 16384 "$(cat "/sys/class/bdi/$dev/read_ahead_kb")"
cachectl fsc enable /mnt/models --readahead 16M --json >/tmp/enable2.json
expect_eq "second fsc enable changed" false "$(json_get /tmp/enable2.json .changed)"

# --- reads come from the cache ------------------------------------------------------------
drop_caches
read_through /mnt/models/model.bin
sleep 1
cachectl cache status --json >/tmp/status1.json
drop_caches
ops1=$(nfs_mountstat /mnt/models read_ops)
read_through /mnt/models/model.bin
ops2=$(nfs_mountstat /mnt/models read_ops)
cachectl cache status --json >/tmp/status2.json
rd1=$(json_get /tmp/status1.json .cache_reads); rd2=$(json_get /tmp/status2.json .cache_reads)
unit=$(json_get /tmp/status2.json .unit)
log "cache reads ($unit): $rd1 -> $rd2; NFS READs $ops1 -> $ops2; hit ratio $(json_get /tmp/status2.json .hit_ratio)"
expect_eq "cache status names the counters' unit for this kernel" "$(fscache_unit)" "$unit"
expect_gt "second read: cachectl cache status shows cache reads" $((rd2 - rd1)) 0
expect_ge "second read: NFS READ operations near zero (<= 2)" $((2 - (ops2 - ops1))) 0
expect_eq "status shows the active cache" A "$(json_get /tmp/status2.json '.caches[0].state')"
expect_cmd "bytes read through the cache are right" cmp /srv/export/model.bin /mnt/models/model.bin

cachectl mounts --json >/tmp/mounts.json
expect_eq "mounts: FSC joined on the device" true "$(json_get /tmp/mounts.json '.mounts[0].nfs_fsc')"
expect_eq "mounts: fstab has fsc" true "$(json_get /tmp/mounts.json '.mounts[0].fstab_has_fsc')"
cachectl doctor --json >/tmp/doctor.json
expect_eq "doctor: no errors" 0 "$(jq '[.findings[] | select(.severity == "error")] | length' /tmp/doctor.json)"
expect_eq "doctor: exit 0" false "$(json_get /tmp/doctor.json .failed)"

# --- an aborted cachefilesd comes back (without systemd, cachectl supervises it) ---------------
# (Debian's 0.10.10 aborts now and then: a cull-table check that a 64-bit heap address can fail.)
old_pid=$(pidof cachefilesd)
kill -ABRT "$old_pid"
for _ in $(seq 50); do
  new_pid=$(pidof cachefilesd) && [[ $new_pid != "$old_pid" ]] && [[ $(cachectl cache status --json | jq -r '.caches[0].state') == A ]] && break
  sleep 0.1
done
expect_match "aborted cachefilesd: started again" '^[0-9]+$' "$(pidof cachefilesd)"
expect_eq "aborted cachefilesd: a new process" yes "$([[ $(pidof cachefilesd) != "$old_pid" ]] && echo yes || echo no)"
expect_eq "aborted cachefilesd: the cache is active again" A "$(cachectl cache status --json | jq -r '.caches[0].state')"
expect_match "aborted cachefilesd: the log says so" 'killed by signal 6; starting it again' "$(cat /run/cachectl/cachefilesd.log)"
drop_caches
ops1=$(nfs_mountstat /mnt/models read_ops)
read_through /mnt/models/model.bin
expect_ge "aborted cachefilesd: reads come from the cache again (NFS READs <= 2)" $((2 - ($(nfs_mountstat /mnt/models read_ops) - ops1))) 0

# --- nconnect and rsize, in one unmount and mount ---------------------------------------------
cachectl fsc enable /mnt/models --nconnect 4 --rsize 128K --check --json >/tmp/tune0.json
expect_eq "tune --check: would change" true "$(json_get /tmp/tune0.json .changed)"
expect_eq "tune --check: nothing changed" "$dev" "$(mountpoint -d /mnt/models)"
cachectl fsc enable /mnt/models --nconnect 4 --rsize 128K --json >/tmp/tune1.json
expect_eq "tune: exit 0" 0 "$?"
log "tune: $(cat /tmp/tune1.json)"
expect_eq "tune: changed" true "$(json_get /tmp/tune1.json .changed)"
opts=$(findmnt -no OPTIONS /mnt/models)
log "tuned mountinfo line: $(grep ' /mnt/models ' /proc/self/mountinfo)"
expect_match "tune: mountinfo says nconnect=4" '(^|,)nconnect=4(,|$)' "$opts"
expect_match "tune: mountinfo says rsize=131072" '(^|,)rsize=131072(,|$)' "$opts"
expect_eq "tune: FSC still yes" yes "$(nfs_volume_fsc)"
expect_match "tune: one fstab entry has both" '127\.0\.0\.1:/ /mnt/models nfs4 ro,vers=4\.2,fsc,nconnect=4,rsize=131072 0 0' "$(cat /etc/fstab)"
expect_eq "tune: the readahead window set before is kept" 16384 "$(cat "/sys/class/bdi/$(mountpoint -d /mnt/models)/read_ahead_kb")"
cachectl fsc enable /mnt/models --nconnect 4 --rsize 128K --json >/tmp/tune2.json
expect_eq "tune: second run changed" false "$(json_get /tmp/tune2.json .changed)"
# An NFS client shares its connections among the mounts of one server: while
# another mount holds them, nconnect cannot change, and the switch rolls back.
cp /etc/fstab /tmp/fstab.tuned
mkdir -p /mnt/other
mount -t nfs4 -o vers=4.2,ro,nosharecache 127.0.0.1:/ /mnt/other || die "second mount"
log "second mount: $(findmnt -no OPTIONS /mnt/other)"
cachectl fsc enable /mnt/models --nconnect 8 --json >/tmp/tune3.json
rc=$?
log "tune with a second mount: $(cat /tmp/tune3.json)"
expect_eq "tune held by another mount: exit 1" 1 "$rc"
expect_match "tune held by another mount: names it" '/mnt/other' "$(json_get /tmp/tune3.json '.mounts[0].error')"
expect_cmd "tune held by another mount: fstab as it was" cmp /etc/fstab /tmp/fstab.tuned
expect_match "tune held by another mount: mounted again with nconnect=4" '(^|,)nconnect=4(,|$)' "$(findmnt -no OPTIONS /mnt/models)"
umount /mnt/other
expect_eq "tune held by another mount: FSC still yes" yes "$(nfs_volume_fsc)"
log "after the tuning: cachefilesd $(pidof cachefilesd || echo 'NOT RUNNING'); caches: $(tail -n +2 /proc/fs/fscache/caches | tr -s ' '); its log: $(tail -5 /run/cachectl/cachefilesd.log | tr '\n' '|')"
log "kernel log: $(dmesg | grep -iE 'fscache|cachefiles|nfs' | tail -8 | tr '\n' '|')"

# --- disable -------------------------------------------------------------------------------
cachectl fsc disable /mnt/models --json >/tmp/disable.json
expect_eq "fsc disable exit 0" 0 "$?"
expect_eq "FSC column says no after disable" no "$(nfs_volume_fsc)"
sed 's|ro,vers=4\.2 0 0|ro,vers=4.2,nconnect=4,rsize=131072 0 0|' /tmp/fstab.orig >/tmp/fstab.expected
expect_cmd "fstab: only fsc left the entry (nconnect and rsize stay)" cmp /etc/fstab /tmp/fstab.expected

# --- unreachable server: leave everything as it is -------------------------------------------
rpc.nfsd 0
cp /etc/fstab /tmp/fstab.before
cachectl fsc enable /mnt/models --json >/tmp/unreach.json
expect_eq "unreachable server: exit 1" 1 "$?"
expect_match "unreachable server: says so" 'unreachable' "$(json_get /tmp/unreach.json .msg)"
expect_match "unreachable server: still mounted" ' /mnt/models nfs4 ' "$(cat /proc/mounts)"
expect_cmd "unreachable server: fstab unchanged" cmp /etc/fstab /tmp/fstab.before
finish
