"""cloud_sync: the Python API of instance-sync.

A drop-in replacement for the predecessor's ``cloud_sync`` package: the same
``Args``, ``pull``, ``push`` and ``config.write``, now running the
instance-sync binary with ``--json``::

    from pathlib import Path
    import cloud_sync

    result = cloud_sync.pull(cloud_sync.Args(
        pack_folder=Path("/srv/mc/instance"),
        token_file=Path("/srv/mc/instance/.cloud-sync/token"),
        restic_binary=None,      # auto-discover
        allow_download=True,
        headless=True,
        instance_label=None,     # default to env / id-prefix
    ))
    print(result.action, result.snapshot)

Failures raise SyncError subclasses, one per exit code (ConflictError,
AuthError, LockedError, ResticMissingError, ...). No secret is ever put on
a command line: the token goes by file (``--token-file``) or environment.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from . import config
from ._binary import PROTOCOL, BinaryInfo, EventCallback, check_binary, error_for, find_binary, run
from .errors import (
    AuthError,
    BinaryNotFoundError,
    BinaryTooOldError,
    CancelledError,
    ConfigError,
    ConflictError,
    LockedError,
    ResticMissingError,
    Side,
    SyncError,
    UsageError,
)

__version__ = "2.0.0"

__all__ = [
    "Args",
    "Result",
    "pull",
    "push",
    "init",
    "enable",
    "disable",
    "status",
    "binary",
    "config",
    "PROTOCOL",
    "BinaryInfo",
    "SyncError",
    "UsageError",
    "ConflictError",
    "CancelledError",
    "AuthError",
    "LockedError",
    "ResticMissingError",
    "BinaryNotFoundError",
    "BinaryTooOldError",
    "ConfigError",
    "Side",
]

@dataclass
class Args:
    """What a sync runs with. The first six fields and their defaults are
    the predecessor's; the rest are optional additions."""

    pack_folder: str | os.PathLike[str] | None = None
    """The instance's game folder; None: $INST_MC_DIR, then the current folder."""
    token_file: str | os.PathLike[str] | None = None
    """The USER:PASSWORD file (mode 0600); None: where init/config.write put it."""
    restic_binary: str | os.PathLike[str] | None = None
    """restic to use; None: auto-discover (and download, see allow_download)."""
    allow_download: bool = True
    """False: never download restic (ResticMissingError instead)."""
    headless: bool = True
    """False lets instance-sync show its dialogs (login, conflict, progress)."""
    instance_label: str | None = None
    """The name shown for the instance; None: $INST_NAME, $INST_ID, the init label, the id prefix."""

    binary: str | os.PathLike[str] | None = None
    """instance-sync to run; None: $INSTANCE_SYNC_BINARY, next to this package, PATH."""
    on_event: EventCallback | None = None
    """Called with each --json event (a dict) as it arrives: progress and the rest."""
    prefer: str | None = None
    """pull only: resolve a conflict with "local" or "cloud" instead of raising."""
    prefer_worlds: Mapping[str, str] | None = None
    """pull only: world name -> "local" or "cloud", for that world alone (before prefer)."""
    snapshot: str | None = None
    """pull with prefer="cloud": which cloud version (id or prefix) when there are several."""
    offline_fail: bool = False
    """pull only: a server that cannot be reached raises instead of result "offline"."""
    insecure_http: bool = False
    """Allow plain http to a server that is not this machine."""
    env: Mapping[str, str] | None = field(default=None, repr=False)
    """Extra environment variables for instance-sync (e.g. INSTANCE_SYNC_RESTIC)."""


@dataclass(frozen=True)
class Result:
    """What a pull or push did.

    ``action``: pull: nothing, local-ahead, fast-forward, resume, merged
    (the cloud's changed worlds came in, this computer's stayed), kept-local,
    used-cloud, offline; push: nothing, pushed; both: not-opted-in (no
    sync.json: nothing was done) and copy (a copied folder that is not
    synced as the original until "instance-sync copy --same|--new").
    ``snapshot``: the snapshot this computer is now in sync with (None when
    there is none)."""

    action: str
    snapshot: str | None
    message: str = ""
    warnings: list[str] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list, repr=False)


def _env(args: Args, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    env = dict(os.environ)
    if args.env:
        env.update(args.env)
    if extra:
        env.update(extra)
    return env


def binary(args: Args | None = None) -> BinaryInfo:
    """The instance-sync binary calls with ``args`` run, after the version
    handshake (BinaryTooOldError for a binary older than PROTOCOL)."""
    args = args or Args()
    env = _env(args)
    return check_binary(find_binary(args.binary, env), env)


# What each command takes besides --pack-folder (instance-sync refuses a
# flag a command does not use).
_SESSION = frozenset({"token", "restic", "label", "insecure"})
_TAKES: dict[str, frozenset[str]] = {
    "pull": _SESSION | {"hook"},
    "push": _SESSION | {"hook"},
    "status": _SESSION,
    "init": frozenset({"token", "label", "insecure"}),
    "enable": frozenset(),
    "disable": frozenset(),
}


def _flags(args: Args, cmd: str) -> list[str]:
    takes = _TAKES[cmd]
    a: list[str] = []
    if args.pack_folder is not None:
        a.append("--pack-folder=" + os.fspath(args.pack_folder))
    if "token" in takes and args.token_file is not None:
        a.append("--token-file=" + os.fspath(args.token_file))
    if "restic" in takes and args.restic_binary is not None:
        a.append("--restic-binary=" + os.fspath(args.restic_binary))
    if "label" in takes and args.instance_label is not None:
        a.append("--instance-label=" + args.instance_label)
    if "insecure" in takes and args.insecure_http:
        a.append("--insecure-http")
    if "hook" in takes:  # --no-download, --no-gui
        if not args.allow_download:
            a.append("--no-download")
        if args.headless:
            a.append("--no-gui")
    return a


def _run(args: Args, argv: list[str], on_event: EventCallback | None, extra_env: Mapping[str, str] | None = None):
    env = _env(args, extra_env)
    info = check_binary(find_binary(args.binary, env), env)
    r = run([info.path, *argv], env=env, on_event=on_event)
    if r.exit_code != 0:
        raise error_for(r)
    return r


def _sync(op: str, args: Args, extra: list[str], on_event: EventCallback | None) -> Result:
    r = _run(args, [op, "--json", *_flags(args, op), *extra], on_event or args.on_event)
    warnings = [str(e.get("message") or "") for e in r.events if e.get("type") == "warning"]
    done = next((e for e in reversed(r.events) if e.get("type") == "done"), None)
    if done is not None and done.get("action") == "auth-failed":
        # A hook goes on without sync when the server refuses the token (so
        # play is never blocked); a program asked for a sync and gets told.
        message = str(done.get("message") or "") or (warnings[-1] if warnings else "") or "authentication failed"
        raise AuthError(message, exit_code=AuthError.exit_code_value, events=r.events, stderr=r.stderr)
    if done is not None:
        return Result(
            action=str(done.get("action") or ""),
            snapshot=done.get("snapshot") or None,
            message=str(done.get("message") or ""),
            warnings=warnings,
            events=r.events,
        )
    # Exit 0 without a "done" event: a folder without sync.json (nothing at
    # all is said), a pull that could not reach the server (a warning), or a
    # push with nothing in scope.
    if not any(e.get("type") == "start" for e in r.events):
        return Result(action="not-opted-in", snapshot=None, warnings=warnings, events=r.events)
    if op == "pull" and warnings:
        return Result(action="offline", snapshot=None, message=warnings[-1], warnings=warnings, events=r.events)
    return Result(action="nothing", snapshot=None, warnings=warnings, events=r.events)


def pull(args: Args, *, on_event: EventCallback | None = None) -> Result:
    """Brings newer progress from the cloud into the pack folder (the
    pre-launch hook). Raises ConflictError when both sides changed and
    ``args.prefer`` is not set (headless), or the player cancelled.
    ``on_event`` (else ``args.on_event``) gets each event as it comes; if
    it raises, instance-sync is stopped and the exception propagates."""
    extra: list[str] = []
    if args.prefer is not None:
        if args.prefer not in ("local", "cloud"):
            raise UsageError(f"Args.prefer must be \"local\" or \"cloud\", not {args.prefer!r}")
        extra.append("--prefer=" + args.prefer)
    for world, side in (args.prefer_worlds or {}).items():
        if side not in ("local", "cloud") or not world:
            raise UsageError(f"Args.prefer_worlds maps a world to \"local\" or \"cloud\", not {world!r}: {side!r}")
        extra.append(f"--prefer={side}:{world}")
    if args.snapshot is not None:
        extra.append("--snapshot=" + args.snapshot)
    if args.offline_fail:
        extra.append("--offline=fail")
    return _sync("pull", args, extra, on_event)


def push(args: Args, *, on_event: EventCallback | None = None) -> Result:
    """Uploads this computer's progress (the post-exit hook)."""
    return _sync("push", args, [], on_event)


def init(
    args: Args,
    url: str,
    *,
    token: str | None = None,
    join: str | None = None,
    force: bool = False,
) -> config.Config:
    """``instance-sync init``: checks the account against the server, then
    opts the instance in. ``token`` ("USER:PASSWORD") reaches the binary
    through $INSTANCE_SYNC_TOKEN; without it, ``args.token_file`` is read.
    ``join`` names an instance id made on another computer. AuthError for
    a wrong user or password (nothing is written)."""
    argv = ["init", "--url=" + url, *_flags(args, "init")]
    if join:
        argv.append("--join=" + join)
    if force:
        argv.append("--force")
    extra: dict[str, str] = {}
    if token is not None:
        extra["INSTANCE_SYNC_TOKEN"] = token.strip()
    elif args.token_file is not None:
        extra["INSTANCE_SYNC_TOKEN"] = ""  # the file, not an inherited variable
    _run(args, argv, args.on_event, extra)
    pack = args.pack_folder if args.pack_folder is not None else _env(args).get("INST_MC_DIR") or os.getcwd()
    cfg = config.read(pack)
    if cfg is None:
        raise SyncError(f"instance-sync init succeeded but {Path(pack) / config.DIR_NAME / 'sync.json'} is missing")
    return cfg


def disable(args: Args) -> None:
    """Pauses sync (sync.json becomes sync.json.disabled), keeping the id."""
    _run(args, ["disable", *_flags(args, "disable")], None)


def enable(args: Args) -> None:
    """Resumes a paused sync with the same instance id."""
    _run(args, ["enable", *_flags(args, "enable")], None)


def status(args: Args) -> dict[str, Any]:
    """``instance-sync status --json``: opted in, last sync, pending
    changes, cloud heads, scope (the binary's field names)."""
    r = _run(args, ["status", "--json", *_flags(args, "status")], None)
    # status --json prints one JSON object, which run() counted as an event.
    if r.events:
        return r.events[-1]
    try:
        return json.loads("\n".join(r.stdout))
    except ValueError:
        raise SyncError("instance-sync status --json printed no JSON object") from None
