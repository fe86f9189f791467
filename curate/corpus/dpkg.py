"""What dpkg knows about installed Debian packages: versions, file lists and owners.

Versions come from one ``dpkg-query -W`` call; file lists from dpkg's database
(``/var/lib/dpkg/info/<package>.list``), read once and kept. On a system without dpkg
nothing is installed and no file has an owner.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

INFO_DIR = Path("/var/lib/dpkg/info")


def install_command(packages) -> str:
    """The apt command line that installs ``packages``."""
    return "apt-get install --no-install-recommends " + " ".join(packages)


class Dpkg:
    """Installed packages, read lazily and cached: :meth:`version`, :meth:`files`,
    :meth:`owners`."""

    def __init__(self, info_dir: Path = INFO_DIR):
        self.info_dir = info_dir
        self._versions: dict[str, str] | None = None
        self._lists: dict[str, list[Path]] | None = None
        self._files: dict[str, list[str]] = {}
        self._owners: dict[str, str] | None = None

    def versions(self) -> dict[str, str]:
        """Package name -> version of every installed package (``dpkg-query -W``)."""
        if self._versions is None:
            try:
                out = subprocess.run(
                    ["dpkg-query", "-W", "-f", "${Package}\t${Version}\t${db:Status-Abbrev}\n"],
                    capture_output=True, text=True, check=False).stdout
            except FileNotFoundError:  # not a Debian system
                out = ""
            self._versions = {}
            for line in out.splitlines():
                package, version, status = line.split("\t")
                if status[1:2] == "i":  # installed (wanted: install or hold)
                    self._versions[package] = version
        return self._versions

    def installed(self, package: str) -> bool:
        return package in self.versions()

    def version(self, package: str) -> str:
        """The installed version of ``package`` (KeyError if it is not installed)."""
        return self.versions()[package]

    def files(self, package: str) -> list[str]:
        """The paths dpkg installed for ``package`` (files, folders and links), as listed."""
        if self._lists is None:  # <package>.list, or <package>:<arch>.list (Multi-Arch: same)
            self._lists = {}
            for path in sorted(self.info_dir.glob("*.list")):
                self._lists.setdefault(path.stem.partition(":")[0], []).append(path)
        if package not in self._files:
            self._files[package] = [line for path in self._lists.get(package, ())
                                    for line in path.read_text("utf-8").splitlines() if line]
        return self._files[package]

    def owners(self) -> dict[str, str]:
        """Path -> installed package that ships it, over every installed package."""
        if self._owners is None:
            self._owners = {}
            for package in sorted(self.versions()):
                for path in self.files(package):
                    self._owners.setdefault(path, package)
        return self._owners
