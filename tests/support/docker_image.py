"""Build the Docker test image offline: a root filesystem assembled from this machine.

No image registry can be reached, so the tests make their own image: the host's bash,
coreutils, python3 (standard library zipped), git, curl and wget, with the shared
libraries ``ldd`` lists for each, plus a minimal /etc. It is streamed as a tar to
``docker import`` and tagged ``errand-test:<content hash>`` and ``errand-test:latest``;
an image with the same hash is reused, so CI only rebuilds when the host's files change.

Run ``python tests/docker_image.py`` to build it by hand; it prints the image tag.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import re
import shutil
import subprocess
import sysconfig
import tarfile
import zipfile
from pathlib import Path
from typing import Any

REPOSITORY = "errand-test"
PROGRAMS = (  # noqa: SIM905
    "bash sh env id cat ls touch mkdir rm rmdir mv cp ln chmod head tail tr sleep echo "
    "printf wc sort uniq dd seq yes true false test pwd uname stat readlink dirname "
    "basename grep sed tee timeout nproc python3 git curl wget getent"
).split()
"""Wanted inside the image; ``curl``, ``wget`` and ``getent`` are the network probes."""
DATA_DIRS = ("/usr/lib/locale/C.utf8",)
"""Copied whole: the C.UTF-8 locale the sandbox environment selects."""
REQUIRED_PROBES = ("curl", "wget", "python3", "bash")
STDLIB_SKIP = {
    "test",
    "tests",
    "idlelib",
    "tkinter",
    "turtledemo",
    "lib2to3",
    "ensurepip",
    "pydoc_data",
    "site-packages",
    "dist-packages",
    "__pycache__",
    "venv",
    "distutils",
}
ETC = {
    "etc/passwd": "root:x:0:0:root:/root:/bin/bash\n"
    "errand:x:1000:1000:errand:/tmp/home:/bin/bash\n"
    "nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n",
    "etc/group": "root:x:0:\nerrand:x:1000:\nnogroup:x:65534:\n",
    "etc/nsswitch.conf": "passwd: files\ngroup: files\nhosts: files dns\n",
    "etc/hosts": "127.0.0.1 localhost\n",
    "etc/resolv.conf": "nameserver 127.0.0.1\n",
}


def _libraries(binary: str) -> set[str]:
    out = subprocess.run(["ldd", binary], capture_output=True, text=True).stdout
    found = set()
    for line in out.splitlines():
        match = re.search(r"(/\S+)\s+\(0x", line)
        if match:
            found.add(match.group(1))
    return found


def _files() -> tuple[dict[str, Path], bytes, list[str]]:
    """(archive path -> host file, zipped stdlib, programs that were missing)."""
    files: dict[str, Path] = {}
    missing = []
    binaries = []
    for name in PROGRAMS:
        found = shutil.which(name, path="/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin")
        if found is None:
            missing.append(name)
            continue
        files[f"usr/bin/{name}"] = Path(os.path.realpath(found))
        binaries.append(found)
    stdlib = Path(_system_stdlib(files.get("usr/bin/python3")))
    dynload = stdlib / "lib-dynload"
    if dynload.is_dir():
        for so in sorted(dynload.glob("*.so")):
            files[f"usr/lib/{stdlib.name}/lib-dynload/{so.name}"] = so
            binaries.append(str(so))
    for binary in binaries:
        for lib in _libraries(binary):
            files[lib.lstrip("/")] = Path(os.path.realpath(lib))
    for locale_dir in DATA_DIRS:
        for dirpath, _, filenames in os.walk(locale_dir):
            for name in filenames:
                path = Path(dirpath) / name
                files[str(path).lstrip("/")] = Path(os.path.realpath(path))
    files["bin/sh"] = files["usr/bin/sh"]
    files["bin/bash"] = files["usr/bin/bash"]
    return files, _zip_stdlib(stdlib), missing


def _system_stdlib(python: Path | None) -> str:
    if python is None:
        return sysconfig.get_paths()["stdlib"]
    out = subprocess.run(
        [str(python), "-S", "-c", "import sysconfig; print(sysconfig.get_paths()['stdlib'])"],
        capture_output=True,
        text=True,
        check=True,
    )
    return out.stdout.strip()


def _zip_stdlib(stdlib: Path) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for dirpath, dirnames, filenames in os.walk(stdlib):
            dirnames[:] = sorted(d for d in dirnames if d not in STDLIB_SKIP)
            rel_dir = Path(dirpath).relative_to(stdlib)
            for name in sorted(filenames):
                if name.endswith(".py"):
                    path = Path(dirpath) / name
                    info = zipfile.ZipInfo(str(rel_dir / name), date_time=(2020, 1, 1, 0, 0, 0))
                    info.compress_type = zipfile.ZIP_DEFLATED
                    archive.writestr(info, path.read_bytes())
    return buffer.getvalue()


def _tar(files: dict[str, Path], stdlib_zip: bytes, stdlib_name: str) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:

        def add_dir(name: str, mode: int = 0o755) -> None:
            info = tarfile.TarInfo(name)
            info.type = tarfile.DIRTYPE
            info.mode = mode
            tar.addfile(info)

        def add_bytes(name: str, data: bytes, mode: int = 0o644) -> None:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = mode
            tar.addfile(info, io.BytesIO(data))

        dirs = set()
        skeleton = ["tmp", "proc", "sys", "dev", "etc", "root", "var/tmp"]
        for name in [*files, *(f"{d}/-" for d in skeleton)]:
            parent = Path(name).parent
            while str(parent) != ".":
                dirs.add(str(parent))
                parent = parent.parent
        for name in sorted(dirs):
            add_dir(name, 0o1777 if name in ("tmp", "var/tmp") else 0o755)
        for name, source in sorted(files.items()):
            add_bytes(name, source.read_bytes(), 0o755 if os.access(source, os.X_OK) else 0o644)
        version = stdlib_name.removeprefix("python").replace(".", "")
        add_bytes(f"usr/lib/python{version}.zip", stdlib_zip)
        for name, text in sorted(ETC.items()):
            add_bytes(name, text.encode())
    return buffer.getvalue()


def missing_programs() -> list[str]:
    return _files()[2]


def ensure_test_image(client: Any | None = None) -> str:
    """Build (or reuse) the test image and return its tag ``errand-test:latest``."""
    import docker

    client = client or docker.from_env()
    files, stdlib_zip, _ = _files()
    stdlib_name = next(p.split("/")[2] for p in files if p.startswith("usr/lib/python3"))
    digest = hashlib.sha256()
    for name, source in sorted(files.items()):
        digest.update(name.encode() + b"\0" + hashlib.sha256(source.read_bytes()).digest())
    digest.update(hashlib.sha256(stdlib_zip).digest())
    digest.update(Path(__file__).read_bytes())  # a change to this builder rebuilds too
    tag = digest.hexdigest()[:16]
    try:
        image = client.images.get(f"{REPOSITORY}:{tag}")
    except docker.errors.ImageNotFound:
        data = _tar(files, stdlib_zip, stdlib_name)
        client.api.import_image_from_data(
            data,
            repository=REPOSITORY,
            tag=tag,
            changes=[f"ENV PATH={'/usr/local/bin:/usr/bin:/bin'}", "WORKDIR /"],
        )
        image = client.images.get(f"{REPOSITORY}:{tag}")
        for old in client.images.list(name=REPOSITORY):
            if old.id != image.id:
                with contextlib.suppress(docker.errors.APIError):
                    client.images.remove(old.id, force=True)
    image.tag(REPOSITORY, "latest")
    return f"{REPOSITORY}:latest"


if __name__ == "__main__":
    print(ensure_test_image())


def engine_or_skip() -> Any:
    """A Docker client, or skip — but fail under CI, where an engine must answer."""
    import docker
    import pytest

    try:
        client = docker.from_env()
        client.ping()
    except Exception as exc:  # noqa: BLE001 - any failure means "no engine"
        message = f"no Docker engine answers ({exc}); run scripts/start-dockerd.sh"
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true: {message}")
        pytest.skip(message)
    return client
