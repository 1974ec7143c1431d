#!/bin/bash
# NVMe-oF remote RAM tier, end to end on nvmet-tcp over 127.0.0.1: export a RAM
# namespace (idempotent), a host NQN that is not allowed is refused, the allowed
# one connects, the namespace becomes a tier, a model promoted into it reads back
# byte-identical, disconnect demotes it, unexport leaves configfs, /dev and the
# mount table clean; save/restore round-trips the export in nvmetcli's JSON.
# kernels: 6.1+
# requires: cachectl
# timeout: 300
. "$(dirname "$0")/lib.sh"

export CACHECTL_TIERS_STATE=/tmp/cachectl/tiers.json
NQN=nqn.2014-08.org.cachectl:lend
ALLOWED=nqn.2014-08.org.cachectl:host-allowed
DENIED=nqn.2014-08.org.cachectl:host-denied
CFS=/sys/kernel/config/nvmet
j=/tmp/json
mkdir -p "$j"

mount_configfs


# --- target -------------------------------------------------------------------
export_args=(lend --size 256M --transport tcp --addr 127.0.0.1 --port 4420 --allow-host "$ALLOWED")
cachectl nvmet export "${export_args[@]}" --check --json >"$j/check.json" || die "export --check"
expect_eq "export --check would change" true "$(json_get "$j/check.json" .changed)"
expect_eq "export --check created nothing" "" "$(ls "$CFS/subsystems" 2>/dev/null)"
cachectl nvmet export "${export_args[@]}" --json >"$j/export1.json" || die "export: $(cat "$j/export1.json")"
expect_eq "first export changed" true "$(json_get "$j/export1.json" .changed)"
cachectl nvmet export "${export_args[@]}" --json >"$j/export2.json" || die "second export"
expect_eq "second export changed" false "$(json_get "$j/export2.json" .changed)"
expect_eq "subsystem in configfs" "$NQN" "$(ls "$CFS/subsystems")"
expect_eq "allow_any_host off" 0 "$(cat "$CFS/subsystems/$NQN/attr_allow_any_host")"
expect_eq "allowed hosts" "$ALLOWED" "$(ls "$CFS/subsystems/$NQN/allowed_hosts")"
expect_eq "namespace enabled" 1 "$(cat "$CFS/subsystems/$NQN/namespaces/1/enable")"
expect_eq "buffered_io" 1 "$(cat "$CFS/subsystems/$NQN/namespaces/1/buffered_io")"
expect_eq "port address" "tcp 127.0.0.1 4420" "$(cat "$CFS/ports/1/addr_trtype" "$CFS/ports/1/addr_traddr" "$CFS/ports/1/addr_trsvcid" | xargs)"
expect_eq "port linked" "$NQN" "$(ls "$CFS/ports/1/subsystems")"
cachectl nvmet list --json >"$j/list.json" || die "list"
expect_eq "list: backing" ram "$(json_get "$j/list.json" '.subsystems[0].namespaces[0].backing')"
expect_eq "list: size" $((256 << 20)) "$(json_get "$j/list.json" '.subsystems[0].namespaces[0].size')"
cachectl nvmet list

# --- access control -------------------------------------------------------------
if cachectl nvmet connect --transport tcp --addr 127.0.0.1 --port 4420 --nqn "$NQN" --hostnqn "$DENIED" --json >"$j/denied.json" 2>"$j/denied.err"; then
  _fail "connect from a host that is not allowed" "refused" "connected: $(cat "$j/denied.json")"
else
  _pass "connect from a host that is not allowed is refused ($(head -c 200 "$j/denied.err"))"
fi
expect_eq "no controller after the refusal" "" "$(find /sys/class/nvme-fabrics/ctl -mindepth 1 -maxdepth 1 -regextype posix-extended -regex '.*/nvme[0-9]+' -printf '%f\n' 2>/dev/null)"

# --- host ------------------------------------------------------------------------
cachectl nvmet connect --transport tcp --addr 127.0.0.1 --port 4420 --nqn "$NQN" --hostnqn "$ALLOWED" --json >"$j/connect.json" ||
  die "connect: $(cat "$j/connect.json")"
dev=$(json_get "$j/connect.json" .device)
expect_match "connected block device" '^/dev/nvme[0-9]+n1$' "$dev"
expect_eq "device size" $((256 << 20)) "$(($(cat "/sys/class/block/${dev#/dev/}/size") * 512))"
cachectl nvmet connect --addr 127.0.0.1 --nqn "$NQN" --hostnqn "$ALLOWED" --json >"$j/connect2.json" || die "second connect"
expect_eq "second connect changed" false "$(json_get "$j/connect2.json" .changed)"

mkdir -p /srv/cold /srv/models
make_file /srv/cold/model.gguf 48
cachectl models --models-dir /srv/models --cold-store /srv/cold --json >/dev/null || die "models setup"
cachectl tier create remote --type nvmeof --device "$dev" --json >"$j/tier.json" || die "tier create: $(cat "$j/tier.json")"
expect_eq "tier live" true "$(json_get "$j/tier.json" .tier.live)"
expect_eq "tier mounted from the namespace" "$dev" "$(findmnt -n -o SOURCE /run/cachectl/tiers/remote)"
cachectl tier create remote --type nvmeof --device "$dev" --json >"$j/tier2.json" || die "second tier create"
expect_eq "second tier create changed" false "$(json_get "$j/tier2.json" .changed)"
cachectl promote model.gguf --tier remote --json >"$j/promote.json" || die "promote: $(cat "$j/promote.json")"
expect_eq "promoted into the remote tier" remote "$(json_get "$j/promote.json" .tier)"
expect_match "link points into the tier" '^/run/cachectl/tiers/remote/' "$(readlink -f /srv/models/model.gguf)"
sync
drop_caches
expect_eq "read back byte-identical" "$(sha256sum </srv/cold/model.gguf)" "$(sha256sum </srv/models/model.gguf)"
cachectl nvmet list --json >"$j/list2.json"
expect_ge "target RAM holds the model (bytes)" "$(json_get "$j/list2.json" '.subsystems[0].namespaces[0].resident_bytes')" $((48 << 20))

cachectl nvmet disconnect "$NQN" --json >"$j/disconnect.json" || die "disconnect: $(cat "$j/disconnect.json")"
expect_eq "disconnect demoted the model" model "$(json_get "$j/disconnect.json" '.tiers[0].demoted[0]')"
expect_eq "link back on cold storage" /srv/cold/model.gguf "$(readlink -f /srv/models/model.gguf)"
expect_eq "tier gone from the mount table" "" "$(findmnt -n /run/cachectl/tiers/remote)"
expect_eq "no nvme block devices after disconnect" "" "$(nvme_devices)"
cachectl nvmet disconnect "$NQN" --json >"$j/disconnect2.json" || die "second disconnect"
expect_eq "second disconnect changed" false "$(json_get "$j/disconnect2.json" .changed)"

# --- save / restore (nvmetcli JSON) ------------------------------------------------
cachectl nvmet save /tmp/saved.json --json >/dev/null || die "save"
expect_eq "saved subsystem" "$NQN" "$(json_get /tmp/saved.json '.subsystems[0].nqn')"
expect_eq "saved port address" 127.0.0.1 "$(json_get /tmp/saved.json '.ports[0].addr.traddr')"
cachectl nvmet unexport lend --json >"$j/unexport.json" || die "unexport: $(cat "$j/unexport.json")"
expect_eq "configfs subsystems empty" "" "$(ls "$CFS/subsystems")"
cachectl nvmet restore /tmp/saved.json --json >"$j/restore.json" || die "restore: $(cat "$j/restore.json")"
expect_eq "restore changed" true "$(json_get "$j/restore.json" .changed)"
cachectl nvmet save /tmp/saved2.json >/dev/null || die "second save"
expect_cmd "save after restore is byte-identical" cmp /tmp/saved.json /tmp/saved2.json
cachectl nvmet restore /tmp/saved.json --json >"$j/restore2.json" || die "second restore"
expect_eq "second restore changed" false "$(json_get "$j/restore2.json" .changed)"

# --- teardown ------------------------------------------------------------------------
cachectl nvmet unexport lend --json >"$j/unexport.json" || die "unexport: $(cat "$j/unexport.json")"
expect_eq "unexport changed" true "$(json_get "$j/unexport.json" .changed)"
cachectl nvmet unexport lend --json >"$j/unexport2.json" || die "second unexport"
expect_eq "second unexport changed" false "$(json_get "$j/unexport2.json" .changed)"
expect_nvmet_empty
expect_eq "no nvme block devices" "" "$(nvme_devices)"
expect_eq "backing tmpfs unmounted" "" "$(findmnt -n /run/cachectl/nvmet/lend)"
finish
