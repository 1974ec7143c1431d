#!/bin/bash
# The Ansible role and module (integration/ansible) against localhost in the
# guest, with ansible-core from PyPI (integration/ansible/install-ansible puts
# it in a venv on the host; the guest sees the host's root):
#   -> first run: installs the binary, templates /etc/cachectl/cachectl.yaml,
#      applies it (cache, NFS share with fsc, zram tier, pinned model, warm)
#   -> second run: changed=0
#   -> --check --diff: changed=0 and nothing touched; with a changed variable,
#      --check reports the change (and its before/after) but does not make it
#   -> the module on a broken file (unknown key) fails with line:column.
# requires: cachectl
# timeout: 1800
# (Ansible is slow under TCG: a playbook run of this role takes ~4 minutes in the
# guest against ~10 s natively, so this scenario runs four plays and one ad-hoc call.)
. "$(dirname "$0")/lib.sh"

repo=$(cd "$(dirname "$0")/../.." && pwd)
venv=${CACHECTL_ANSIBLE_VENV:-/var/cache/cachectl-vm/ansible-venv}
[[ -x $venv/bin/ansible-playbook ]] || die "no ansible-core in $venv: run integration/ansible/install-ansible on the host first"
[[ -n ${CACHECTL:-} && -x $CACHECTL ]] || die "CACHECTL (the binary to install) is not set"

load_modules zram
make_zram_ext4 /var/cache/fscache 256M >/dev/null
make_export_dir /srv/export 128M
make_file /srv/export/tiny.gguf 4
start_nfs_server /srv/export
echo '127.0.0.1:/ /mnt/models nfs4 ro,vers=4.2 0 0' >/etc/fstab
mount_nfs /mnt/models ro
rm -f /etc/cachefilesd.conf /usr/local/bin/cachectl

work=/tmp/ansible
mkdir -p "$work"
cat >"$work/inventory" <<'EOF'
localhost ansible_connection=local ansible_python_interpreter=/usr/bin/python3
EOF
# Extra vars win over the example playbook's role vars.
write_vars() { # READAHEAD INSTALL_PACKAGES
  cat >"$work/vars.yml" <<EOF
ansible_become: false
cachectl_binary_src: $CACHECTL
cachectl_install_packages: $2
cachectl_state:
  version: 1
  cache:
    dir: /var/cache/fscache
    tag: models
  shares:
    - mountpoint: /mnt/models
      readahead: $1
  tiers:
    - name: squeezed
      type: zram
      size: 64M
  models:
    dir: /srv/models
    cold_store: /mnt/models
    pinned:
      tiny.gguf: squeezed
  warm:
    - name: boot
      models: [tiny.gguf]
EOF
}
export ANSIBLE_CONFIG=$repo/integration/ansible/ansible.cfg ANSIBLE_LOCAL_TEMP=/tmp/ansible-tmp ANSIBLE_NOCOLOR=1 \
  ANSIBLE_HOME=/tmp/ansible-home ANSIBLE_PYTHON_INTERPRETER=/usr/bin/python3
play() { # LOG ARGS...
  local log=$1; shift
  (cd "$repo/integration/ansible" && "$venv/bin/ansible-playbook" -i "$work/inventory" playbook.yml -e "@$work/vars.yml" "$@") >"$log" 2>&1
  local rc=$?
  tail -n 4 "$log" | sed "s|^|  $(basename "$log"): |" >&2
  return $rc
}
recap() { grep -oE "$2=[0-9]+" "$1" | tail -1 | cut -d= -f2; }
snapshot() {
  stat -c '%n %i %Y %Z' /usr/local/bin/cachectl /etc/cachectl/cachectl.yaml /etc/fstab /etc/cachefilesd.conf \
    /var/lib/cachectl/tiers.json /srv/models/tiny.gguf
  cat "/sys/class/bdi/$(mountpoint -d /mnt/models)/read_ahead_kb"
  findmnt -n -o TARGET,SOURCE /run/cachectl/tiers/squeezed
}

# --- first run -------------------------------------------------------------------------
# The apt task is the slowest under TCG (python-apt reads the whole package
# cache): it runs in the first play, where it must find the packages there.
write_vars 16M true
log "ansible-playbook, first run"
play "$work/run1.log"
expect_eq "first run: exit 0" 0 "$?"
expect_eq "first run: failed=0" 0 "$(recap "$work/run1.log" failed)"
expect_gt "first run: changed tasks" "$(recap "$work/run1.log" changed)" 2
expect_cmd "binary installed" cmp "$CACHECTL" /usr/local/bin/cachectl
expect_match "state templated" 'cold_store: /mnt/models' "$(cat /etc/cachectl/cachectl.yaml)"
expect_eq "FS-Cache on for the share" yes "$(nfs_volume_fsc)"
expect_eq "pinned model in the zram tier" /run/cachectl/tiers/squeezed/tiny.gguf "$(readlink /srv/models/tiny.gguf)"
expect_match "cachefilesd runs" '[0-9]' "$(pidof cachefilesd)"

# --- second run: changed=0 -----------------------------------------------------------------
snapshot >/tmp/snap1
write_vars 16M false
log "ansible-playbook, second run"
play "$work/run2.log"
expect_eq "second run: exit 0" 0 "$?"
expect_eq "second run: changed=0" 0 "$(recap "$work/run2.log" changed)"
expect_eq "second run touched nothing" "$(cat /tmp/snap1)" "$(snapshot)"

# --- check mode ---------------------------------------------------------------------------------
log "ansible-playbook --check --diff"
play "$work/check1.log" --check --diff
expect_eq "--check: exit 0" 0 "$?"
expect_eq "--check: changed=0" 0 "$(recap "$work/check1.log" changed)"
expect_eq "--check touched nothing" "$(cat /tmp/snap1)" "$(snapshot)"

write_vars 32M false
log "ansible-playbook --check --diff with readahead 32M"
play "$work/check2.log" --check --diff
expect_eq "--check (new readahead): exit 0" 0 "$?"
expect_ge "--check (new readahead): reports changes" "$(recap "$work/check2.log" changed)" 1
expect_match "--check --diff shows the share's before/after" 'readahead 32768 KiB' "$(cat "$work/check2.log")"
expect_eq "--check changed nothing (readahead, yaml, mounts)" "$(cat /tmp/snap1)" "$(snapshot)"

# --- a broken file: the module fails with the place -------------------------------------------------
sed 's/^\( *\)readahead: 16M/\1readahead: 16M\n\1fcs: true/' /etc/cachectl/cachectl.yaml >/tmp/broken.yaml
log "ansible -m cachectl on a file with an unknown key"
(cd "$repo/integration/ansible" && "$venv/bin/ansible" localhost -i "$work/inventory" -m cachectl -a "config=/tmp/broken.yaml binary=/usr/local/bin/cachectl") >"$work/broken.log" 2>&1
expect_eq "unknown key: the module fails" 2 "$?"
expect_match "unknown key: the module says where" '/tmp/broken.yaml:[0-9]+:[0-9]+: shares\[0\]\.fcs: unknown key' "$(cat "$work/broken.log")"
finish
