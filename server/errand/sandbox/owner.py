"""Owner labels: which server process made a resource, and whether it still runs.

The Docker backend labels each container with its server's identity (:func:`label`), and
the next server to start removes the containers whose owner is gone (:func:`alive`).
Unlike the cgroup tree (see :mod:`errand.sandbox.cgroup`), a Docker engine offers no
place where a live server could hold a lock that every other server sees, so the owner
is named, as precisely as the kernel allows::

    <host name>/<boot id>/<PID namespace>/<pid>/<start time>

A PID alone names a process only inside one PID namespace: a server in a container, or
under ``unshare --pid``, has a PID that means nothing (or another process) in a second
server's ``/proc``. So the label carries the owner's PID namespace (the inode number of
``/proc/self/ns/pid``, unique among live namespaces) and the boot id (namespace inodes
and start times are only unique within one boot). An owner counts as gone only when that
can be shown:

* **another boot id** with the same host name: the machine rebooted since, and every
  process of the earlier boot is gone. Another host name is another machine (or a
  container's own UTS namespace on another kernel): not ours to judge.
* **this PID namespace**: the PID and the kernel's start time, as read in ``/proc``.
* **another PID namespace**: every process of a namespace below ours is in our ``/proc``,
  with its PID in each namespace (``NSpid``). The owner is gone if that namespace has
  processes but not the owner's PID, or, when we see every process on the machine (root
  in the initial PID namespace), if the namespace has no process left. A namespace
  beside or above ours cannot be seen: its containers are kept.

When in doubt (an older label of the form ``<host>/<pid>/<start>``, something
unreadable) the owner counts as alive: an orphan container costs a little memory, a
wrongly removed one kills a live server's command.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path

INIT_PID_NS = 0xEFFFFFFC
"""The inode number of the initial PID namespace (``PROC_PID_INIT_INO``), on every boot."""


def _start_time(proc: str) -> str | None:
    """The kernel's start time of ``/proc/<proc>`` (clock ticks since boot)."""
    try:
        stat = Path(f"/proc/{proc}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[19]


def _pid_ns(proc: str) -> int:
    """The PID namespace of ``/proc/<proc>`` (raises OSError if it can't be read)."""
    link = os.readlink(f"/proc/{proc}/ns/pid")  # "pid:[4026531836]"
    return int(link.partition("[")[2].rstrip("]"))


def _boot_id() -> str:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return ""


def _proc_is_ours() -> bool:
    """Whether ``/proc`` is mounted for our own PID namespace (PIDs in it are ours)."""
    try:
        return os.readlink("/proc/self") == str(os.getpid())
    except OSError:
        return False


def label() -> str:
    """This process's owner label."""
    try:
        ns = str(_pid_ns("self"))
    except (OSError, ValueError):
        ns = "?"
    host, boot = socket.gethostname(), _boot_id()
    return f"{host}/{boot}/{ns}/{os.getpid()}/{_start_time('self')}"


def alive(owner: str) -> bool:
    """False only when the server that wrote ``owner`` is shown to be gone."""
    parts = owner.split("/")
    if len(parts) != 5:
        return True  # an older label: its PID can't be placed in a namespace
    host, boot, ns, pid, start = parts
    if not (ns.isdigit() and pid.isdigit()) or not boot:
        return True
    if boot != _boot_id():
        return host != socket.gethostname()
    try:
        own_ns = _pid_ns("self")
    except (OSError, ValueError):
        return True
    if int(ns) == own_ns and _proc_is_ours():
        return _start_time(pid) == start
    return _alive_elsewhere(int(ns), int(pid), sees_all=own_ns == INIT_PID_NS and _proc_is_ours())


def _nspid(proc: str) -> list[str]:
    """``/proc/<proc>``'s PID in each namespace from ours down to its own."""
    for line in Path(f"/proc/{proc}/status").read_text().splitlines():
        if line.startswith("NSpid:"):
            return line.split()[1:]
    return []


def _alive_elsewhere(ns: int, pid: int, *, sees_all: bool) -> bool:
    """Whether PID ``pid`` of namespace ``ns`` (not ours) runs, looked up through our
    ``/proc``."""
    seen = False
    complete = os.geteuid() == 0  # root lists every process, whatever its user
    try:
        entries = os.listdir("/proc")
    except OSError:
        return True
    for entry in entries:
        if not entry.isdigit():
            continue
        try:
            nspid = _nspid(entry)
            if len(nspid) == 1:
                continue  # in our own namespace, which is not the owner's
            if _pid_ns(entry) != ns:
                continue
        except (FileNotFoundError, ProcessLookupError):
            continue  # exited while we looked
        except (OSError, ValueError):
            complete = False  # some process below us whose namespace we can't read
            continue
        seen = True
        if nspid and nspid[-1] == str(pid):
            return True
    return not (complete and (seen or sees_all))
