# shellcheck shell=bash
# The body of the two-guest NVMe-oF scenarios (nvmeof-tcp.sh, nvmeof-rdma.sh
# source it with TRANSPORT set): the server lends 1 GiB of RAM to the client
# only, the client makes it a tier in one command and gives it back in one.
# Not a scenario itself (the runner lists *.sh only).

export CACHECTL_TIERS_STATE=/tmp/cachectl/tiers.json
NQN=nqn.2014-08.org.cachectl:lend
CLIENT=nqn.2014-08.org.cachectl:client
THIRD=nqn.2014-08.org.cachectl:third
SERVER_ADDR=10.77.0.1
CFS=/sys/kernel/config/nvmet
MODEL_MIB=${MODEL_MIB:-64}
j=/tmp/json
mkdir -p "$j"

mount_configfs

# Soft-RoCE: an RDMA device on the pair's NIC, so nvme-rdma runs over plain Ethernet.
if [[ $TRANSPORT == rdma ]]; then
  load_modules rdma_rxe ib_core
  rdma link add rxe0 type rxe netdev "$CACHECTL_VM_NIC" || die "rdma link add rxe0 on $CACHECTL_VM_NIC"
  expect_match "rxe0 on $CACHECTL_VM_NIC" "netdev $CACHECTL_VM_NIC" "$(rdma link show rxe0/1)"
fi

if [[ $(role) == server ]]; then
  export_args=(lend --size 1G --transport "$TRANSPORT" --addr "$SERVER_ADDR" --port 4420 --allow-host "$CLIENT")
  cachectl nvmet export "${export_args[@]}" --json >"$j/export.json" || die "export: $(cat "$j/export.json")"
  expect_eq "export changed" true "$(json_get "$j/export.json" .changed)"
  expect_eq "allow_any_host off" 0 "$(cat "$CFS/subsystems/$NQN/attr_allow_any_host")"
  expect_eq "only the client is allowed" "$CLIENT" "$(ls "$CFS/subsystems/$NQN/allowed_hosts")"
  expect_eq "port on the pair link" "$TRANSPORT $SERVER_ADDR 4420" \
    "$(cat "$CFS/ports/1/addr_trtype" "$CFS/ports/1/addr_traddr" "$CFS/ports/1/addr_trsvcid" | xargs)"
  expect_eq "RAM-backed namespace of 1 GiB" "ram $((1 << 30))" \
    "$(cachectl nvmet list --json | jq -r '.subsystems[0].namespaces[0] | "\(.backing) \(.size)"')"
  pair_signal exported
  pair_wait client-done 900 >/dev/null
  cachectl nvmet unexport lend --json >"$j/unexport.json" || die "unexport: $(cat "$j/unexport.json")"
  expect_eq "unexport changed" true "$(json_get "$j/unexport.json" .changed)"
  expect_nvmet_empty
  expect_eq "backing tmpfs unmounted" "" "$(findmnt -n /run/cachectl/nvmet/lend)"
  finish
fi

# --- client -------------------------------------------------------------------
mkdir -p /srv/cold /srv/models
make_file /srv/cold/model.gguf "$MODEL_MIB"
cachectl models --models-dir /srv/models --cold-store /srv/cold --json >/dev/null || die "models setup"
pair_wait exported 600 >/dev/null

if cachectl nvmet connect --transport "$TRANSPORT" --addr "$SERVER_ADDR" --nqn "$NQN" --hostnqn "$THIRD" --json >"$j/third.json" 2>"$j/third.err"; then
  _fail "a third host NQN is refused" "refused" "connected: $(cat "$j/third.json")"
else
  _pass "a third host NQN is refused ($(head -c 160 "$j/third.err"))"
fi
expect_eq "no controller after the refusal" "" "$(find /sys/class/nvme-fabrics/ctl -maxdepth 1 -name 'nvme[0-9]*' -printf '%f ' 2>/dev/null)"

# One command: connect, mkfs, mount, join placement.
tier_args=(remote --type nvmeof --nqn "$NQN" --addr "$SERVER_ADDR" --transport "$TRANSPORT" --hostnqn "$CLIENT")
cachectl tier create "${tier_args[@]}" --json >"$j/tier.json" || die "tier create: $(cat "$j/tier.json")"
expect_eq "tier live" true "$(json_get "$j/tier.json" .tier.live)"
dev=$(json_get "$j/tier.json" .tier.device)
expect_match "tier on a fabrics namespace" '^/dev/nvme[0-9]+n1$' "$dev"
expect_eq "the tier recorded its export" "$NQN $TRANSPORT $SERVER_ADDR 4420" \
  "$(jq -r '.tier.remote | "\(.nqn) \(.transport) \(.address) \(.port)"' "$j/tier.json")"
expect_eq "size is the namespace's" $((1 << 30)) "$(json_get "$j/tier.json" .tier.size)"
ctrl=$(basename "$(dirname "$(readlink -f "/sys/class/block/${dev#/dev/}/device")")")
ctl_dir=$(for c in /sys/class/nvme-fabrics/ctl/nvme*; do [[ $(cat "$c/subsysnqn") == "$NQN" ]] && echo "$c"; done | head -1)
expect_eq "controller transport" "$TRANSPORT" "$(cat "$ctl_dir/transport")"
expect_eq "controller host NQN" "$CLIENT" "$(cat "$ctl_dir/hostnqn")"
expect_eq "controller state" live "$(cat "$ctl_dir/state")"
expect_eq "ctrl_loss_tmo as chosen" 30 "$(cat "$ctl_dir/ctrl_loss_tmo" 2>/dev/null || echo "?")"
expect_eq "fast_io_fail_tmo as chosen" 5 "$(cat "$ctl_dir/fast_io_fail_tmo" 2>/dev/null || echo "?")"
log "controller ${ctl_dir##*/} ($ctrl): $(cat "$ctl_dir/address")"
expect_eq "tier mounted from the namespace" "$dev" "$(findmnt -n -o SOURCE /run/cachectl/tiers/remote)"
cachectl tier create "${tier_args[@]}" --json >"$j/tier2.json" || die "second tier create: $(cat "$j/tier2.json")"
expect_eq "second tier create changed" false "$(json_get "$j/tier2.json" .changed)"

cachectl promote model.gguf --tier remote --json >"$j/promote.json" || die "promote: $(cat "$j/promote.json")"
expect_eq "promoted into the remote tier" remote "$(json_get "$j/promote.json" .tier)"
expect_match "link points into the tier" '^/run/cachectl/tiers/remote/' "$(readlink -f /srv/models/model.gguf)"
sync
drop_caches
expect_eq "read over $TRANSPORT: sha256 equal to the cold copy" "$(sha256sum </srv/cold/model.gguf)" "$(sha256sum </srv/models/model.gguf)"
remote_rates=$(read_rates /srv/models/model.gguf); remote_rate=$(best "$remote_rates")
log "read $MODEL_MIB MiB over $TRANSPORT: $remote_rate MiB/s"

# One command back: demote, unmount, disconnect.
cachectl tier destroy remote --json >"$j/destroy.json" || die "tier destroy: $(cat "$j/destroy.json")"
expect_eq "destroy demoted the model first" model "$(json_get "$j/destroy.json" '.demoted[0]')"
expect_match "destroy: demote, unmount, then disconnect" '^demote,unmount,disconnect(,remove)?$' \
  "$(jq -r '.steps | map(split(" ")[0]) | join(",")' "$j/destroy.json")"
expect_eq "link back on cold storage" /srv/cold/model.gguf "$(readlink -f /srv/models/model.gguf)"
expect_eq "tier gone from the mount table" "" "$(findmnt -n /run/cachectl/tiers/remote)"
expect_eq "no nvme block devices" "" "$(nvme_devices)"
expect_eq "no fabrics controllers" "" "$(find /sys/class/nvme-fabrics/ctl -maxdepth 1 -name 'nvme[0-9]*' -printf '%f ' 2>/dev/null)"
cachectl tier destroy remote --json >"$j/destroy2.json" || die "second destroy"
expect_eq "second destroy changed" false "$(json_get "$j/destroy2.json" .changed)"

# The same model from a local tmpfs tier, on the same emulated CPU.
cachectl tier create local --type tmpfs --size 256M --json >/dev/null || die "tmpfs tier"
cachectl promote model.gguf --tier local --json >/dev/null || die "promote to tmpfs"
local_rates=$(read_rates /srv/models/model.gguf); local_rate=$(best "$local_rates")
cachectl tier destroy local --demote --json >/dev/null || die "destroy tmpfs tier"
log "read $MODEL_MIB MiB from tmpfs: $local_rate MiB/s"
echo "RATE transport=$TRANSPORT kernel=$(uname -r) model_mib=$MODEL_MIB remote_mibps=$remote_rate tmpfs_mibps=$local_rate rounds_remote=\"$remote_rates\" rounds_tmpfs=\"$local_rates\" ratio=$(awk -v a="$remote_rate" -v b="$local_rate" 'BEGIN { printf "%.3f", (b > 0 ? a / b : 0) }')"
pair_signal client-done
finish
