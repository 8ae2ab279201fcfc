"""A small, real filesystem for tests: a tmpfs mounted in a helper process's own mount namespace.

Mounting needs privileges; a user namespace gives them without root (``unshare --user
--map-root-user --mount``), and only inside the helper's namespace: the host's mounts are never
touched, and the tmpfs goes away with the helper, even when a test dies. The test reaches the
tmpfs through ``/proc/<helper pid>/root/<mount point>``, so its own code (and an edge app it runs)
writes to a disk that really fills up (``ENOSPC``) or really is read-only (``EROFS``); nothing of
ours is mocked. The helper can grow, shrink or re-mount the disk while it is in use.

Where no namespace can be made (no ``unshare``, user namespaces disabled, a container without
the privilege), :func:`small_disk` skips the test, saying why.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

_HELPER = r"""
mount -t tmpfs -o "$1" tmpfs "$0" || exit 3
echo ready
while read -r options; do
    if mount -o "remount,$options" "$0"; then echo ok; else echo failed; fi
done
"""


class SmallDisk:
    """A tmpfs of ``size_bytes`` mounted at ``mount_point`` in a helper's mount namespace.

    Attributes:
        path: where this process reaches the tmpfs.
    """

    def __init__(self, mount_point: Path, size_bytes: int, *, read_only: bool = False):
        unshare = shutil.which("unshare")
        if unshare is None:
            pytest.skip("no unshare(1): a small real filesystem cannot be mounted here")
        mount_point.mkdir(parents=True, exist_ok=True)
        options = f"size={size_bytes},mode=0755" + (",ro" if read_only else "")
        # the helper lives while its stdin is open; its script gets the mount point as $0
        self._helper = subprocess.Popen(
            [unshare, "--user", "--map-root-user", "--mount"]
            + ["sh", "-c", _HELPER, str(mount_point), options],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            bufsize=1,
        )
        if self._read_line() == "ready":
            self.path = Path(f"/proc/{self._helper.pid}/root") / mount_point.relative_to("/")
            return
        self.close()
        stderr = self._stderr
        pytest.skip(f"cannot mount a tmpfs in a user namespace here: {stderr.strip()}")

    def remount(self, options: str) -> None:
        """Re-mount with ``options`` (``size=8m``, ``ro``, ``rw``)."""
        self._helper.stdin.write(options + "\n")
        self._helper.stdin.flush()
        answer = self._read_line()
        assert answer == "ok", f"remount,{options} failed: {answer!r}"

    def free_bytes(self) -> int:
        stats = os.statvfs(self.path)
        return stats.f_bavail * stats.f_frsize

    def close(self) -> None:
        """End the helper; the tmpfs goes with its namespace."""
        if self._helper.stdin and not self._helper.stdin.closed:
            self._helper.stdin.close()
        try:
            self._helper.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self._helper.kill()
            self._helper.wait()
        self._stderr = self._helper.stderr.read()
        self._helper.stdout.close()
        self._helper.stderr.close()

    def _read_line(self) -> str:
        return self._helper.stdout.readline().strip()
