#!/bin/bash
# manual: a recorder for fixtures, not a test
# Captures the guest kernel's FS-Cache, NFS and CIFS proc files for the unit
# tests' fixtures (Tests/CachectlFSCacheTests/Fixtures). Checks little: it is a
# recorder. Run: integration/vm/run --keep-logs DIR fscache-capture-fixtures,
# then copy DIR/fscache-capture-fixtures/fixtures/* into the fixtures folder.
# timeout: 300
. "$(dirname "$0")/lib.sh"

out=/run/cachectl-vm/fixtures
mkdir -p "$out"
load_modules zram
make_zram_ext4 /var/cache/fscache 256M >/dev/null
write_cachefilesd_conf /etc/cachefilesd.conf /var/cache/fscache
start_cachefilesd /etc/cachefilesd.conf || die "cachefilesd did not start"

make_export_dir /srv/export 128M
make_file /srv/export/model.bin 8
start_nfs_server /srv/export
mount_nfs /mnt/models ro,fsc
mount_nfs /mnt/plain ro,nosharecache
start_samba /srv/export
mount_cifs /mnt/smb fsc

# The stats after each step: a cold read (every page from the server, written
# into the cache), then a read from the cache after drop_caches. The deltas are
# what tells what each counter means on this kernel.
drop_caches
cp /proc/fs/fscache/stats "$out/fscache-stats-before"
read_through /mnt/models/model.bin
sleep 1
cp /proc/fs/fscache/stats "$out/fscache-stats-after-cold"
cp /proc/self/mountstats "$out/mountstats-after-cold"
drop_caches
read_through /mnt/models/model.bin

uname -r >"$out/kernel-release"
cp /proc/fs/fscache/caches "$out/fscache-caches"
cp /proc/fs/fscache/stats "$out/fscache-stats"
cp /proc/fs/fscache/volumes "$out/fscache-volumes" 2>/dev/null || true
cp /proc/fs/nfsfs/volumes "$out/nfsfs-volumes"
cp /proc/fs/nfsfs/servers "$out/nfsfs-servers"
[[ -e /proc/fs/netfs/stats ]] && cp /proc/fs/netfs/stats "$out/netfs-stats"
cp /proc/self/mountinfo "$out/mountinfo"
cp /proc/self/mountstats "$out/mountstats"
for m in /mnt/models /mnt/plain /mnt/smb; do
  dev=$(mountpoint -d "$m")
  echo "$m $dev $(cat "/sys/class/bdi/$dev/read_ahead_kb" 2>/dev/null)" >>"$out/readahead"
done
ls -la "$out" >&2
expect_eq "nfsfs volumes captured" yes "$([[ -s $out/nfsfs-volumes ]] && echo yes)"
expect_match "stats have IO line" 'IO +: rd=' "$(cat "$out/fscache-stats")"
finish
