"""Finding the instance-sync binary, the version handshake, and running it."""

from __future__ import annotations

import json
import os
import platform
import re
import shutil
import subprocess
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from .errors import (
    AuthError,
    BinaryNotFoundError,
    BinaryTooOldError,
    CancelledError,
    ConflictError,
    LockedError,
    ResticMissingError,
    SyncError,
    UsageError,
)

# The protocol (--json events, exit codes, flags) this package speaks.
# instance-sync prints its own on the second line of "version".
PROTOCOL = 1

ENV_BINARY = "INSTANCE_SYNC_BINARY"

EventCallback = Callable[[dict[str, Any]], None]


@dataclass(frozen=True)
class BinaryInfo:
    """The instance-sync binary a call runs, and what its ``version`` said."""

    path: str
    version: str
    protocol: int


def _exe_names() -> list[str]:
    suffix = ".exe" if os.name == "nt" else ""
    goos = {"win32": "windows", "cygwin": "windows", "darwin": "darwin"}.get(sys.platform, sys.platform)
    if goos.startswith("linux"):
        goos = "linux"
    machine = platform.machine().lower()
    goarch = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64"}.get(machine, machine)
    return ["instance-sync" + suffix, f"instance-sync_{goos}_{goarch}{suffix}"]


def _usable(p: Path) -> bool:
    return p.is_file() and os.access(p, os.X_OK)


def find_binary(explicit: str | os.PathLike[str] | None = None, env: Mapping[str, str] | None = None) -> str:
    """The instance-sync binary to run: ``explicit`` (Args.binary), then
    $INSTANCE_SYNC_BINARY, then next to the package (in its folder or the
    folder holding it), then ``instance-sync`` on PATH."""
    env = os.environ if env is None else env
    for given, what in ((explicit, "Args.binary"), (env.get(ENV_BINARY) or None, "$" + ENV_BINARY)):
        if given is None:
            continue
        p = Path(given).expanduser()
        if not _usable(p):
            raise BinaryNotFoundError(
                f"{what} names {p}, which is not an executable file; point it at the instance-sync binary"
            )
        return str(p.resolve())
    here = Path(__file__).resolve().parent
    folders = [here, here.parent]
    # Run from a zip (cloud-sync.pyz): the folder holding the zip.
    archive = next((p for p in here.parents if p.is_file()), None)
    if archive is not None:
        folders = [archive.parent]
    for folder in folders:
        for name in _exe_names():
            if _usable(folder / name):
                return str(folder / name)
    found = shutil.which("instance-sync", path=env.get("PATH"))
    if found:
        return found
    raise BinaryNotFoundError(
        "instance-sync not found: pass Args(binary=PATH), set $INSTANCE_SYNC_BINARY, "
        f"put the binary next to the cloud_sync package ({folders[-1]}) or on PATH"
    )


_checked: dict[tuple[str, int, int], BinaryInfo] = {}
_checked_lock = threading.Lock()


def check_binary(path: str, env: Mapping[str, str] | None = None) -> BinaryInfo:
    """Runs ``instance-sync version`` and refuses a binary older than
    PROTOCOL. The answer is remembered per file (path, size, mtime)."""
    try:
        st = os.stat(path)
    except OSError as e:
        raise BinaryNotFoundError(f"{path}: {e.strerror or e}; point Args.binary or ${ENV_BINARY} at instance-sync") from e
    key = (path, st.st_size, st.st_mtime_ns)
    with _checked_lock:
        if key in _checked:
            return _checked[key]
    try:
        cp = subprocess.run(
            [path, "version"],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            encoding="utf-8",
            errors="replace",
            env=dict(os.environ if env is None else env),
            timeout=120,
        )
    except (OSError, subprocess.SubprocessError) as e:
        raise BinaryNotFoundError(f"{path}: cannot run it ({e}); point Args.binary or ${ENV_BINARY} at instance-sync") from e
    lines = cp.stdout.splitlines()
    first = lines[0].strip() if lines else ""
    m = re.fullmatch(r"instance-sync (\S+)", first)
    if cp.returncode != 0 or not m:
        raise BinaryTooOldError(
            f"{path} is not an instance-sync that cloud_sync can drive (\"{path} version\" "
            f"exited {cp.returncode} and printed {first!r}); install instance-sync with protocol {PROTOCOL} or newer"
        )
    version = m.group(1)
    protocol = 0
    for line in lines[1:]:
        pm = re.fullmatch(r"protocol:\s*(\d+)", line.strip())
        if pm:
            protocol = int(pm.group(1))
            break
    if protocol < PROTOCOL:
        said = f"protocol {protocol}" if protocol else "no protocol"
        raise BinaryTooOldError(
            f"instance-sync {version} at {path} is too old for this cloud_sync "
            f"(its \"version\" names {said}, this package needs protocol {PROTOCOL}); "
            "install a newer instance-sync release"
        )
    info = BinaryInfo(path=path, version=version, protocol=protocol)
    with _checked_lock:
        _checked[key] = info
    return info


@dataclass
class Run:
    """What one run of the binary produced."""

    argv: list[str]
    exit_code: int
    events: list[dict[str, Any]]
    stdout: list[str]  # lines that were not JSON events
    stderr: str


def run(
    argv: Sequence[str],
    *,
    env: Mapping[str, str],
    on_event: EventCallback | None = None,
    cwd: str | None = None,
) -> Run:
    """Runs argv with stdin closed, hands each JSON line of its standard
    output to on_event as it arrives, and collects standard error. If
    on_event raises, the binary is stopped (it stops restic cleanly on
    SIGTERM) and the exception propagates."""
    proc = subprocess.Popen(
        list(argv),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=dict(env),
        cwd=cwd,
        text=True,
        encoding="utf-8",
        errors="replace",
    )
    err_chunks: list[str] = []

    def drain() -> None:
        assert proc.stderr is not None
        for chunk in proc.stderr:
            err_chunks.append(chunk)

    t = threading.Thread(target=drain, daemon=True)
    t.start()
    events: list[dict[str, Any]] = []
    other: list[str] = []
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            line = line.strip()
            if not line:
                continue
            try:
                ev = json.loads(line)
            except ValueError:
                other.append(line)
                continue
            if not isinstance(ev, dict):
                other.append(line)
                continue
            events.append(ev)
            if on_event is not None:
                on_event(ev)
        code = proc.wait()
    except BaseException:
        _stop(proc)
        raise
    finally:
        t.join(timeout=30)
        for f in (proc.stdout, proc.stderr):
            if f is not None:
                f.close()
    return Run(argv=list(argv), exit_code=code, events=events, stdout=other, stderr="".join(err_chunks))


def _stop(proc: subprocess.Popen[str]) -> None:
    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


_EXC: dict[int, type[SyncError]] = {
    2: UsageError,
    3: ConflictError,
    4: AuthError,
    5: LockedError,
    6: ResticMissingError,
}


def error_for(r: Run) -> SyncError:
    """The exception for a failed run: its class follows the exit code, its
    message is the ``error`` event's (else the last line of standard
    error)."""
    err = next((e for e in reversed(r.events) if e.get("type") == "error"), None)
    message = ""
    if err is not None:
        message = str(err.get("message") or "")
    if not message:
        lines = [ln.strip() for ln in r.stderr.splitlines() if ln.strip()]
        message = lines[-1] if lines else ""
        if message.startswith("instance-sync: "):
            message = message[len("instance-sync: "):]
    code = r.exit_code
    if code < 0:
        message = message or f"instance-sync was killed by signal {-code}"
    if not message:
        message = f"instance-sync exited with status {code}"
    kw: dict[str, Any] = {"exit_code": code, "events": r.events, "stderr": r.stderr}
    if code == 3:
        conflict = next((e for e in reversed(r.events) if e.get("type") == "conflict"), None)
        cls = CancelledError if err is not None and err.get("cancelled") else ConflictError
        return cls(message, conflict=conflict, **kw)
    return _EXC.get(code, SyncError)(message, **kw)
