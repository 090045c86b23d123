"""``.cloud-sync/sync.json``: the opt-in marker and config of an instance.

``write`` makes a pack folder opted in the way ``instance-sync init`` does,
without contacting the server: the credentials are checked at the first
pull or push (a wrong password raises AuthError there).
"""

from __future__ import annotations

import ipaddress
import json
import os
import secrets
import stat
import sys
import tempfile
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from .errors import ConfigError

__all__ = ["Config", "write", "read", "token_path", "new_instance_id", "DIR_NAME", "VERSION"]

DIR_NAME = ".cloud-sync"
VERSION = 1  # the sync.json version instance-sync reads and writes

_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


@dataclass(frozen=True)
class Config:
    """The content of sync.json."""

    url: str
    instance_id: str
    user: str
    label: str | None = None
    version: int = VERSION

    def to_json(self) -> dict[str, Any]:
        d: dict[str, Any] = {"version": self.version, "url": self.url, "instance_id": self.instance_id, "user": self.user}
        if self.label:
            d["label"] = self.label
        return d


def _user_config_dir() -> Path:
    """<the OS's per-user config folder>/instance-sync, found as
    instance-sync finds it (Go's os.UserConfigDir rules)."""
    env = os.environ
    if os.name == "nt":
        base = env.get("AppData") or env.get("APPDATA") or ""
        if not base:
            raise ConfigError("cannot find this user's folders: %AppData% is not set")
        return Path(base) / "instance-sync"
    home = env.get("HOME") or ""
    if sys.platform == "darwin":
        if not home:
            raise ConfigError("cannot find this user's folders: $HOME is not set")
        return Path(home) / "Library" / "Application Support" / "instance-sync"
    xdg = env.get("XDG_CONFIG_HOME") or ""
    if os.path.isabs(xdg):
        return Path(xdg) / "instance-sync"
    if not home:
        raise ConfigError("cannot find this user's folders: $HOME is not set")
    return Path(home) / ".config" / "instance-sync"


def _path_part(s: str) -> str:
    """s as one file name: ASCII letters, digits and -_.~ stay, every other
    byte (and a leading dot) becomes %XX."""
    out = []
    for i, b in enumerate(s.encode("utf-8")):
        c = chr(b)
        if (b < 128 and c.isalnum()) or c in "-_~" or (c == "." and i > 0):
            out.append(c)
        else:
            out.append(f"%{b:02X}")
    return "".join(out) or "%00"


def _server_part(url: str) -> str:
    url = url.rstrip("/")
    for scheme in ("https://", "http://"):
        if url.lower().startswith(scheme):
            url = url[len(scheme):]
            break
    return _path_part(url)


def token_path(url: str, user: str, instance_id: str) -> Path:
    """Where instance-sync keeps the token of an instance, outside the pack
    folder (a launcher's export zips the whole folder):
    <user config folder>/instance-sync/tokens/<server>/<user>/<instance id>."""
    return _user_config_dir() / "tokens" / _server_part(url) / _path_part(user) / _path_part(instance_id)


def new_instance_id() -> str:
    """A fresh instance id: a ULID (48-bit millisecond time, 80 random bits,
    Crockford base32), as ``init`` mints."""
    n = (int(time.time() * 1000) & ((1 << 48) - 1)) << 80 | secrets.randbits(80)
    return "".join(_CROCKFORD[(n >> (5 * i)) & 31] for i in reversed(range(26)))


def _valid_id(s: str) -> bool:
    return 8 <= len(s) <= 64 and all(c.isascii() and (c.isalnum() or c in "-_") for c in s)


def _parse_token(raw: str, where: str) -> tuple[str, str]:
    s = raw.strip()
    user, sep, password = s.partition(":")
    if not sep or not user or not password or "/" in user or "\n" in user or "\n" in password:
        raise ConfigError(f"{where}: a token has the form USER:PASSWORD")
    return user, password


def _is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _check_url(url: str, insecure_http: bool) -> str:
    try:
        u = urlsplit(url)
        host = u.hostname
    except ValueError:
        host = None
        u = None
    if u is None or not u.netloc or not host or u.scheme not in ("http", "https"):
        raise ConfigError(f"{url!r} is not a server URL; use the form https://host[:port]")
    if u.username is not None or u.password is not None:
        raise ConfigError("the server URL must not contain credentials; pass them with token= or token_file=")
    if u.scheme == "http" and not insecure_http and not _is_loopback(host):
        raise ConfigError(
            f"plain http to {u.netloc} would send the password in the clear; use https:// "
            "or, on a trusted network, insecure_http=True (and Args(insecure_http=True))"
        )
    return url.rstrip("/")


def _write_atomic(path: Path, data: bytes, mode: int) -> None:
    fd, tmp = tempfile.mkstemp(prefix="." + path.name + ".", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    if os.name != "nt":
        dfd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)


def _mkdir_private(p: Path) -> None:
    missing = []
    while not p.exists():
        missing.append(p)
        p = p.parent
    for q in reversed(missing):
        q.mkdir(mode=0o700, exist_ok=True)


def _read_token_file(p: Path) -> str:
    try:
        st = p.stat()
    except FileNotFoundError:
        raise ConfigError(f"{p}: no token file; write USER:PASSWORD into it (mode 0600) or pass token=") from None
    if os.name != "nt" and st.st_mode & 0o077:
        raise ConfigError(f"{p}: token is readable by other users (mode {st.st_mode & 0o777:04o}); run \"chmod 600 {p}\"")
    user, _ = _parse_token(p.read_text(encoding="utf-8"), str(p))
    return user


def _pack_ignore(pack: Path) -> tuple[Path, str] | None:
    """The launcher's export ignore list (.packignore at the instance root,
    the folder holding instance.cfg) and the line naming this pack folder's
    .cloud-sync in it; None for folders of other launchers."""
    pack = Path(os.path.abspath(pack))
    if pack.parent != pack and (pack.parent / "instance.cfg").is_file():
        return pack.parent / ".packignore", pack.name + "/" + DIR_NAME
    if (pack / "instance.cfg").is_file():
        return pack / ".packignore", DIR_NAME
    return None


def _add_pack_ignore(file: Path, entry: str) -> None:
    """Lists entry first in file unless a line says it already; the
    player's lines stay byte for byte."""
    try:
        data = file.read_bytes()
        mode = stat.S_IMODE(file.stat().st_mode)
    except FileNotFoundError:
        data, mode = b"", 0o644
    for line in data.split(b"\n"):
        if line.removesuffix(b"\r") == entry.encode():
            return
    target = Path(os.path.realpath(file))
    _write_atomic(target, entry.encode() + b"\n" + data, mode)


def read(pack_folder: str | os.PathLike[str]) -> Config | None:
    """The instance's sync.json, or None when the folder is not opted in."""
    p = Path(pack_folder) / DIR_NAME / "sync.json"
    try:
        raw = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    try:
        d = json.loads(raw)
        if not isinstance(d, dict):
            raise ValueError("not a JSON object")
    except ValueError as e:
        raise ConfigError(f"{p}: {e}; write it again with cloud_sync.config.write(..., force=True)") from None
    if d.get("version") != VERSION:
        raise ConfigError(f"{p}: unknown version {d.get('version')!r} (this package reads version {VERSION})")
    return Config(
        url=str(d.get("url") or ""),
        instance_id=str(d.get("instance_id") or ""),
        user=str(d.get("user") or ""),
        label=d.get("label") or None,
    )


def write(
    pack_folder: str | os.PathLike[str],
    url: str,
    *,
    token: str | None = None,
    token_file: str | os.PathLike[str] | None = None,
    user: str | None = None,
    instance_id: str | None = None,
    label: str | None = None,
    force: bool = False,
    insecure_http: bool = False,
) -> Config:
    """Writes ``<pack_folder>/.cloud-sync/sync.json`` as ``instance-sync
    init`` does, without contacting the server.

    The user comes from ``token`` ("USER:PASSWORD"), else from the file
    ``token_file``, else from ``user``. ``token`` is written (mode 0600) to
    ``token_file`` when given (pass the same ``token_file`` to ``Args`` for
    pull and push), else where instance-sync looks for it: ``token_path()``,
    in the user's config folder, never inside the pack folder. Without ``instance_id`` an
    existing sync.json keeps its id (so calling this again changes nothing)
    and a new folder gets a fresh one; another id than the existing one
    needs ``force=True``. Like ``init``, it lists the pack folder's
    .cloud-sync in the instance's .packignore (Prism, MultiMC), so a
    launcher's export leaves it out. Returns the Config written.
    """
    pack = Path(pack_folder)
    if not pack.is_dir():
        raise ConfigError(f"pack folder {pack} does not exist; pass the instance's game folder")
    url = _check_url(url, insecure_http)
    tok_user: str | None = None
    if token is not None:
        tok_user, _ = _parse_token(token, "token")
    elif token_file is not None:
        tok_user = _read_token_file(Path(token_file))
    if tok_user is not None and user is not None and user != tok_user:
        raise ConfigError(f"user {user!r} does not match the token's user {tok_user!r}; pass one of them")
    user = tok_user or user
    if not user or "/" in user or ":" in user:
        raise ConfigError("sync.json needs the user: pass token=, token_file= or user=")
    if label is not None and not label.strip():
        label = None

    d = pack / DIR_NAME
    cfg_path = d / "sync.json"
    existing: Config | None = None
    try:
        existing = read(pack)
    except ConfigError:
        if not force:
            raise
    if instance_id is None:
        instance_id = existing.instance_id if existing and _valid_id(existing.instance_id) else new_instance_id()
        if label is None and existing is not None:
            label = existing.label
    elif not _valid_id(instance_id):
        raise ConfigError(
            f"instance_id {instance_id!r} is not an instance id (8-64 letters, digits, - or _); "
            "\"instance-sync status\" on the other computer prints it"
        )
    elif existing is not None and existing.instance_id != instance_id and not force:
        raise ConfigError(
            f"{cfg_path} exists for instance {existing.instance_id}; pass force=True to replace it with {instance_id}"
        )

    d.mkdir(mode=0o700, parents=True, exist_ok=True)
    if token is not None:
        tf = Path(token_file) if token_file is not None else token_path(url, user, instance_id)
        _mkdir_private(tf.parent)
        _write_atomic(tf, (token.strip() + "\n").encode("utf-8"), 0o600)
        if token_file is None:
            # The predecessor's place, inside the folder an export zips.
            try:
                (d / "token").unlink()
            except FileNotFoundError:
                pass
    # What was recorded for another instance describes another repository.
    if existing is not None and existing.instance_id != instance_id:
        for name in ("state.json", "manifest.json", "masterkey"):
            try:
                (d / name).unlink()
            except FileNotFoundError:
                pass
    cfg = Config(url=url, instance_id=instance_id, user=user, label=label)
    _write_atomic(cfg_path, (json.dumps(cfg.to_json(), indent=2) + "\n").encode("utf-8"), 0o644)
    try:
        (d / "sync.json.disabled").unlink()
    except FileNotFoundError:
        pass
    # A launcher's export of the instance leaves the sync state out.
    pi = _pack_ignore(pack)
    if pi is not None:
        try:
            _add_pack_ignore(*pi)
        except OSError as e:
            warnings.warn(f"{pi[0]}: cannot list {pi[1]} there ({e}); an export of this instance "
                          "would carry its sync state", RuntimeWarning, stacklevel=2)
    return cfg
