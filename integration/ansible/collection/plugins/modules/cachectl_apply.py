#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: the cachectl authors
# Apache License 2.0 (see https://www.apache.org/licenses/LICENSE-2.0)
# cachectl_apply: apply the desired cache state of a machine (a wrapper around
# `cachectl apply --json`, which does the work and the idempotence).

from __future__ import annotations

DOCUMENTATION = r"""
---
module: cachectl_apply
short_description: Apply a cachectl YAML file (FS-Cache, fsc shares, RAM tiers, models, NVMe-oF, warm lists)
description:
  - Runs C(cachectl apply --file CONFIG --json). In check mode adds C(--check) (nothing changes);
    in diff mode adds C(--diff) and returns the file diffs (cachefilesd.conf, fstab) and the
    before/after of every action that changes.
  - cachectl itself is idempotent; a second run reports C(changed=false) and changes nothing.
options:
  config:
    description: The YAML file.
    type: path
    default: /etc/cachectl/cachectl.yaml
  binary:
    description: The cachectl binary (a name on PATH, or a path).
    type: str
    default: cachectl
  only:
    description: Only these sections or entries (cache, shares, tiers, models, nvmeof, warm, warm:NAME).
    type: list
    elements: str
    default: []
  content:
    description:
      - The YAML to apply instead of O(config)'s content, written to a private temporary
        file first. The C(cachectl.cachectl.cachectl) role passes it in check mode, where
        its template task writes nothing, so the new state is checked against the machine.
    type: str
author:
  - cachectl authors (@cachectl)
attributes:
  check_mode:
    support: full
    description: Adds C(--check) to C(cachectl apply); nothing changes.
  diff_mode:
    support: full
    description: Adds C(--diff); returns the file diffs and each changed action's before/after.
  platform:
    description: Linux hosts with cachectl installed.
    support: full
    platforms: posix
notes:
  - Mount-option secrets in C(/etc/fstab) (C(password=), C(pass=), C(password2=), C(secret=),
    C(username=USER%PASS)) are added to the values Ansible masks in its output, beside
    cachectl's own masking.
requirements:
  - cachectl on the managed host (the C(cachectl.cachectl.cachectl) role installs its Debian package)
"""

EXAMPLES = r"""
- name: Apply /etc/cachectl/cachectl.yaml
  cachectl.cachectl.cachectl_apply:

- name: Warm one list
  cachectl.cachectl.cachectl_apply:
    only: [warm:boot]
"""

RETURN = r"""
msg:
  description: cachectl's summary.
  returned: always
  type: str
actions:
  description: Every action in order, with its id, before, after, status and steps.
  returned: always
  type: list
  elements: dict
rc:
  description: The exit status of C(cachectl apply).
  returned: always
  type: int
cmd:
  description: The command that ran.
  returned: always
  type: list
  elements: str
"""

import json
import os
import re
import tempfile

from ansible.module_utils.basic import AnsibleModule

# cachectl masks mount-option secrets itself (MountSecrets in CachectlMount):
# every diff, action and message it prints has them as ***. As a second layer,
# the values found in fstab are handed to Ansible's own no_log masking, so a
# secret that slipped through would still never reach a log, AWX or CI.
_SECRET_OPTION = re.compile(r'(?:^|[,\s"\'(])(password2?|pass|secret)=("[^"\n]*"|(?:[^,\s"\']|,,)+)', re.IGNORECASE)
_USER_PASSWORD = re.compile(r'(?:^|[,\s"\'(])(?:username|user)=[^,\s"%]*%([^,\s"]+)', re.IGNORECASE)


def fstab_secrets(text):
    """The secret option values in fstab text (password=, pass=, password2=, secret=, username=USER%PASS)."""
    values = set()
    for match in _SECRET_OPTION.finditer(text):
        value = match.group(2)
        values.add(value)
        values.add(value.strip('"'))
        values.update(part for part in value.strip('"').split(",,") if part)
    for match in _USER_PASSWORD.finditer(text):
        values.add(match.group(1))
    return sorted(v for v in values if v)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            config=dict(type="path", default="/etc/cachectl/cachectl.yaml"),
            binary=dict(type="str", default="cachectl"),
            only=dict(type="list", elements="str", default=[]),
            content=dict(type="str"),
        ),
        supports_check_mode=True,
    )
    try:
        with open("/etc/fstab") as fstab:
            module.no_log_values.update(fstab_secrets(fstab.read()))
    except (IOError, OSError):
        pass
    binary = module.params["binary"]
    if "/" not in binary:
        binary = module.get_bin_path(binary, required=True, opt_dirs=["/usr/local/bin", "/usr/local/sbin"])
    config = module.params["config"]
    temp = None
    if module.params["content"] is not None:
        fd, temp = tempfile.mkstemp(prefix="cachectl-", suffix=".yaml", dir=module.tmpdir)
        with os.fdopen(fd, "w") as f:
            f.write(module.params["content"])
        config = temp
    command = [binary, "apply", "--file", config, "--json"]
    if module.check_mode:
        command.append("--check")
    if module._diff:
        command.append("--diff")
    for item in module.params["only"]:
        command += ["--only", item]

    try:
        rc, stdout, stderr = module.run_command(command)
    finally:
        if temp:
            os.unlink(temp)
    try:
        report = json.loads(stdout)
    except ValueError:
        module.fail_json(msg="cachectl apply printed no JSON (exit %d): %s" % (rc, stderr.strip()), rc=rc, stderr=stderr, cmd=command)

    actions = report.get("actions", [])
    diff = []
    for action in actions:
        if action.get("status") not in ("pending", "done", "failed"):
            continue
        if action.get("diff"):
            diff.append({"prepared": action["diff"]})
        diff.append({
            "before_header": action["id"], "after_header": action["id"],
            "before": action.get("before", "") + "\n", "after": action.get("after", "") + "\n",
        })
    result = dict(changed=bool(report.get("changed")), msg=report.get("msg", ""), actions=actions, rc=rc, cmd=command)
    if module._diff:
        result["diff"] = diff
    if report.get("failed") or rc != 0:
        module.fail_json(stderr=stderr, **result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
