# shellcheck shell=bash
# Helpers for scenarios run inside the test bed's guest (integration/vm/run).
# Source it first thing:  . "$(dirname "$0")/lib.sh"
#
# Exit codes a scenario ends with (the runner relies on them):
#   0  every check passed
#   1  a check failed (expect_* recorded it; `finish` exits 1)
#   2  the setup broke (`die`): the scenario could not get as far as checking
#
# Everything here runs as root in a throw-away guest: it may load modules, start
# daemons, write /etc and drop caches. Never source it on the host.

set -uo pipefail

if [[ ${CACHECTL_VM_MODE:-} == "" && ${CACHECTL_VM_ALLOW_HOST:-0} != 1 ]]; then
  echo "lib.sh: refusing to run outside the test bed's guest (integration/vm/run)" >&2
  exit 2
fi

_failures=0
_scenario=${CACHECTL_VM_SCENARIO:-$(basename "$0" .sh)}
_t0=${EPOCHREALTIME/./}

# log MESSAGE: to stderr, with seconds since the scenario started.
log() {
  local us=$((${EPOCHREALTIME/./} - _t0))
  printf '[%3d.%02d] %s\n' $((us / 1000000)) $((us % 1000000 / 10000)) "$*" >&2
}
die() { echo "SETUP FAILED: $*" >&2; exit 2; }

# --- assertions: record, print expected vs seen, keep going ----------------------
_pass() { echo "ok:   $1"; }
_fail() { echo "FAIL: $1"; echo "      expected: $2"; echo "      seen:     $3"; _failures=$((_failures + 1)); }

# expect_eq WHAT EXPECTED SEEN
expect_eq() { if [[ $3 == "$2" ]]; then _pass "$1 ($3)"; else _fail "$1" "$2" "$3"; fi; }
# expect_ge WHAT SEEN MIN   (integers)
expect_ge() { if [[ $2 =~ ^-?[0-9]+$ ]] && (($2 >= $3)); then _pass "$1 ($2 >= $3)"; else _fail "$1" ">= $3" "$2"; fi; }
# expect_gt WHAT SEEN MIN   (integers)
expect_gt() { if [[ $2 =~ ^-?[0-9]+$ ]] && (($2 > $3)); then _pass "$1 ($2 > $3)"; else _fail "$1" "> $3" "$2"; fi; }
# expect_match WHAT REGEX TEXT
expect_match() { if [[ $3 =~ $2 ]]; then _pass "$1"; else _fail "$1" "text matching /$2/" "${3:-<empty>}"; fi; }
# expect_cmd WHAT COMMAND...   (the command's exit status decides)
expect_cmd() {
  local what=$1 output; shift
  if output=$("$@" 2>&1); then _pass "$what"; else _fail "$what" "'$*' succeeds" "exit $?: ${output:0:400}"; fi
}
# finish: the scenario's last line.
finish() {
  # The test bed's own daemon (start_cachefilesd) dying or started again
  # mid-scenario explains failed cache checks that follow (Debian's cachefilesd
  # 0.10.10 has aborted in a 6.12 guest): say so, with its last words.
  # (cachectl stopping it with SIGTERM ends it with exit 0: nothing to say.)
  if [[ -n ${CACHEFILESD_PID:-} ]] && ! kill -0 "$CACHEFILESD_PID" 2>/dev/null; then
    local rc=0
    wait "$CACHEFILESD_PID" 2>/dev/null || rc=$?
    if ((rc > 128)); then
      echo "note: the test bed's cachefilesd was killed by signal $((rc - 128)) during the scenario, 6 times; its log:"
      tail -n 20 /tmp/cachefilesd.log | sed 's/^/  cachefilesd: /'
    fi
  fi
  if [[ -n ${CACHEFILESD_PID:-} ]] && grep -q 'starting it again' /tmp/cachefilesd.log 2>/dev/null; then
    echo "note: the test bed's cachefilesd was started again during the scenario:"
    grep 'starting it again' /tmp/cachefilesd.log | sed 's/^/  /'
  fi
  if ((_failures > 0)); then
    echo "$_scenario: $_failures check(s) failed"
    exit 1
  fi
  echo "$_scenario: all checks passed"
  exit 0
}

# --- kernel -------------------------------------------------------------------------
load_modules() { local m; for m in "$@"; do modprobe "$m" || die "modprobe $m"; done; }

drop_caches() { sync; echo 3 >/proc/sys/vm/drop_caches; }

# kernel_at_least MAJOR MINOR: true when the running kernel is MAJOR.MINOR or newer.
kernel_at_least() {
  local major minor
  IFS=. read -r major minor _ <<<"$(uname -r)"
  ((major > $1 || (major == $1 && minor >= $2)))
}

# --- NVMe-oF scenarios ------------------------------------------------------------
# mount_configfs: nvmet lives in configfs, which busybox init does not mount.
mount_configfs() {
  load_modules configfs
  mountpoint -q /sys/kernel/config || mount -t configfs none /sys/kernel/config || die "mount configfs"
}

# nvme_devices: the NVMe nodes under /dev, space-separated (empty when none).
nvme_devices() { find /dev -maxdepth 1 -name 'nvme[0-9]*' -printf '%f ' | sed 's/ $//'; }

# expect_nvmet_empty: no subsystem, port or host is left in nvmet's configfs.
expect_nvmet_empty() {
  local cfs=/sys/kernel/config/nvmet
  expect_eq "configfs subsystems empty" "" "$(ls "$cfs/subsystems")"
  expect_eq "configfs ports empty" "" "$(ls "$cfs/ports")"
  expect_eq "configfs hosts empty" "" "$(ls "$cfs/hosts")"
}

# read_rate FILE: reads FILE once (page cache dropped first) and prints MiB/s.
read_rate() {
  drop_caches
  local t0=${EPOCHREALTIME/./} bytes
  bytes=$(dd if="$1" of=/dev/null bs=1M 2>&1 | awk '/bytes/ {print $1; exit}')
  echo $((bytes * 1000000 / 1048576 / (${EPOCHREALTIME/./} - t0)))
}
# read_rates FILE: MiB/s of three rounds (the host is shared and noisy); best LIST: the highest.
read_rates() { local rounds=(); for _ in 1 2 3; do rounds+=("$(read_rate "$1")"); done; echo "${rounds[*]}"; }
best() { tr ' ' '\n' <<<"$1" | sort -n | tail -1; }

# fscache_counter LABEL KEY: one counter of /proc/fs/fscache/stats, e.g.
# `fscache_counter IO rd` reads "IO     : rd=N wr=N" (the 6.1 layout; labels and
# keys differ between kernels, so scenarios name both). Prints 0 if it is absent.
fscache_counter() {
  awk -v label="$1" -v key="$2" -F: '
    { l = $1; gsub(/^[ \t]+|[ \t]+$/, "", l) }
    l == label {
      rest = substr($0, index($0, ":") + 1)
      n = split(rest, kv, /[ \t]+/)
      for (i = 1; i <= n; i++) { split(kv[i], p, "="); if (p[1] == key) { print p[2]; found = 1; exit } }
    }
    END { if (!found) print 0 }' /proc/fs/fscache/stats
}

# fscache_unit: what FS-Cache's read/write counters count on this kernel:
# "pages" (6.1: IO rd/wr) or "operations" (6.12, netfs inside FS-Cache:
# CaRdOps RD / CaWrOps WR). fscache_cache_reads / fscache_cache_writes print
# those counters. On 6.1 "IO rd" also rises on misses (a lookup that found
# nothing), so reads from the cache are proven by the NFS client's own
# counters (nfs_mountstat) staying put, not by this counter alone.
fscache_unit() { if grep -q '^CaRdOps' /proc/fs/fscache/stats; then echo operations; else echo pages; fi; }
fscache_cache_reads() {
  if [[ $(fscache_unit) == operations ]]; then fscache_counter CaRdOps RD; else fscache_counter IO rd; fi
}
fscache_cache_writes() {
  if [[ $(fscache_unit) == operations ]]; then fscache_counter CaWrOps WR; else fscache_counter IO wr; fi
}

# expect_read_from_fscache WHAT MOUNTPOINT COMMAND...: runs COMMAND (a read)
# and checks that FS-Cache served it: the cache's read counter rose, while the
# NFS client sent at most 2 READs and got under 1 MiB from the server.
expect_read_from_fscache() {
  local what=$1 mnt=$2; shift 2
  local ops0 bytes0 rd0 ops1 bytes1 rd1
  ops0=$(nfs_mountstat "$mnt" read_ops) bytes0=$(nfs_mountstat "$mnt" server_read_bytes) rd0=$(fscache_cache_reads)
  "$@" || die "$*"
  ops1=$(nfs_mountstat "$mnt" read_ops) bytes1=$(nfs_mountstat "$mnt" server_read_bytes) rd1=$(fscache_cache_reads)
  log "$what: NFS READs $ops0 -> $ops1, server bytes $bytes0 -> $bytes1, cache reads ($(fscache_unit)) $rd0 -> $rd1"
  expect_gt "$what: FS-Cache's read counter rose ($(fscache_unit))" $((rd1 - rd0)) 0
  expect_ge "$what: NFS READ operations near zero (<= 2)" $((2 - (ops1 - ops0))) 0
  expect_ge "$what: server bytes under 1 MiB" $((1048576 - (bytes1 - bytes0))) 0
}

# --- a zram-backed ext4 (cachefilesd needs user xattrs, which tmpfs on 6.1 lacks)
# make_zram_ext4 MOUNTPOINT [SIZE]: prints the device.
make_zram_ext4() {
  local mnt=$1 size=${2:-512M} id dev
  [[ -e /sys/class/zram-control ]] || modprobe zram num_devices=0 || die "modprobe zram"
  id=$(cat /sys/class/zram-control/hot_add) || die "zram hot_add"
  dev=/dev/zram$id
  echo "$size" >"/sys/block/zram$id/disksize" || die "zram$id disksize $size"
  mkfs.ext4 -q -F -O ^has_journal -E nodiscard "$dev" || die "mkfs.ext4 $dev"
  mkdir -p "$mnt"
  mount -o user_xattr "$dev" "$mnt" || die "mount $dev $mnt"
  echo "$dev"
}

# --- cachefilesd ---------------------------------------------------------------------
# write_cachefilesd_conf FILE CACHEDIR [TAG]
write_cachefilesd_conf() {
  cat >"$1" <<EOF
dir $2
tag ${3:-cachectl-test}
brun 10%
bcull 7%
bstop 3%
frun 10%
fcull 7%
fstop 3%
EOF
}

# start_cachefilesd CONF: runs the daemon in the foreground of a background job,
# logs to /tmp/cachefilesd.log, and waits until the kernel lists the cache.
# Returns 1 (and prints the daemon's log) if it did not come up. As cachectl's
# supervisor does (and its unit's Restart=on-abnormal), a signal other than
# TERM/INT/HUP/PIPE starts it again, 5 times at most, and the log says so:
# Debian's 0.10.10 aborts now and then (README, "cache setup").
start_cachefilesd() {
  local conf=$1 _
  load_modules cachefiles
  (
    for _ in 0 1 2 3 4 5; do
      cachefilesd -n -s -f "$conf"
      rc=$?
      case $rc in 129 | 130 | 141 | 143) exit "$rc" ;; esac
      ((rc > 128)) || exit "$rc"
      echo "test bed: cachefilesd was killed by signal $((rc - 128)); starting it again"
      sleep 0.2
    done
    exit "$rc"
  ) >/tmp/cachefilesd.log 2>&1 &
  CACHEFILESD_PID=$!
  for _ in $(seq 50); do
    # /proc/fs/fscache/caches: a header line, then one line per live cache.
    if [[ $(tail -n +2 /proc/fs/fscache/caches 2>/dev/null) == *[![:space:]]* ]] &&
       kill -0 "$CACHEFILESD_PID" 2>/dev/null; then
      return 0
    fi
    kill -0 "$CACHEFILESD_PID" 2>/dev/null || break
    sleep 0.2
  done
  echo "cachefilesd did not bring a cache up; its log:" >&2
  sed 's/^/  cachefilesd: /' /tmp/cachefilesd.log >&2
  return 1
}

# --- NFS server on 127.0.0.1 ----------------------------------------------------------
# make_export_dir DIR [SIZE]: a tmpfs to export. The guest's root is an overlay
# without nfs_export, which nfsd refuses ("does not support NFS export").
make_export_dir() {
  mkdir -p "$1"
  mount -t tmpfs -o "size=${2:-512M}" export "$1" || die "tmpfs on $1"
}

# start_nfs_server DIR: exports DIR as the NFSv4 root (fsid=0), so clients mount
# 127.0.0.1:/ . DIR must be on an exportable filesystem (see make_export_dir).
#
# nfsd's 90-second grace period ends at once only because the kernel can run
# nfsdcltrack (nfs-common) to learn there are no clients to reclaim; without it
# (e.g. nfsd.cltrack_prog pointed elsewhere) the first open waits ~90 s.
start_nfs_server() {
  local dir=$1
  [[ $(stat -f -c %T "$dir") != overlayfs ]] || die "$dir is on the overlay root, which nfsd cannot export; use make_export_dir"
  load_modules nfsd
  mountpoint -q /proc/fs/nfsd || mount -t nfsd nfsd /proc/fs/nfsd || die "mount nfsd fs"
  mkdir -p /run/rpcbind /var/lib/nfs/rpc_pipefs /var/lib/nfs/v4recovery
  mountpoint -q /var/lib/nfs/rpc_pipefs || mount -t rpc_pipefs sunrpc /var/lib/nfs/rpc_pipefs || die "mount rpc_pipefs"
  echo "$dir 127.0.0.1(rw,sync,no_subtree_check,no_root_squash,insecure,fsid=0)" >/etc/exports
  # nfsdcld tells nfsd there are no clients to reclaim, so its NFSv4 grace period
  # ends at once. Without it, kernels that dropped the legacy v4recovery tracking
  # (Debian unstable's 7.2 has no CONFIG_NFSD_LEGACY_CLIENT_TRACKING) keep the whole
  # 90 s grace period, and a first open waits it out.
  mkdir -p /var/lib/nfs/nfsdcld
  pgrep -x nfsdcld >/dev/null || nfsdcld -p /var/lib/nfs/rpc_pipefs || die "nfsdcld"
  rpcbind -w || die "rpcbind"
  exportfs -ra || die "exportfs -ra"
  rpc.nfsd 4 || die "rpc.nfsd"
  rpc.mountd || die "rpc.mountd"
}

# mount_nfs MOUNTPOINT OPTIONS: mounts 127.0.0.1:/ (NFSv4.2) with OPTIONS.
mount_nfs() {
  mkdir -p "$1"
  load_modules nfs nfsv4
  mount -t nfs4 -o "vers=4.2,$2" 127.0.0.1:/ "$1" || die "mount 127.0.0.1:/ on $1 -o $2"
}

# nfs_volume_fsc: the FSC column of /proc/fs/nfsfs/volumes for the first volume.
nfs_volume_fsc() { awk 'NR > 1 { print $NF; exit }' /proc/fs/nfsfs/volumes; }

# --- Samba share on 127.0.0.1 -----------------------------------------------------------
# start_samba DIR [SHARE...]: serves DIR as //127.0.0.1/SHARE (default "models"),
# once per SHARE named (each share is its own tree connection, so its own CIFS
# superblock and its own block in /proc/fs/cifs/Stats), user root, password "cachectl".
start_samba() {
  local dir=$1 share
  shift
  mkdir -p /etc/samba /var/lib/samba/private /var/cache/samba /var/log/samba /run/samba
  cat >/etc/samba/smb.conf <<EOF
[global]
  server role = standalone server
  interfaces = lo
  bind interfaces only = yes
  smb ports = 445
  disable netbios = yes
  passdb backend = tdbsam
  log file = /var/log/samba/%m.log
  server min protocol = SMB3
EOF
  for share in "${@:-models}"; do
    printf '[%s]\n  path = %s\n  read only = no\n  force user = root\n' "$share" "$dir" >>/etc/samba/smb.conf
  done
  printf 'cachectl\ncachectl\n' | smbpasswd -s -a root >/dev/null || die "smbpasswd -a root"
  smbd -D || die "smbd"
  local _
  for _ in $(seq 50); do
    (exec 3<>/dev/tcp/127.0.0.1/445) 2>/dev/null && return 0
    sleep 0.2
  done
  die "smbd is not listening on 127.0.0.1:445"
}

# mount_cifs MOUNTPOINT [OPTIONS] [SHARE]
mount_cifs() {
  mkdir -p "$1"
  load_modules cifs
  mount -t cifs "//127.0.0.1/${3:-models}" "$1" -o "username=root,password=cachectl,vers=3.1.1${2:+,$2}" ||
    die "mount //127.0.0.1/${3:-models} on $1"
}

# --- files and JSON -------------------------------------------------------------------------
# make_file PATH MIB: MIB mebibytes of incompressible data.
make_file() { head -c "$(($2 * 1024 * 1024))" /dev/urandom >"$1" || die "write $1"; }

# read_file_through PATH: read every byte, bypass nothing.
read_through() { cat "$@" >/dev/null || die "read $*"; }

# json_get FILE FILTER: one value of a JSON document, by a jq filter, printed
# raw (strings unquoted, numbers as jq prints them: 100.0 comes out as 100).
#   json_get /tmp/out.json '.total.percent'
# jq starts in milliseconds; python3 takes seconds in the guest after drop_caches.
json_get() { jq -r "$2" "$1" || die "jq '$2' $1 failed (is it JSON? $(head -c 300 "$1"))"; }

# --- apt in the guest ------------------------------------------------------------------
# apt_offline: this guest's apt reads no package lists, only dpkg's status. What
# the .deb depends on is installed already (the guest's root is the host's), and
# the host's lists (bookworm and its updates) cost about a minute of TCG time at
# every apt start: apt install, apt remove, each run of Ansible's apt module. The
# host keeps its own config; this file is in the guest's writable layer.
apt_offline() {
  mkdir -p /var/lib/cachectl-vm/apt-lists/partial
  cat >/etc/apt/apt.conf.d/99cachectl-vm-offline <<'APT'
Dir::State::Lists "/var/lib/cachectl-vm/apt-lists/";
Dir::Cache::pkgcache "pkgcache.bin";
APT
}

# --- systemd guests ("# init: systemd": systemd is PID 1, the root survives reboots)
# boot_number: 1 on the first boot, 2 after the first reboot_guest, ...
boot_number() { echo "${CACHECTL_VM_BOOT:-1}"; }

# reboot_guest: ends this boot's part of the scenario. After a failed check it
# finishes instead (exit 1: nothing to gain from going on); otherwise systemd
# reboots the guest and the scenario runs again from the top, with boot_number
# one higher.
reboot_guest() {
  ((_failures == 0)) || finish
  log "boot $(boot_number) done: rebooting"
  systemctl reboot
  sleep infinity
}

# wait_for_unit UNIT SECONDS: until the unit is no longer activating/reloading.
wait_for_unit() {
  local i state
  for ((i = 0; i < $2 * 5; i++)); do
    state=$(systemctl show -p ActiveState --value "$1")
    [[ $state == activating || $state == reloading ]] || return 0
    sleep 0.2
  done
}

# --- what the NFS client asked the server for (/proc/self/mountstats) -----------
# nfs_mountstat MOUNTPOINT read_ops|server_read_bytes: READ operations sent to
# the server (READ and READ_PLUS: NFSv4.2 clients on 6.12 read with READ_PLUS),
# or bytes the server returned for reads, since the mount. These, not FS-Cache's
# own counters, prove that a read came from the cache: on 6.1 fscache's "IO rd"
# rises on misses too. (printf, not print: mawk prints a number past 2^31 as
# 2.14853e+09, which bash arithmetic refuses; 2 GiB read through one mount does it.)
nfs_mountstat() {
  awk -v mnt="$1" -v what="$2" '
    $1 == "device" { inside = ($5 == mnt) }
    inside && what == "server_read_bytes" && $1 == "bytes:" { n = $6 }
    inside && what == "read_ops" && ($1 == "READ:" || $1 == "READ_PLUS:") { n += $2 }
    END { printf "%.0f\n", n }' /proc/self/mountstats
}

# cifs_sharestat SHARE reads|server_read_bytes: for //127.0.0.1/SHARE, the SMB
# READ requests sent and the bytes they returned, from /proc/fs/cifs/Stats (one
# block per tree connection: "N) \\127.0.0.1\SHARE", then "Bytes read: N ..." and
# "Reads: N total N failed"), summed over the share's connections.
cifs_sharestat() {
  awk -v share="$1" -v what="$2" '
    /^[0-9]+\) / { n = split($2, p, "\\"); inside = (p[n] == share) }
    inside && what == "server_read_bytes" && /^Bytes read:/ { sum += $3 }
    inside && what == "reads" && /^Reads:/ { sum += $2 }
    END { printf "%.0f\n", sum }' /proc/fs/cifs/Stats
}

# --- two-guest scenarios ("# pair:" header; see integration/vm/README.md) ------------
# The script runs on both guests; CACHECTL_VM_ROLE says which (server or client),
# CACHECTL_VM_ADDR / CACHECTL_VM_PEER_ADDR their addresses on the pair's link,
# CACHECTL_VM_NIC its interface. The files below live on the "pair" 9p share.
_pair_dir=/run/cachectl-pair
role() { echo "${CACHECTL_VM_ROLE:-}"; }
# pair_signal NAME [VALUE]: tell the other guest that NAME happened (with VALUE).
pair_signal() {
  local tmp
  tmp=$_pair_dir/.$(role).$1.tmp
  { printf '%s\n' "${2:-}" >"$tmp"; mv "$tmp" "$_pair_dir/$(role).$1"; } || die "pair_signal $1"
  log "signalled $1${2:+ ($2)}"
}
# pair_wait NAME [SECONDS]: waits for the other guest's `pair_signal NAME` and
# prints its VALUE; dies when SECONDS (default 240) pass or the other guest ended.
pair_wait() {
  local peer=${CACHECTL_VM_PEER_ROLE:?not a pair scenario} limit=${2:-240} t0=$SECONDS
  while [[ ! -f $_pair_dir/$peer.$1 ]]; do
    [[ ! -f $_pair_dir/$peer.done ]] || die "waiting for $peer's '$1': $peer ended (exit $(cat "$_pair_dir/$peer.done"))"
    ((SECONDS - t0 < limit)) || die "waiting for $peer's '$1': nothing after ${limit}s"
    sleep 0.2
  done
  log "$peer signalled $1"
  cat "$_pair_dir/$peer.$1"
}
