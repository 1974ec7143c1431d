#!/bin/bash
# The Debian package (integration/package) on a guest that has never had cachectl,
# under systemd as PID 1:
#   apt install ./cachectl_*.deb (offline: its dependencies are the host's, already
#   in the guest's root) -> /usr/bin/cachectl runs, `man cachectl` shows the page,
#   bash completes `cachectl ins` to install-units, `systemctl cat` shows the
#   packaged cachectl-apply.service running /usr/bin/cachectl, not enabled;
#   apt remove -> the binary and units are gone, /etc/cachectl/cachectl.yaml stays
#   as it was.
# The package: CACHECTL_DEB, or the newest cachectl_*.deb in the repository's root.
# init: systemd
# timeout: 400
# (About 2 minutes under TCG: 110 s on 6.12, 123 s on 6.1. apt reads no package
# lists in the guest (apt_offline); with bookworm's lists it took 6.5 minutes.)
. "$(dirname "$0")/lib.sh"

repo=$(cd "$(dirname "$0")/../.." && pwd)
# shellcheck disable=SC2012 # the newest by mtime; the names are the build's own
deb=${CACHECTL_DEB:-$(ls -t "$repo"/cachectl_*.deb 2>/dev/null | head -1)}
[[ -n $deb && -f $deb ]] || die "no cachectl_*.deb in $repo (integration/package builds it) and no CACHECTL_DEB"
log "package: $deb"
# The debug binary's directory comes first on PATH in these guests: not here.
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin

expect_eq "a guest without cachectl" "" "$(ls /usr/bin/cachectl /usr/local/bin/cachectl 2>/dev/null)"

# --- install ----------------------------------------------------------------------------
cp "$deb" /tmp/ || die "copy $deb"
# dpkg's man-db trigger rebuilds the index of every man page: minutes under TCG.
# Its switch is this file (the guest's overlay; the host keeps its own).
rm -f /var/lib/man-db/auto-update
apt_offline
log "apt install ./$(basename "$deb")"
stamp() { while IFS= read -r line; do printf '[%4d s] %s\n' "$SECONDS" "$line"; done; }
(cd /tmp && DEBIAN_FRONTEND=noninteractive timeout 400 apt install -y -o Dpkg::Use-Pty=0 "./$(basename "$deb")" 2>&1; echo "rc=$?") |
  stamp >/tmp/apt-install.log
rc=$(sed -n 's/.*\] rc=//p' /tmp/apt-install.log)
log "apt install done"
expect_eq "apt install ./$(basename "$deb"): exit 0" 0 "$rc"
grep -E 'Reading package|Building dep|Unpacking|Setting up|Processing|rc=' /tmp/apt-install.log >&2
expect_eq "dpkg: installed" "install ok installed" "$(dpkg-query -W -f='${Status}' cachectl 2>/dev/null)"
expect_eq "cachectl on PATH is the package's" /usr/bin/cachectl "$(command -v cachectl)"
expect_match "cachectl --version" '^[0-9]+\.[0-9]+\.[0-9]+' "$(cachectl --version 2>&1)"
expect_eq "the packaged binary is stripped" "" "$(file -b /usr/bin/cachectl 2>/dev/null | grep -o 'not stripped')"
# libmount and libcrypto are loaded when first called, not linked: the package names them.
depends=$(dpkg-query -W -f='${Depends}' cachectl 2>/dev/null)
expect_match "Depends names the package of libmount.so.1" '(^|, )libmount1(,|$)' "$depends"
expect_match "Depends names the package of libcrypto.so.3" '(^|, )libssl3(t64)?(,|$)' "$depends"

# --- man page, completion -------------------------------------------------------------------
man_text=$(MANPAGER=cat MANWIDTH=100 man cachectl 2>/dev/null)
expect_match "man cachectl: the page" 'CACHECTL\(1\)' "$man_text"
expect_match "man cachectl: subcommands from the argument parser" 'install-units' "$man_text"
completion=$(bash -c '. /usr/share/bash-completion/completions/cachectl
  COMP_WORDS=(cachectl ins); COMP_CWORD=1; COMP_LINE="cachectl ins"; COMP_POINT=${#COMP_LINE}
  _cachectl cachectl ins cachectl; echo "${COMPREPLY[*]}"' 2>&1)
expect_eq "bash completes 'cachectl ins'" install-units "$completion"
expect_cmd "zsh completion installed" test -s /usr/share/zsh/vendor-completions/_cachectl
expect_cmd "fish completion installed" test -s /usr/share/fish/vendor_completions.d/cachectl.fish
expect_cmd "example YAML installed" test -s /usr/share/doc/cachectl/examples/cachectl.yaml
expect_cmd "JSON Schema installed" test -s /usr/share/cachectl/cachectl.schema.json

# --- units ---------------------------------------------------------------------------------
unit=$(systemctl cat cachectl-apply.service 2>&1)
expect_match "systemctl cat cachectl-apply.service" 'ExecStart=/usr/bin/cachectl apply --file /etc/cachectl/cachectl.yaml' "$unit"
# systemctl show quotes each entry: "man:cachectl(1)".
expect_match "the unit's documentation is the installed man page" '^"?man:cachectl\(1\)"?$' \
  "$(systemctl show -p Documentation --value cachectl-apply.service)"
expect_eq "cachectl-apply.service installed, not enabled" disabled "$(systemctl is-enabled cachectl-apply.service 2>&1)"
expect_match "cachectl-warm@ known to systemd" 'cachectl apply --file' "$(systemctl cat cachectl-warm@boot.service 2>&1)"
expect_cmd "systemd-analyze verify accepts the packaged apply unit" systemd-analyze verify /lib/systemd/system/cachectl-apply.service

# --- remove: the machine's configuration stays -----------------------------------------------
printf 'version: 1\n# the administrator'"'"'s file\n' >/etc/cachectl/cachectl.yaml
before=$(sha256sum /etc/cachectl/cachectl.yaml)
DEBIAN_FRONTEND=noninteractive timeout 400 apt remove -y -o Dpkg::Use-Pty=0 cachectl >/tmp/apt-remove.log 2>&1
rc=$?
log "apt remove done"
expect_eq "apt remove: exit 0" 0 "$rc"
[[ $rc -eq 0 ]] || tail -n 20 /tmp/apt-remove.log
expect_eq "binary removed" "" "$(ls /usr/bin/cachectl 2>/dev/null)"
expect_eq "units removed" "" "$(ls /lib/systemd/system/cachectl-* 2>/dev/null)"
expect_eq "the configuration stays as it was" "$before" "$(sha256sum /etc/cachectl/cachectl.yaml 2>&1)"
finish
