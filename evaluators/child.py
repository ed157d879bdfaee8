"""Trusted runner: the sandbox's supervisor and the first code that runs in a candidate.

Run as a file with ``python -I child.py serve FD`` (isolated mode puts no project path on
``sys.path``, so this script imports only the standard library), inside the sandbox. In an
unprivileged bubblewrap it first mounts the sandbox's bounded scratch file system and drops
every capability (:func:`own_scratch`). It serves run requests on a socket (see :func:`serve`):
for each, it makes the working directory, forks a fresh child and supervises it. The child

1. keeps a private result channel (fd 3) and points fd 1 and 2 at the captured output pipe, so
   whatever the candidate prints can never be mistaken for the result,
2. applies the resource limits and, when started as root with a sandbox uid, drops to that uid
   (root ignores ``RLIMIT_NPROC``; an unprivileged uid makes the process limit bind and lets the
   parent kill every process of that uid afterwards), then installs a seccomp filter (no new
   user namespaces, no tracing of other processes),
3. compiles and executes the candidate as a module, calls its entry function and writes one JSON
   report on the result channel, then leaves with ``os._exit`` so nothing the candidate
   registered (atexit, threads, finalizers) runs after the report.

The report is ``{"status": "ok", "output": ...}`` or ``{"status": <failure>, "message": ...}``.
The candidate shares the child process and could forge a report; that gains it nothing, because
the report only carries what the candidate returned, and the trusted scorer recomputes every
number from it in another process.
"""

from __future__ import annotations

import array
import contextlib
import ctypes
import fcntl
import functools
import gc
import io
import json
import os
import re
import resource
import select
import shutil
import signal
import socket
import stat
import sys
import time
import traceback
import types
from collections.abc import Sequence
from typing import Any

CANDIDATE_FILE = "candidate.py"
#: Largest message on the pool's socket; a larger request or reply travels in a memfd.
#: (Both sides read messages of up to 64 KiB; a SOCK_SEQPACKET message cannot be split.)
MAX_MESSAGE = 48 * 1024
#: Bytes read per wake-up from a candidate's pipes.
_READ_SIZE = 256 * 1024
#: How long to wait for the pipes to reach EOF once the candidate's tree is dead.
_DRAIN_S = 2.0
_TRACE_LINES = 12
_PR_SET_PDEATHSIG = 1
_PR_SET_CHILD_SUBREAPER = 36
PR_SET_DUMPABLE = 4
_PR_SET_NO_NEW_PRIVS = 38
_PR_SET_SECCOMP = 22
_SECCOMP_MODE_FILTER = 2
_MEMORY_REPORT = b'{"status": "memory", "message": "MemoryError: the program ran out of memory"}'
#: Where an interactive run's channel to its environment lands in the candidate (see
#: ``evaluators/interactive.py``); the entry function is told the number as ``channel_fd``.
CHANNEL_FD = 4


def write_all(fd: int, data: bytes) -> None:
    """Write all of ``data`` to ``fd`` (a pipe or file may take it in parts)."""
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def send_message(sock: socket.socket, data: bytes, name: str, fds: Sequence[int] = ()) -> None:
    """Send ``data`` as one SOCK_SEQPACKET message, or, when it is too large for one, as a
    ``{"payload": "fd"}`` marker carrying a memfd (named ``name``) that holds it. ``fds`` go
    with the message (before the memfd, which is always last)."""
    if len(data) <= MAX_MESSAGE:
        if fds:
            rights = array.array("i", fds)
            sock.sendmsg([data], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, rights)])
        else:
            sock.send(data)
        return
    memfd = os.memfd_create(name, os.MFD_CLOEXEC)
    try:
        write_all(memfd, data)
        rights = array.array("i", [*fds, memfd])
        sock.sendmsg([b'{"payload": "fd"}\n'], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, rights)])
    finally:
        os.close(memfd)


def read_memfd(fd: int) -> bytes:
    """All that memfd ``fd`` holds (see :func:`send_message`); ``fd`` is closed."""
    try:
        return os.pread(fd, os.fstat(fd).st_size, 0)
    finally:
        os.close(fd)


def remove_tree(path: str) -> None:
    """Remove ``path`` whatever a candidate did to it: directories it made unreadable or
    unwritable to their owner are opened up (chmod) before their entries are removed. Nothing
    here follows a link: ``rmtree`` does not, and chmod is applied only to what ``lstat`` found
    to be a directory (the candidate's processes are dead by then, so nothing swaps it), and
    never to anything above ``path`` (such as ``/tmp``, when ``path`` itself cannot go)."""
    top = os.path.abspath(path)

    def open_up(_func: object, failed: str, _exc: object) -> None:
        for directory in (os.path.dirname(failed), failed):
            if os.path.commonpath([top, os.path.abspath(directory)]) != top:
                continue
            with contextlib.suppress(OSError):
                if stat.S_ISDIR(os.lstat(directory).st_mode):
                    os.chmod(directory, 0o700)
        with contextlib.suppress(OSError):
            if stat.S_ISDIR(os.lstat(failed).st_mode):
                shutil.rmtree(failed, ignore_errors=True)
            else:
                os.unlink(failed)

    for _ in range(3):
        shutil.rmtree(path, onerror=open_up)
        if not os.path.lexists(path):
            return
        open_dirs(path)


def open_dirs(path: str) -> None:
    """Make every directory under ``path`` (a tree whose writers are dead) searchable and
    writable by its owner, from the top down, so that nested directories a candidate locked
    (mode 000, a read-only tree) can be emptied. Links are never followed: ``lstat`` decides
    what is a directory and ``scandir`` does not follow them."""
    stack = [path]
    while stack:
        directory = stack.pop()
        try:
            if not stat.S_ISDIR(os.lstat(directory).st_mode):
                continue
            os.chmod(directory, 0o700)
            with os.scandir(directory) as entries:
                stack += [e.path for e in entries if e.is_dir(follow_symlinks=False)]
        except OSError:
            continue


def clear_workdir(workdir: str) -> None:
    """Remove ``workdir`` and everything in it; what cannot be removed is renamed aside.

    The usual leftovers (an empty ``tmp`` and the candidate's file) go in three system calls.
    Nothing here follows a link a candidate may have planted: ``rmdir`` and ``unlink`` do not
    follow the last component, and ``shutil.rmtree`` does not follow links at all.
    """
    try:
        mode = os.lstat(workdir).st_mode
    except FileNotFoundError:
        return
    if not stat.S_ISDIR(mode):
        os.unlink(workdir)
        return
    try:
        os.rmdir(os.path.join(workdir, "tmp"))
        os.unlink(os.path.join(workdir, CANDIDATE_FILE))
        os.rmdir(workdir)
        return
    except OSError:
        pass
    with contextlib.suppress(OSError):
        remove_tree(workdir)
    if os.path.lexists(workdir):  # e.g. a file system error: never reuse what is left
        os.rename(workdir, f"{workdir}.stale-{time.monotonic_ns()}")


#: The sandbox's private scratch directories, emptied after every candidate under bubblewrap so
#: that nothing a candidate leaves there (a cached answer) reaches the next one.
SCRATCH_DIRS = ("/tmp", "/dev/shm")


def scratch_skeleton(mountinfo: str = "/proc/self/mountinfo") -> dict[str, set[str]]:
    """What the scratch directories must keep: for each directory on the way to a mount point
    bubblewrap made in them (an interpreter's folder bound under ``/tmp``, a mask), the names
    on that way. Everything else there is a candidate's, whenever this supervisor started: the
    scratch file system may outlive a supervisor (root mounts it per slot)."""
    keep: dict[str, set[str]] = {d: set() for d in SCRATCH_DIRS if os.path.isdir(d)}
    try:
        with open(mountinfo, encoding="utf-8", errors="surrogateescape") as fh:
            points = [line.split(" ")[4] for line in fh.read().splitlines() if line.count(" ") > 4]
    except OSError:
        points = []
    roots = tuple(keep)
    for point in points:
        point = re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), point)
        for root in roots:
            if point.startswith(root + "/"):
                parent = root
                for name in point[len(root) + 1 :].split("/"):
                    keep.setdefault(parent, set()).add(name)
                    parent = os.path.join(parent, name)
    return keep


def clear_scratch(skeleton: dict[str, set[str]], roots: tuple[str, ...] = SCRATCH_DIRS) -> None:
    """Remove everything a candidate added to the scratch directories (what the skeleton does
    not name), whatever it did to its modes. Only what lies on the scratch file system itself
    goes: a folder bubblewrap bound under ``/tmp`` (a checkout or a virtual environment there,
    with masks inside it) is the host's, never the candidate's, and is left alone."""
    devices = {}
    for directory in skeleton:
        with contextlib.suppress(OSError):
            devices[directory] = os.lstat(directory).st_dev
    scratch = {devices[d] for d in roots if d in devices}
    for directory, keep in skeleton.items():
        if devices.get(directory) not in scratch:
            continue
        with contextlib.suppress(OSError):
            for name in os.listdir(directory):
                if name not in keep:
                    path = os.path.join(directory, name)
                    with contextlib.suppress(OSError):
                        info = os.lstat(path)
                        if info.st_dev not in scratch:
                            continue
                        if stat.S_ISDIR(info.st_mode):
                            remove_tree(path)
                        else:
                            os.unlink(path)


#: Asks the supervisor for a scratch file system of its own, as ``"BYTES INODES"`` (bubblewrap's
#: ``--setenv``, for an unprivileged sandbox given CAP_SYS_ADMIN in its user namespace).
SCRATCH_ENV = "EVOLVE_SCRATCH"
_CLONE_NEWNS = 0x00020000
_MS_NOSUID, _MS_NODEV, _MS_BIND, _MS_REC, _MS_PRIVATE = 2, 4, 4096, 16384, 1 << 18
_MNT_DETACH = 2
_PR_CAP_AMBIENT, _PR_CAP_AMBIENT_CLEAR_ALL = 47, 4
_CAPABILITY_VERSION_3 = 0x20080522
#: Where the scratch file system is mounted first; its ``tmp`` and ``shm`` folders are then
#: bound on ``/tmp`` and on top of it.
_STAGING = "/dev/shm"


def _mount(source: str, target: str, fstype: str = "", flags: int = 0, data: str = "") -> None:
    """``mount(2)`` through libc; OSError naming ``target`` if it fails."""
    result = _libc().mount(
        os.fsencode(source) if source else None,
        os.fsencode(target),
        fstype.encode() if fstype else None,
        flags,
        data.encode() if data else None,
    )
    if result != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"mount on {target}: {os.strerror(errno)}")


def _detach(target: str) -> None:
    _libc().umount2(os.fsencode(target), _MNT_DETACH)


def _mounts_below(root: str) -> list[str]:
    """The outermost mount points strictly below ``root`` (what bubblewrap bound there)."""
    with open("/proc/self/mountinfo", encoding="utf-8", errors="surrogateescape") as fh:
        lines = fh.read().splitlines()
    points = []
    for line in lines:
        if line.count(" ") > 4:
            point = re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), line.split(" ")[4])
            if point.startswith(root + "/"):
                points.append(point)
    return [p for p in dict.fromkeys(points) if not any(p.startswith(q + "/") for q in points)]


def _rebind_below(points: list[str], old: str, new: str) -> None:
    """Bind each of ``points`` (under ``old``) at the same place under ``new``, making the
    folders on the way (0755, as bubblewrap makes them)."""
    for point in points:
        target = new
        parts = point[len(old) + 1 :].split("/")
        for name in parts[:-1]:
            target = os.path.join(target, name)
            if not os.path.isdir(target):
                os.mkdir(target)
                os.chmod(target, 0o755)
        target = os.path.join(target, parts[-1])
        if os.path.isdir(point):
            os.mkdir(target)
        else:
            os.close(os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644))
        _mount(point, target, flags=_MS_BIND | _MS_REC)


def mount_scratch(spec: str) -> bool:
    """Give this sandbox one scratch file system bounded in bytes and inodes (``spec``: ``"BYTES
    INODES"``) for ``/tmp`` and ``/dev/shm``; whether that worked (when not, bubblewrap's own
    tmpfs stay as they were).

    It needs CAP_SYS_ADMIN in this process's user namespace, which owns no mount namespace when
    bubblewrap nests one (``--disable-userns``, ``--dev``): a mount namespace of its own is made
    first. The tmpfs is mounted on ``/dev/shm``, whatever bubblewrap bound under ``/tmp`` (the
    interpreter's folders, masks) is bound again into its ``tmp`` folder, which then becomes
    ``/tmp``, and its ``shm`` folder is bound on top of ``/dev/shm``, hiding the rest.
    """
    size, inodes = (int(n) for n in spec.split())
    if _libc().unshare(_CLONE_NEWNS) != 0:
        return False
    try:
        _mount("", "/", flags=_MS_REC | _MS_PRIVATE)
        below = _mounts_below("/tmp")
        options = f"size={size},nr_inodes={inodes},mode=700"
        _mount("evolve-scratch", _STAGING, "tmpfs", _MS_NOSUID | _MS_NODEV, options)
    except OSError:
        return False
    tmp, shm = os.path.join(_STAGING, "tmp"), os.path.join(_STAGING, "shm")
    made = [_STAGING]
    try:
        for folder in (tmp, shm):
            os.mkdir(folder)
            os.chmod(folder, 0o1777)
        _rebind_below(below, "/tmp", tmp)
        _mount(tmp, "/tmp", flags=_MS_BIND | _MS_REC)
        made.append("/tmp")
        for point in below:  # the copies in the staging folder: /tmp now holds them
            _detach(tmp + point[len("/tmp") :])
        _mount(shm, "/dev/shm", flags=_MS_BIND)
    except OSError:
        for target in reversed(made):
            _detach(target)
        return False
    return True


class _CapHeader(ctypes.Structure):
    _fields_ = (("version", ctypes.c_uint32), ("pid", ctypes.c_int))


class _CapData(ctypes.Structure):
    _fields_ = (
        ("effective", ctypes.c_uint32),
        ("permitted", ctypes.c_uint32),
        ("inheritable", ctypes.c_uint32),
    )


def held_capabilities() -> dict[str, int]:
    """This process's capability sets, from ``/proc/self/status`` (``CapEff``, ...)."""
    sets = {}
    with open("/proc/self/status", encoding="ascii", errors="replace") as fh:
        for line in fh:
            name, _, value = line.partition(":")
            if name in ("CapInh", "CapPrm", "CapEff", "CapAmb"):
                sets[name] = int(value.strip(), 16)
    return sets


def drop_capabilities() -> None:
    """Drop every capability for good: the ambient, inheritable, permitted and effective sets
    are emptied, and ``no_new_privs`` keeps any ``execve`` from granting one again.

    Raises:
        PermissionError: a capability is still held afterwards (the supervisor must not serve).
    """
    prctl(_PR_SET_NO_NEW_PRIVS, 1)
    prctl(_PR_CAP_AMBIENT, _PR_CAP_AMBIENT_CLEAR_ALL)
    header = _CapHeader(_CAPABILITY_VERSION_3, 0)
    empty = (_CapData * 2)()
    if _libc().capset(ctypes.byref(header), empty) != 0:
        raise OSError(ctypes.get_errno(), "capset failed")
    sets = held_capabilities()
    if len(sets) != 4 or any(sets.values()):
        raise PermissionError(f"capabilities still held: {sets}")


def own_scratch(spec: str | None) -> bool:
    """The supervisor's first step: when asked (``spec``), mount its scratch file system, then
    drop the capabilities that took, whatever happened; whether it was mounted."""
    if spec is None:
        return False
    try:
        return mount_scratch(spec)
    finally:
        drop_capabilities()


def prepare_workdir(workdir: str, code: str, uid: int | None) -> None:
    """Make ``workdir`` afresh: an empty private ``tmp`` and the candidate's file, owned by the
    sandbox ``uid`` when there is one. Whatever an earlier run left there is removed first."""
    clear_workdir(workdir)
    tmp = os.path.join(workdir, "tmp")
    program = os.path.join(workdir, CANDIDATE_FILE)
    os.mkdir(workdir, 0o700)
    os.mkdir(tmp, 0o700)
    fd = os.open(program, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(code)
    if uid is not None:
        for path in (workdir, tmp, program):
            os.chown(path, uid, uid)


def _jsonify(value: Any) -> Any:
    """``default=`` hook for json: numpy arrays and scalars become lists and numbers (a scalar
    whose ``item()`` is itself, numpy's longdouble, becomes a float)."""
    for method in ("tolist", "item"):
        convert = getattr(value, method, None)
        if callable(convert):
            converted = convert()
            if type(converted) is not type(value):
                return converted
            with contextlib.suppress(TypeError, ValueError, OverflowError):
                return float(value)
    raise TypeError(f"the entry function returned a {type(value).__name__}, which is not JSON")


def _candidate_trace(exc: BaseException, code_file: str) -> str:
    """The traceback's last lines, with this runner's own frames removed."""
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if f.filename != __file__]
    lines = traceback.format_list(frames) + traceback.format_exception_only(type(exc), exc)
    text = "".join(lines).rstrip().splitlines()
    return "\n".join(text[-_TRACE_LINES:])


#: The stack limit when the inherited one is unlimited.
_DEFAULT_STACK = 8 * 2**20


def apply_limits(limits: dict[str, Any]) -> None:
    """Apply rlimits in this process; they are inherited by everything it starts. Every hard
    limit is set (the stack's too), so the candidate cannot raise any of them; the CPU time's
    is a second above its soft one, so SIGKILL follows an ignored SIGXCPU."""
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    stack = resource.getrlimit(resource.RLIMIT_STACK)[0]
    stack = _DEFAULT_STACK if stack == resource.RLIM_INFINITY else stack
    resource.setrlimit(resource.RLIMIT_STACK, (stack, stack))
    cpu = limits.get("cpu_s")
    if cpu:
        soft = max(1, int(cpu + 0.999))
        resource.setrlimit(resource.RLIMIT_CPU, (soft, soft + 1))
    for name, key in (
        ("RLIMIT_AS", "as_bytes"),
        ("RLIMIT_FSIZE", "fsize_bytes"),
        ("RLIMIT_NPROC", "nproc"),
    ):
        value = limits.get(key)
        if value:
            resource.setrlimit(getattr(resource, name), (int(value), int(value)))
    extra = limits.get("nproc_extra")
    if extra and os.getuid() != 0:
        # Running as the evaluator's own (non-root) user: the limit counts all of that user's
        # processes, so allow what exists now plus the candidate's share.
        total = _processes_of_my_uid() + int(extra)
        resource.setrlimit(resource.RLIMIT_NPROC, (total, total))


def _processes_of_my_uid() -> int:
    uid = os.getuid()
    count = 0
    for name in os.listdir("/proc"):
        if name.isdigit():
            with contextlib.suppress(OSError):
                if os.stat(f"/proc/{name}").st_uid == uid:
                    count += 1
    return count


def drop_privileges(uid: int | None, gid: int | None) -> None:
    """Become the sandbox uid (only when asked, which the parent does only when root)."""
    if uid is None:
        return
    os.setgroups([])
    os.setgid(gid if gid is not None else uid)
    os.setuid(uid)
    if os.getuid() != uid or os.geteuid() != uid:
        raise PermissionError(f"could not drop to uid {uid}")


@functools.cache
def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(None, use_errno=True)


def prctl(option: int, arg: int) -> None:
    """``prctl(option, arg)`` through libc; OSError if it fails."""
    if _libc().prctl(option, arg, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), f"prctl({option}) failed")


#: (audit arch, syscall numbers) for the filter below: unshare, clone, ptrace,
#: process_vm_readv, process_vm_writev; clone3 (435) and pidfd_getfd (438) are the same on both.
_SECCOMP_ARCHES = {
    "x86_64": (0xC000003E, (272, 56, 101, 310, 311)),
    "aarch64": (0xC00000B7, (97, 220, 117, 270, 271)),
}
_CLONE_NEWUSER = 0x10000000


class _SockFilter(ctypes.Structure):
    _fields_ = (
        ("code", ctypes.c_ushort),
        ("jt", ctypes.c_ubyte),
        ("jf", ctypes.c_ubyte),
        ("k", ctypes.c_uint),
    )


class _SockFprog(ctypes.Structure):
    _fields_ = (("len", ctypes.c_ushort), ("filter", ctypes.POINTER(_SockFilter)))


def seccomp_program(machine: str) -> list[tuple[int, int, int, int]] | None:
    """The candidate's seccomp filter as BPF instructions (None for an unknown machine).

    It refuses every system call of another ABI (ENOSYS: the i386 gate, whose numbers differ),
    new user namespaces (``unshare``/``clone`` with ``CLONE_NEWUSER``; ``clone3``,
    whose flags a filter cannot read, answers ENOSYS and the C library falls back to ``clone``),
    so a sandbox uid cannot gain capabilities to mount file systems; and it refuses tracing
    another process (``ptrace``, ``process_vm_readv``/``writev``, ``pidfd_getfd``).
    """
    if machine not in _SECCOMP_ARCHES:
        return None
    arch, (unshare, clone, ptrace, vm_read, vm_write) = _SECCOMP_ARCHES[machine]
    ld, jeq, jset, jge, ret = 0x20, 0x15, 0x45, 0x35, 0x06
    allow, eperm, enosys = 0x7FFF0000, 0x00050000 | 1, 0x00050000 | 38
    denied = (ptrace, vm_read, vm_write, 438)
    # The return instructions sit at the end: ... ALLOW, (flags check: LD, JSET, ALLOW), EPERM,
    # ENOSYS; every jump below counts the instructions between it and its target.
    body: list[tuple[int, int, int, int]] = [(ld, 0, 0, 4)]  # arch
    body.append((jeq, 1, 0, arch))
    # Another ABI of this machine (x86-64's int 0x80 gate to the i386 calls, arm64's 32-bit
    # compat): numbered differently, so refused whole rather than let by unchecked.
    body.append((ret, 0, 0, enosys))
    body.append((ld, 0, 0, 0))  # syscall number
    tests: list[tuple[str, int, int]] = [("x32", jge, 0x40000000)]
    tests += [("eperm", jeq, nr) for nr in denied]
    tests += [("enosys", jeq, 435), ("flags", jeq, unshare), ("flags", jeq, clone)]
    # layout after the tests: [ALLOW][LD arg0][JSET][ALLOW][EPERM][ENOSYS]
    for i, (target, op, k) in enumerate(tests):
        after = len(tests) - i - 1  # tests after this one
        offset = {"x32": after + 4, "eperm": after + 4, "enosys": after + 5, "flags": after + 1}
        body.append((op, offset[target], 0, k))
    body += [
        (ret, 0, 0, allow),
        (ld, 0, 0, 16),  # the low word of the first argument (flags)
        (jset, 1, 0, _CLONE_NEWUSER),
        (ret, 0, 0, allow),
        (ret, 0, 0, eperm),
        (ret, 0, 0, enosys),
    ]
    return body


@functools.cache
def _seccomp_fprog() -> tuple[_SockFprog, ctypes.Array[_SockFilter]] | None:
    """The filter for this machine in the kernel's layout, built once per supervisor."""
    program = seccomp_program(os.uname().machine)
    if program is None:
        return None
    filters = (_SockFilter * len(program))(*(_SockFilter(*ins) for ins in program))
    return _SockFprog(len(program), filters), filters


def apply_seccomp() -> None:
    """Install :func:`seccomp_program` in this process (inherited by all it starts); after
    ``no_new_privs``, which the filter needs and which also makes set-uid programs inert."""
    built = _seccomp_fprog()
    prctl(_PR_SET_NO_NEW_PRIVS, 1)
    if built is None:
        return
    fprog = ctypes.byref(built[0])
    if _libc().prctl(_PR_SET_SECCOMP, _SECCOMP_MODE_FILTER, fprog, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "seccomp filter refused")


def join_cgroup(procs_file: str | None) -> None:
    """Enter the slot's pids cgroup so that every descendant is counted and can be killed."""
    if procs_file:
        with open(procs_file, "w", encoding="ascii") as fh:
            fh.write(str(os.getpid()))


def run_candidate(cfg: dict[str, Any]) -> dict[str, Any]:
    """Compile, execute and call the candidate; return the report (never raises)."""
    try:
        with open(CANDIDATE_FILE, encoding="utf-8") as fh:
            source = fh.read()
        code = compile(source, CANDIDATE_FILE, "exec")
    except SyntaxError as exc:
        where = f"line {exc.lineno}: " if exc.lineno else ""
        return {"status": "syntax_error", "message": f"SyntaxError: {where}{exc.msg}"}
    except (OSError, ValueError) as exc:
        return {"status": "syntax_error", "message": f"{type(exc).__name__}: {exc}"}
    module = types.ModuleType("candidate")
    module.__file__ = os.path.abspath(CANDIDATE_FILE)
    sys.modules["candidate"] = module
    try:
        exec(code, module.__dict__)
        entry = module.__dict__.get(cfg["entry"])
        if not callable(entry):
            return {
                "status": "exception",
                "message": f"the program defines no function {cfg['entry']!r}",
            }
        output = entry(**cfg.get("entry_kwargs", {}))
    except MemoryError:
        return {"status": "memory"}
    except SystemExit as exc:
        return {
            "status": "exception",
            "message": f"SystemExit({exc.code!r}): the program exited instead of returning",
        }
    except BaseException as exc:
        return {"status": "exception", "message": _candidate_trace(exc, CANDIDATE_FILE)}
    return {"status": "ok", "output": output}


#: Longest error message a report carries (a candidate's exception text can be any size).
MAX_MESSAGE_CHARS = 4000


def _cut(text: str) -> str:
    if len(text) <= MAX_MESSAGE_CHARS:
        return text
    half = MAX_MESSAGE_CHARS // 2
    return f"{text[:half]}\n[... {len(text) - 2 * half} characters cut ...]\n{text[-half:]}"


def encode_report(report: dict[str, Any]) -> bytes:
    """Serialize a report; unserializable or non-finite output becomes a bad_output report."""
    if "message" in report:
        report["message"] = _cut(str(report["message"]))
    try:
        return json.dumps(report, default=_jsonify, allow_nan=False).encode()
    except MemoryError:
        return b'{"status": "bad_output", "message": "the output is too large to serialize"}'
    except RecursionError:
        msg = "the output is nested too deeply to serialize"
    except ValueError as exc:
        msg = (
            "the output contains NaN or infinity"
            if "Out of range float" in str(exc)
            else f"the output is not JSON: {exc}"
        )
    except TypeError as exc:
        msg = str(exc)
    return json.dumps({"status": "bad_output", "message": msg}).encode()


def _setup_failure(exc: BaseException) -> bytes:
    message = f"sandbox setup failed: {type(exc).__name__}: {exc}"
    return json.dumps({"status": "sandbox_error", "message": message}).encode()


def execute(cfg: dict[str, Any], result_fd: int) -> None:
    """Limits, privileges, candidate, report; then exit this process without cleanup."""
    try:
        try:
            os.environ.clear()
            os.environ.update(cfg.get("env", {}))
            join_cgroup(cfg.get("cgroup_procs"))
            apply_limits(cfg.get("limits", {}))
            drop_privileges(cfg.get("uid"), cfg.get("gid"))
            prctl(PR_SET_DUMPABLE, 1)  # a change of uid cleared it
            prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
            apply_seccomp()
        except Exception as exc:
            write_all(result_fd, _setup_failure(exc))
            os._exit(0)
        report = run_candidate(cfg)
        if report.get("status") == "memory":
            gc.collect()
            data = _MEMORY_REPORT
        else:
            data = encode_report(report)
        del report
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(BaseException):  # the candidate may have closed it
                stream.flush()
        write_all(result_fd, data)
    except MemoryError:
        with contextlib.suppress(BaseException):
            write_all(result_fd, _MEMORY_REPORT)
    except BaseException:
        pass
    os._exit(0)


def fds_of(ancdata: list[tuple[int, int, bytes]]) -> list[int]:
    """The file descriptors an ``SCM_RIGHTS`` message carried (from ``recvmsg``)."""
    fds: list[int] = []
    for level, kind, data in ancdata:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            arr = array.array("i")
            arr.frombytes(data[: len(data) - (len(data) % arr.itemsize)])
            fds.extend(arr)
    return fds


def _recv_message(sock: socket.socket) -> tuple[dict[str, Any], list[int]] | None:
    """One message from the pool (a SOCK_SEQPACKET keeps boundaries), with any other fds."""
    msg, ancdata, _flags, _addr = sock.recvmsg(1 << 16, socket.CMSG_SPACE(4 * 4))
    if not msg:
        return None
    fds = fds_of(ancdata)
    message: dict[str, Any] = json.loads(msg)
    if message.get("payload") == "fd" and fds:  # too large for a message: in a memfd
        message = json.loads(read_memfd(fds.pop()))
    return message, fds


def _open_fds() -> list[int]:
    """This process's open fds (listing them is far cheaper than closing 65536 numbers)."""
    try:
        return [int(fd) for fd in os.listdir("/proc/self/fd")]
    except OSError:
        return list(range(3, 1024))


def _fork_candidate(
    workdir: str,
    fds: list[int],
    config: dict[str, Any],
    setup_error: OSError | None,
    channel: int | None = None,
) -> int:
    """Fork a child whose fd 1/2 is the output pipe, fd 3 the private result channel and, for an
    interactive run, fd ``CHANNEL_FD`` its channel to the environment."""
    pid = os.fork()
    if pid:
        for fd in fds if channel is None else [*fds, channel]:
            os.close(fd)
        return pid
    try:
        if channel is not None:  # out of the way of the dup2s below
            channel = fcntl.fcntl(channel, fcntl.F_DUPFD_CLOEXEC, 10)
        # The supervisor is not dumpable (see serve); its candidate may be, so that it can
        # read its own /proc/self (its fds, its maps) as any program expects to.
        prctl(PR_SET_DUMPABLE, 1)
        os.setsid()
        for sig in (signal.SIGTERM, signal.SIGCHLD, signal.SIGINT, signal.SIGPIPE):
            signal.signal(sig, signal.SIG_DFL)
        result_w, output_w = fds
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        os.dup2(output_w, 1)
        os.dup2(output_w, 2)
        os.dup2(result_w, 3)
        if channel is not None:
            os.dup2(channel, CHANNEL_FD, inheritable=False)
        for fd in _open_fds():
            if fd > 3 and (channel is None or fd != CHANNEL_FD):
                with contextlib.suppress(OSError):
                    os.close(fd)
        os.set_inheritable(3, False)
        if setup_error is not None:
            write_all(3, _setup_failure(setup_error))
            os._exit(0)
        os.chdir(workdir)
        _unbuffered_output()
        execute(config, 3)
    finally:
        os._exit(70)


def _unbuffered_output() -> None:
    """Make ``sys.stdout`` and ``sys.stderr`` write through to their fds (``python -u``; ``-I``
    ignores PYTHONUNBUFFERED), so what a candidate printed before it was killed is kept."""
    for name, fd in (("stdout", 1), ("stderr", 2)):
        raw = io.FileIO(fd, "w", closefd=False)
        stream = io.TextIOWrapper(raw, encoding="utf-8", errors="backslashreplace", write_through=True)
        setattr(sys, name, stream)


def _children_of(parent: int) -> list[int]:
    """Direct children of ``parent``: from the kernel's list when it has one, else /proc."""
    try:
        with open(f"/proc/{parent}/task/{parent}/children", encoding="ascii") as fh:
            return [int(x) for x in fh.read().split()]
    except OSError:
        pass
    kids = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", encoding="ascii", errors="replace") as fh:
                fields = fh.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == parent:
            kids.append(int(name))
    return kids


def _kill_everything(pid: int) -> None:
    """SIGKILL the candidate's group and every process this subreaper adopted; reap them."""
    with contextlib.suppress(OSError):
        os.killpg(pid, signal.SIGKILL)
    me = os.getpid()
    for _ in range(1000):
        kids = _children_of(me)
        for kid in kids:
            with contextlib.suppress(OSError):
                os.kill(kid, signal.SIGKILL)
        while True:
            try:
                reaped, _ = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if reaped == 0:
                break
        if not kids:
            return
        time.sleep(0.002)


class Capture:
    """What one pipe carried: its first ``head`` bytes, its last ``tail`` bytes and a count,
    so a candidate that writes a gigabyte costs the template a few kilobytes."""

    def __init__(self, head: int, tail: int) -> None:
        self._head_cap = head
        self._tail_cap = tail
        self.head = bytearray()
        self.tail = bytearray()
        self.total = 0

    def feed(self, data: bytes) -> None:
        self.total += len(data)
        room = self._head_cap - len(self.head)
        if room > 0:
            self.head += data[:room]
            data = data[room:]
        if data and self._tail_cap:
            self.tail += data[-self._tail_cap :]
            if len(self.tail) > self._tail_cap:
                del self.tail[: len(self.tail) - self._tail_cap]


def _read_some(fd: int, open_pipes: dict[int, Capture]) -> None:
    """One read from a ready pipe; at EOF (or a broken pipe) it is closed and forgotten."""
    try:
        data = os.read(fd, _READ_SIZE)
    except (BlockingIOError, InterruptedError):
        return
    except OSError:
        data = b""
    if data:
        open_pipes[fd].feed(data)
    else:
        del open_pipes[fd]
        os.close(fd)


def _drain(open_pipes: dict[int, Capture], within_s: float) -> None:
    """Read what is left in the pipes until EOF; a pipe still open after ``within_s`` (a
    descendant that escaped with its write end) is closed as it is."""
    deadline = time.monotonic() + within_s
    while open_pipes:
        remaining = deadline - time.monotonic()
        ready = (
            select.select(list(open_pipes), [], [], max(0.0, remaining))[0] if remaining > 0 else []
        )
        if not ready:
            break
        for fd in ready:
            _read_some(fd, open_pipes)
    for fd in open_pipes:
        os.close(fd)
    open_pipes.clear()


def _stop_candidate(pid: int) -> None:
    """SIGKILL the candidate and its process group (not reaped: its waiter collects it)."""
    for kill in (os.killpg, os.kill):
        with contextlib.suppress(OSError):
            kill(pid, signal.SIGKILL)


def _supervise(
    sock: socket.socket, pid: int, open_pipes: dict[int, Capture], timeout_s: float
) -> tuple[int, bool]:
    """Wait for the candidate to end while reading its pipes; kill it at the wall-time limit
    or when the pool asks. Its wait status, and whether it hit the limit."""
    pidfd = os.pidfd_open(pid)
    deadline = time.monotonic() + timeout_s
    timed_out = False
    try:
        while True:
            wait = None if timed_out else max(0.0, deadline - time.monotonic())
            ready = select.select([sock.fileno(), pidfd, *open_pipes], [], [], wait)[0]
            if pidfd in ready:
                return os.waitpid(pid, 0)[1], timed_out
            for fd in ready:
                if fd in open_pipes:
                    _read_some(fd, open_pipes)
            if sock.fileno() in ready:
                message = _recv_message(sock)
                if message is None:  # the pool is gone: nothing may outlive it
                    _kill_everything(pid)
                    os._exit(0)
                for fd in message[1]:
                    os.close(fd)
                _stop_candidate(pid)  # a kill request
            elif not ready and not timed_out:
                timed_out = True
                _stop_candidate(pid)
    finally:
        os.close(pidfd)


def _recv_token(sock: socket.socket) -> str:
    """The message that follows a request: ``{"token": ...}``, which the reply must carry."""
    received = _recv_message(sock)
    if received is None:
        os._exit(0)  # the pool is gone; the candidate dies with this process's namespace
    message, fds = received
    for fd in fds:
        os.close(fd)
    return str(message.get("token", ""))


def _run_one(
    sock: socket.socket,
    request: dict[str, Any],
    channel: int | None = None,
    scratch_lost: bool = False,
) -> bytes:
    """Run one candidate start to end; the reply: a JSON header line, then the report and the
    head and tail of the output, raw. ``scratch_lost``: the header says the supervisor could
    not mount the scratch file system it was asked for."""
    workdir, config = request["workdir"], request["config"]
    setup_error: OSError | None = None
    try:
        prepare_workdir(workdir, request["code"], config.get("uid"))
    except OSError as exc:  # reported by the child as a sandbox error
        setup_error = exc
    result_r, result_w = os.pipe()
    output_r, output_w = os.pipe()
    result = Capture(int(request["report_max"]), 0)
    output = Capture(int(request["output_head"]), int(request["output_tail"]))
    open_pipes = {result_r: result, output_r: output}
    pid = _fork_candidate(workdir, [result_w, output_w], config, setup_error, channel)
    # The request's token arrives only now, so no candidate (a copy of this process's memory
    # at the fork) ever holds it; the reply carries it back.
    token = _recv_token(sock)
    status, timed_out = _supervise(sock, pid, open_pipes, float(request["timeout_s"]))
    _kill_everything(pid)
    _drain(open_pipes, _DRAIN_S)
    header = {
        "token": token,
        "pid": pid,
        "wait_status": status,
        "timed_out": timed_out,
        "report_total": result.total,
        "output_total": output.total,
        "sizes": [len(result.head), len(output.head), len(output.tail)],
        "scratch_lost": scratch_lost,
    }
    return json.dumps(header).encode() + b"\n" + result.head + output.head + output.tail


def serve(sock_fd: int) -> None:
    """The sandbox's supervisor: pre-import modules, then run one candidate per request.

    Requests arrive on a unix SOCK_SEQPACKET socket (an inherited fd) as one JSON message each:
    ``{"workdir", "code", "config", "timeout_s", "report_max", "output_head", "output_tail"}``;
    one too large for a message is ``{"payload": "fd"}`` with a memfd attached that holds it.
    Each request is followed by ``{"token": ...}``, read once the candidate is forked and
    returned in the reply's header, so the pool credits a reply to the request it answers.
    ``{"ready": T}`` is answered ``{"token": T}``: the pool asks once the template has started,
    so that its imports are done before a candidate's CPU time is counted.
    For each request, the template makes the working directory afresh (the candidate's file, an empty
    ``tmp``), forks the child with two pipes of its own (the private result channel, and
    stdout/stderr), reads them while it waits, kills the child's whole tree when it ends, at the
    wall-time limit or when a ``{"kill": ...}`` message asks, and replies once: a JSON header
    line (wait status, whether the limit was hit, byte counts) followed by the report and the
    output's head and tail (in a memfd when too large for a message). Then it removes the
    working directory while the pool scores the result.

    The template is a child subreaper, so descendants that daemonize are re-parented to it
    and die with the candidate; the child starts its own session, applies the limits, and
    inherits nothing of earlier candidates because each is a fresh fork of this untouched
    template in a fresh directory. A warm pool keeps one template per slot; a cold run starts
    a fresh one (importing nothing) for each candidate.
    """
    asked = os.environ.pop(SCRATCH_ENV, None)
    # Asked for a scratch file system of its own but could not mount it (the start-up probe
    # could): bubblewrap's /tmp and /dev/shm stay, and each reply says so.
    scratch_lost = not own_scratch(asked) and asked is not None
    sock = socket.socket(fileno=sock_fd)
    with open(os.devnull, "wb") as null:
        os.dup2(null.fileno(), 1)
    # Not dumpable: a candidate of the same uid can neither trace this process, read or write
    # its memory, nor take its socket to the pool (pidfd_getfd, /proc/PID/fd). Under bubblewrap
    # this process is also its PID namespace's init, to which the kernel delivers no signal from
    # inside the namespace unless a handler is installed: SIGINT's default comes back for that.
    prctl(PR_SET_DUMPABLE, 0)
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    prctl(_PR_SET_CHILD_SUBREAPER, 1)
    _seccomp_fprog()
    for name in json.loads(os.environ.pop("EVOLVE_WARM_IMPORTS", "[]")):
        with contextlib.suppress(Exception):  # the candidate sees the real ImportError itself
            __import__(name)
    gc.collect()
    gc.freeze()
    # Under bubblewrap (this process is its PID namespace's init) /tmp and /dev/shm belong to
    # this sandbox alone: what a candidate leaves there goes after each run.
    skeleton = scratch_skeleton() if os.getpid() == 1 else {}
    clear_scratch(skeleton)  # what a candidate of a supervisor that was killed left
    while True:
        received = _recv_message(sock)
        if received is None:
            return
        request, fds = received
        channel = fds.pop(0) if request.get("channel") and fds else None
        for fd in fds:
            os.close(fd)
        if "ready" in request:  # the pool waits until the imports are done
            sock.send(json.dumps({"token": str(request["ready"])}).encode())
            continue
        if "workdir" not in request:  # a kill that arrived after its candidate had ended
            if channel is not None:
                os.close(channel)
            continue
        send_message(sock, _run_one(sock, request, channel, scratch_lost), "evolve-reply")
        with contextlib.suppress(OSError):  # the next prepare tries again
            clear_workdir(request["workdir"])
        clear_scratch(skeleton)


if __name__ == "__main__":
    if sys.argv[1] == "serve":
        serve(int(sys.argv[2]))
    elif sys.argv[1] == "scratch-probe":  # can this sandbox mount its own? (exit 0 when it did)
        raise SystemExit(0 if own_scratch(os.environ.pop(SCRATCH_ENV, None)) else 3)
    else:
        raise SystemExit(f"usage: {sys.argv[0]} serve FD | scratch-probe")
