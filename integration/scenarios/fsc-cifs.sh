#!/bin/bash
# CIFS goes through the same flow: a Samba share on 127.0.0.1 mounted from an
# fstab entry whose password lives in a 0600 credentials file gets fsc in
# fstab and in the superblock; the password never shows in cachectl's output.
# An fstab entry with an inline password= is refused, fstab untouched.
# requires: cachectl
# timeout: 300
. "$(dirname "$0")/lib.sh"

command -v cachectl >/dev/null || die "cachectl is not on PATH ($PATH)"
load_modules zram cifs
make_zram_ext4 /var/cache/fscache 256M >/dev/null
make_export_dir /srv/export 128M
make_file /srv/export/model.bin 16
make_file /srv/export/warm.bin 16
start_samba /srv/export
mkdir -p /etc/cachectl /mnt/smb /mnt/inline
printf 'username=root\npassword=cachectl\n' >/etc/cachectl/smb.cred
chmod 600 /etc/cachectl/smb.cred
cat >/etc/fstab <<EOF2
# SMB model share; the password is in the credentials file
//127.0.0.1/models /mnt/smb cifs credentials=/etc/cachectl/smb.cred,vers=3.1.1 0 0
# a bad habit: password inline
//127.0.0.1/models /mnt/inline cifs username=root,password=cachectl,vers=3.1.1 0 0
EOF2
mount /mnt/smb || die "mount /mnt/smb from fstab"
mount /mnt/inline || die "mount /mnt/inline from fstab"
cp /etc/fstab /tmp/fstab.orig
sb_fsc() { awk -v m="$1" '$2 == m { print ($4 ~ /(^|,)fsc(,|$)/) ? "yes" : "no" }' /proc/mounts; }
expect_eq "share starts without fsc" no "$(sb_fsc /mnt/smb)"

cachectl cache setup --dir /var/cache/fscache --json >/tmp/setup.json || die "cache setup: $(cat /tmp/setup.json)"

cachectl fsc enable /mnt/inline --json >/tmp/inline.json
expect_eq "inline password: refused (exit 1)" 1 "$?"
expect_match "inline password: says to use a credentials file" 'credentials' "$(json_get /tmp/inline.json .msg)"
expect_cmd "inline password: fstab untouched" cmp /etc/fstab /tmp/fstab.orig

cachectl fsc enable /mnt/smb --json >/tmp/enable.json
expect_eq "fsc enable on CIFS: exit 0" 0 "$?"
log "enable: $(cat /tmp/enable.json)"
expect_eq "superblock has fsc" yes "$(sb_fsc /mnt/smb)"
expect_match "fstab entry has fsc" '//127\.0\.0\.1/models /mnt/smb cifs credentials=/etc/cachectl/smb\.cred,vers=3\.1\.1,fsc 0 0' "$(cat /etc/fstab)"
expect_match "fstab comments kept" 'password is in the credentials file' "$(cat /etc/fstab)"
cachectl fsc enable /mnt/smb --json >/tmp/enable2.json
expect_eq "second run changed" false "$(json_get /tmp/enable2.json .changed)"
cachectl mounts --json >/tmp/mounts.json
cachectl doctor --json >/tmp/doctor.json
for f in /tmp/enable.json /tmp/enable2.json /tmp/mounts.json /tmp/doctor.json /tmp/inline.json; do
  expect_eq "no password in $(basename "$f")" 0 "$(grep -c 'cachectl,' "$f"; true)"
done
expect_match "mounts shows the inline password as ***" 'password=\*\*\*' "$(cat /tmp/mounts.json)"

wr0=$(fscache_cache_writes)
drop_caches
read_through /mnt/smb/model.bin
sleep 1
log "cache writes ($(fscache_unit)) after a CIFS read: $wr0 -> $(fscache_cache_writes)"
expect_cmd "bytes through the CIFS cache are right" cmp /srv/export/model.bin /mnt/smb/model.bin

# warm reads CIFS with fsc as one sequential reader of 16 MiB pieces, and its reads
# reach the server as READs of the whole rsize.
want="cifs+fsc: 1 reader x 16M contiguous, no hints, spliced"
reads0=$(cifs_sharestat models reads) bytes0=$(cifs_sharestat models server_read_bytes)
cachectl warm --json /mnt/smb/warm.bin >/tmp/warm.json || die "warm /mnt/smb/warm.bin: $(cat /tmp/warm.json)"
expect_eq "warm reads CIFS with fsc as one sequential reader" "$want" "$(json_get /tmp/warm.json .strategy)"
reads=$(($(cifs_sharestat models reads) - reads0)) bytes=$(($(cifs_sharestat models server_read_bytes) - bytes0))
rsize=$(findmnt -no OPTIONS /mnt/smb | grep -o 'rsize=[0-9]*' | cut -d= -f2)
log "the cold warm sent $reads READs for $bytes bytes (rsize $rsize)"
expect_cmd "warm read the whole file from the server" test "$bytes" -ge $((16 << 20))
expect_cmd "warm's READs average at least 3/4 of rsize" test $((bytes / (reads > 0 ? reads : 1))) -ge $((rsize * 3 / 4))
expect_cmd "bytes warmed through the CIFS cache are right" cmp /srv/export/warm.bin /mnt/smb/warm.bin
finish
