"""End-to-end tests of cloud_sync: the real instance-sync binary, the real
restic 0.18.1 and a real cloud-svc on loopback ports.

Needs (from the environment, set by "make test"):
  CLOUD_SYNC_TEST_BINARY      instance-sync built from this tree
  CLOUD_SYNC_TEST_CLOUD_SVC   cloud-svc built from this tree
  INSTANCE_SYNC_TEST_RESTIC   restic 0.18.1
Without them the tests skip with the reason, except under CI=true where
they fail.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
import shutil
import stat
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import cloud_sync  # noqa: E402
from cloud_sync import config  # noqa: E402

CI = os.environ.get("CI") == "true"


def _need(var: str) -> str | None:
    v = os.environ.get(var)
    return v if v and os.path.isfile(v) and os.access(v, os.X_OK) else None


BINARY = _need("CLOUD_SYNC_TEST_BINARY")
CLOUD_SVC = _need("CLOUD_SYNC_TEST_CLOUD_SVC")
RESTIC = _need("INSTANCE_SYNC_TEST_RESTIC")
MISSING = [v for v, p in (("CLOUD_SYNC_TEST_BINARY", BINARY), ("CLOUD_SYNC_TEST_CLOUD_SVC", CLOUD_SVC),
                          ("INSTANCE_SYNC_TEST_RESTIC", RESTIC)) if p is None]
SKIP_REASON = "needs " + ", ".join(MISSING) + " (run \"make test\")" if MISSING else ""


def sha(p: Path) -> str:
    return hashlib.sha256(p.read_bytes()).hexdigest()


def tree(root: Path, *names: str) -> dict[str, str]:
    """Digests of the given files under root (missing ones as None)."""
    return {n: (sha(root / n) if (root / n).exists() else None) for n in names}


class Server:
    """cloud-svc on loopback ports in a temp data folder."""

    def __init__(self, work: Path) -> None:
        self.data = work / "svc-data"
        self.proc = subprocess.Popen(
            [CLOUD_SVC, "--data", str(self.data), "--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0",
             "--restic-binary", RESTIC, "--retention-interval", "0"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        )
        self.log: list[str] = []
        found = threading.Event()
        addr: dict[str, str] = {}

        def read() -> None:
            assert self.proc.stderr is not None
            for line in self.proc.stderr:
                self.log.append(line)
                m = re.search(r"public port on (\S+) \((\S+)\), admin port on (\S+)", line)
                if m and not found.is_set():
                    addr["url"], addr["admin"] = m.group(2), "http://" + m.group(3)
                    found.set()

        threading.Thread(target=read, daemon=True).start()
        if not found.wait(120):
            self.stop()
            raise RuntimeError("cloud-svc did not start: " + "".join(self.log))
        self.url, self.admin = addr["url"], addr["admin"]
        self.admin_token = (self.data / "admin.token").read_text().strip()

    def create(self, user: str) -> str:
        req = urllib.request.Request(self.admin + "/accounts", data=json.dumps({"user": user}).encode(),
                                     headers={"Authorization": "Bearer " + self.admin_token,
                                              "Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=60) as r:
            return json.load(r)["token"]

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


class ArgvWatch:
    """Looks for a secret on the command line of every process on the
    machine while the tests run (/proc, every few milliseconds), and keeps
    the command lines that wrapper scripts record for each instance-sync
    and restic run."""

    def __init__(self, log: Path, secrets: list[str], ours: str) -> None:
        self.log = log
        self.secrets = secrets
        self.ours = ours
        self.hits: list[str] = []
        self.seen_ours = 0  # instance-sync runs seen in /proc
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._scan, daemon=True)
        self._t.start()

    def _scan(self) -> None:
        while not self._stop.is_set():
            for pid in os.listdir("/proc"):
                if not pid.isdigit():
                    continue
                try:
                    with open(f"/proc/{pid}/cmdline", "rb") as f:
                        cmd = f.read().replace(b"\0", b" ").decode("utf-8", "replace")
                except OSError:
                    continue
                if self.ours in cmd:
                    self.seen_ours += 1
                for s in list(self.secrets):
                    if s in cmd:
                        self.hits.append(cmd)
            time.sleep(0.01)

    def stop(self) -> None:
        self._stop.set()
        self._t.join()

    def recorded(self) -> list[str]:
        return self.log.read_text().splitlines() if self.log.exists() else []


def wrapper(path: Path, real: str, log: Path) -> str:
    """A script that appends its command line to log and runs real."""
    path.write_text(f'#!/bin/sh\nprintf "%s" "${{0##*/}}" >> "{log}"\n'
                    f'for a in "$@"; do printf " %s" "$a" >> "{log}"; done\necho >> "{log}"\n'
                    f'exec "{real}" "$@"\n')
    path.chmod(0o755)
    return str(path)


@unittest.skipIf(MISSING and not CI, SKIP_REASON)
class EndToEnd(unittest.TestCase):
    @classmethod
    def setUpClass(cls) -> None:
        if MISSING:
            raise AssertionError(SKIP_REASON + " (CI=true: required)")
        cls.work = Path(tempfile.mkdtemp(prefix="cloud-sync-test-"))
        # The user's folders (tokens, caches) for config.write and the binary.
        cls.saved_env = {k: os.environ.get(k) for k in ("XDG_CONFIG_HOME", "XDG_CACHE_HOME")}
        os.environ["XDG_CONFIG_HOME"] = str(cls.work / "config")
        os.environ["XDG_CACHE_HOME"] = str(cls.work / "cache")
        cls.argv_log = cls.work / "argv.log"
        # A copy in a folder of its own, so nothing found "next to the
        # binary" (restic) changes what the tests see.
        bindir = cls.work / "bin"
        bindir.mkdir()
        real = bindir / "real-instance-sync"
        shutil.copy2(BINARY, real)
        cls.binary = wrapper(bindir / "instance-sync", str(real), cls.argv_log)
        resticdir = cls.work / "restic-bin"
        resticdir.mkdir()
        cls.restic = wrapper(resticdir / "restic", RESTIC, cls.argv_log)
        cls.server = Server(cls.work)
        cls.secrets: list[str] = []
        cls.watch = ArgvWatch(cls.argv_log, cls.secrets, str(real))

    @classmethod
    def tearDownClass(cls) -> None:
        watch = getattr(cls, "watch", None)
        if watch:
            watch.stop()
        server = getattr(cls, "server", None)
        if server:
            server.stop()
        shutil.rmtree(cls.work, ignore_errors=True)
        for k, v in getattr(cls, "saved_env", {}).items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v

    # helpers

    def account(self, user: str) -> str:
        token = self.server.create(user)
        self.secrets.append(token.split(":", 1)[1])
        return token

    def folder(self, name: str) -> Path:
        p = self.work / name
        (p / "saves" / "World").mkdir(parents=True)
        return p

    def token_file(self, name: str, token: str) -> Path:
        p = self.work / "tokens" / name
        p.parent.mkdir(exist_ok=True)
        p.write_text(token + "\n")
        p.chmod(0o600)
        return p

    def args(self, pack: Path, host: str, **kw) -> cloud_sync.Args:
        env = {"INSTANCE_SYNC_HOSTNAME": host, "INSTANCE_SYNC_WATCH": "0", "INSTANCE_SYNC_RESTIC": "",
               "INST_MC_DIR": "", "INST_NAME": "", "INST_ID": ""}
        kw.setdefault("restic_binary", self.restic)
        kw.setdefault("binary", self.binary)
        kw.setdefault("allow_download", False)
        return cloud_sync.Args(pack_folder=pack, env=env, **kw)

    def assertNoSecretInArgv(self) -> None:
        self.assertTrue(self.secrets)
        recorded = self.watch.recorded()
        self.assertTrue(any(ln.startswith("restic ") and " backup " in ln for ln in recorded), "no restic run was recorded")
        for line in recorded:
            for s in self.secrets:
                self.assertNotIn(s, line, "a password is on a command line (recorded by a wrapper)")
        self.assertTrue(self.watch.seen_ours, "the /proc scan saw no instance-sync run")
        self.assertEqual(self.watch.hits, [], "a password is on a command line (seen in /proc)")

    # tests

    def test_config_write_push_pull(self) -> None:
        token = self.account("alice")
        tf = self.token_file("alice", token)
        a, b = self.folder("a1"), self.folder("b1")
        (a / "saves" / "World" / "level.dat").write_bytes(os.urandom(3000))
        (a / "options.txt").write_text("fov:90\n")
        (a / "logs").mkdir()
        (a / "logs" / "latest.log").write_text("not synced\n")

        cfg = config.write(a, self.server.url, token_file=tf, label="Skyblock")
        on_disk = json.loads((a / ".cloud-sync" / "sync.json").read_text())
        self.assertEqual(on_disk, {"version": 1, "url": self.server.url, "instance_id": cfg.instance_id,
                                   "user": "alice", "label": "Skyblock"})
        self.assertRegex(cfg.instance_id, r"^[0-9A-HJKMNP-TV-Z]{26}$")
        self.assertFalse((a / ".cloud-sync" / "token").exists(), "token_file= keeps the token out of the pack")
        # Writing again without an id keeps the instance.
        self.assertEqual(config.write(a, self.server.url, token_file=tf).instance_id, cfg.instance_id)

        events: list[dict] = []
        r = cloud_sync.push(self.args(a, "computer-a", token_file=tf), on_event=events.append)
        self.assertEqual(r.action, "pushed")
        self.assertRegex(r.snapshot or "", r"^[0-9a-f]{64}$")
        self.assertEqual([e["type"] for e in events][0], "start")
        self.assertEqual(events[-1]["type"], "done")
        self.assertEqual(events[-1]["snapshot"], r.snapshot)
        self.assertEqual(events, r.events)

        # The second computer: sync.json for the same instance, the token
        # written by config.write where instance-sync looks for it, in the
        # user's config folder (mode 0600), never in the pack folder.
        config.write(b, self.server.url, token=token, instance_id=cfg.instance_id)
        port = self.server.url.rsplit(":", 1)[1]
        tok = self.work / "config" / "instance-sync" / "tokens" / f"127.0.0.1%3A{port}" / "alice" / cfg.instance_id
        self.assertEqual(config.token_path(self.server.url, "alice", cfg.instance_id), tok)
        self.assertEqual(tok.read_text(), token + "\n")
        self.assertEqual(stat.S_IMODE(tok.stat().st_mode), 0o600)
        self.assertEqual(stat.S_IMODE(tok.parent.stat().st_mode), 0o700)
        password = token.split(":", 1)[1].encode()
        for f in b.rglob("*"):
            if f.is_file():
                self.assertNotIn(password, f.read_bytes(), f"{f} holds the password")
        got = cloud_sync.pull(self.args(b, "computer-b"))
        self.assertEqual((got.action, got.snapshot), ("fast-forward", r.snapshot))
        files = ("saves/World/level.dat", "options.txt", "logs/latest.log")
        want = tree(a, *files)
        want["logs/latest.log"] = None
        self.assertEqual(tree(b, *files), want)

        again = cloud_sync.push(self.args(a, "computer-a", token_file=tf))
        self.assertEqual((again.action, again.snapshot), ("nothing", r.snapshot))
        self.assertEqual(cloud_sync.pull(self.args(b, "computer-b")).action, "nothing")
        self.assertNoSecretInArgv()

    def test_conflict(self) -> None:
        token = self.account("bob")
        a, b = self.folder("a2"), self.folder("b2")
        (a / "saves" / "World" / "level.dat").write_bytes(b"start")
        cfg = config.write(a, self.server.url, token=token)
        config.write(b, self.server.url, token=token, instance_id=cfg.instance_id)
        cloud_sync.push(self.args(a, "computer-a"))
        self.assertEqual(cloud_sync.pull(self.args(b, "computer-b")).action, "fast-forward")

        (a / "saves" / "World" / "level.dat").write_bytes(b"played on a" * 100)
        pushed = cloud_sync.push(self.args(a, "computer-a"))
        self.assertEqual(pushed.action, "pushed")
        (b / "saves" / "World" / "level.dat").write_bytes(b"played on b")
        before = sha(b / "saves" / "World" / "level.dat")

        seen: list[dict] = []
        with self.assertRaises(cloud_sync.ConflictError) as cm:
            cloud_sync.pull(self.args(b, "computer-b", on_event=seen.append))
        e = cm.exception
        self.assertNotIsInstance(e, cloud_sync.CancelledError)
        self.assertEqual(e.exit_code, 3)
        decision = next(ev for ev in seen if ev["type"] == "decision")
        self.assertEqual(decision["action"], "conflict")
        self.assertTrue(e.reason)
        self.assertEqual(e.reason, decision["reason"])
        self.assertIn("--prefer=cloud", e.message)
        self.assertEqual(e.heads, [pushed.snapshot])
        self.assertEqual(len(e.cloud), 1)
        self.assertEqual((e.cloud[0].snapshot, e.cloud[0].host), (pushed.snapshot, "computer-a"))
        self.assertEqual(e.cloud[0].worlds, ["World"])
        self.assertIsNotNone(e.cloud[0].time)
        self.assertIsNotNone(e.local)
        self.assertEqual((e.local.host, e.local.snapshot, e.local.worlds), ("computer-b", None, ["World"]))
        self.assertEqual(e.local.files, 1)
        self.assertEqual(e.local.bytes, len(b"played on b"))
        self.assertIn("conflict", [ev["type"] for ev in seen])
        self.assertEqual(sha(b / "saves" / "World" / "level.dat"), before, "a conflict changes nothing")

        r = cloud_sync.pull(self.args(b, "computer-b", prefer="cloud"))
        self.assertEqual((r.action, r.snapshot), ("used-cloud", pushed.snapshot))
        self.assertEqual(sha(b / "saves" / "World" / "level.dat"), sha(a / "saves" / "World" / "level.dat"))
        self.assertNoSecretInArgv()

    def test_merge(self) -> None:
        # Different worlds on two computers: the pull merges them, no
        # ConflictError, and the other computer takes the merge.
        token = self.account("ivy")
        a, b = self.folder("a12"), self.folder("b12")
        for w in ("One", "Two"):
            (a / "saves" / w).mkdir(parents=True, exist_ok=True)
            (a / "saves" / w / "level.dat").write_bytes(b"start " + w.encode())
        cfg = config.write(a, self.server.url, token=token)
        config.write(b, self.server.url, token=token, instance_id=cfg.instance_id)
        cloud_sync.push(self.args(a, "computer-a"))
        self.assertEqual(cloud_sync.pull(self.args(b, "computer-b")).action, "fast-forward")

        (a / "saves" / "One" / "level.dat").write_bytes(b"One, played on a")
        cloud_sync.push(self.args(a, "computer-a"))
        (b / "saves" / "Two" / "level.dat").write_bytes(b"Two, played on b")
        r = cloud_sync.pull(self.args(b, "computer-b"))
        self.assertEqual(r.action, "merged")
        self.assertEqual(r.message, "took One from computer-a; kept Two from this computer")
        self.assertEqual((b / "saves" / "One" / "level.dat").read_bytes(), b"One, played on a")
        self.assertEqual((b / "saves" / "Two" / "level.dat").read_bytes(), b"Two, played on b")
        merged = cloud_sync.push(self.args(b, "computer-b"))
        self.assertEqual(cloud_sync.pull(self.args(a, "computer-a")).action, "fast-forward")
        self.assertEqual((a / "saves" / "Two" / "level.dat").read_bytes(), b"Two, played on b")
        self.assertEqual(cloud_sync.status(self.args(a, "computer-a"))["last_snapshot"], merged.snapshot)

        # Both worlds played on both: each chosen on its own.
        for w in ("One", "Two"):
            (a / "saves" / w / "level.dat").write_bytes(w.encode() + b", a again")
        cloud_sync.push(self.args(a, "computer-a"))
        for w in ("One", "Two"):
            (b / "saves" / w / "level.dat").write_bytes(w.encode() + b", b again")
        with self.assertRaises(cloud_sync.ConflictError) as cm:
            cloud_sync.pull(self.args(b, "computer-b", prefer_worlds={"One": "cloud"}))
        self.assertEqual(cm.exception.local.worlds, ["Two"])
        r = cloud_sync.pull(self.args(b, "computer-b", prefer_worlds={"One": "cloud", "Two": "local"}))
        self.assertEqual(r.action, "merged")
        self.assertEqual((b / "saves" / "One" / "level.dat").read_bytes(), b"One, a again")
        self.assertEqual((b / "saves" / "Two" / "level.dat").read_bytes(), b"Two, b again")

    def test_wrong_password(self) -> None:
        token = self.account("carol")
        user = token.split(":", 1)[0]
        a = self.folder("a3")
        (a / "options.txt").write_text("x\n")
        wrong = self.token_file("carol-wrong", user + ":not-the-password")
        config.write(a, self.server.url, token_file=wrong)
        with self.assertRaises(cloud_sync.AuthError) as cm:
            cloud_sync.push(self.args(a, "computer-a", token_file=wrong))
        self.assertEqual(cm.exception.exit_code, 4)
        self.assertTrue(cm.exception.message)
        with self.assertRaises(cloud_sync.AuthError):
            cloud_sync.pull(self.args(a, "computer-a", token_file=wrong))

        # init checks the account first and writes nothing when it is wrong.
        c = self.folder("c3")
        (c / "options.txt").write_text("c\n")
        with self.assertRaises(cloud_sync.AuthError):
            cloud_sync.init(self.args(c, "computer-c"), self.server.url, token=user + ":also-wrong")
        self.assertFalse((c / ".cloud-sync" / "sync.json").exists())
        cfg = cloud_sync.init(self.args(c, "computer-c"), self.server.url, token=token)
        self.assertEqual(cfg.user, user)
        self.assertEqual(cloud_sync.push(self.args(c, "computer-c")).action, "pushed")
        self.assertNoSecretInArgv()

    def test_locked(self) -> None:
        token = self.account("dave")
        a = self.folder("a4")
        (a / "options.txt").write_text("x\n")
        config.write(a, self.server.url, token=token)
        with open(a / ".cloud-sync" / "lock", "a") as f:
            fcntl.flock(f, fcntl.LOCK_EX)
            with self.assertRaises(cloud_sync.LockedError) as cm:
                cloud_sync.push(self.args(a, "computer-a"))
        self.assertEqual(cm.exception.exit_code, 5)
        self.assertEqual(cloud_sync.push(self.args(a, "computer-a")).action, "pushed")

    def test_restic_missing(self) -> None:
        token = self.account("erin")
        a = self.folder("a5")
        (a / "options.txt").write_text("x\n")
        config.write(a, self.server.url, token=token)
        args = self.args(a, "computer-a", restic_binary=None)
        args.env = dict(args.env or {}, PATH=str(self.work / "empty-path"), HOME=str(self.work / "home"))
        with self.assertRaises(cloud_sync.ResticMissingError) as cm:
            cloud_sync.push(args)
        self.assertEqual(cm.exception.exit_code, 6)

    def test_callback_raises(self) -> None:
        # An exception in on_event stops the binary and comes out as it is;
        # the instance is not left locked.
        token = self.account("fay")
        a = self.folder("a9")
        (a / "saves" / "World" / "level.dat").write_bytes(os.urandom(5000))
        config.write(a, self.server.url, token=token)

        class Stop(Exception):
            pass

        def stop(ev: dict) -> None:
            if ev["type"] == "start":
                raise Stop()

        with self.assertRaises(Stop):
            cloud_sync.push(self.args(a, "computer-a", on_event=stop))
        self.assertEqual(cloud_sync.push(self.args(a, "computer-a")).action, "pushed")

    def test_disable_enable_status(self) -> None:
        token = self.account("gus")
        tf = self.token_file("gus", token)
        a = self.folder("a11")
        (a / "options.txt").write_text("x\n")
        cfg = config.write(a, self.server.url, token_file=tf)

        def args() -> cloud_sync.Args:
            return self.args(a, "computer-a", token_file=tf)

        pushed = cloud_sync.push(args())
        st = cloud_sync.status(args())
        self.assertEqual((st["opted_in"], st["instance_id"], st["last_snapshot"]), (True, cfg.instance_id, pushed.snapshot))
        cloud_sync.disable(args())
        self.assertEqual(cloud_sync.pull(args()).action, "not-opted-in")
        self.assertEqual(cloud_sync.status(args())["disabled"], True)
        cloud_sync.enable(args())
        self.assertEqual(config.read(a), cfg)
        self.assertEqual(cloud_sync.pull(args()).action, "nothing")

    def test_packignore_like_init(self) -> None:
        # config.write lists .cloud-sync in .packignore exactly as init does.
        token = self.account("hal")
        packs = []
        for name in ("inst-init", "inst-write"):
            inst = self.work / name
            (inst / "minecraft").mkdir(parents=True)
            (inst / "instance.cfg").write_text("InstanceType=OneSix\n")
            (inst / ".packignore").write_bytes(b"mods/mine.jar")
            packs.append(inst / "minecraft")
        cloud_sync.init(self.args(packs[0], "computer-a"), self.server.url, token=token)
        config.write(packs[1], self.server.url, token=token)
        by_init = (packs[0].parent / ".packignore").read_bytes()
        self.assertEqual(by_init, b"minecraft/.cloud-sync\nmods/mine.jar")
        self.assertEqual((packs[1].parent / ".packignore").read_bytes(), by_init)

    def test_not_opted_in(self) -> None:
        a = self.folder("a6")
        r = cloud_sync.pull(self.args(a, "computer-a"))
        self.assertEqual((r.action, r.snapshot, r.events), ("not-opted-in", None, []))
        self.assertFalse((a / ".cloud-sync").exists())

    def test_headless_flag(self) -> None:
        a = self.folder("a7")
        before = len(self.watch.recorded())
        cloud_sync.pull(self.args(a, "computer-a"))
        cloud_sync.pull(self.args(a, "computer-a", headless=False))
        runs = [ln for ln in self.watch.recorded()[before:] if ln.startswith("instance-sync pull ")]
        self.assertEqual(len(runs), 2)
        self.assertIn(" --no-gui", runs[0])
        self.assertNotIn("--no-gui", runs[1])
        self.assertIn(" --json", runs[1])

    def test_version_handshake(self) -> None:
        info = cloud_sync.binary(self.args(self.work, "x"))
        self.assertGreaterEqual(info.protocol, cloud_sync.PROTOCOL)
        # What a binary from before the protocol line prints.
        old = self.work / "old-instance-sync"
        old.write_text("#!/bin/sh\necho 'instance-sync v0.9.0'\n"
                       "echo 'restic: 0.18.1 from PATH: /usr/bin/restic'\n")
        old.chmod(0o755)
        with self.assertRaises(cloud_sync.BinaryTooOldError) as cm:
            cloud_sync.pull(self.args(self.work, "x", binary=old))
        self.assertIn("too old", cm.exception.message)
        self.assertIn("protocol 1", cm.exception.message)
        with self.assertRaises(cloud_sync.BinaryNotFoundError):
            cloud_sync.pull(self.args(self.work, "x", binary=self.work / "nowhere"))

    def test_found_next_to_the_package(self) -> None:
        # The package copied into the folder of the binary, nothing on PATH.
        d = self.work / "beside"
        shutil.copytree(Path(cloud_sync.__file__).parent, d / "cloud_sync",
                        ignore=shutil.ignore_patterns("__pycache__"))
        shutil.copy2(BINARY, d / "instance-sync")
        code = "import cloud_sync; print(cloud_sync.binary().path)"
        env = {"PATH": str(self.work / "empty-path"), "PYTHONPATH": str(d), "PYTHONDONTWRITEBYTECODE": "1"}
        cp = subprocess.run([sys.executable, "-c", code], env=env, cwd=d, capture_output=True, text=True, timeout=120)
        self.assertEqual((cp.returncode, cp.stderr), (0, ""))
        self.assertEqual(cp.stdout.strip(), str(d / "instance-sync"))
        env["INSTANCE_SYNC_BINARY"] = self.binary
        cp = subprocess.run([sys.executable, "-c", code], env=env, cwd=d, capture_output=True, text=True, timeout=120)
        self.assertEqual(cp.stdout.strip(), self.binary, "$INSTANCE_SYNC_BINARY comes first")

    def test_pyz_runs_the_binary_beside_it(self) -> None:
        # The predecessor's hook line: python /path/to/cloud-sync.pyz pull ...
        d = self.work / "pyz"
        d.mkdir()
        build = Path(__file__).resolve().parent.parent / "build-pyz.sh"
        subprocess.run([str(build), str(d / "cloud-sync.pyz")], check=True, capture_output=True, timeout=120)
        shutil.copy2(BINARY, d / "instance-sync")
        env = {"PATH": str(self.work / "empty-path"), "PYTHONDONTWRITEBYTECODE": "1"}
        cp = subprocess.run([sys.executable, str(d / "cloud-sync.pyz"), "version"], env=env, cwd=self.work,
                            capture_output=True, text=True, timeout=120)
        self.assertEqual((cp.returncode, cp.stderr), (0, ""))
        self.assertEqual(cp.stdout.splitlines()[:2], ["instance-sync dev", f"protocol: {cloud_sync.PROTOCOL}"])
        cp = subprocess.run([sys.executable, str(d / "cloud-sync.pyz"), "pull", "--pack-folder=" + str(self.folder("a10"))],
                            env=env, capture_output=True, text=True, timeout=120)
        self.assertEqual((cp.returncode, cp.stdout, cp.stderr), (0, "", ""))

    def test_module_runs_the_binary(self) -> None:
        # python -m cloud_sync ARGS: the predecessor's "python cloud-sync.pyz ARGS".
        env = dict(os.environ, INSTANCE_SYNC_BINARY=self.binary, PYTHONPATH=str(Path(cloud_sync.__file__).parent.parent))
        cp = subprocess.run([sys.executable, "-m", "cloud_sync", "pull", "--pack-folder=" + str(self.folder("a8"))],
                            env=env, capture_output=True, text=True, timeout=120)
        self.assertEqual((cp.returncode, cp.stdout, cp.stderr), (0, "", ""))
        cp = subprocess.run([sys.executable, "-m", "cloud_sync", "push", "--bogus"],
                            env=env, capture_output=True, text=True, timeout=120)
        self.assertEqual(cp.returncode, 2)
        self.assertIn("bogus", cp.stderr)


class Offline(unittest.TestCase):
    """What needs no binary: config.write's checks and the time parser."""

    def test_config_write_refuses(self) -> None:
        with tempfile.TemporaryDirectory() as d:
            with self.assertRaises(cloud_sync.ConfigError):
                config.write(d, "http://example.org", user="alice")  # plain http off loopback
            with self.assertRaises(cloud_sync.ConfigError):
                config.write(d, "https://example.org")  # no user
            with self.assertRaises(cloud_sync.ConfigError):
                config.write(d, "https://example.org", token="no-colon")
            tf = Path(d) / "token"
            tf.write_text("alice:pw\n")
            tf.chmod(0o644)
            with self.assertRaisesRegex(cloud_sync.ConfigError, "chmod 600"):
                config.write(d, "https://example.org", token_file=tf)
            self.assertFalse((Path(d) / ".cloud-sync" / "sync.json").exists())
            first = config.write(d, "https://example.org/", user="alice")
            self.assertEqual(first.url, "https://example.org")
            with self.assertRaisesRegex(cloud_sync.ConfigError, "force=True"):
                config.write(d, "https://example.org", user="alice", instance_id="01JD3Q6TZ0S5V9J3WQ6R6C2F4K")
            (Path(d) / ".cloud-sync" / "state.json").write_text("{}")
            config.write(d, "https://example.org", user="alice", instance_id="01JD3Q6TZ0S5V9J3WQ6R6C2F4K", force=True)
            self.assertFalse((Path(d) / ".cloud-sync" / "state.json").exists())

    def test_packignore(self) -> None:
        with tempfile.TemporaryDirectory() as d:
            inst = Path(d) / "My Pack"
            (inst / "minecraft").mkdir(parents=True)
            (inst / "instance.cfg").write_text("InstanceType=OneSix\n")
            (inst / ".packignore").write_bytes(b"mods/secret.jar\r\nnotes.txt")
            config.write(inst / "minecraft", "https://example.org", user="alice")
            self.assertEqual((inst / ".packignore").read_bytes(), b"minecraft/.cloud-sync\nmods/secret.jar\r\nnotes.txt")
            config.write(inst / "minecraft", "https://example.org", user="alice")
            self.assertEqual((inst / ".packignore").read_bytes(), b"minecraft/.cloud-sync\nmods/secret.jar\r\nnotes.txt")
            # instance.cfg in the pack folder itself; no .packignore yet.
            other = Path(d) / "flat"
            other.mkdir()
            (other / "instance.cfg").write_text("")
            config.write(other, "https://example.org", user="alice")
            self.assertEqual((other / ".packignore").read_bytes(), b".cloud-sync\n")
            # Not a Prism or MultiMC instance: nothing written beside it.
            plain = Path(d) / "plain"
            plain.mkdir()
            config.write(plain, "https://example.org", user="alice")
            self.assertFalse((Path(d) / ".packignore").exists())
            self.assertFalse((plain / ".packignore").exists())

    def test_token_path(self) -> None:
        from cloud_sync.config import _path_part, _server_part
        self.assertEqual(_server_part("http://127.0.0.1:8000/"), "127.0.0.1%3A8000")
        self.assertEqual(_server_part("HTTPS://cloud.tm.center"), "cloud.tm.center")
        self.assertEqual(_path_part(".hidden"), "%2Ehidden")
        self.assertEqual(_path_part("a.b~c_d-e"), "a.b~c_d-e")
        self.assertEqual(_path_part("é/x"), "%C3%A9%2Fx")
        self.assertEqual(_path_part(""), "%00")

    def test_parse_time(self) -> None:
        from cloud_sync.errors import parse_time
        t = parse_time("2026-11-25T12:31:07.853123456Z")
        self.assertEqual((t.year, t.microsecond, t.utcoffset().total_seconds()), (2026, 853123, 0))
        self.assertEqual(parse_time("2026-11-25T13:31:07+01:00").hour, 13)
        self.assertIsNone(parse_time("0001-01-01T00:00:00Z"))
        self.assertIsNone(parse_time("yesterday"))


if __name__ == "__main__":
    unittest.main()
