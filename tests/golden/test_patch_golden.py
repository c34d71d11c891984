"""Golden and property tests for errand's apply_patch tool.

Each folder under tests/golden/patch/ is a scenario: ``input/`` (a tree, absent = empty),
``patch`` (the patch text), and either ``expected/`` (the resulting tree, absent = empty) or
``error`` (a substring the PatchError message must contain; the tree must then be unchanged).
An optional ``summary`` file is compared with ``PatchResult.summary()``.
Symlink scenarios are built here in code, since git can't carry links pointing outside.
"""

from __future__ import annotations

import difflib
import os
import shutil
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from errand.patch import (
    AddFile,
    DeleteFile,
    PatchedFile,
    PatchError,
    UpdateFile,
    apply_patch,
    parse_patch,
)

GOLDEN = Path(__file__).parent / "patch"
SCENARIOS = sorted(p.name for p in GOLDEN.iterdir() if p.is_dir())

Tree = dict[str, tuple[str, bytes, bool]]


def snapshot(root: Path) -> Tree:
    """Every file and symlink under root: kind, bytes (or link target), executable bit."""
    out: Tree = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in filenames + dirnames:
            p = Path(dirpath) / name
            rel = p.relative_to(root).as_posix()
            st_ = os.lstat(p)
            if stat.S_ISLNK(st_.st_mode):
                out[rel] = ("link", os.readlink(p).encode(), False)
            elif stat.S_ISREG(st_.st_mode):
                out[rel] = ("file", p.read_bytes(), bool(st_.st_mode & stat.S_IXUSR))
    return out


def copy_tree(src: Path, dst: Path) -> None:
    if src.is_dir():
        shutil.copytree(src, dst, symlinks=True)
    else:
        dst.mkdir()


def test_there_are_scenarios() -> None:
    assert len(SCENARIOS) >= 40


@pytest.mark.parametrize("name", SCENARIOS)
def test_golden(name: str, tmp_path: Path) -> None:
    case = GOLDEN / name
    root = tmp_path / "root"
    copy_tree(case / "input", root)
    patch = (case / "patch").read_bytes().decode("utf-8")
    before = snapshot(root)
    error_file = case / "error"
    if error_file.exists():
        want = error_file.read_text(encoding="utf-8").strip()
        with pytest.raises(PatchError) as info:
            apply_patch(patch, root)
        assert want in str(info.value)
        assert "No files were changed." in str(info.value)
        assert not info.value.partial
        assert snapshot(root) == before
        return
    result = apply_patch(patch, root)
    expected = tmp_path / "expected"
    copy_tree(case / "expected", expected)
    assert snapshot(root) == snapshot(expected)
    summary = case / "summary"
    if summary.exists():
        assert result.summary() == summary.read_text(encoding="utf-8").strip()


# --- symlinks, .git, directories, modes: built in code -----------------------------------


def _patch(*body: str) -> str:
    return "\n".join(["*** Begin Patch", *body, "*** End Patch"]) + "\n"


@pytest.fixture
def world(tmp_path: Path) -> tuple[Path, Path]:
    """A workspace root and a sibling 'outside' folder holding a secret file."""
    root = tmp_path / "root"
    outside = tmp_path / "outside"
    root.mkdir()
    outside.mkdir()
    (outside / "secret.txt").write_text("secret\n")
    (root / "inside.txt").write_text("one\ntwo\n")
    (root / "sub").mkdir()
    (root / "sub" / "real.txt").write_text("alpha\nbeta\n")
    return root, outside


def _refused(patch: str, root: Path, outside: Path, want: str) -> None:
    before_root, before_out = snapshot(root), snapshot(outside)
    with pytest.raises(PatchError) as info:
        apply_patch(patch, root)
    assert want in str(info.value)
    assert snapshot(root) == before_root
    assert snapshot(outside) == before_out


@pytest.mark.parametrize(
    "patch",
    [
        _patch("*** Update File: leak.txt", "-secret", "+owned"),
        _patch("*** Delete File: leak.txt"),
        _patch("*** Update File: leak.txt", "*** Move to: moved.txt"),
        _patch("*** Add File: leak.txt", "+owned"),
    ],
    ids=["update", "delete", "move-source", "add"],
)
def test_file_symlink_outside_is_refused(world: tuple[Path, Path], patch: str) -> None:
    root, outside = world
    (root / "leak.txt").symlink_to(outside / "secret.txt")
    _refused(patch, root, outside, "leak.txt is a symlink")


@pytest.mark.parametrize(
    "patch",
    [
        _patch("*** Update File: out/secret.txt", "-secret", "+owned"),
        _patch("*** Delete File: out/secret.txt"),
        _patch("*** Add File: out/new.txt", "+owned"),
        _patch("*** Add File: out/deeper/new.txt", "+owned"),
        _patch("*** Update File: inside.txt", "*** Move to: out/inside.txt"),
    ],
    ids=["update", "delete", "add", "add-deeper", "move-dest"],
)
def test_dir_symlink_outside_is_refused(world: tuple[Path, Path], patch: str) -> None:
    root, outside = world
    (root / "out").symlink_to(outside, target_is_directory=True)
    _refused(patch, root, outside, "out is a symlink")


def test_relative_symlink_escaping_is_refused(world: tuple[Path, Path]) -> None:
    root, outside = world
    (root / "sub" / "up").symlink_to("../../outside")
    patch = _patch("*** Update File: sub/up/secret.txt", "-secret", "+owned")
    _refused(patch, root, outside, "sub/up is a symlink")


def test_dangling_symlink_outside_is_refused(world: tuple[Path, Path]) -> None:
    root, outside = world
    (root / "dangling").symlink_to(outside / "nothing-here")
    _refused(_patch("*** Add File: dangling", "+x"), root, outside, "dangling is a symlink")
    _refused(_patch("*** Add File: dangling/x", "+x"), root, outside, "dangling is a symlink")
    assert not (outside / "nothing-here").exists()


def test_add_never_writes_through_symlink_even_inside(world: tuple[Path, Path]) -> None:
    root, outside = world
    (root / "alias.txt").symlink_to("inside.txt")
    (root / "dangling.txt").symlink_to("sub/not-yet.txt")
    _refused(_patch("*** Add File: alias.txt", "+x"), root, outside, "never writes through")
    _refused(_patch("*** Add File: dangling.txt", "+x"), root, outside, "never writes through")
    assert not (root / "sub" / "not-yet.txt").exists()


def test_move_onto_symlink_is_refused(world: tuple[Path, Path]) -> None:
    root, outside = world
    (root / "alias.txt").symlink_to("sub/real.txt")
    patch = _patch("*** Update File: inside.txt", "*** Move to: alias.txt")
    _refused(patch, root, outside, "alias.txt' is a symlink")


def test_symlinks_inside_root_are_followed(world: tuple[Path, Path]) -> None:
    root, _ = world
    (root / "alias.txt").symlink_to("sub/real.txt")
    (root / "linkdir").symlink_to("sub", target_is_directory=True)
    patch = _patch(
        "*** Update File: alias.txt",
        "-alpha",
        "+ALPHA",
        "*** Add File: linkdir/new.txt",
        "+fresh",
    )
    result = apply_patch(patch, root)
    assert (root / "sub" / "real.txt").read_text() == "ALPHA\nbeta\n"
    assert (root / "alias.txt").is_symlink()  # the link itself is untouched
    assert (root / "sub" / "new.txt").read_text() == "fresh\n"
    # Reported paths are the real files the diff will show.
    assert result.files == [
        PatchedFile("sub/real.txt", "modified"),
        PatchedFile("sub/new.txt", "added"),
    ]


def test_delete_of_symlink_removes_the_link_only(world: tuple[Path, Path]) -> None:
    root, _ = world
    (root / "alias.txt").symlink_to("inside.txt")
    result = apply_patch(_patch("*** Delete File: alias.txt"), root)
    assert not os.path.lexists(root / "alias.txt")
    assert (root / "inside.txt").read_text() == "one\ntwo\n"
    assert result.summary() == "D alias.txt"


def test_symlink_into_git_is_refused(world: tuple[Path, Path]) -> None:
    root, outside = world
    (root / ".git").mkdir()
    (root / ".git" / "config").write_text("[core]\n")
    (root / "cfg").symlink_to(".git/config")
    (root / "gitdir").symlink_to(".git", target_is_directory=True)
    _refused(_patch("*** Update File: cfg", "-[core]", "+[x]"), root, outside, "into .git")
    _refused(_patch("*** Add File: gitdir/hooks/pre-commit", "+x"), root, outside, "into .git")


def test_existing_git_dir_and_gitfile_are_refused(world: tuple[Path, Path]) -> None:
    root, outside = world
    (root / ".git").mkdir()
    (root / ".git" / "HEAD").write_text("ref: refs/heads/main\n")
    (root / "wt").mkdir()
    (root / "wt" / ".git").write_text("gitdir: /elsewhere\n")
    for patch in (
        _patch("*** Update File: .git/HEAD", "-ref: refs/heads/main", "+ref: refs/heads/x"),
        _patch("*** Delete File: .git/HEAD"),
        _patch("*** Delete File: wt/.git"),
        _patch("*** Add File: .GIT/hooks/post-checkout", "+#!/bin/sh"),
        _patch("*** Update File: inside.txt", "*** Move to: .git/inside.txt"),
    ):
        _refused(patch, root, outside, "inside .git")


def test_unusual_but_legal_names_are_accepted(tmp_path: Path) -> None:
    names = ["a:b.txt", "~notes", "C:x", "-dash.txt", "+plus", "sp ace.txt", "été/日記.txt"]
    patch = _patch(*[line for n in names for line in (f"*** Add File: {n}", "+x")])
    result = apply_patch(patch, tmp_path)
    assert [f.path for f in result.files] == names
    assert all((tmp_path / n).read_text() == "x\n" for n in names)


def test_delete_leaves_directories(tmp_path: Path) -> None:
    (tmp_path / "a" / "b").mkdir(parents=True)
    (tmp_path / "a" / "b" / "only.txt").write_text("x\n")
    apply_patch(_patch("*** Delete File: a/b/only.txt"), tmp_path)
    assert (tmp_path / "a" / "b").is_dir()
    assert list((tmp_path / "a" / "b").iterdir()) == []


def test_modes_are_preserved(tmp_path: Path) -> None:
    script = tmp_path / "run.sh"
    script.write_text("#!/bin/sh\necho hi\n")
    script.chmod(0o754)
    tool = tmp_path / "tool.sh"
    tool.write_text("#!/bin/sh\necho tool\n")
    tool.chmod(0o700)
    patch = _patch(
        "*** Update File: run.sh",
        "-echo hi",
        "+echo hello",
        "*** Update File: tool.sh",
        "*** Move to: bin/tool",
        " #!/bin/sh",
        "-echo tool",
        "+echo tool v2",
    )
    result = apply_patch(patch, tmp_path)
    assert script.read_text() == "#!/bin/sh\necho hello\n"
    assert stat.S_IMODE(script.stat().st_mode) == 0o754
    moved = tmp_path / "bin" / "tool"
    assert stat.S_IMODE(moved.stat().st_mode) == 0o700
    assert not tool.exists()
    assert result.summary() == "M run.sh\nR tool.sh -> bin/tool"


def test_updated_file_keeps_other_hard_links_intact(tmp_path: Path) -> None:
    """A task copy may share inodes with the user's tree; edits must not write through."""
    original = tmp_path / "user.txt"
    original.write_text("a\nb\n")
    (tmp_path / "copy").mkdir()
    os.link(original, tmp_path / "copy" / "user.txt")
    apply_patch(_patch("*** Update File: user.txt", "-a", "+A"), tmp_path / "copy")
    assert (tmp_path / "copy" / "user.txt").read_text() == "A\nb\n"
    assert original.read_text() == "a\nb\n"


ROLLBACK_CHILD = textwrap.dedent(
    """
    import resource, signal, sys
    from pathlib import Path
    from errand.patch import PatchError, apply_patch
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096))
    try:
        apply_patch(sys.stdin.read(), Path(sys.argv[1]))
    except PatchError as e:
        print(e)
        sys.exit(3)
    """
)


def test_os_error_mid_write_rolls_back(tmp_path: Path) -> None:
    """A real write failure (file size limit, EFBIG) after earlier writes: all undone."""
    root = tmp_path / "root"
    root.mkdir()
    (root / "small.txt").write_text("keep me\n")
    (root / "gone.txt").write_text("delete me\n")
    (root / "gone.txt").chmod(0o751)
    (root / "ren.txt").write_text("rename me\n")
    big = ["+" + "x" * 99] * 100  # ~10 KB, above the 4 KiB limit
    patch = _patch(
        "*** Update File: small.txt",
        "-keep me",
        "+changed",
        "*** Delete File: gone.txt",
        "*** Update File: ren.txt",
        "*** Move to: moved/ren.txt",
        "*** Add File: deep/dir/big.txt",
        *big,
    )
    before = snapshot(root)
    proc = subprocess.run(
        [sys.executable, "-c", ROLLBACK_CHILD, str(root)],
        input=patch,
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 3, proc.stderr
    assert "Writing deep/dir/big.txt failed" in proc.stdout
    assert "rolled back" in proc.stdout
    assert snapshot(root) == before
    assert sorted(p.name for p in root.iterdir()) == ["gone.txt", "ren.txt", "small.txt"]
    # The same patch applies fine without the limit.
    apply_patch(patch, root)
    assert (root / "deep" / "dir" / "big.txt").stat().st_size == 100 * 100


# --- parser ---------------------------------------------------------------------------------


def test_parse_patch_shapes() -> None:
    hunks = parse_patch(
        _patch(
            "*** Add File: a.txt",
            "+x",
            "*** Delete File: b.txt",
            "*** Update File: c.py",
            "*** Move to: d.py",
            "@@ class C:",
            "@@     def f(self):",
            "-        return 1",
            "+        return 2",
            "*** End of File",
        )
    )
    assert [type(h) for h in hunks] == [AddFile, DeleteFile, UpdateFile]
    add, _, upd = hunks
    assert isinstance(add, AddFile) and add.content == "x\n"
    assert isinstance(upd, UpdateFile) and upd.move_to == "d.py"
    (chunk,) = upd.chunks
    assert chunk.anchors == ("class C:", "    def f(self):")
    assert chunk.old == ["        return 1"] and chunk.new == ["        return 2"]
    assert chunk.at_eof


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "The patch is empty"),
        ("hello\n*** End Patch\n", "line 1: the patch must start with '*** Begin Patch'"),
        ("*** Begin Patch\n*** Add File: a\n+x\n", "line 3: the patch must end with"),
        ("*** Begin Patch\n*** End Patch\n", "no hunks"),
        ("*** Begin Patch\n*** Add File: a\nx\n*** End Patch", "line 3: in '*** Add File: a'"),
        ("*** Begin Patch\n*** Frobnicate: a\n*** End Patch", "line 2: expected '*** Add File"),
        ("*** Begin Patch\n*** Update File: a\n*** End Patch", "line 2: '*** Update File: a' has"),
        ("*** Begin Patch\n*** Delete File: a\n-x\n*** End Patch", "line 3: '*** Delete File:'"),
        ("*** Begin Patch\n*** Update File: a\nfoo\n*** End Patch", "line 3: in '*** Update"),
        ("*** Begin Patch\n*** Update File: a\n@@ x\n*** End Patch", "line 3: '@@ x'"),
        ("*** Begin Patch\n*** Add File: /etc/passwd\n+x\n*** End Patch", "absolute path"),
        ("*** Begin Patch\n*** Add File: a/../../b\n+x\n*** End Patch", "contains '..'"),
        ("*** Begin Patch\n*** Add File: \n+x\n*** End Patch", "line 2: the file path is missing"),
        ("*** Begin Patch\n*** Add File: a\\b\n+x\n*** End Patch", "backslash"),
        (
            "*** Begin Patch\n*** Update File: a\n-x\n*** End of File\n-y\n*** End Patch",
            "line 5: after '*** End of File'",
        ),
        (
            "*** Begin Patch\n*** Update File: a\n-x\n*** Move to: b\n*** End Patch",
            "line 4: '*** Move to:' must come right after",
        ),
        (
            "*** Begin Patch\n*** Add File: a\n+x\n*** End Patch\n*** Add File: b\n+y\n",
            "line 5: unexpected text after '*** End Patch'",
        ),
    ],
)
def test_parse_errors(text: str, message: str) -> None:
    with pytest.raises(PatchError) as info:
        parse_patch(text)
    assert message in str(info.value)


def test_parse_tolerates_wrappers_and_whitespace() -> None:
    core = "*** Begin Patch\n*** Add File: a.txt\n+x\n*** End Patch"
    variants = [
        f"\n\n  {core}  \n\n",
        f"```\n{core}\n```",
        f"```diff\n{core}\n```\n",
        f"apply_patch <<'EOF'\n{core}\nEOF\n",
        f'cd src && apply_patch <<"PATCH"\n{core}\nPATCH',
        f"```bash\napply_patch <<EOF\n{core}\nEOF\n```",
        core.replace("\n", "\r\n"),
        "   *** Begin Patch   \n*** Add File: a.txt   \n+x\n   *** End Patch\t",
    ]
    for text in variants:
        assert parse_patch(text) == [AddFile("a.txt", "x\n", parse_patch(text)[0].lineno)]


# --- property: a patch made from (old, new) turns old into new --------------------------


def make_patch(path: str, old_lines: list[str], new_lines: list[str], context: int) -> str:
    """Build an Update File patch from two line lists, like a careful model would."""
    out = ["*** Begin Patch", f"*** Update File: {path}"]
    matcher = difflib.SequenceMatcher(a=old_lines, b=new_lines, autojunk=False)
    for group in matcher.get_grouped_opcodes(context):
        out.append("@@")
        for tag, i1, i2, j1, j2 in group:
            if tag == "equal":
                out.extend(" " + x for x in old_lines[i1:i2])
            if tag in ("replace", "delete"):
                out.extend("-" + x for x in old_lines[i1:i2])
            if tag in ("replace", "insert"):
                out.extend("+" + x for x in new_lines[j1:j2])
        i_end = group[-1][2]
        if i_end == len(old_lines) and old_lines:
            out.append("*** End of File")
    out.append("*** End Patch")
    return "\n".join(out) + "\n"


def render(lines: list[str], eol: str, final_newline: bool) -> str:
    if not lines:
        return ""
    return eol.join(lines) + (eol if final_newline else "")


def representable(old: list[str], final_nl: bool) -> bool:
    """An unterminated empty last line is indistinguishable from a final newline."""
    return final_nl or not old or old[-1] != ""


def expected(old: list[str], new: list[str], eol: str, final_nl: bool) -> str:
    """The documented rule: a file keeps its final-newline status and its line ending.
    An empty file has neither, so it gets a final newline; a file with no line break at
    all shows no ending to copy, so added lines end in "\n"."""
    if not old:
        return render(new, "\n", True)
    if len(old) == 1 and not final_nl:
        eol = "\n"
    return render(new, eol, final_nl)


# Lines never contain a line break (or a BOM, whose rule the golden scenarios cover).
any_line = st.text(
    alphabet=st.characters(codec="utf-8", exclude_characters="\n\r\ufeff"),
    max_size=12,
)
small_line = st.sampled_from(["", " ", "a", "b", "a ", "  b", "}", "return x", "界", "🙂"])


def _check_roundtrip(
    root: Path, old: list[str], new: list[str], eol: str, final_nl: bool, context: int
) -> None:
    f = root / "f.txt"
    f.write_bytes(render(old, eol, final_nl).encode())
    assume(old != new and representable(old, final_nl))
    patch = make_patch("f.txt", old, new, context)
    want = expected(old, new, eol, final_nl)
    try:
        apply_patch(patch, root)
    except PatchError as e:
        # The only allowed refusal: repeated text makes a chunk ambiguous. Never a wrong edit.
        assert "ambiguous" in str(e), str(e)
        assert f.read_bytes() == render(old, eol, final_nl).encode()
        return
    assert f.read_bytes().decode() == want


@settings(max_examples=300, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    old=st.lists(any_line, max_size=25, unique=True),
    data=st.data(),
    eol=st.sampled_from(["\n", "\r\n"]),
    final_nl=st.booleans(),
    context=st.integers(1, 3),
)
def test_roundtrip_unique_lines(
    tmp_path_factory: pytest.TempPathFactory,
    old: list[str],
    data: st.DataObject,
    eol: str,
    final_nl: bool,
    context: int,
) -> None:
    """Distinct original lines: every generated patch must apply and give exactly new."""
    new = data.draw(st.lists(st.one_of(st.sampled_from(old or [""]), any_line), max_size=25))
    root = tmp_path_factory.mktemp("rt")
    f = root / "f.txt"
    f.write_bytes(render(old, eol, final_nl).encode())
    assume(old != new and representable(old, final_nl))
    patch = make_patch("f.txt", old, new, context)
    apply_patch(patch, root)
    assert f.read_bytes().decode() == expected(old, new, eol, final_nl)


@settings(max_examples=300, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    old=st.lists(small_line, max_size=30),
    new=st.lists(small_line, max_size=30),
    eol=st.sampled_from(["\n", "\r\n"]),
    final_nl=st.booleans(),
    context=st.integers(1, 3),
)
def test_roundtrip_repetitive_text(
    tmp_path_factory: pytest.TempPathFactory,
    old: list[str],
    new: list[str],
    eol: str,
    final_nl: bool,
    context: int,
) -> None:
    """Repetitive text: the result is exactly new, or an 'ambiguous' refusal, never wrong."""
    _check_roundtrip(tmp_path_factory.mktemp("rt"), old, new, eol, final_nl, context)


@settings(max_examples=150, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    old=st.lists(small_line, max_size=20),
    new=st.lists(small_line, max_size=20),
    eol=st.sampled_from(["\n", "\r\n"]),
    final_nl=st.booleans(),
)
def test_roundtrip_whole_file_context(
    tmp_path_factory: pytest.TempPathFactory,
    old: list[str],
    new: list[str],
    eol: str,
    final_nl: bool,
) -> None:
    """With the whole file as context there is no ambiguity: always exactly new."""
    root = tmp_path_factory.mktemp("rt")
    f = root / "f.txt"
    f.write_bytes(render(old, eol, final_nl).encode())
    assume(old != new and old and representable(old, final_nl))
    apply_patch(make_patch("f.txt", old, new, context=10_000), root)
    assert f.read_bytes().decode() == expected(old, new, eol, final_nl)
