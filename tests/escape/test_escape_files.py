"""File probes: writes that work from the host must not work from inside a sandbox.

Every probe is first run on the host against a fresh set of places and shown to change
the target; it then runs inside a sandbox on another fresh set, which must stay intact.
(apply_patch's own path checks are tested with the tools, not here.)
"""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from support.probes import Places, inside, outside

PlacesFactory = Callable[[], Places]


@pytest.fixture
def fresh() -> Iterator[PlacesFactory]:
    made: list[Path] = []

    def make() -> Places:
        base = Path(tempfile.mkdtemp(prefix="errand-escape-", dir="/var/tmp")).resolve()
        os.chmod(base, 0o755)
        made.append(base)
        return Places(base)

    yield make
    for base in made:
        shutil.rmtree(base, ignore_errors=True)


# Each probe is a shell command template over {repo}, {copy} and {base}; the check says
# whether the escape happened, looking at the host's files.
PROBES: dict[str, tuple[str, Callable[[Places], bool]]] = {
    "overwrite a file of the user's repository": (
        "echo pwned > {repo}/tracked.txt",
        lambda p: (p.repo / "tracked.txt").read_text() == "pwned\n",
    ),
    "create a file in the user's repository": (
        "echo pwned > {repo}/new.txt",
        lambda p: (p.repo / "new.txt").exists(),
    ),
    "change the real .git config": (
        "printf '[core]\\n\\tfsmonitor = touch /tmp/pwned\\n' >> {repo}/.git/config",
        lambda p: "fsmonitor" in (p.repo / ".git" / "config").read_text(),
    ),
    "plant a hook in the real .git": (
        "mkdir -p {repo}/.git/hooks && echo 'echo pwned' > {repo}/.git/hooks/post-checkout",
        lambda p: (p.repo / ".git" / "hooks" / "post-checkout").exists(),
    ),
    "write into the real .git's objects (which the copy borrows)": (
        "echo junk > {repo}/.git/objects/pwned",
        lambda p: (p.repo / ".git" / "objects" / "pwned").exists(),
    ),
    "write next to the task copy": (
        "echo pwned > {base}/sibling.txt",
        lambda p: (p.base / "sibling.txt").exists(),
    ),
    "write through a symlink to a file outside": (
        "ln -s {repo}/tracked.txt {copy}/link && echo pwned > {copy}/link",
        lambda p: (p.repo / "tracked.txt").read_text() == "pwned\n",
    ),
    "write through a symlink to a folder outside": (
        "ln -s {base} {copy}/out && echo pwned > {copy}/out/through-dir.txt",
        lambda p: (p.base / "through-dir.txt").exists(),
    ),
    "write through a hard link to a file outside": (
        "ln {repo}/tracked.txt {copy}/hard && echo pwned > {copy}/hard",
        lambda p: (p.repo / "tracked.txt").read_text() == "pwned\n",
    ),
    "rename the user's repository away": (
        "mv {repo} {base}/moved",
        lambda p: not p.repo.exists(),
    ),
}


@pytest.mark.parametrize("name", list(PROBES))
def test_write_outside_the_copy(backend: str, fresh: PlacesFactory, name: str) -> None:
    template, escaped = PROBES[name]

    host = fresh()
    result = outside(template.format(repo=host.repo, copy=host.copy, base=host.base))
    assert result.returncode == 0 and escaped(host), f"the probe must work outside: {result}"

    places = fresh()
    before = places.snapshot()
    result_in = inside(
        backend,
        places,
        template.format(repo=places.repo, copy=places.copy, base=places.base),
    )
    assert result_in.exit_code != 0, result_in.output
    assert not escaped(places), result_in.output
    assert places.snapshot() == before


def test_symlinks_committed_in_the_copy_do_not_lead_out(backend: str, fresh: PlacesFactory) -> None:
    """A repository may contain symlinks that point outside; following them must not
    write outside either (they are created before the sandbox starts here)."""
    places = fresh()
    (places.copy / "evil-link").symlink_to(places.repo / "tracked.txt")
    (places.copy / "evil-dir").symlink_to(places.base)
    result = inside(backend, places, "echo pwned > evil-link; echo pwned > evil-dir/x.txt")
    assert result.exit_code != 0
    assert (places.repo / "tracked.txt").read_text() == "user data\n"
    assert not (places.base / "x.txt").exists()


def test_only_the_copy_is_writable(backend: str, fresh: PlacesFactory) -> None:
    """Everything else that could outlive the command refuses writes; /tmp and HOME are
    private and vanish with the sandbox."""
    places = fresh()
    token = uuid.uuid4().hex
    targets = ["/etc", "/usr", "/var/tmp", "/opt", "/root", "/home", "/srv", "/run"]
    command = "".join(
        f"( echo x > {t}/errand-{token} ) 2>/dev/null && echo WROTE {t}; " for t in targets
    )
    command += f"echo ok > {places.copy}/inside.txt && echo x > /tmp/{token} && echo DONE"
    result = inside(backend, places, command)
    assert "WROTE" not in result.output, result.output
    assert result.output.strip().endswith("DONE")
    assert (places.copy / "inside.txt").read_text() == "ok\n"
    assert not any(Path(t, f"errand-{token}").exists() for t in targets)
    assert not Path("/tmp", token).exists()


def test_read_only_sandbox_refuses_writes_to_the_copy(backend: str, fresh: PlacesFactory) -> None:
    places = fresh()
    result = inside(
        backend, places, "cat tracked.txt && echo changed > tracked.txt", writable=False
    )
    # docker exec delivers stdout and stderr on separate streams: their order may vary.
    assert result.exit_code != 0 and "user data\n" in result.output
    assert "Read-only file system" in result.output
    assert (places.copy / "tracked.txt").read_text() == "user data\n"
