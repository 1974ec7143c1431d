#!/bin/bash
# `cachectl apply` on one YAML file covering the FS-Cache cache, an NFS share
# that must have fsc (+ readahead), a tmpfs and a zram tier, a pinned and a
# promoted model, and a warm list:
#   -> plan lists the actions in dependency order and changes nothing
#   -> apply brings it all up (FSC yes, cachefilesd bound, tiers mounted,
#      models linked into their tiers, warm list resident)
#   -> a second apply is changed:false, and under strace makes no mutating
#      system call (no open for writing, mount, rename, unlink, xattr, exec)
#   -> a YAML with an unknown key is refused with line:column (exit 2)
#   -> a step that fails (cachefilesd refusing a new tag) stops apply, the
#      old cachefilesd.conf is put back and the rest is skipped
#   -> cachectl status and --prometheus show what was built.
# requires: cachectl
# timeout: 300
. "$(dirname "$0")/lib.sh"

command -v cachectl >/dev/null || die "cachectl is not on PATH ($PATH)"
command -v strace >/dev/null || die "strace is not installed (integration/deps vm)"
load_modules zram
make_zram_ext4 /var/cache/fscache 256M >/dev/null
make_export_dir /srv/export 256M
make_file /srv/export/tiny.gguf 8
make_file /srv/export/other.gguf 4
make_file /srv/export/extra.bin 16
start_nfs_server /srv/export
cat >/etc/fstab <<'EOF'
# /etc/fstab of the test guest
127.0.0.1:/ /mnt/models nfs4 ro,vers=4.2 0 0
EOF
mount_nfs /mnt/models ro
rm -f /etc/cachefilesd.conf
expect_eq "share starts without FS-Cache" no "$(nfs_volume_fsc)"

mkdir -p /etc/cachectl
cat >/etc/cachectl/cachectl.yaml <<'EOF'
version: 1
cache:
  dir: /var/cache/fscache
  tag: models
shares:
  - mountpoint: /mnt/models
    readahead: 16M
    nconnect: 2
tiers:
  - name: fast
    type: tmpfs
    size: 64M
  - name: squeezed
    type: zram
    size: 64M
    algorithm: lz4
models:
  dir: /srv/models
  cold_store: /mnt/models
  pinned:
    tiny.gguf: squeezed
  promote:
    - other.gguf
warm:
  - name: boot
    files: [/mnt/models/extra.bin]
EOF

# --- plan ------------------------------------------------------------------------------
cachectl plan --json >/tmp/plan.json
expect_eq "plan exit 0" 0 "$?"
expect_eq "plan: changes pending" true "$(json_get /tmp/plan.json .changed)"
expect_eq "plan: dependency order" \
  "cache /var/cache/fscache,share /mnt/models,tier fast,tier squeezed,models /srv/models,placement tiny.gguf,placement other.gguf,warm boot" \
  "$(json_get /tmp/plan.json '[.actions[].id] | join(",")')"
expect_match "plan: share before/after" '^fsc off, readahead [0-9]+ KiB, nconnect 1 -> fsc on, readahead 16384 KiB, nconnect 2$' \
  "$(json_get /tmp/plan.json '.actions[1] | .before + " -> " + .after')"
expect_eq "plan wrote no cachefilesd.conf" no "$([[ -e /etc/cachefilesd.conf ]] && echo yes || echo no)"
expect_eq "plan left fsc off" no "$(nfs_volume_fsc)"

# --- apply -----------------------------------------------------------------------------
cachectl apply --json >/tmp/apply1.json
expect_eq "apply exit 0" 0 "$?"
expect_eq "apply changed" true "$(json_get /tmp/apply1.json .changed)"
expect_eq "apply statuses" "done,done,done,done,done,done,done,done" \
  "$(json_get /tmp/apply1.json '[.actions[].status] | join(",")')"
expect_eq "FS-Cache on for the share" yes "$(nfs_volume_fsc)"
expect_match "fstab has fsc and nconnect" '127.0.0.1:/ +/mnt/models +nfs4 +ro,vers=4.2,fsc,nconnect=2 ' "$(cat /etc/fstab)"
expect_match "mountinfo says nconnect=2" '(^|,)nconnect=2(,|$)' "$(findmnt -no OPTIONS /mnt/models)"
dev=$(mountpoint -d /mnt/models)
expect_eq "readahead 16 MiB" 16384 "$(cat "/sys/class/bdi/$dev/read_ahead_kb")"
expect_match "cachefilesd runs" '[0-9]' "$(pidof cachefilesd)"
expect_match "the kernel's cache is active" 'models' "$(cat /proc/fs/fscache/caches)"
expect_eq "tmpfs tier mounted" tmpfs "$(findmnt -n -o FSTYPE /run/cachectl/tiers/fast)"
expect_match "zram tier mounted" '/dev/zram[0-9]+' "$(findmnt -n -o SOURCE /run/cachectl/tiers/squeezed)"
expect_eq "pinned model linked into the zram tier" /run/cachectl/tiers/squeezed/tiny.gguf "$(readlink /srv/models/tiny.gguf)"
expect_eq "promoted model linked into the fastest tier" /run/cachectl/tiers/fast/other.gguf "$(readlink /srv/models/other.gguf)"
expect_cmd "pinned copy is byte-identical" cmp /srv/export/tiny.gguf /run/cachectl/tiers/squeezed/tiny.gguf
expect_eq "warm record written" boot "$(jq -r '.lists | keys[0]' /var/lib/cachectl/warm.json)"
pid1=$(pidof cachefilesd)

# --- second apply: changed false, and no mutating system call ---------------------------
stat -c '%n %i %Y %Z' /etc/fstab /etc/cachefilesd.conf /var/lib/cachectl/tiers.json /var/lib/cachectl/warm.json \
  /srv/models /srv/models/tiny.gguf /var/cache/fscache >/tmp/stat1
strace -f -qq -o /tmp/trace -e trace=execve,mount,umount2,setxattr,lsetxattr,fsetxattr,removexattr,lremovexattr,fremovexattr,rename,renameat,renameat2,unlink,unlinkat,rmdir,mkdir,mkdirat,symlink,symlinkat,link,linkat,chmod,fchmod,fchmodat,chown,fchown,fchownat,lchown,truncate,ftruncate,fallocate,kill,tgkill,finit_module,init_module,delete_module,open,openat,creat \
  cachectl apply --json >/tmp/apply2.json
expect_eq "second apply exit 0" 0 "$?"
expect_eq "second apply changed" false "$(json_get /tmp/apply2.json .changed)"
expect_eq "second apply: every action unchanged" "unchanged,unchanged,unchanged,unchanged,unchanged,unchanged,unchanged,unchanged" \
  "$(json_get /tmp/apply2.json '[.actions[].status] | join(",")')"
# Allowed: the one execve of cachectl itself, opens for reading, failed lookups,
# and cachestat(2) (syscall 451 = 0x1c3: residency on 6.5+, read-only), which
# bookworm's strace does not know by name and prints whatever -e trace= says.
mutating=$(grep -vE 'O_RDONLY|= -1 E|\+\+\+ exited|execve\("[^"]*cachectl"|syscall_0x1c3\(' /tmp/trace | grep -E '^[0-9]+ +[a-z_0-9]+\(' || true)
expect_eq "second apply made no mutating system call" "" "$mutating"
expect_eq "one execve (no child processes)" 1 "$(grep -c 'execve(' /tmp/trace)"
stat -c '%n %i %Y %Z' /etc/fstab /etc/cachefilesd.conf /var/lib/cachectl/tiers.json /var/lib/cachectl/warm.json \
  /srv/models /srv/models/tiny.gguf /var/cache/fscache >/tmp/stat2
expect_eq "inodes, mtimes and ctimes unchanged" "$(cat /tmp/stat1)" "$(cat /tmp/stat2)"
expect_eq "cachefilesd not restarted" "$pid1" "$(pidof cachefilesd)"

# --- a broken file ---------------------------------------------------------------------------
sed 's/^    readahead: 16M/    readahead: 16M\n    fcs: true/' /etc/cachectl/cachectl.yaml >/tmp/broken.yaml
cachectl apply -f /tmp/broken.yaml --json >/tmp/broken.json 2>/tmp/broken.err
expect_eq "unknown key: exit 2" 2 "$?"
expect_match "unknown key named with line:column" '/tmp/broken.yaml:8:5: shares\[0\]\.fcs: unknown key .fcs.' "$(cat /tmp/broken.err)"
expect_eq "unknown key: JSON says failed" true "$(json_get /tmp/broken.json .failed)"
stat -c '%n %i %Y %Z' /etc/fstab /etc/cachefilesd.conf /var/lib/cachectl/tiers.json /var/lib/cachectl/warm.json \
  /srv/models /srv/models/tiny.gguf /var/cache/fscache >/tmp/stat3
expect_eq "the broken file changed nothing" "$(cat /tmp/stat1)" "$(cat /tmp/stat3)"

# --- a failing step is rolled back ---------------------------------------------------------
# A cachefilesd that refuses to bind a cache tagged "broken" (as the real one
# does when the kernel says no), first on PATH.
mkdir -p /tmp/shim
cat >/tmp/shim/cachefilesd <<'EOF'
#!/bin/sh
conf=/etc/cachefilesd.conf prev=
for arg in "$@"; do [ "$prev" = -f ] && conf=$arg; prev=$arg; done
grep -q '^tag broken' "$conf" && { echo "cachefilesd: CacheFiles bind failed: errno 22 (Invalid argument)" >&2; exit 1; }
exec /usr/sbin/cachefilesd "$@"
EOF
chmod +x /tmp/shim/cachefilesd
cp /etc/cachefilesd.conf /tmp/conf.before
sed 's/^  tag: models/  tag: broken/' /etc/cachectl/cachectl.yaml >/tmp/failing.yaml
PATH=/tmp/shim:$PATH cachectl apply -f /tmp/failing.yaml --json >/tmp/fail.json
expect_eq "failing step: exit 1" 1 "$?"
expect_eq "failing step: cache failed, the rest skipped" "failed,skipped,skipped,skipped,skipped,skipped,skipped,skipped" \
  "$(json_get /tmp/fail.json '[.actions[].status] | join(",")')"
expect_match "rollback restored the config" 'restored /etc/cachefilesd.conf' "$(json_get /tmp/fail.json '.actions[0].rollback')"
expect_cmd "cachefilesd.conf is the old one" cmp /tmp/conf.before /etc/cachefilesd.conf
expect_match "cachefilesd runs again (old config)" '[0-9]' "$(pidof cachefilesd)"
cachectl apply --json >/tmp/apply3.json
expect_eq "after the rollback, the good file is already applied" false "$(json_get /tmp/apply3.json .changed)"

# --- status and metrics ----------------------------------------------------------------------
cat /mnt/models/extra.bin >/dev/null
cachectl status --json --prometheus /tmp/cachectl.prom >/tmp/status.json
expect_eq "status exit 0" 0 "$?"
expect_eq "status: share has fsc" true "$(json_get /tmp/status.json '.shares[0].nfs_fsc')"
expect_eq "status: two live tiers" 2 "$(json_get /tmp/status.json '[.tiers[] | select(.live)] | length')"
expect_match "metrics: cache writes, with the kernel's unit" 'cachectl_fscache_writes_total\{unit="(pages|operations)"\} [0-9]+' "$(cat /tmp/cachectl.prom)"
expect_match "metrics: zram ratio" 'cachectl_zram_compression_ratio\{tier="squeezed",type="zram"\} [0-9.]+' "$(cat /tmp/cachectl.prom)"
expect_match "metrics: models per tier" 'cachectl_models\{location="squeezed"\} 1' "$(cat /tmp/cachectl.prom)"
expect_match "metrics: warm throughput" 'cachectl_warm_last_throughput_bytes_per_second\{list="boot",into="ram"\} [0-9.]+' "$(cat /tmp/cachectl.prom)"
cachectl status
finish
