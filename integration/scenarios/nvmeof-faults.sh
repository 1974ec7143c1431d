#!/bin/bash
# A remote tier whose server loses power mid-read (nvme-tcp between two
# guests). The client's reader gets an error within a bounded time rather than
# hanging (the tier connects with reconnect_delay=2, fast_io_fail_tmo=5,
# ctrl_loss_tmo=30); `tier health` moves the model back to cold storage and
# `status` says the tier is gone; after ctrl_loss_tmo the controller is
# removed. The server boots again and exports anew; `tier health --restore`
# reconnects and the model can be promoted and read there again.
# pair: server client
# server-boots: 2
# kernels: 6.1+
# requires: cachectl
# timeout: 900
# manual: two TCG guests and a power cycle, several minutes; last measured run in integration/vm/README.md
. "$(dirname "$0")/lib.sh"

export CACHECTL_TIERS_STATE=/tmp/cachectl/tiers.json
NQN=nqn.2014-08.org.cachectl:lend
CLIENT=nqn.2014-08.org.cachectl:client
SERVER_ADDR=10.77.0.1
CFS=/sys/kernel/config/nvmet
MODEL_MIB=32
BOUND=60  # seconds a reader may wait for its error: keep-alive (5 s) + fast_io_fail_tmo (5 s), with room for TCG
j=/tmp/json
mkdir -p "$j"
mount_configfs

export_ram() {
  cachectl nvmet export lend --size 1G --transport tcp --addr "$SERVER_ADDR" --port 4420 --allow-host "$CLIENT" --json \
    >"$j/export.json" || die "export: $(cat "$j/export.json")"
}

if [[ $(role) == server ]]; then
  if [[ $(boot_number) == 1 ]]; then
    export_ram
    pair_signal exported
    pair_wait reading 600 >/dev/null
    log "powering off mid-read"
    echo 1 >/proc/sys/kernel/sysrq
    echo o >/proc/sysrq-trigger  # no sync, no clean shutdown: the power is gone
    sleep 30
    die "still running after the power-off"
  fi
  # Boot 2: the RAM it lent is gone; lend it again once the client has given up the old one.
  pair_wait lost 600 >/dev/null
  export_ram
  pair_signal exported-again
  pair_wait client-done 600 >/dev/null
  cachectl nvmet unexport lend --json >/dev/null || die "unexport"
  expect_eq "configfs subsystems empty" "" "$(ls "$CFS/subsystems")"
  expect_eq "configfs ports empty" "" "$(ls "$CFS/ports")"
  finish
fi

# --- client -------------------------------------------------------------------
mkdir -p /srv/cold /srv/models
make_file /srv/cold/model.gguf "$MODEL_MIB"
cachectl models --models-dir /srv/models --cold-store /srv/cold --json >/dev/null || die "models setup"
pair_wait exported 600 >/dev/null
tier_args=(remote --type nvmeof --nqn "$NQN" --addr "$SERVER_ADDR" --transport tcp --hostnqn "$CLIENT")
cachectl tier create "${tier_args[@]}" --json >"$j/tier.json" || die "tier create: $(cat "$j/tier.json")"
dev=$(json_get "$j/tier.json" .tier.device)
cachectl promote model.gguf --tier remote --json >/dev/null || die "promote"
sync
drop_caches

# A slow reader: 1 MiB at a time with O_DIRECT (every chunk crosses the link), a pause between.
(
  for ((i = 0; i < MODEL_MIB; i++)); do
    dd if=/srv/models/model.gguf of=/dev/null bs=1M skip="$i" count=1 iflag=direct status=none 2>/tmp/reader.err ||
      { echo "error at MiB $i: $(cat /tmp/reader.err)" >/tmp/reader.out; exit 1; }
    [[ $i -eq 2 ]] && : >/tmp/reader.started
    sleep 0.5
  done
  echo "read it all" >/tmp/reader.out
) &
reader=$!
for _ in $(seq 100); do [[ -f /tmp/reader.started ]] && break; sleep 0.2; done
[[ -f /tmp/reader.started ]] || die "the reader did not start"
t_off=${EPOCHREALTIME/./}
pair_signal reading
rc=0
timeout $((BOUND + 30)) tail --pid="$reader" -f /dev/null || rc=$?
waited=$(((${EPOCHREALTIME/./} - t_off) / 1000))
wait "$reader"
reader_rc=$?
log "reader: exit $reader_rc after ${waited} ms: $(cat /tmp/reader.out 2>/dev/null)"
expect_eq "the reader was not left hanging" 0 "$rc"
expect_eq "the reader got an error" 1 "$reader_rc"
expect_match "its error is an I/O error" 'error at MiB [0-9]+: .*(Input/output error|No such device)' "$(cat /tmp/reader.out 2>/dev/null)"
expect_ge "it came within ${BOUND}s (ms)" $((BOUND * 1000)) "$waited"
echo "FAULT reader_error_ms=$waited kernel=$(uname -r)"

cachectl tier health --json >"$j/health.json"
expect_eq "tier health fails while the tier is gone" false "$(json_get "$j/health.json" .healthy)"
expect_eq "tier health demoted the model" model "$(json_get "$j/health.json" '.demoted[0]')"
expect_eq "link back on cold storage" /srv/cold/model.gguf "$(readlink -f /srv/models/model.gguf)"
expect_eq "the model reads from cold storage" "$(sha256sum </srv/cold/model.gguf)" "$(sha256sum </srv/models/model.gguf)"
cachectl status --json >"$j/status.json"
expect_eq "status: the tier is gone" false "$(jq -r '.tiers[] | select(.name == "remote") | .live' "$j/status.json")"
expect_match "tier list: GONE" '^remote .* GONE ' "$(cachectl tier list | grep '^remote ')"

# ctrl_loss_tmo (30 s) later the controller and its namespace are removed.
t0=$SECONDS
while [[ -e $dev ]] && ((SECONDS - t0 < 90)); do sleep 1; done
expect_eq "the namespace is removed after ctrl_loss_tmo" "" "$(ls "$dev" 2>/dev/null)"
log "controller removed $((SECONDS - t0)) s after the health check"
pair_signal lost
pair_wait exported-again 600 >/dev/null

cachectl tier health --restore --json >"$j/restore.json" || die "health --restore: $(cat "$j/restore.json")"
expect_eq "restore recreated the tier" true "$(json_get "$j/restore.json" '.tiers[0].recreated')"
expect_eq "healthy again" true "$(json_get "$j/restore.json" .healthy)"
newdev=$(cachectl tier list --json | jq -r '.tiers[] | select(.name == "remote") | .device')
expect_eq "tier mounted from the new connection" "$newdev" "$(findmnt -n -o SOURCE /run/cachectl/tiers/remote)"
cachectl promote model.gguf --tier remote --json >/dev/null || die "promote after restore"
sync
drop_caches
expect_eq "read after restore: sha256 equal to the cold copy" "$(sha256sum </srv/cold/model.gguf)" "$(sha256sum </srv/models/model.gguf)"
cachectl tier destroy remote --json >"$j/destroy.json" || die "destroy: $(cat "$j/destroy.json")"
expect_eq "no fabrics controllers at the end" "" "$(find /sys/class/nvme-fabrics/ctl -maxdepth 1 -name 'nvme[0-9]*' -printf '%f ' 2>/dev/null)"
pair_signal client-done
finish
