#!/bin/bash
# `cachectl doctor` finds a missing daemon and a mount without fsc, each with
# its fix, and fails; after the fixes it passes. Also: a second NFS mount of
# the same export with nosharecache gets fsc=UNIQ so both superblocks can use
# the cache (else the kernel refuses the duplicate volume key).
# requires: cachectl
# timeout: 300
. "$(dirname "$0")/lib.sh"

command -v cachectl >/dev/null || die "cachectl is not on PATH ($PATH)"
load_modules zram cachefiles
make_zram_ext4 /var/cache/fscache 256M >/dev/null
make_export_dir /srv/export 64M
make_file /srv/export/model.bin 4
start_nfs_server /srv/export
mount_nfs /mnt/models ro
: >/etc/fstab
write_cachefilesd_conf /etc/cachefilesd.conf /var/cache/fscache

cachectl doctor --json >/tmp/doctor1.json
expect_eq "doctor fails (exit 1)" 1 "$?"
expect_eq "finds the daemon missing" error "$(jq -r '.findings[] | select(.check == "daemon") | .severity' /tmp/doctor1.json)"
expect_match "with the fix" 'cachectl cache setup' "$(jq -r '.findings[] | select(.check == "daemon") | .fix' /tmp/doctor1.json)"
expect_eq "finds the mount without fsc, with the fix" "cachectl fsc enable /mnt/models" \
  "$(jq -r '.findings[] | select(.check == "mount /mnt/models" and (.detail | test("without"))) | .fix' /tmp/doctor1.json)"
expect_match "flags the 128 KiB readahead" 'readahead is 128 KiB' "$(cat /tmp/doctor1.json)"
cachectl doctor >/tmp/doctor1.txt
expect_match "human output prints fixes" 'fix: cachectl fsc enable /mnt/models' "$(cat /tmp/doctor1.txt)"

cachectl cache setup --dir /var/cache/fscache --json >/tmp/setup.json || die "cache setup: $(cat /tmp/setup.json)"
cachectl fsc enable /mnt/models --readahead 4M --json >/tmp/enable.json
expect_eq "no fstab entry: still enabled" yes "$(nfs_volume_fsc)"
expect_match "and says so" 'no fstab entry' "$(json_get /tmp/enable.json '.mounts[0].notes[0]')"
cachectl doctor --json >/tmp/doctor2.json
expect_eq "doctor: no errors after the fixes" false "$(json_get /tmp/doctor2.json .failed)"

# Several mounts of one export.
mount_nfs /mnt/second ro,nosharecache
cachectl fsc enable /mnt/second --json >/tmp/second.json
expect_eq "second mount of the export: exit 0" 0 "$?"
log "second: $(cat /tmp/second.json)"
# 6.1 shows only "fsc" in /proc/mounts, not the fsc=UNIQ value: check what was mounted.
expect_match "it was mounted with fsc=UNIQ" 'fsc=cachectl-mnt-second' "$(json_get /tmp/second.json '.mounts[0].actions[0]')"
expect_match "the superblock has fsc" ',fsc(=[^,]*)?(,|$)' "$(grep ' /mnt/second ' /proc/mounts)"
expect_eq "both superblocks have FSC yes" "yes yes" "$(awk 'NR > 1 { print $NF }' /proc/fs/nfsfs/volumes | sort | xargs)"
expect_cmd "reads through the second mount work" cmp /srv/export/model.bin /mnt/second/model.bin
finish
