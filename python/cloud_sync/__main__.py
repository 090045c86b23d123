"""``python -m cloud_sync ARGS...`` (and ``python cloud-sync.pyz ARGS...``,
see build-pyz.sh) runs ``instance-sync ARGS...``.

The predecessor was started as ``python cloud-sync.pyz pull --pack-folder=...``
from launcher hooks; its commands and flags are instance-sync's, so this
hands them over unchanged and exits with the binary's code.
"""

from __future__ import annotations

import os
import subprocess
import sys

from ._binary import check_binary, find_binary
from .errors import SyncError


def main(argv: list[str]) -> int:
    try:
        path = find_binary()
        check_binary(path)
    except SyncError as e:
        print(f"cloud_sync: {e}", file=sys.stderr)
        return 1
    if os.name != "nt":
        os.execv(path, [path, *argv])
    return subprocess.call([path, *argv])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
