#!/bin/bash
# The Ansible collection cachectl.cachectl against localhost in the guest, with
# ansible-core from PyPI (integration/ansible/install-ansible puts it in a venv on
# the host; the guest sees the host's root). The collection tarball
# (integration/ansible/build-collection) is installed with ansible-galaxy, and its
# role installs the Debian package (integration/package):
#   -> first run: installs the .deb (from where it is: cachectl_deb_on_host), templates /etc/cachectl/cachectl.yaml,
#      enables cachectl-apply.service, applies it (cache, NFS share with fsc, zram
#      tier, pinned model, warm)
#   -> second run: changed=0, nothing touched
#   -> --check --diff with a changed variable: reports the change (and its
#      before/after) and changes nothing
#   -> the module on a broken file (unknown key) fails with line:column.
# The tarball and package: CACHECTL_COLLECTION / CACHECTL_DEB, or the newest in the
# repository's root.
# timeout: 1800
# (Ansible is slow under TCG: every ansible-playbook start and every task's Python
# process cost seconds. So: three plays, five tasks a play, no facts; the broken
# file goes to the module directly, as `python module.py args.json`, without an
# ansible start.)
. "$(dirname "$0")/lib.sh"

repo=$(cd "$(dirname "$0")/../.." && pwd)
venv=${CACHECTL_ANSIBLE_VENV:-/var/cache/cachectl-vm/ansible-venv}
[[ -x $venv/bin/ansible-playbook ]] || die "no ansible-core in $venv: run integration/ansible/install-ansible on the host first"
# shellcheck disable=SC2012 # the newest by mtime; the names are the build's own
deb=${CACHECTL_DEB:-$(ls -t "$repo"/cachectl_*.deb 2>/dev/null | head -1)}
# shellcheck disable=SC2012 # as above
collection=${CACHECTL_COLLECTION:-$(ls -t "$repo"/cachectl-cachectl-*.tar.gz 2>/dev/null | head -1)}
[[ -n $deb && -f $deb ]] || die "no cachectl_*.deb in $repo (integration/package) and no CACHECTL_DEB"
[[ -n $collection && -f $collection ]] || die "no cachectl-cachectl-*.tar.gz in $repo (integration/ansible/build-collection) and no CACHECTL_COLLECTION"
# The debug binary's directory comes first on PATH in the guest: not here.
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin

load_modules zram
make_zram_ext4 /var/cache/fscache 256M >/dev/null
make_export_dir /srv/export 128M
make_file /srv/export/tiny.gguf 4
start_nfs_server /srv/export
echo '127.0.0.1:/ /mnt/models nfs4 ro,vers=4.2 0 0' >/etc/fstab
mount_nfs /mnt/models ro
rm -f /etc/cachefilesd.conf
expect_eq "a guest without cachectl" "" "$(ls /usr/bin/cachectl /usr/local/bin/cachectl 2>/dev/null)"
# dpkg's man-db trigger rebuilds the index of every man page: minutes under TCG.
# Its switch is this file (the guest's overlay; the host keeps its own).
rm -f /var/lib/man-db/auto-update
apt_offline

work=/tmp/ansible
mkdir -p "$work"
cat >"$work/inventory" <<'EOF'
localhost ansible_connection=local ansible_python_interpreter=/usr/bin/python3
EOF
# Extra vars win over the example playbook's role vars.
write_vars() { # READAHEAD
  cat >"$work/vars.yml" <<EOF
ansible_become: false
cachectl_deb: $deb
cachectl_deb_on_host: true  # the guest sees the host's root: no copy (81 s under TCG)
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
  ANSIBLE_HOME=/tmp/ansible-home ANSIBLE_PYTHON_INTERPRETER=/usr/bin/python3 \
  ANSIBLE_COLLECTIONS_PATH=/tmp/ansible-collections ANSIBLE_LOG_PATH=$work/ansible.log
play() { # LOG ARGS...
  local log=$1; shift
  local t0=$SECONDS
  (cd "$repo/integration/ansible" && "$venv/bin/ansible-playbook" -i "$work/inventory" playbook.yml -e "@$work/vars.yml" "$@") >"$log" 2>&1
  local rc=$?
  log "$(basename "$log"): $((SECONDS - t0)) s"
  tail -n 4 "$log" | sed "s|^|  $(basename "$log"): |" >&2
  return $rc
}
# Where the time goes: every task's start, from ansible's own log.
task_times() { grep -E 'TASK \[|PLAY RECAP' "$work/ansible.log" | sed -E 's/^([0-9-]+ )?([0-9:,]+) .*\| /\2 /' | tail -n "$1" >&2; }
recap() { grep -oE "$2=[0-9]+" "$1" | tail -1 | cut -d= -f2; }
snapshot() {
  stat -c '%n %i %Y %Z' /usr/bin/cachectl /etc/cachectl/cachectl.yaml /etc/fstab /etc/cachefilesd.conf \
    /var/lib/cachectl/tiers.json /srv/models/tiny.gguf
  cat "/sys/class/bdi/$(mountpoint -d /mnt/models)/read_ahead_kb"
  findmnt -n -o TARGET,SOURCE /run/cachectl/tiers/squeezed
}

# --- the collection, from its tarball ------------------------------------------------------
t0=$SECONDS
"$venv/bin/ansible-galaxy" collection install -p /tmp/ansible-collections "$collection" >"$work/galaxy.log" 2>&1
expect_eq "ansible-galaxy collection install $(basename "$collection")" 0 "$?"
log "ansible-galaxy: $((SECONDS - t0)) s"
expect_cmd "the role from the collection" test -f /tmp/ansible-collections/ansible_collections/cachectl/cachectl/roles/cachectl/meta/argument_specs.yml

# --- first run -------------------------------------------------------------------------
write_vars 16M
log "ansible-playbook, first run"
play "$work/run1.log"
expect_eq "first run: exit 0" 0 "$?"
expect_eq "first run: failed=0" 0 "$(recap "$work/run1.log" failed)"
expect_gt "first run: changed tasks" "$(recap "$work/run1.log" changed)" 2
task_times 12
expect_eq "the package installed" "install ok installed" "$(dpkg-query -W -f='${Status}' cachectl 2>/dev/null)"
expect_cmd "cachectl-apply.service enabled" test -L /etc/systemd/system/multi-user.target.wants/cachectl-apply.service
expect_match "state templated" 'cold_store: /mnt/models' "$(cat /etc/cachectl/cachectl.yaml)"
expect_eq "FS-Cache on for the share" yes "$(nfs_volume_fsc)"
expect_eq "pinned model in the zram tier" /run/cachectl/tiers/squeezed/tiny.gguf "$(readlink /srv/models/tiny.gguf)"
expect_match "cachefilesd runs" '[0-9]' "$(pidof cachefilesd)"

# --- second run: changed=0 -----------------------------------------------------------------
snapshot >/tmp/snap1
log "ansible-playbook, second run"
play "$work/run2.log"
expect_eq "second run: exit 0" 0 "$?"
expect_eq "second run: changed=0" 0 "$(recap "$work/run2.log" changed)"
expect_eq "second run touched nothing" "$(cat /tmp/snap1)" "$(snapshot)"

# --- check mode, with a changed variable ------------------------------------------------------
write_vars 32M
log "ansible-playbook --check --diff with readahead 32M"
play "$work/check2.log" --check --diff
expect_eq "--check (new readahead): exit 0" 0 "$?"
expect_ge "--check (new readahead): reports changes" "$(recap "$work/check2.log" changed)" 1
expect_match "--check --diff shows the share's before/after" 'readahead 32768 KiB' "$(cat "$work/check2.log")"
expect_eq "--check changed nothing (readahead, yaml, mounts)" "$(cat /tmp/snap1)" "$(snapshot)"
expect_match "--check: the YAML file still says 16M" 'readahead: 16M' "$(cat /etc/cachectl/cachectl.yaml)"

# --- a broken file: the module fails with the place -------------------------------------------------
sed 's/^\( *\)readahead: 16M/\1readahead: 16M\n\1fcs: true/' /etc/cachectl/cachectl.yaml >/tmp/broken.yaml
log "the module (python cachectl_apply.py ARGS) on a file with an unknown key"
module=/tmp/ansible-collections/ansible_collections/cachectl/cachectl/plugins/modules/cachectl_apply.py
printf '{"ANSIBLE_MODULE_ARGS": {"config": "/tmp/broken.yaml", "binary": "/usr/bin/cachectl"}}' >"$work/broken-args.json"
"$venv/bin/python" "$module" "$work/broken-args.json" >"$work/broken.log" 2>&1
expect_eq "unknown key: the module fails" 1 "$?"
expect_match "unknown key: the module fails" '"failed": true' "$(cat "$work/broken.log")"
expect_match "unknown key: the module says where" '/tmp/broken.yaml:[0-9]+:[0-9]+: shares\[0\]\.fcs: unknown key' "$(cat "$work/broken.log")"
finish
