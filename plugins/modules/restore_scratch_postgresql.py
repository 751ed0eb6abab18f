#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: failsafe.datastores contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
module: restore_scratch_postgresql
short_description: A throwaway PostgreSQL server for restore drills (initdb, start, stop, remove)
version_added: 0.3.0
description:
  - "V(present): a fresh cluster from C(initdb) in O(path), started on O(host) and a free port
    (from O(port) upwards), password authentication over TCP only. V(absent): stopped
    (C(pg_ctl stop -m immediate)) and its directory removed."
  - For the monthly DR drill (runbook 002 "Testing Disaster Recovery", runbook 000 "Restore
    Drill"), where the playbook itself creates and removes the test environment.
  - PostgreSQL refuses to run as root; as root the server runs as O(os_user).
author:
  - Failsafe Datastores maintainers (@failsafe-datastores)
extends_documentation_fragment:
  - failsafe.datastores.attributes
attributes:
  check_mode:
    support: full
    details:
      - Reports whether the server would be created or removed; runs nothing.
  diff_mode:
    support: full
  idempotent:
    description: A running server in O(path) is left as it is; an absent one stays absent.
    support: full
options:
  path:
    description: Directory of the scratch server (data, configuration, log); removed with V(absent).
    type: path
    required: true
  state:
    description: V(present) creates and starts it, V(absent) stops and removes it.
    type: str
    choices: [present, absent]
    default: present
  host:
    description: Address to listen on (a loopback address keeps it private).
    type: str
    default: 127.0.0.1
  port:
    description: First port tried; the next free one is used. 0 tries from 25432.
    type: int
    default: 0
  password:
    description: Password of the superuser C(postgres) (needed with V(present)). Never returned or logged.
    type: str
  os_user:
    description: System user that runs the server when the module runs as root.
    type: str
    default: postgres
  bin_dir:
    description: Directory of C(initdb) and C(pg_ctl); default the newest C(/usr/lib/postgresql/*/bin).
    type: path
'''

EXAMPLES = r'''
- name: Start a scratch server for the drill
  failsafe.datastores.restore_scratch_postgresql:
    path: /var/tmp/failsafe-drill/postgresql
    password: "{{ lookup('ansible.builtin.password', '/dev/null', length=24) }}"
  register: scratch

- name: Remove it
  failsafe.datastores.restore_scratch_postgresql:
    path: /var/tmp/failsafe-drill/postgresql
    state: absent
'''

RETURN = r'''
host:
  description: Address the server listens on.
  returned: always
  type: str
port:
  description: Its port (null when absent).
  returned: always
  type: int
running:
  description: Whether it runs after the task.
  returned: always
  type: bool
version:
  description: C(initdb --version) of the binaries used.
  returned: always
  type: str
timings:
  description: Seconds for C(initdb), C(start), C(stop) and C(total).
  returned: always
  type: dict
diff:
  description: Running before and after.
  returned: when diff mode is on
  type: dict
'''

import os
import pwd
import shutil
import socket

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.failsafe.datastores.plugins.module_utils._backup_pg import (
    PipelineError,
    find_bin,
)
from ansible_collections.failsafe.datastores.plugins.module_utils._timer import Timer

STEPS = (("initdb", None, "initdb"), ("start", "initdb", "start"), ("stop", None, "stop"))


def port_free(host, port):
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def running_port(path):
    """The port of the server running in path (postmaster.pid), or None."""
    try:
        with open(os.path.join(path, "data", "postmaster.pid")) as handle:
            lines = handle.read().splitlines()
        pid, port = int(lines[0]), int(lines[3])
        os.kill(pid, 0)
        return port
    except (OSError, ValueError, IndexError):
        return None


def main():
    module = AnsibleModule(
        argument_spec=dict(
            path=dict(type="path", required=True),
            state=dict(type="str", choices=["present", "absent"], default="present"),
            host=dict(type="str", default="127.0.0.1"),
            port=dict(type="int", default=0),
            password=dict(type="str", no_log=True),
            os_user=dict(type="str", default="postgres"),
            bin_dir=dict(type="path"),
        ),
        required_if=[("state", "present", ["password"])],
        supports_check_mode=True,
    )
    params = module.params
    path = params["path"]
    timer = Timer()
    as_root = os.geteuid() == 0
    try:
        initdb = find_bin("initdb", params["bin_dir"])
        pg_ctl = find_bin("pg_ctl", params["bin_dir"])
    except PipelineError as exc:
        module.fail_json(msg=str(exc))
    if as_root:
        try:
            user = pwd.getpwnam(params["os_user"])
        except KeyError:
            module.fail_json(msg="os_user %s does not exist: PostgreSQL refuses to run as root; "
                                 "name a system user with os_user" % params["os_user"])

    def run(argv, **kwargs):
        if as_root:
            argv = ["runuser", "-u", params["os_user"], "--"] + argv
        code, out, err = module.run_command(argv, cwd="/", **kwargs)
        if code != 0:
            module.fail_json(msg="%s failed (%s): %s" % (os.path.basename(argv[4 if as_root else 0]),
                                                         code, (err or out).strip()[-1000:]))
        return out

    version = run([initdb, "--version"]).strip()
    port = running_port(path)
    result = dict(changed=False, host=params["host"], port=port, running=port is not None,
                  version=version)
    before = dict(running=port is not None, port=port)
    data = os.path.join(path, "data")
    if params["state"] == "absent":
        if port is not None or os.path.exists(path):
            result["changed"] = True
            if not module.check_mode:
                if port is not None:
                    run([pg_ctl, "-D", data, "-m", "immediate", "-w", "-t", "30", "stop"])
                shutil.rmtree(path, ignore_errors=True)
            timer.mark("stop")
            result.update(port=None, running=False)
    elif port is None:
        result["changed"] = True
        if not module.check_mode:
            if os.path.exists(path):
                shutil.rmtree(path)  # a scratch directory left by an interrupted drill
            os.makedirs(path, mode=0o700)
            if as_root:
                os.chown(path, user.pw_uid, user.pw_gid)
            pwfile = os.path.join(path, "pw")
            with os.fdopen(os.open(pwfile, os.O_WRONLY | os.O_CREAT, 0o600), "w") as handle:
                handle.write(params["password"] + "\n")
            if as_root:
                os.chown(pwfile, user.pw_uid, user.pw_gid)
            try:
                run([initdb, "-D", data, "-U", "postgres", "--pwfile=%s" % pwfile,
                     "--auth-local=trust", "--auth-host=scram-sha-256", "--encoding=UTF8",
                     "--locale=C", "--no-sync"])
            finally:
                os.unlink(pwfile)
            timer.mark("initdb")
            port = params["port"] or 25432
            while not port_free(params["host"], port):
                port += 1
                if port > 65000:
                    module.fail_json(msg="no free port on %s" % params["host"])
            options = "-c listen_addresses=%s -c port=%d -c unix_socket_directories=%s " \
                      "-c max_connections=30" % (params["host"], port, path)
            run([pg_ctl, "-D", data, "-l", os.path.join(path, "server.log"), "-o", options,
                 "-w", "-t", "60", "start"])
            timer.mark("start")
            result.update(port=port, running=True)
    result["timings"] = timer.report(STEPS)
    if module._diff:
        result["diff"] = dict(before=before, after=dict(running=result["running"], port=result["port"]))
    module.exit_json(**result)


if __name__ == "__main__":
    main()
