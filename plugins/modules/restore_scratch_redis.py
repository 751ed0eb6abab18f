#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: failsafe.datastores contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
module: restore_scratch_redis
short_description: A throwaway Redis server for restore drills (start, stop, remove)
version_added: 0.3.0
description:
  - "V(present): a fresh C(redis-server) with its configuration, RDB and log in O(path),
    listening on O(host) and a free port from O(port), password from O(password) (in a 0600
    configuration file, never on the command line), no snapshots and no AOF of its own.
    V(absent): stopped (C(SHUTDOWN NOSAVE), then the pid) and its directory removed."
  - RV(start_command) starts it again, for M(failsafe.datastores.restore_redis), which stops the
    server, puts the restored RDB in place and starts it.
author:
  - Failsafe Datastores maintainers (@failsafe-datastores)
extends_documentation_fragment:
  - failsafe.datastores.attributes
attributes:
  check_mode:
    support: full
    details:
      - Reports whether the server would be started or removed; runs nothing.
  diff_mode:
    support: full
  idempotent:
    description: A running server in O(path) is left as it is; an absent one stays absent.
    support: full
options:
  path:
    description: Directory of the scratch server; removed with V(absent).
    type: path
    required: true
  state:
    description: V(present) starts it, V(absent) stops and removes it.
    type: str
    choices: [present, absent]
    default: present
  host:
    description: Address to listen on.
    type: str
    default: 127.0.0.1
  port:
    description: First port tried; 0 tries from 16479.
    type: int
    default: 0
  password:
    description: Password of the default user (needed with V(present)). Never returned or logged.
    type: str
  os_user:
    description: System user that runs the server when the module runs as root.
    type: str
    default: redis
'''

EXAMPLES = r'''
- name: Start a scratch Redis for the drill
  failsafe.datastores.restore_scratch_redis:
    path: /var/tmp/failsafe-drill/redis
    password: "{{ lookup('ansible.builtin.password', '/dev/null', length=24) }}"
  register: scratch_redis
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
data_dir:
  description: Its directory (C(dir)); its RDB is C(dump.rdb) there.
  returned: always
  type: str
start_command:
  description: The command that starts it (as O(os_user)).
  returned: always
  type: list
  elements: str
timings:
  description: Seconds for C(start), C(stop) and C(total).
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
import signal
import socket
import time

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.failsafe.datastores.plugins.module_utils._backup_redis import (
    RedisError,
    Resp,
)
from ansible_collections.failsafe.datastores.plugins.module_utils._timer import Timer

STEPS = (("start", None, "start"), ("stop", None, "stop"))


def running(path):
    """(pid, port) of the server running in path, or (None, None)."""
    try:
        with open(os.path.join(path, "redis.pid")) as handle:
            pid = int(handle.read().split()[0])
        with open(os.path.join(path, "redis.conf")) as handle:
            port = int([line.split()[1] for line in handle if line.startswith("port ")][0])
        os.kill(pid, 0)
        with open("/proc/%d/stat" % pid) as handle:
            if handle.read().rsplit(")", 1)[1].split()[0] == "Z":
                return None, None
        return pid, port
    except (OSError, ValueError, IndexError):
        return None, None


def free_port(host, port):
    while port < 65000:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind((host, port))
                return port
            except OSError:
                port += 1
    raise RedisError("no free port on %s" % host)


def start_argv(path, os_user):
    argv = ["redis-server", os.path.join(path, "redis.conf")]
    if os.geteuid() == 0:
        argv = ["runuser", "-u", os_user, "--"] + argv
    return argv


def main():
    module = AnsibleModule(
        argument_spec=dict(
            path=dict(type="path", required=True),
            state=dict(type="str", choices=["present", "absent"], default="present"),
            host=dict(type="str", default="127.0.0.1"),
            port=dict(type="int", default=0),
            password=dict(type="str", no_log=True),
            os_user=dict(type="str", default="redis"),
        ),
        required_if=[("state", "present", ["password"])],
        supports_check_mode=True,
    )
    params = module.params
    path = params["path"]
    timer = Timer()
    pid, port = running(path)
    before = dict(running=pid is not None, port=port)
    result = dict(changed=False, host=params["host"], port=port, running=pid is not None,
                  data_dir=path, start_command=start_argv(path, params["os_user"]))
    try:
        if params["state"] == "absent":
            if pid is not None or os.path.exists(path):
                result["changed"] = True
                if not module.check_mode:
                    if pid is not None:
                        stop(pid, params, port)
                    shutil.rmtree(path, ignore_errors=True)
                result.update(port=None, running=False)
            timer.mark("stop")
        elif pid is None:
            result["changed"] = True
            if not module.check_mode:
                start(module, params, result)
            timer.mark("start")
    except (RedisError, OSError) as exc:
        result["timings"] = timer.report(STEPS)
        module.fail_json(msg=str(exc), **result)
    result["timings"] = timer.report(STEPS)
    if module._diff:
        result["diff"] = dict(before=before, after=dict(running=result["running"],
                                                        port=result["port"]))
    module.exit_json(**result)


def stop(pid, params, port):
    try:
        with Resp(dict(host=params["host"], port=port, password=params["password"],
                       connect_timeout=2)) as conn:
            conn.send("SHUTDOWN", "NOSAVE")
    except (RedisError, OSError):
        pass
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except OSError:
            return
        time.sleep(0.05)
    os.kill(pid, signal.SIGKILL)


def start(module, params, result):
    path = params["path"]
    if not os.path.isdir(path):
        os.makedirs(path, 0o700)
    port = free_port(params["host"], params["port"] or 16479)
    conf = os.path.join(path, "redis.conf")
    with os.fdopen(os.open(conf, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as handle:
        handle.write("# Scratch server of failsafe.datastores.restore_scratch_redis\n"
                     "bind %s\nport %d\ndir %s\ndbfilename dump.rdb\nsave \"\"\n"
                     "appendonly no\ndaemonize yes\npidfile %s\nlogfile %s\nrequirepass \"%s\"\n"
                     % (params["host"], port, path, os.path.join(path, "redis.pid"),
                        os.path.join(path, "redis.log"),
                        params["password"].replace("\\", "\\\\").replace('"', '\\"')))
    if os.geteuid() == 0:
        try:
            user = pwd.getpwnam(params["os_user"])
        except KeyError:
            raise RedisError("os_user %s does not exist" % params["os_user"])
        for name in [path] + [os.path.join(path, n) for n in os.listdir(path)]:
            os.chown(name, user.pw_uid, user.pw_gid)
    code, out, err = module.run_command(start_argv(path, params["os_user"]), cwd="/")
    if code != 0:
        raise RedisError("redis-server did not start: %s" % (err or out).strip()[-500:])
    server = dict(host=params["host"], port=port, password=params["password"], connect_timeout=1)
    deadline = time.monotonic() + 30
    while True:
        try:
            with Resp(server) as conn:
                if conn.command("PING") == "PONG":
                    break
        except RedisError as exc:
            if "LOADING" not in str(exc) and "reach" not in str(exc):
                raise
        if time.monotonic() > deadline:
            raise RedisError("redis-server in %s does not answer after 30 s; see %s"
                             % (path, os.path.join(path, "redis.log")))
        time.sleep(0.05)
    result.update(port=port, running=True)


if __name__ == "__main__":
    main()
