"""Adversarial candidates: each must end with the right status, leave nothing running, and
leave the evaluator able to go on.

Every case runs under bubblewrap and without it: plain process isolation with a sandbox uid where
that is available (root, and an interpreter the uid can read), else the explicit unconfined
opt-in, whose limits and kills must hold all the same. Where the modes give different guarantees
(network, file system, other processes' environments), each test asserts exactly what its mode
guarantees, so that a regression in either mode fails.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import sys
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

from evaluators.isolation import UNCONFINED, SandboxUnavailable, bundled_bwrap, system_bwrap
from evaluators.local import LocalEvaluator
from evolve.config import EvaluatorConfig
from evolve.problem import Problem, load_problem
from evolve.records import EvalResult, Status
from tests.evaluators.processes import marked_pids, wait_marked

pytestmark = pytest.mark.asyncio(loop_scope="module")

FIXTURE = Path(__file__).parent / "fixtures" / "toy"
MAX_PROCESSES = 16
SECRET = "sk-adversarial-test-secret"


@pytest.fixture(scope="module")
def adversarial_problem(tmp_path_factory: pytest.TempPathFactory) -> Problem:
    root = tmp_path_factory.mktemp("adv") / "toy"
    shutil.copytree(FIXTURE, root)
    text = (root / "problem.yaml").read_text()
    text = text.split("limits:")[0] + (
        "limits:\n  timeout_s: 1.5\n  memory_mb: 512\n"
        f"  max_processes: {MAX_PROCESSES}\n  max_file_mb: 4\n  max_output_kb: 8\n"
        "env: []\n"
    )
    (root / "problem.yaml").write_text(text)
    return load_problem(root)


@pytest_asyncio.fixture(
    scope="module", loop_scope="module", params=["bwrap", "bundled-bwrap", "process"]
)
async def sandbox(
    request: pytest.FixtureRequest, adversarial_problem: Problem
) -> AsyncIterator[LocalEvaluator]:
    """One warm evaluator per isolation mode, shared by every case (the run goes on):
    the system's bubblewrap where installed (named, since ``auto`` prefers the bundled one to a
    system one too old to bound a tmpfs when unprivileged), the bundled one (what a machine
    without a system bubblewrap uses), and none."""
    if request.param == "bundled-bwrap":
        config = EvaluatorConfig(concurrency=2, isolation="bwrap", bwrap=bundled_bwrap())
    elif request.param == "bwrap" and system_bwrap() is not None:
        config = EvaluatorConfig(concurrency=2, isolation="bwrap", bwrap=system_bwrap())
    else:
        config = EvaluatorConfig(concurrency=2, isolation=request.param)
    ev = LocalEvaluator(adversarial_problem, config)
    try:
        try:
            await ev.evaluate("def run():\n    return {'x': 1}\n")
        except SandboxUnavailable:  # "process" needs a sandbox uid this setup has not got
            assert request.param == "process"
            await ev.aclose()
            ev = LocalEvaluator(
                adversarial_problem, EvaluatorConfig(concurrency=2, isolation=UNCONFINED)
            )
        yield ev
    finally:
        await ev.aclose()


def _as_host_user(ev: LocalEvaluator) -> bool:
    """Whether candidates run as this process's own user: no sandbox uid (one needs root, and
    an interpreter the sandbox uid can read)."""
    return ev.candidate_uid is None


async def _check(ev: LocalEvaluator, code: str, status: Status, text: str = "") -> EvalResult:
    result = await ev.evaluate(code)
    assert result.status is status, result
    if text:
        assert result.error is not None and text in result.error.message, result.error
    assert (await ev.evaluate("def run():\n    return {'x': 7}\n")).metrics == {"score": 7.0}
    return result


def _marker() -> str:
    return f"evtest-{uuid.uuid4().hex[:6]}"


def _name_self(marker: str) -> str:
    return f"    __import__('ctypes').CDLL(None).prctl(15, {marker.encode()!r})\n"


async def test_infinite_loop_times_out(sandbox: LocalEvaluator) -> None:
    await _check(sandbox, "def run():\n    while True:\n        pass\n", Status.TIMEOUT)


async def test_sleep_forever_times_out(sandbox: LocalEvaluator) -> None:
    code = "import time\ndef run():\n    time.sleep(10**6)\n"
    await _check(sandbox, code, Status.TIMEOUT, "wall-time")


async def test_memory_bomb_is_memory(sandbox: LocalEvaluator) -> None:
    code = "def run():\n    x = []\n    while True:\n        x.append(bytearray(2**26))\n"
    await _check(sandbox, code, Status.MEMORY)


async def test_fork_bomb_is_contained(sandbox: LocalEvaluator) -> None:
    marker = _marker()
    code = (
        "import os\n"
        "def run():\n" + _name_self(marker) + "    while True:\n"
        "        try:\n"
        "            os.fork()\n"
        "        except OSError:\n"
        "            pass\n"
    )
    peak = 0

    async def watch() -> None:
        nonlocal peak
        while True:
            peak = max(peak, len(marked_pids(marker)))
            await asyncio.sleep(0.02)

    watcher = asyncio.create_task(watch())
    try:
        await _check(sandbox, code, Status.TIMEOUT)
    finally:
        watcher.cancel()
    assert 1 < peak <= MAX_PROCESSES + 4
    assert await wait_marked(marker, count=0)


async def test_daemonized_grandchild_dies_with_the_run(sandbox: LocalEvaluator) -> None:
    marker = _marker()
    code = (
        "import os, time\n"
        "def run():\n"
        "    if os.fork() == 0:\n"
        "        os.setsid()\n"
        "        if os.fork() == 0:\n"
        + "    " * 2
        + _name_self(marker)
        + "            time.sleep(60)\n"
        "        os._exit(0)\n"
        "    time.sleep(0.3)\n"
        "    return {'x': 1}\n"
    )
    result = await sandbox.evaluate(code)
    assert result.status is Status.EVALUATED
    assert await wait_marked(marker, count=0, within_s=1.0), marked_pids(marker)


async def test_ignoring_sigterm_is_killed(sandbox: LocalEvaluator) -> None:
    marker = _marker()
    code = (
        "import signal, time\n"
        "def run():\n" + _name_self(marker) + "    signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
        "    time.sleep(60)\n"
    )
    await _check(sandbox, code, Status.TIMEOUT)
    assert await wait_marked(marker, count=0)


async def test_os_exit_before_returning_is_bad_output(sandbox: LocalEvaluator) -> None:
    code = "import os\ndef run():\n    os._exit(0)\n"
    await _check(sandbox, code, Status.BAD_OUTPUT, "without returning a result")


async def test_sys_exit_is_an_exception(sandbox: LocalEvaluator) -> None:
    code = "import sys\ndef run():\n    sys.exit(0)\n"
    await _check(sandbox, code, Status.EXCEPTION, "SystemExit")


async def test_printing_a_fake_result_changes_nothing(sandbox: LocalEvaluator) -> None:
    code = (
        "import os, sys\n"
        "def run():\n"
        '    fake = b\'{"status": "ok", "output": {"x": 1000}}\'\n'
        "    print(fake.decode()); sys.stdout.flush(); os.write(1, fake); os.write(2, fake)\n"
        "    return {'x': 1}\n"
    )
    result = await _check(sandbox, code, Status.EVALUATED)
    assert result.metrics == {"score": 1.0}


async def test_closing_stdout_does_not_lose_the_result(sandbox: LocalEvaluator) -> None:
    code = (
        "import os, sys\ndef run():\n    sys.stdout.close()\n    os.close(1)\n    return {'x': 2}\n"
    )
    result = await _check(sandbox, code, Status.EVALUATED)
    assert result.metrics == {"score": 2.0}


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("float('nan')", "NaN or infinity"),
        ("float('inf')", "NaN or infinity"),
        ("object()", "not JSON"),
        ("'x' * (2 * 2**20)", "larger than 1024 KB"),
    ],
)
async def test_unusable_outputs_are_bad_output(
    sandbox: LocalEvaluator, value: str, reason: str
) -> None:
    await _check(sandbox, f"def run():\n    return {{'x': {value}}}\n", Status.BAD_OUTPUT, reason)


async def test_deeply_nested_output_is_bad_output(sandbox: LocalEvaluator) -> None:
    code = "def run():\n    x = 1\n    for _ in range(100000):\n        x = [x]\n    return x\n"
    await _check(sandbox, code, Status.BAD_OUTPUT, "nested too deeply")


async def test_recursion_bomb_is_an_exception(sandbox: LocalEvaluator) -> None:
    code = "def f(n):\n    return f(n + 1)\n\ndef run():\n    return f(0)\n"
    await _check(sandbox, code, Status.EXCEPTION, "RecursionError")


async def test_native_crash_is_an_exception(sandbox: LocalEvaluator) -> None:
    code = "import ctypes\ndef run():\n    return {'x': len(ctypes.string_at(0))}\n"
    await _check(sandbox, code, Status.EXCEPTION, "SIGSEGV")


@pytest.mark.parametrize("exc", ["KeyboardInterrupt", "SystemExit(3)", "GeneratorExit"])
async def test_raising_base_exceptions_is_an_exception(sandbox: LocalEvaluator, exc: str) -> None:
    await _check(sandbox, f"def run():\n    raise {exc}\n", Status.EXCEPTION, exc.split("(")[0])


async def test_parent_environment_is_not_readable(sandbox: LocalEvaluator) -> None:
    # A process that holds the key in its initial environment, like an evaluator started
    # from a shell with OPENAI_API_KEY exported.
    holder = await asyncio.create_subprocess_exec(
        "sleep", "30", env={"OPENAI_API_KEY": SECRET, "PATH": "/usr/bin:/bin"}
    )
    code = (
        "import os\n"
        "def run():\n"
        f"    key = {SECRET!r}.encode()\n"
        "    if key.decode() in str(os.environ):\n"
        "        return {'x': 2}\n"
        "    for pid in filter(str.isdigit, os.listdir('/proc')):\n"
        "        try:\n"
        "            if key in open(f'/proc/{pid}/environ', 'rb').read():\n"
        "                return {'x': 1}\n"
        "        except OSError:\n"
        "            pass\n"
        "    return {'x': 0}\n"
    )
    try:
        result = await _check(sandbox, code, Status.EVALUATED)
    finally:
        holder.kill()
        await holder.wait()
    # The candidate's own environment never holds the key (2). Other processes' environments
    # are hidden by the PID namespace (bwrap) or by running as another uid (1); a candidate
    # running as the host's own user without bubblewrap can read them (same uid), which is why
    # that setup is warned about.
    exposed = sandbox.isolation is not None and sandbox.isolation.kind != "bwrap"
    assert result.metrics == {"score": float(exposed and _as_host_user(sandbox))}


def _cmdline(pid: int) -> bytes:
    with open(f"/proc/{pid}/cmdline", "rb") as fh:
        return fh.read()


async def test_the_evaluating_process_is_never_readable(sandbox: LocalEvaluator) -> None:
    # This process holds the API keys. A candidate must read neither its environment nor its
    # memory: hidden by the PID namespace (bwrap), by another uid, or, when candidates run as
    # this process's own non-root user, because the evaluator made this process non-dumpable.
    # The candidate first checks the command line (readable by all), so that a process inside
    # a PID namespace that happens to have the same number does not count.
    host = os.getpid()
    cmdline = _cmdline(host)
    code = (
        "def run():\n"
        "    leaked = 0\n"
        "    try:\n"
        f"        if open('/proc/{host}/cmdline', 'rb').read() != {cmdline!r}:\n"
        "            return {'x': 0}\n"
        "    except OSError:\n"
        "        return {'x': 0}\n"
        "    for bit, name in ((1, 'environ'), (2, 'mem')):\n"
        "        try:\n"
        f"            open('/proc/{host}/' + name, 'rb').close()\n"
        "            leaked += bit\n"
        "        except OSError:\n"
        "            pass\n"
        "    return {'x': leaked}\n"
    )
    result = await _check(sandbox, code, Status.EVALUATED)
    # Root candidates (no sandbox uid, no bubblewrap: the warned-about setup) read anything.
    as_root = _as_host_user(sandbox) and os.geteuid() == 0
    in_bwrap = sandbox.isolation is not None and sandbox.isolation.kind == "bwrap"
    assert result.metrics == {"score": 3.0 if as_root and not in_bwrap else 0.0}


async def test_network_is_cut_under_bwrap_only(sandbox: LocalEvaluator) -> None:
    received: list[bytes] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        received.append(await reader.read(100))
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    code = (
        "import socket\n"
        "def run():\n"
        "    try:\n"
        f"        s = socket.create_connection(('127.0.0.1', {port}), timeout=0.5)\n"
        "        s.sendall(b'stolen'); s.close()\n"
        "        return {'x': 1}\n"
        "    except OSError:\n"
        "        return {'x': 0}\n"
    )
    try:
        result = await _check(sandbox, code, Status.EVALUATED)
        await asyncio.sleep(0.1)
    finally:
        server.close()
        await server.wait_closed()
    blocked = sandbox.isolation is not None and sandbox.isolation.kind == "bwrap"
    assert result.metrics == {"score": 0.0 if blocked else 1.0}
    assert received == ([] if blocked else [b"stolen"])


async def test_scorer_file_is_hidden_under_bwrap(
    sandbox: LocalEvaluator, adversarial_problem: Problem
) -> None:
    code = (
        "def run():\n"
        "    try:\n"
        f"        return {{'x': float(len(open({str(adversarial_problem.scorer_path)!r}).read()) > 0)}}\n"
        "    except OSError:\n"
        "        return {'x': 0}\n"
    )
    result = await _check(sandbox, code, Status.EVALUATED)
    hidden = sandbox.isolation is not None and sandbox.isolation.kind == "bwrap"
    # Without bubblewrap the scorer is readable, but reading it gains nothing: the score is
    # recomputed by the scorer from the returned output, in another process.
    assert result.metrics == {"score": 0.0 if hidden else 1.0}


async def test_writing_outside_the_working_directory(
    sandbox: LocalEvaluator, tmp_path: Path
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    outside.chmod(0o755)
    target = outside / "planted.txt"
    code = (
        "def run():\n"
        "    try:\n"
        f"        open({str(target)!r}, 'w').write('planted')\n"
        "    except OSError:\n"
        "        pass\n"
        "    open('inside.txt', 'w').write('fine')\n"
        "    return {'x': 1}\n"
    )
    await _check(sandbox, code, Status.EVALUATED)
    in_bwrap = sandbox.isolation is not None and sandbox.isolation.kind == "bwrap"
    # bubblewrap: the host path is not even visible; process isolation: the sandbox uid cannot
    # write a directory of the host's user, the host's own user can (the warned-about setup).
    assert target.exists() == (not in_bwrap and _as_host_user(sandbox))


async def test_file_size_limit_stops_big_files(sandbox: LocalEvaluator) -> None:
    code = "def run():\n    open('big.bin', 'wb').write(b'x' * (10 * 2**20))\n    return {'x': 1}\n"
    await _check(sandbox, code, Status.EXCEPTION, "File too large")


async def test_half_a_gigabyte_on_stdout_is_truncated(sandbox: LocalEvaluator) -> None:
    # Half a gigabyte, not a whole one: the pipe moves ~0.7 GB/s on this 2-core machine, and the
    # point (captured output stays a few KB) holds well within the 1.5 s time limit.
    code = (
        "import os\n"
        "def run():\n"
        "    chunk = b'x' * 2**20\n"
        "    for _ in range(512):\n"
        "        os.write(1, chunk)\n"
        "    return {'x': 3}\n"
    )
    result = await _check(sandbox, code, Status.EVALUATED)
    assert result.metrics == {"score": 3.0}
    assert "bytes of output truncated" in result.stdout_tail
    assert len(result.stdout_tail) < 10 * 1024


async def test_syntax_error(sandbox: LocalEvaluator) -> None:
    await _check(sandbox, "def run(:\n    return 1\n", Status.SYNTAX_ERROR, "line 1")


async def test_missing_module_is_an_exception(sandbox: LocalEvaluator) -> None:
    code = "import evolve_no_such_module\ndef run():\n    return {'x': 1}\n"
    await _check(sandbox, code, Status.EXCEPTION, "ModuleNotFoundError")


async def test_no_user_namespace_to_gain_capabilities_in(sandbox: LocalEvaluator) -> None:
    # In a user namespace of its own a candidate holds every capability there: it could mount
    # a tmpfs as large as the machine's memory. Refused in every mode, also via the raw clone.
    code = (
        "import ctypes, os\n"
        "def run():\n"
        "    libc = ctypes.CDLL(None, use_errno=True)\n"
        "    got = 0\n"
        "    pid = os.fork()\n"
        "    if pid == 0:\n"
        "        os._exit(0 if libc.unshare(0x10000000 | 0x20000) == 0 else 1)\n"
        "    if os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) == 0:\n"
        "        got += 1\n"
        "    pid = libc.syscall(56 if os.uname().machine == 'x86_64' else 220, 0x10000000 | 17, 0, 0, 0, 0)\n"
        "    if pid == 0:\n"
        "        os._exit(0)\n"
        "    if pid > 0:\n"
        "        os.waitpid(pid, 0)\n"
        "        got += 2\n"
        "    return {'x': got}\n"
    )
    result = await _check(sandbox, code, Status.EVALUATED)
    assert result.metrics == {"score": 0.0}


@pytest.mark.skipif(os.uname().machine != "x86_64", reason="the i386 system call gate is x86's")
async def test_no_user_namespace_through_the_32_bit_system_call_gate(
    sandbox: LocalEvaluator,
) -> None:
    # An x86-64 process may still enter the kernel through int 0x80, where the i386 numbers and
    # audit arch apply (unshare is 310): a filter that only knows the 64-bit ABI lets it by.
    code = (
        "import ctypes, mmap\n"
        "def run():\n"
        "    # push rbx; mov eax, 310; mov ebx, CLONE_NEWUSER; int 0x80; pop rbx; ret\n"
        "    gate = bytes.fromhex('53b836010000bb00000010cd805bc3')\n"
        "    page = mmap.mmap(-1, 4096, prot=mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC)\n"
        "    page.write(gate)\n"
        "    call = ctypes.CFUNCTYPE(ctypes.c_int)(ctypes.addressof(ctypes.c_char.from_buffer(page)))\n"
        "    return {'x': 1 if call() == 0 else 0}\n"
    )
    result = await _check(sandbox, code, Status.EVALUATED)
    assert result.metrics == {"score": 0.0}


def _host_secrets() -> list[str]:
    """Files on this machine a candidate has no business reading: the shipped problems'
    scorers in this checkout, what sits beside the checkout (other checkouts), and anything in
    the home directories."""
    checkout = Path(__file__).resolve().parents[2]
    found = sorted(str(p) for p in (checkout / "problems").glob("*/scorer.py"))[:3]
    interpreter = Path(sys.prefix).resolve()  # a venv beside the checkout is needed
    beside = [p for p in sorted(checkout.parent.iterdir()) if p != checkout]
    found += [str(p) for p in beside if not interpreter.is_relative_to(p)][:3]
    for home in ("/root", *(str(p) for p in Path("/home").glob("*"))):
        with contextlib.suppress(OSError):
            found += [str(p) for p in sorted(Path(home).iterdir())][:3]
    return found


async def test_only_what_python_needs_is_visible_under_bwrap(sandbox: LocalEvaluator) -> None:
    secrets = _host_secrets()
    assert secrets  # the checkout ships problems, so there is always something to look for
    code = (
        "import os\n"
        "def run():\n"
        f"    return {{'x': sum(os.path.lexists(p) for p in {secrets!r})}}\n"
    )
    result = await _check(sandbox, code, Status.EVALUATED)
    in_bwrap = sandbox.isolation is not None and sandbox.isolation.kind == "bwrap"
    if in_bwrap:
        assert result.metrics == {"score": 0.0}, secrets
    else:  # without namespaces the file system is the host's (README says so)
        assert result.metrics["score"] > 0


async def test_what_a_killed_candidate_printed_is_kept(sandbox: LocalEvaluator) -> None:
    # Block-buffered output would die with the process at its wall-time limit.
    code = "import time\ndef run():\n    print('got this far')\n    time.sleep(60)\n"
    result = await _check(sandbox, code, Status.TIMEOUT)
    assert "got this far" in result.stdout_tail


async def test_no_limit_can_be_raised_by_the_candidate(sandbox: LocalEvaluator) -> None:
    code = (
        "import resource\n"
        "def run():\n"
        "    raised = 0\n"
        "    for name in ('RLIMIT_STACK', 'RLIMIT_CPU', 'RLIMIT_AS', 'RLIMIT_FSIZE', 'RLIMIT_CORE'):\n"
        "        soft, hard = resource.getrlimit(getattr(resource, name))\n"
        "        if hard == resource.RLIM_INFINITY or hard > soft + 1:\n"
        "            raised += 1\n"
        "    return {'x': raised}\n"
    )
    result = await _check(sandbox, code, Status.EVALUATED)
    assert result.metrics == {"score": 0.0}


async def test_a_numpy_long_double_is_a_number_not_a_nesting_error(
    sandbox: LocalEvaluator,
) -> None:
    code = "import numpy as np\ndef run():\n    return {'x': np.longdouble(2.5)}\n"
    result = await _check(sandbox, code, Status.EVALUATED)
    assert result.metrics == {"score": 2.5}


async def test_a_huge_exception_message_is_cut(sandbox: LocalEvaluator) -> None:
    code = "def run():\n    raise ValueError('y' * 10**6 + 'THE END')\n"
    result = await _check(sandbox, code, Status.EXCEPTION, "THE END")
    assert result.error is not None and len(result.error.message) < 5000
    assert "characters cut" in result.error.message
