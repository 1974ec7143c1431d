#!/bin/bash
# FS-Cache's whole value, across a reboot, under systemd as PID 1: the model
# comes from local disk after the machine restarts.
# Boot 1: an NFS server (systemd's nfs-server, export on the guest's disk), an
#   fstab entry for the share without fsc (with _netdev), `cachectl
#   install-units` + enable, and `cachectl apply` of a cache, fsc on the share, a
#   tmpfs tier with a pinned model and a warm list. A model is read once (so
#   FS-Cache holds it). Reboot.
# Boot 2: systemd mounted the share with fsc (FSC yes), cachefilesd is active
#   under systemd as cachectl's unit and bound the cache before the share was
#   mounted, cachectl-apply.service succeeded, the pinned model is back in
#   its (new) tier, every model link resolves, the warm list ran; and the first
#   read of the model after the reboot comes from FS-Cache: the cache's read
#   counter rises while NFS READ operations and server bytes stay near zero;
#   the dashboard (cachectl serve) samples that read for its chart: /api/history's
#   cache reads rise and the page's reads line leaves its baseline.
# init: systemd
# requires: cachectl
# timeout: 900
. "$(dirname "$0")/lib.sh"

export_dir=/persist/export
if [[ $(boot_number) == 1 ]]; then
  mkdir -p "$export_dir" /persist/fscache
  make_file "$export_dir/pinned.gguf" 8
  make_file "$export_dir/model.gguf" 16
  make_file "$export_dir/warm.bin" 4
  sha256sum "$export_dir/model.gguf" | cut -d' ' -f1 >/persist/model.sha256
  echo "$export_dir 127.0.0.1(ro,sync,no_subtree_check,no_root_squash,insecure,fsid=0)" >/etc/exports
  { systemctl enable --now nfs-server.service && exportfs -ra; } >/dev/null 2>&1 || die "nfs-server did not start: $(systemctl status nfs-server 2>&1 | tail -5)"
  mkdir -p /mnt/models
  echo "127.0.0.1:/ /mnt/models nfs4 ro,vers=4.2,_netdev 0 0" >>/etc/fstab
  systemctl daemon-reload
  systemctl start mnt-models.mount || die "mount the share: $(systemctl status mnt-models.mount 2>&1 | tail -5)"
  expect_eq "share mounted without FS-Cache first" no "$(nfs_volume_fsc)"

  mkdir -p /etc/cachectl
  cat >/etc/cachectl/cachectl.yaml <<YAML
version: 1
cache: {dir: /persist/fscache, tag: boot}
shares:
  - mountpoint: /mnt/models
tiers:
  - {name: fast, type: tmpfs, size: 32M}
models:
  dir: /srv/models
  cold_store: /mnt/models
  pinned: {pinned.gguf: fast}
warm:
  - {name: boot, files: [/mnt/models/warm.bin]}
YAML
  cachectl install-units --json >/tmp/units.json
  expect_eq "install-units exit 0" 0 "$?"
  systemctl daemon-reload
  expect_cmd "enable cachectl-apply.service" systemctl enable cachectl-apply.service
  cachectl apply --json >/tmp/apply.json 2>/tmp/apply.err
  rc=$?
  expect_eq "apply exit 0" 0 "$rc"
  if ((rc != 0)); then
    log "apply said: $(jq -c '[.. | objects | select(.failed == true) | .msg // empty]' /tmp/apply.json 2>/dev/null) $(tail -5 /tmp/apply.err)"
    { systemctl status cachefilesd --no-pager; journalctl -b -u cachefilesd --no-pager; } 2>&1 | tail -25 | sed 's/^/    /' >&2
  fi
  expect_eq "FS-Cache on for the share" yes "$(nfs_volume_fsc)"
  expect_match "fstab entry now has fsc" '127.0.0.1:/ /mnt/models nfs4 ro,vers=4.2,_netdev,fsc' "$(cat /etc/fstab)"
  expect_eq "cachefilesd active under systemd" active "$(systemctl is-active cachefilesd)"
  expect_eq "cachefilesd enabled" enabled "$(systemctl is-enabled cachefilesd 2>/dev/null)"
  # Fill FS-Cache with the model: one read through the fsc mount.
  read_through /mnt/models/model.gguf
  sleep 2 # cachefiles writes behind the read
  sync
  cachectl cache status --json >/tmp/cache1.json
  log "cache after boot 1: $(jq -c '{cache_writes, cache_reads, downloads, unit}' /tmp/cache1.json)"
  reboot_guest
fi

# --- boot 2 ---------------------------------------------------------------------------
log "systemd: $(systemd-analyze time 2>/dev/null | head -1)"
wait_for_unit cachectl-apply.service 300
expect_eq "cachectl-apply.service succeeded" success "$(systemctl show -p Result --value cachectl-apply.service)"
expect_eq "cachectl-apply.service active (exited)" active "$(systemctl is-active cachectl-apply.service)"
expect_eq "systemd mounted the share" active "$(systemctl is-active mnt-models.mount)"
expect_match "mounted with fsc (mountinfo)" '(^|,)fsc(,|$)' "$(findmnt -n -o OPTIONS /mnt/models)"
expect_eq "FSC yes in /proc/fs/nfsfs/volumes" yes "$(nfs_volume_fsc)"
expect_eq "cachefilesd active under systemd" active "$(systemctl is-active cachefilesd)"
expect_eq "cachefilesd.service is cachectl's unit" /etc/systemd/system/cachefilesd.service "$(systemctl show -p FragmentPath --value cachefilesd)"
cache_up=$(systemctl show -p ActiveEnterTimestampMonotonic --value cachefilesd)
share_up=$(systemctl show -p ActiveEnterTimestampMonotonic --value mnt-models.mount)
expect_gt "the cache was bound before systemd mounted the share (us)" "$((share_up - cache_up))" 0
log "cachefilesd.service after the reboot:"; { systemctl status cachefilesd --no-pager; journalctl -b -u cachefilesd --no-pager; } 2>&1 | tail -25 | sed 's/^/    /' >&2
expect_match "the kernel's cache is bound" 'boot' "$(cat /proc/fs/fscache/caches)"
expect_eq "pinned model back in its tier" /run/cachectl/tiers/fast/pinned.gguf "$(readlink /srv/models/pinned.gguf)"
expect_cmd "pinned copy is byte-identical" cmp "$export_dir/pinned.gguf" /run/cachectl/tiers/fast/pinned.gguf
expect_eq "every model link resolves" "" "$(find /srv/models -xtype l)"
wait_for_unit cachectl-warm@boot.service 300
expect_eq "the warm list ran (cachectl-warm@boot.service)" success "$(systemctl show -p Result --value cachectl-warm@boot.service)"
booted=$(( $(date +%s) - $(cut -d. -f1 /proc/uptime) ))
expect_ge "the warm record is from this boot" "$(jq -r '.lists.boot.finished_at | floor' /var/lib/cachectl/warm.json)" "$booted"

# The dashboard (cachectl serve, installed by install-units, not enabled) samples
# FS-Cache's counters every 10 s for its chart: it must see the read below.
api=http://127.0.0.1:5050
max_reads() { jq '[.samples[].cache_reads // 0] | max // 0' "$1"; }
systemctl start cachectl-serve.service || die "start cachectl-serve"
for ((i = 0; i < 100; i++)); do curl -sf "$api/api/history" -o /tmp/history0.json && break; sleep 0.2; done
reads0=$(max_reads /tmp/history0.json)

# The first read of the model since the reboot.
ops0=$(nfs_mountstat /mnt/models read_ops) bytes0=$(nfs_mountstat /mnt/models server_read_bytes)
cachectl cache status --json >/tmp/before.json
sum=$(sha256sum /mnt/models/model.gguf | cut -d' ' -f1)
cachectl cache status --json >/tmp/after.json
ops1=$(nfs_mountstat /mnt/models read_ops) bytes1=$(nfs_mountstat /mnt/models server_read_bytes)
log "NFS READ ops $ops0 -> $ops1, server bytes $bytes0 -> $bytes1"
log "cache: $(jq -c '{cache_reads, unit}' /tmp/before.json) -> $(jq -c '{cache_reads, unit}' /tmp/after.json)"
expect_eq "model read after the reboot is byte-exact" "$(cat /persist/model.sha256)" "$sum"
expect_gt "FS-Cache's read counter rose (cachectl cache status)" \
  $(($(json_get /tmp/after.json .cache_reads) - $(json_get /tmp/before.json .cache_reads))) 0
# 16 MiB from the server would be 16+ READs of 1 MiB; a few are allowed for metadata races.
expect_ge "NFS READ operations stayed near zero (at most 2)" $((2 - (ops1 - ops0))) 0
expect_ge "server bytes stayed under 1 MiB" $((1048576 - (bytes1 - bytes0))) 0
t0=$SECONDS
while ((SECONDS - t0 < 30)); do
  curl -s "$api/api/history" -o /tmp/history.json
  (($(max_reads /tmp/history.json) > reads0)) && break
  sleep 1
done
log "dashboard history: $(jq -c '{unit, layout, n: (.samples | length), reads: [.samples[-2:][].cache_reads]}' /tmp/history.json)"
expect_gt "the dashboard's sampling saw the cache reads (/api/history)" "$(max_reads /tmp/history.json)" "$reads0"
curl -s "$api/" >/tmp/page.html
expect_match "the page's chart is labelled in this kernel's unit" \
  "peak [0-9]+ $(json_get /tmp/after.json .unit) per 10 s" "$(cat /tmp/page.html)"
# The reads line (blue) leaves the chart's baseline (y = 136) where the model was read.
reads_line=$(grep -o 'stroke="#1f77b4" stroke-width="2" points="[^"]*"' /tmp/page.html | sed 's/.*points="//; s/"$//')
expect_gt "the chart's reads line rises above its baseline" \
  "$(tr ' ' '\n' <<<"$reads_line" | awk -F, 'NF == 2 && $2 < 136 { n++ } END { print n + 0 }')" 0
systemctl stop cachectl-serve.service
cachectl status
finish
