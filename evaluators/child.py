"""Trusted runner: the first code that runs in a candidate's sandbox process.

Run as a file with ``python -I child.py run CONFIG`` (isolated mode puts no project path on
``sys.path``, so this script imports only the standard library). It

1. reads its JSON config and deletes it,
2. keeps the original stdout as a private result channel and points fd 1 at fd 2, so whatever
   the candidate prints lands in the captured output and can never be mistaken for the result,
3. applies the resource limits and, when started as root with a sandbox uid, drops to that uid
   (root ignores ``RLIMIT_NPROC``; an unprivileged uid makes the process limit bind and lets the
   parent kill every process of that uid afterwards),
4. compiles and executes the candidate as a module, calls its entry function and writes one JSON
   report on the result channel, then leaves with ``os._exit`` so nothing the candidate
   registered (atexit, threads, finalizers) runs after the report.

The report is ``{"status": "ok", "output": ...}`` or ``{"status": <failure>, "message": ...}``.
The candidate shares this process and could forge a report; that gains it nothing, because the
report only carries what the candidate returned, and the trusted scorer recomputes every number
from it in another process.

``python -I child.py serve`` is the warm-pool template: it imports the modules a problem declares
once, then forks one fresh child per request (see :func:`serve`).
"""

from __future__ import annotations

import array
import contextlib
import ctypes
import functools
import gc
import json
import os
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
from typing import Any

CANDIDATE_FILE = "candidate.py"
CONFIG_FILE = ".runner.json"
_TRACE_LINES = 12
_PR_SET_PDEATHSIG = 1
_PR_SET_CHILD_SUBREAPER = 36
_MEMORY_REPORT = b'{"status": "memory", "message": "MemoryError: the program ran out of memory"}'


def write_all(fd: int, data: bytes) -> None:
    """Write all of ``data`` to ``fd`` (a pipe or file may take it in parts)."""
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


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
    shutil.rmtree(workdir, ignore_errors=True)
    if os.path.lexists(workdir):  # e.g. a directory the candidate made unreadable to its owner
        os.rename(workdir, f"{workdir}.stale-{time.monotonic_ns()}")


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
    """``default=`` hook for json: numpy arrays and scalars become lists and numbers."""
    if hasattr(value, "tolist") and callable(value.tolist):
        return value.tolist()
    if hasattr(value, "item") and callable(value.item):
        return value.item()
    raise TypeError(f"the entry function returned a {type(value).__name__}, which is not JSON")


def _candidate_trace(exc: BaseException, code_file: str) -> str:
    """The traceback's last lines, with this runner's own frames removed."""
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if f.filename != __file__]
    lines = traceback.format_list(frames) + traceback.format_exception_only(type(exc), exc)
    text = "".join(lines).rstrip().splitlines()
    return "\n".join(text[-_TRACE_LINES:])


def apply_limits(limits: dict[str, Any]) -> None:
    """Apply rlimits in this process; they are inherited by everything it starts."""
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
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


def _prctl(option: int, arg: int) -> None:
    if _libc().prctl(option, arg, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), f"prctl({option}) failed")


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


def encode_report(report: dict[str, Any]) -> bytes:
    """Serialize a report; unserializable or non-finite output becomes a bad_output report."""
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
            _prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
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


def _private_result_fd() -> int:
    """Move the original stdout to a private fd and point fd 1 at stderr."""
    result_fd = os.dup(1)  # non-inheritable: the candidate's own subprocesses do not get it
    os.dup2(2, 1)
    return result_fd


def _load_config(path: str) -> dict[str, Any]:
    """Read the run's config from the working directory and delete it before the candidate runs."""
    with open(path, encoding="utf-8") as fh:
        cfg: dict[str, Any] = json.load(fh)
    os.unlink(path)
    return cfg


def main_run(config_path: str) -> None:
    """Cold mode: one candidate in this process, config from a file in the working directory."""
    os.chdir(os.path.dirname(os.path.abspath(config_path)))
    cfg = _load_config(config_path)
    result_fd = _private_result_fd()
    execute(cfg, result_fd)


def _recv_message(sock: socket.socket) -> tuple[dict[str, Any], list[int]] | None:
    """One message from the pool (a SOCK_SEQPACKET keeps boundaries), with its fds."""
    msg, ancdata, _flags, _addr = sock.recvmsg(1 << 16, socket.CMSG_SPACE(3 * 4))
    if not msg:
        return None
    fds: list[int] = []
    for level, kind, data in ancdata:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            arr = array.array("i")
            arr.frombytes(data[: len(data) - (len(data) % arr.itemsize)])
            fds.extend(arr)
    message: dict[str, Any] = json.loads(msg)
    if message.get("payload") == "fd" and len(fds) == 3:  # too large for a message: in a memfd
        payload = fds.pop()
        try:
            message = json.loads(os.pread(payload, os.fstat(payload).st_size, 0))
        finally:
            os.close(payload)
    return message, fds


def _open_fds() -> list[int]:
    """This process's open fds (listing them is far cheaper than closing 65536 numbers)."""
    try:
        return [int(fd) for fd in os.listdir("/proc/self/fd")]
    except OSError:
        return list(range(3, 1024))


def _fork_candidate(
    workdir: str, fds: list[int], config: dict[str, Any], setup_error: OSError | None
) -> int:
    """Fork a child whose fd 1/2 is the output pipe and fd 3 the private result channel."""
    pid = os.fork()
    if pid:
        for fd in fds:
            os.close(fd)
        return pid
    try:
        os.setsid()
        for sig in (signal.SIGTERM, signal.SIGCHLD, signal.SIGINT, signal.SIGPIPE):
            signal.signal(sig, signal.SIG_DFL)
        result_w, output_w = fds
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        os.dup2(output_w, 1)
        os.dup2(output_w, 2)
        os.dup2(result_w, 3)
        for fd in _open_fds():
            if fd > 3:
                with contextlib.suppress(OSError):
                    os.close(fd)
        os.set_inheritable(3, False)
        if setup_error is not None:
            write_all(3, _setup_failure(setup_error))
            os._exit(0)
        os.chdir(workdir)
        execute(config, 3)
    finally:
        os._exit(70)


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


def _supervise(sock: socket.socket, pid: int) -> int:
    """Wait for the candidate to end, killing it early if the pool asks; its wait status."""
    pidfd = os.pidfd_open(pid)
    try:
        while True:
            ready, _, _ = select.select([sock.fileno(), pidfd], [], [])
            if pidfd in ready:
                _, status = os.waitpid(pid, 0)
                return status
            message = _recv_message(sock)
            if message is None:  # the pool is gone: nothing may outlive it
                _kill_everything(pid)
                os._exit(0)
            _kill_everything(pid)
    finally:
        os.close(pidfd)


def serve(sock_fd: int) -> None:
    """Warm-pool template: pre-import modules, then fork a fresh child per request.

    Requests arrive on a unix SOCK_SEQPACKET socket (an inherited fd) as one JSON message each,
    ``{"workdir": path, "code": source, "config": {...}}`` with two fds attached (result pipe,
    output pipe); a request too large for one message is ``{"payload": "fd"}`` with a third fd,
    a memfd that holds it. For each, the template makes the working directory afresh (the
    candidate's file, an empty ``tmp``), forks the child and replies ``{"pid": N}``, then
    ``{"pid": N, "wait_status": S}`` once the child has ended and everything it started has
    been killed and reaped, and removes the working directory while the pool scores the result.
    A ``{"kill": N}`` message meanwhile kills the candidate early.

    The template is a child subreaper, so descendants that daemonize are re-parented to it
    and die with the candidate; the child starts its own session, applies the same limits as a
    cold run, and inherits nothing of earlier candidates because each is a fresh fork of this
    untouched template in a fresh directory.
    """
    sock = socket.socket(fileno=sock_fd)
    with open(os.devnull, "wb") as null:
        os.dup2(null.fileno(), 1)
    _prctl(_PR_SET_CHILD_SUBREAPER, 1)
    _libc()
    for name in json.loads(os.environ.pop("EVOLVE_WARM_IMPORTS", "[]")):
        with contextlib.suppress(Exception):  # the candidate sees the real ImportError itself
            __import__(name)
    gc.collect()
    gc.freeze()
    while True:
        request = _recv_message(sock)
        if request is None:
            return
        message, fds = request
        if "workdir" not in message:  # a kill that arrived after its candidate had ended
            for fd in fds:
                os.close(fd)
            continue
        workdir, config = message["workdir"], message["config"]
        setup_error: OSError | None = None
        try:
            prepare_workdir(workdir, message["code"], config.get("uid"))
        except OSError as exc:  # reported by the child as a sandbox error
            setup_error = exc
        pid = _fork_candidate(workdir, fds, config, setup_error)
        sock.sendall(json.dumps({"pid": pid}).encode())
        status = _supervise(sock, pid)
        _kill_everything(pid)
        sock.sendall(json.dumps({"pid": pid, "wait_status": status}).encode())
        with contextlib.suppress(OSError):  # the next prepare tries again
            clear_workdir(workdir)


if __name__ == "__main__":
    if sys.argv[1] == "run":
        main_run(sys.argv[2])
    elif sys.argv[1] == "serve":
        serve(int(sys.argv[2]))
    else:
        raise SystemExit(f"usage: {sys.argv[0]} run CONFIG | serve FD")
