#!/bin/bash
# FS-Cache works end to end on the guest's real kernel: cachefilesd with a cache
# on ext4 (zram), an NFSv4 export on 127.0.0.1 mounted with `fsc`, a first read
# goes to the server and writes the file into the cache (cache writes rise: IO
# wr pages on 6.1, CaWrOps operations on 6.12), and after drop_caches a second
# read is served from the cache: the cache's read counter rises while the NFS
# client sends (almost) no READ and gets no data from the server.
#
# Negative controls (integration/vm/run --self-test) set FSCACHE_SMOKE_BREAK:
#   nofsc    mount without fsc            -> FSC no, counters stay put
#   badconf  cachefilesd.conf names a cache dir that does not exist -> no cache
# timeout: 240
# shellcheck source=integration/scenarios/lib.sh
. "$(dirname "$0")/lib.sh"

break_mode=${FSCACHE_SMOKE_BREAK:-}
case $break_mode in ""|nofsc|badconf) ;; *) die "unknown FSCACHE_SMOKE_BREAK=$break_mode" ;; esac
[[ -n $break_mode ]] && log "deliberately broken: $break_mode"

load_modules zram
make_zram_ext4 /var/cache/fscache 512M >/dev/null
conf=/etc/cachefilesd.conf
if [[ $break_mode == badconf ]]; then
  write_cachefilesd_conf "$conf" /var/cache/fscache/does-not-exist
else
  write_cachefilesd_conf "$conf" /var/cache/fscache
fi
log "cachefilesd.conf:"; sed 's/^/    /' "$conf"
started=yes
start_cachefilesd "$conf" || started=no
expect_eq "cachefilesd brought its cache up" yes "$started"

make_export_dir /srv/export 256M
make_file /srv/export/model.bin 32
log "wrote /srv/export/model.bin (32 MiB)"
start_nfs_server /srv/export
log "NFS server up"

opts=ro
[[ $break_mode == nofsc ]] || opts=ro,fsc
mount_nfs /mnt/models "$opts"
log "mounted: $(grep ' /mnt/models ' /proc/mounts)"
log "nfsfs volumes:"; sed 's/^/    /' /proc/fs/nfsfs/volumes
expect_eq "/proc/fs/nfsfs/volumes FSC column" yes "$(nfs_volume_fsc)"

drop_caches
wr0=$(fscache_cache_writes) ops0=$(nfs_mountstat /mnt/models read_ops)
read_through /mnt/models/model.bin
sleep 1 # cachefiles writes behind the read
wr1=$(fscache_cache_writes) ops1=$(nfs_mountstat /mnt/models read_ops)
log "cache writes ($(fscache_unit)): $wr0 -> $wr1; NFS READs $ops0 -> $ops1"
expect_ge "first read came from the server (NFS READs)" $((ops1 - ops0)) 8
# 6.1 counts pages (32 MiB = 8192), 6.12 operations (one per span written).
if [[ $(fscache_unit) == pages ]]; then min=4096; else min=1; fi
expect_ge "first read wrote the file into the cache (cache writes, $(fscache_unit))" $((wr1 - wr0)) $min

drop_caches
expect_read_from_fscache "second read" /mnt/models read_through /mnt/models/model.bin
expect_cmd "second read returns the same bytes" cmp /srv/export/model.bin /mnt/models/model.bin
log "fscache stats:"; sed 's/^/    /' /proc/fs/fscache/stats
finish
