#!/bin/bash
# cachectl under systemd as PID 1 (Debian's packages, as installed):
#   cache setup -> Debian's package ships only a SysV script for cachefilesd (it
#     starts after remote mounts and can mark the unit failed while the daemon
#     runs), so cachectl writes its own cachefilesd.service (Type=forking, before
#     remote-fs-pre.target), enables and starts it, the cache is bound; a second
#     run changes nothing and does not restart the daemon; a changed threshold
#     restarts it once; a daemon the old unit left running is replaced;
#   a daemon that fails to bind (another cachefilesd holds /dev/cachefiles) ->
#     exit 1 with the reason from the unit's journal lines;
#   fsc enable -> fstab gets fsc and systemd is reloaded, so the mount unit it
#     generates from fstab carries fsc too (no "changed on disk" warning);
#   install-units -> the units pass systemd-analyze verify.
# init: systemd
# requires: cachectl
# timeout: 600
. "$(dirname "$0")/lib.sh"

mkdir -p /persist/export /persist/fscache /mnt/models
make_file /persist/export/model.bin 8
echo "/persist/export 127.0.0.1(ro,sync,no_subtree_check,no_root_squash,insecure,fsid=0)" >/etc/exports
{ systemctl enable --now nfs-server.service && exportfs -ra; } >/dev/null 2>&1 || die "nfs-server did not start"

# --- cache setup ------------------------------------------------------------------------
expect_eq "the package's unit is its SysV script" /etc/init.d/cachefilesd "$(systemctl show -p SourcePath --value cachefilesd)"
# The package's script, as a Debian admin would have it: RUN=yes and started, so a
# daemon runs under the generated unit (which systemd may even have marked failed).
sed -i 's/^#RUN=yes/RUN=yes/' /etc/default/cachefilesd
printf 'dir /persist/fscache\ntag units\n' >/etc/cachefilesd.conf
systemctl restart cachefilesd 2>/dev/null
old_pid=$(pidof cachefilesd)
log "before: the script's daemon: pid ${old_pid:-none}, unit $(systemctl is-active cachefilesd)"
expect_match "the script's daemon runs" '^[0-9]+$' "$old_pid"
cachectl cache setup --dir /persist/fscache --tag units --json >/tmp/setup1.json
expect_eq "cache setup exit 0" 0 "$?"
log "actions: $(jq -c .actions /tmp/setup1.json)"
expect_match "it wrote its own unit" 'write /etc/systemd/system/cachefilesd.service' "$(jq -r '.actions | join(";")' /tmp/setup1.json)"
expect_eq "cachefilesd.service is now cachectl's unit" /etc/systemd/system/cachefilesd.service "$(systemctl show -p FragmentPath --value cachefilesd)"
expect_cmd "systemd-analyze verify accepts it" systemd-analyze verify /etc/systemd/system/cachefilesd.service
expect_match "ordered before remote mounts" 'remote-fs-pre.target' "$(systemctl show -p Before --value cachefilesd)"
expect_eq "cachefilesd.service active" active "$(systemctl is-active cachefilesd)"
expect_eq "one daemon runs" 1 "$(pidof cachefilesd | wc -w)"
expect_eq "it is the unit's main process" "$(pidof cachefilesd)" "$(systemctl show -p MainPID --value cachefilesd)"
[[ $(pidof cachefilesd) != "$old_pid" ]] || _fail "the script's daemon was replaced" "a new pid" "$old_pid"
expect_eq "cachefilesd.service enabled" enabled "$(systemctl is-enabled cachefilesd 2>/dev/null)"
expect_match "the kernel's cache is bound" 'units' "$(cat /proc/fs/fscache/caches)"
pid1=$(pidof cachefilesd)
cachectl cache setup --dir /persist/fscache --tag units --json >/tmp/setup2.json
expect_eq "second cache setup: changed false" false "$(json_get /tmp/setup2.json .changed)"
expect_eq "second cache setup: daemon not restarted" "$pid1" "$(pidof cachefilesd)"
cachectl cache setup --dir /persist/fscache --tag units --brun 12 --json >/tmp/setup3.json
expect_eq "changed threshold: changed" true "$(json_get /tmp/setup3.json .changed)"
pid3=$(pidof cachefilesd)
expect_match "changed threshold: restarted once" '^[0-9]+$' "$pid3"
[[ $pid3 != "$pid1" ]] || _fail "changed threshold restarted the daemon" "a new pid" "$pid3"

# A cachefilesd that fails: another daemon (not systemd's) holds the cache device.
systemctl stop cachefilesd
mkdir -p /persist/other
printf 'dir /persist/other\ntag intruder\n' >/tmp/intruder.conf
cachefilesd -s -f /tmp/intruder.conf -p /run/intruder.pid || die "start the intruding cachefilesd"
cachectl cache setup --dir /persist/fscache --tag units --brun 13 --json >/tmp/setup4.json 2>/tmp/setup4.err
expect_eq "failed bind: exit 1" 1 "$?"
log "failure: $(json_get /tmp/setup4.json .msg)"
expect_match "failed bind: explained with the unit's journal lines" "journal: .*(busy|errno 16)" "$(json_get /tmp/setup4.json .msg)"
kill "$(cat /run/intruder.pid)" 2>/dev/null

# --- fsc enable reloads systemd ----------------------------------------------------------------
echo "127.0.0.1:/ /mnt/models nfs4 ro,vers=4.2,_netdev 0 0" >>/etc/fstab
systemctl daemon-reload
systemctl start mnt-models.mount || die "mount the share"
systemctl start cachefilesd
cachectl fsc enable /mnt/models --json >/tmp/fsc.json
expect_eq "fsc enable exit 0" 0 "$?"
expect_eq "FSC yes" yes "$(nfs_volume_fsc)"
expect_match "the generated mount unit carries fsc" 'Options=.*fsc' "$(systemctl cat mnt-models.mount 2>/dev/null)"
expect_eq "systemd needs no daemon-reload" no "$(systemctl show -p NeedDaemonReload --value mnt-models.mount)"
expect_eq "the mount unit is active" active "$(systemctl is-active mnt-models.mount)"

# --- units verify ----------------------------------------------------------------------------------
cachectl install-units >/dev/null || die "install-units"
# --man=no: their Documentation=man:cachectl(1) comes with the package, not with this
# build's binary (deb-install verifies the packaged unit with the man page installed).
expect_cmd "systemd-analyze verify accepts the apply and serve units" \
  systemd-analyze verify --man=no /etc/systemd/system/cachectl-apply.service /etc/systemd/system/cachectl-serve.service
finish
