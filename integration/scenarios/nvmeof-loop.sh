#!/bin/bash
# NVMe-oF over the loop transport, target and host in one guest: the same
# one-command tier as nvmeof-tcp (connect, mkfs, mount; demote, unmount,
# disconnect) without a network. Debian's 6.1 kernel is built without
# CONFIG_NVME_TARGET_LOOP (its config says "is not set"; no nvme-loop.ko), so
# this runs on 6.12 only, whose package has nvme-loop as a module.
# kernels: 6.12+ (6.1 has no nvme-loop: CONFIG_NVME_TARGET_LOOP is not set in Debian's build)
# requires: cachectl
# timeout: 300
# manual: CI budget (35 s); the tier code it runs is in nvmeof-apply (tcp), which --all runs
. "$(dirname "$0")/lib.sh"

export CACHECTL_TIERS_STATE=/tmp/cachectl/tiers.json
NQN=nqn.2014-08.org.cachectl:lend
HOST=nqn.2014-08.org.cachectl:loop-host
CFS=/sys/kernel/config/nvmet
MODEL_MIB=${MODEL_MIB:-64}
j=/tmp/json
mkdir -p "$j"
mount_configfs

cachectl nvmet export lend --size 1G --transport loop --allow-host "$HOST" --json >"$j/export.json" || die "export: $(cat "$j/export.json")"
expect_eq "loop port" loop "$(cat "$CFS/ports/1/addr_trtype")"
mkdir -p /srv/cold /srv/models
make_file /srv/cold/model.gguf "$MODEL_MIB"
cachectl models --models-dir /srv/models --cold-store /srv/cold --json >/dev/null || die "models setup"

cachectl tier create remote --type nvmeof --nqn "$NQN" --transport loop --hostnqn "$HOST" --json >"$j/tier.json" ||
  die "tier create: $(cat "$j/tier.json")"
expect_eq "tier live" true "$(json_get "$j/tier.json" .tier.live)"
expect_eq "the tier recorded its export" "$NQN loop null null" \
  "$(jq -r '.tier.remote | "\(.nqn) \(.transport) \(.address) \(.port)"' "$j/tier.json")"
expect_eq "controller transport" loop "$(cat /sys/class/nvme-fabrics/ctl/nvme*/transport | sort -u)"
cachectl promote model.gguf --tier remote --json >"$j/promote.json" || die "promote: $(cat "$j/promote.json")"
sync
drop_caches
expect_eq "read over loop: sha256 equal to the cold copy" "$(sha256sum </srv/cold/model.gguf)" "$(sha256sum </srv/models/model.gguf)"
remote_rates=$(read_rates /srv/models/model.gguf); remote_rate=$(best "$remote_rates")
cachectl tier destroy remote --json >"$j/destroy.json" || die "tier destroy: $(cat "$j/destroy.json")"
expect_eq "destroy demoted the model first" model "$(json_get "$j/destroy.json" '.demoted[0]')"
expect_match "destroy: demote, unmount, then disconnect" '^demote,unmount,disconnect(,remove)?$' \
  "$(jq -r '.steps | map(split(" ")[0]) | join(",")' "$j/destroy.json")"
expect_eq "no fabrics controllers" "" "$(find /sys/class/nvme-fabrics/ctl -maxdepth 1 -name 'nvme[0-9]*' -printf '%f ' 2>/dev/null)"

cachectl tier create local --type tmpfs --size 256M --json >/dev/null || die "tmpfs tier"
cachectl promote model.gguf --tier local --json >/dev/null || die "promote to tmpfs"
local_rates=$(read_rates /srv/models/model.gguf); local_rate=$(best "$local_rates")
cachectl tier destroy local --demote --json >/dev/null || die "destroy tmpfs tier"
echo "RATE transport=loop kernel=$(uname -r) model_mib=$MODEL_MIB remote_mibps=$remote_rate tmpfs_mibps=$local_rate rounds_remote=\"$remote_rates\" rounds_tmpfs=\"$local_rates\" ratio=$(awk -v a="$remote_rate" -v b="$local_rate" 'BEGIN { printf "%.3f", (b > 0 ? a / b : 0) }')"

cachectl nvmet unexport lend --json >"$j/unexport.json" || die "unexport: $(cat "$j/unexport.json")"
expect_nvmet_empty
finish
