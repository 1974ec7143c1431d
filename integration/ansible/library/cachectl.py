#!/usr/bin/python
# -*- coding: utf-8 -*-
# cachectl: apply the desired cache state of a machine (a wrapper around
# `cachectl apply --json`, which does the work and the idempotence).

DOCUMENTATION = r"""
---
module: cachectl
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
supports_check_mode: true
"""

EXAMPLES = r"""
- name: Apply /etc/cachectl/cachectl.yaml
  cachectl:
- name: Warm one list
  cachectl:
    only: [warm:boot]
"""

RETURN = r"""
changed: {description: Something changed (or, in check mode, would change), type: bool}
msg: {description: cachectl's summary, type: str}
actions: {description: Every action in order, with before, after, status and steps, type: list}
diff: {description: File diffs and before/after of changed actions (diff mode), type: list}
"""

import json
import re

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
    command = [binary, "apply", "--file", module.params["config"], "--json"]
    if module.check_mode:
        command.append("--check")
    if module._diff:
        command.append("--diff")
    for item in module.params["only"]:
        command += ["--only", item]

    rc, stdout, stderr = module.run_command(command)
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
