"""Each server's own folder in the cgroup tree: claimed under a ``flock`` for as long as
the server runs, and reaped, with whatever is left in it, once its server is gone.

:mod:`errand.sandbox.cgroup` makes the commands' cgroups inside the folder it claims here.

Layout and ownership
--------------------
Each server claims a folder of its own, ``errand/server-<random token>`` (on cgroup v2
under the root; on v1 under the server's own cgroup of each hierarchy, ``pids`` and
``memory``), and makes its commands' cgroups ``cmd-<n>`` inside it. For as long as it
runs, the server holds an exclusive ``flock`` on that folder: an open descriptor of the
cgroup directory itself. At start, every server reaps the ``server-*`` folders whose lock
it can take: it kills what is left in them and removes them, holding the lock until the
folder is gone. A folder whose lock is held belongs to a live server and is never touched.

Why a lock on the cgroup folder: the reaper must tell a dead server from a live one that
it cannot see. Two servers that share a cgroup tree may share nothing else:

* A PID (even with the boot id and the process start time) names a process only inside
  one PID namespace. A server in a container, or in CI under ``unshare --pid``, finds no
  such PID in its own ``/proc``, or an unrelated process with it, and decides the other
  server is dead while it runs (the earlier ``errand-<pid>-<n>`` rule did exactly that:
  exit 137 in the middle of another server's commands). A process cannot learn its PID
  in a namespace it does not see.
* A lock file in ``/tmp`` or the data folder is invisible to a server in another mount
  namespace or with another data folder.
* cgroupfs accepts no new files; ``user.*`` xattrs (cgroup v2, Linux 5.7 and later; none
  on v1) could label a folder, but a label is data, not liveness: it would name a PID
  again.
* Moving the server itself into a cgroup under ``errand/`` (alive = populated) would take
  it out of the cgroup its service manager gave it, and a surviving child (the very
  leftover command to reap) would keep the group populated after the server died.

The one thing both servers see is the cgroup tree, and a directory in it can be locked:
``flock`` works on any open file, and the lock lives on the directory's kernfs inode,
which every mount of that hierarchy shares, in any mount, PID or cgroup namespace (a
lock held in one namespace is seen held from a fresh mount, PID and cgroup namespace with
its own mount of the hierarchy). The kernel drops the lock when the server's last
descriptor closes, however it dies (SIGKILL, the OOM killer), so there is no stale state
and no PID reuse to get wrong. The descriptor is close-on-exec: commands never inherit
it. Claiming is race-free: ``mkdir``, open, lock without waiting, then check that the
path still names the folder; a reaper that locked the new folder first removes it, and
the server claims a fresh name.

The reaper kills a stale folder's processes with ``cgroup.kill`` where the kernel has it
(cgroup v2, Linux 5.14 and later), which reaches them in any PID namespace. Elsewhere it
kills those listed in ``cgroup.procs``, which shows only the processes of the reader's
PID namespace and the namespaces below it: a server beside the dead one's namespace
leaves the folder, unlocked, to a server that sees them (one in the host's namespace).

Folders named ``errand-<pid>-<n>`` (errand before server folders) cannot be judged
without the PID rule and are left alone.
"""

from __future__ import annotations

import atexit
import contextlib
import fcntl
import logging
import os
import secrets
import signal
import time
from pathlib import Path

log = logging.getLogger(__name__)

SERVER_PREFIX = "server-"
_claimed: list[tuple[Path, int, int]] = []
"""This process's server folders: (path, locked descriptor, pid that claimed it). The
descriptors stay open for the life of the process; closing one gives the folder away."""


def lock(folder: Path) -> int | None:
    """A descriptor of ``folder`` holding its exclusive flock, or None when another open
    file holds the lock (a live server), the folder is gone, or it cannot be locked."""
    try:
        fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        return None
    return fd


def claim(parent: Path) -> Path | None:
    """Make this server's folder in ``parent`` and hold its lock for the process's life."""
    for _ in range(5):
        folder = parent / f"{SERVER_PREFIX}{secrets.token_hex(8)}"
        try:
            folder.mkdir()
        except FileExistsError:
            continue
        except OSError as exc:
            log.info("cannot create a cgroup in %s: %s", parent, exc)
            return None
        fd = lock(folder)
        if fd is None:
            continue  # a starting server's reaper locked it first and is removing it
        try:
            same = os.stat(folder).st_ino == os.fstat(fd).st_ino
        except OSError:
            same = False
        if not same:
            os.close(fd)
            continue
        _claimed.append((folder, fd, os.getpid()))
        log.info("commands' cgroups go in %s", folder)
        return folder
    log.warning("could not claim a cgroup folder in %s", parent)
    return None


def _release_claimed() -> None:
    """At exit: remove this server's folders if its commands' cgroups are gone (the next
    server's reaper removes them otherwise). A forked child leaves its parent's alone."""
    for folder, _, pid in _claimed:
        if pid == os.getpid():
            with contextlib.suppress(OSError):
                folder.rmdir()


atexit.register(_release_claimed)


def members(group: Path) -> list[int]:
    """The processes in ``group`` that this process's PID namespace can see (the kernel
    leaves the others out of ``cgroup.procs``)."""
    try:
        text = (group / "cgroup.procs").read_text()
    except OSError:
        return []
    return [pid for pid in map(int, text.split()) if pid > 0]


def _kill_members(group: Path) -> bool:
    """SIGKILL the processes of ``group`` we can see; whether there were any."""
    killed = False
    for _ in range(100):  # a fork bomb may add processes while we kill
        procs = members(group)
        if not procs:
            break
        killed = True
        for proc in procs:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(proc, signal.SIGKILL)
        time.sleep(0.01)  # let the kernel finish the kills before looking again
    return killed


def _remove_tree(group: Path) -> bool:
    """Kill every process in ``group`` and the cgroups below it, and remove them all;
    whether that worked. Processes of a PID namespace we can't see can't be killed one by
    one: without ``cgroup.kill`` (cgroup v1, kernels before 5.14) the group stays for a
    server that sees them."""
    kill_file = group / "cgroup.kill"  # cgroup v2, Linux 5.14 and later: the whole subtree
    killed = kill_file.exists()
    if killed:
        with contextlib.suppress(OSError):
            kill_file.write_text("1")
    try:
        children = [p for p in group.iterdir() if p.is_dir()]
    except OSError:
        children = []
    removed = True
    for child in children:
        removed = _remove_tree(child) and removed
    killed = _kill_members(group) or killed
    for _ in range(50 if killed else 3):
        try:
            group.rmdir()
            return removed
        except FileNotFoundError:
            return removed
        except OSError:
            time.sleep(0.02)  # the kernel is still reaping the killed processes
    return False


def reap_stale(folder: Path) -> int:
    """Kill what is left in the server folders under ``folder`` whose server is gone (no
    one holds their lock), and remove them. A server killed at the very moment it spawned
    a command can leave the command running (before bwrap had set its parent-death
    signal); this ends it. Returns how many server folders were removed."""
    reaped = 0
    for child in sorted(folder.glob(f"{SERVER_PREFIX}*")):
        fd = lock(child)
        if fd is None:
            continue  # held: its server is alive, in whatever namespace it runs
        try:
            log.info("removing the cgroups of a server that is gone: %s", child)
            if _remove_tree(child):
                reaped += 1
            else:
                log.warning(
                    "could not empty the stale cgroup %s: its processes run in a PID "
                    "namespace this server can't see; a server that sees them (in the "
                    "host's namespace) will remove it",
                    child,
                )
        finally:
            os.close(fd)
    return reaped
