"""cworld.source: choosing a kernel tree, reading its version and API, and the (offline) fetch.

Fake trees hold a Makefile and stub files; the fetch runs against a fake `apt-get` that hands out
a small .deb built here, so no test touches the network.
"""

from __future__ import annotations

import os
import stat
import subprocess
import textwrap
from pathlib import Path

import pytest

from cworld import source
from cworld.source import (
    ARM_C,
    ARM_H,
    FILES,
    MAKEFILE,
    REQUIRED_FILES,
    FetchError,
    KernelApiUnsupported,
    KernelSourceMissing,
    KernelTreeError,
    fetch_default_tree,
    find_tree,
)
from model.errors import IopgfuzzError

ORDER_C = """\
static void *__arm_lpae_alloc_pages(size_t size, gfp_t gfp)
{
	int order = get_order(size);
	void *pages = iommu_alloc_pages_node(dev_to_node(dev), gfp, order);
	if (!pages)
		return NULL;
	iommu_free_pages(pages, order);
	return NULL;
}
"""

SIZE_C = """\
static void *__arm_lpae_alloc_pages(size_t size, gfp_t gfp)
{
	/* iommu_alloc_pages_node(nid, gfp, order) was the old API */
	void *pages = iommu_alloc_pages_node_sz(dev_to_node(dev), gfp,
						size);
	iommu_free_pages(pages);
	return NULL;
}
"""

NO_ALLOC_C = """\
static void *__arm_lpae_alloc_pages(size_t size, gfp_t gfp)
{
	return kmalloc(size, gfp);
}
"""

OLD_C = """\
static void *__arm_lpae_alloc_pages(size_t size, gfp_t gfp)
{
	struct page *p = alloc_pages_node(dev_to_node(dev), gfp | __GFP_ZERO, order);
	free_pages((unsigned long)page_address(p), order);
	return NULL;
}
"""


def makefile(version: int = 6, patchlevel: int = 12, sublevel: int = 117, extra: str = "") -> str:
    return textwrap.dedent(f"""\
        # SPDX-License-Identifier: GPL-2.0
        VERSION = {version}
        PATCHLEVEL = {patchlevel}
        SUBLEVEL = {sublevel}
        EXTRAVERSION ={(' ' + extra) if extra else ''}
        NAME = Baby Opossum Posse
        """)


def write_tree(root: Path, arm_c: str = ORDER_C, mk: str | None = None,
               with_arm_h: bool = True) -> Path:
    """A minimal fake kernel tree: the top Makefile and stub FILES."""
    for rel in FILES:
        if rel == ARM_H and not with_arm_h:
            continue
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(arm_c if rel == ARM_C else f"/* stub {rel} */\n")
    (root / MAKEFILE).write_text(makefile() if mk is None else mk)
    return root


@pytest.fixture
def clean_env(monkeypatch, tmp_path):
    """No tree named by the environment; the cache is a fresh folder."""
    monkeypatch.delenv("IOPGFUZZ_KERNEL_TREE", raising=False)
    monkeypatch.setenv("IOPGFUZZ_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def test_argument_wins_over_environment(clean_env, tmp_path, monkeypatch):
    a = write_tree(tmp_path / "a")
    b = write_tree(tmp_path / "b", mk=makefile(6, 15, 3))
    monkeypatch.setenv("IOPGFUZZ_KERNEL_TREE", str(b))
    tree = find_tree(a)
    assert tree.root == a.resolve()
    assert tree.origin == "--kernel-tree"
    assert tree.version == "6.12.117"
    assert find_tree(str(a)).root == a.resolve()


def test_environment_variable(clean_env, tmp_path, monkeypatch):
    b = write_tree(tmp_path / "b", mk=makefile(6, 15, 3))
    monkeypatch.setenv("IOPGFUZZ_KERNEL_TREE", str(b))
    tree = find_tree()
    assert (tree.root, tree.origin, tree.version) == (b.resolve(), "IOPGFUZZ_KERNEL_TREE",
                                                      "6.15.3")


def test_default_cache_tree(clean_env):
    write_tree(clean_env / "kernel" / "linux-source-6.12")
    tree = find_tree()
    assert tree.root == (clean_env / "kernel" / "linux-source-6.12").resolve()
    assert tree.origin == "debian linux-source-6.12 (cache)"
    assert tree.iommu_pages_api == "order"


def test_cache_root_fallbacks(monkeypatch, tmp_path):
    monkeypatch.delenv("IOPGFUZZ_CACHE", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert source.default_tree_path() == tmp_path / "xdg/iopgfuzz/kernel/linux-source-6.12"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert source.cache_root() == tmp_path / "home/.cache/iopgfuzz"
    monkeypatch.setenv("IOPGFUZZ_CACHE", str(tmp_path / "mine"))
    assert source.cache_root() == tmp_path / "mine"


def test_missing_default_tree_says_how_to_fetch(clean_env):
    with pytest.raises(KernelSourceMissing) as e:
        find_tree()
    msg = str(e.value)
    assert "python -m cworld.source --fetch" in msg
    assert str(clean_env / "kernel" / "linux-source-6.12") in msg
    assert isinstance(e.value, IopgfuzzError)


@pytest.mark.parametrize("rel", [*REQUIRED_FILES, MAKEFILE])
def test_missing_required_file(clean_env, tmp_path, rel):
    root = write_tree(tmp_path / "t")
    (root / rel).unlink()
    with pytest.raises(KernelTreeError) as e:
        find_tree(root)
    assert rel in str(e.value) and str(root.resolve()) in str(e.value)


def test_not_a_directory(clean_env, tmp_path):
    with pytest.raises(KernelTreeError, match="not a directory"):
        find_tree(tmp_path / "nowhere")


def test_optional_header_may_be_missing(clean_env, tmp_path):
    root = write_tree(tmp_path / "t", with_arm_h=False)
    tree = find_tree(root)
    assert ARM_H not in tree.present_files()
    assert set(tree.present_files()) == set(REQUIRED_FILES)


@pytest.mark.parametrize("mk, want", [
    (makefile(6, 12, 117), "6.12.117"),
    (makefile(6, 17, 0), "6.17.0"),
    (makefile(6, 18, 0, "-rc1"), "6.18.0-rc1"),
    ("VERSION = 5\nPATCHLEVEL = 4\nSUBLEVEL =\nEXTRAVERSION =\n", "5.4"),
])
def test_version_parsing(clean_env, tmp_path, mk, want):
    assert find_tree(write_tree(tmp_path / "t", mk=mk)).version == want


def test_makefile_without_version(clean_env, tmp_path):
    root = write_tree(tmp_path / "t", mk="all:\n\techo hi\n")
    with pytest.raises(KernelTreeError, match="VERSION"):
        find_tree(root)


@pytest.mark.parametrize("code, api", [(ORDER_C, "order"), (SIZE_C, "size"), (OLD_C, "page")])
def test_iommu_pages_api_detection(clean_env, tmp_path, code, api):
    assert find_tree(write_tree(tmp_path / "t", arm_c=code)).iommu_pages_api == api


@pytest.mark.parametrize("code", [
    NO_ALLOC_C,
    "/* iommu_alloc_pages_node(nid, gfp, order) in a comment only */\n",
    # the order allocator with the one-argument free of later kernels: a mix the shim lacks
    ORDER_C.replace("iommu_free_pages(pages, order)", "iommu_free_pages(pages)"),
    SIZE_C.replace("iommu_free_pages(pages)", "iommu_free_pages(pages, 0)"),
    ORDER_C + SIZE_C,
])
def test_iommu_pages_api_unsupported(clean_env, tmp_path, code):
    root = write_tree(tmp_path / "t", arm_c=code)
    with pytest.raises(KernelApiUnsupported) as e:
        find_tree(root)
    msg = str(e.value)
    assert "iommu_alloc_pages_node_sz" in msg and "iommu_alloc_pages_node(" in msg
    assert ARM_C in msg
    assert "alloc_pages_node() with page_address() and free_pages()" in msg


def test_real_default_tree():
    """The tree the C worlds use (run_tests.sh fetches it first): complete and supported."""
    try:
        tree = find_tree()
    except KernelSourceMissing as e:
        pytest.fail(str(e))
    assert set(REQUIRED_FILES) <= set(tree.present_files())
    assert tree.iommu_pages_api in ("order", "size")
    if tree.origin == source.ORIGIN_CACHE:
        assert tree.version.startswith("6.12.") and tree.iommu_pages_api == "order"


def test_cli(clean_env, tmp_path, capsys):
    assert source.main([]) == 2
    assert "python -m cworld.source --fetch" in capsys.readouterr().err
    root = write_tree(tmp_path / "t", mk=makefile(6, 16, 2))
    assert source.main(["--kernel-tree", str(root)]) == 0
    out = capsys.readouterr().out
    assert str(root.resolve()) in out and "6.16.2" in out


# --- the fetch, against a fake apt-get ------------------------------------------------------


def build_deb(tmp_path: Path) -> Path:
    """A tiny linux-source-6.12 .deb: ./usr/src/linux-source-6.12.tar.xz with a fake tree."""
    src = write_tree(tmp_path / "src" / "linux-source-6.12")
    (src / "drivers/iommu/other.c").write_text("not extracted\n")
    pkg = tmp_path / "pkg"
    (pkg / "DEBIAN").mkdir(parents=True)
    (pkg / "DEBIAN/control").write_text(
        "Package: linux-source-6.12\nVersion: 6.12.117-1~deb12u1\nArchitecture: all\n"
        "Maintainer: test <t@example.org>\nDescription: fake\n")
    (pkg / "usr/src").mkdir(parents=True)
    subprocess.run(["tar", "-cJf", str(pkg / "usr/src/linux-source-6.12.tar.xz"), "-C",
                    str(tmp_path / "src"), "linux-source-6.12"], check=True)
    deb = tmp_path / "linux-source-6.12_6.12.117-1~deb12u1_all.deb"
    subprocess.run(["dpkg-deb", "--build", "-Zgzip", str(pkg), str(deb)], check=True,
                   capture_output=True)
    return deb


def fake_apt(tmp_path: Path, monkeypatch, deb: Path, need_update: bool = False) -> Path:
    """Put an `apt-get` on PATH that copies `deb` into the current folder; with `need_update`
    it answers "Unable to locate package" until `apt-get update` has run."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    log = tmp_path / "apt.log"
    marker = tmp_path / "updated"
    script = bindir / "apt-get"
    script.write_text(textwrap.dedent(f"""\
        #!/bin/bash
        echo "$@" >> '{log}'
        if [ "$1" = update ]; then touch '{marker}'; exit 0; fi
        if [ {int(need_update)} = 1 ] && [ ! -e '{marker}' ]; then
            echo "E: Unable to locate package $2" >&2; exit 100
        fi
        cp '{deb}' .
        """))
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{bindir}{os.pathsep}{os.environ['PATH']}")
    return log


needs_dpkg = pytest.mark.skipif(
    not all(map(source.shutil.which, ("dpkg-deb", "tar", "xz"))),
    reason="dpkg-deb, tar and xz are needed to build the fake .deb")


@needs_dpkg
def test_fetch_keeps_only_files_and_is_atomic(clean_env, tmp_path, monkeypatch):
    log = fake_apt(tmp_path, monkeypatch, build_deb(tmp_path), need_update=True)
    tree = fetch_default_tree()
    assert tree.root == (clean_env / "kernel/linux-source-6.12").resolve()
    assert tree.version == "6.12.117" and tree.origin == source.ORIGIN_CACHE
    kept = sorted(str(p.relative_to(tree.root)) for p in tree.root.rglob("*") if p.is_file())
    assert kept == sorted([*FILES, MAKEFILE, ".iopgfuzz-origin"])
    assert tree.debian_package() == "linux-source-6.12_6.12.117-1~deb12u1_all.deb"
    # the .deb, the tarball and the work folder are gone
    assert [p.name for p in (clean_env / "kernel").iterdir()] == ["linux-source-6.12"]
    assert log.read_text().split("\n")[:3] == ["download linux-source-6.12", "update",
                                               "download linux-source-6.12"]
    # a second fetch without --force uses what is there (no apt-get run)
    fetch_default_tree()
    assert log.read_text().count("download") == 2
    # --force replaces it
    (tree.root / ARM_C).write_text("edited\n" + ORDER_C)
    fetch_default_tree(force=True)
    assert not (tree.root / ARM_C).read_text().startswith("edited")
    assert [p.name for p in (clean_env / "kernel").iterdir()] == ["linux-source-6.12"]


@needs_dpkg
def test_failed_fetch_leaves_no_tree(clean_env, tmp_path, monkeypatch):
    bad = tmp_path / "linux-source-6.12_6.12.117-1~deb12u1_all.deb"
    bad.write_text("this is no deb\n")
    fake_apt(tmp_path, monkeypatch, bad)
    with pytest.raises(FetchError, match="unpacking"):
        fetch_default_tree()
    assert list((clean_env / "kernel").iterdir()) == []
    with pytest.raises(KernelSourceMissing):
        find_tree()


def test_fetch_refuses_the_work_tree(monkeypatch):
    project = Path(source.__file__).resolve().parents[1]
    monkeypatch.setenv("IOPGFUZZ_CACHE", str(project / ".kernel-cache"))
    with pytest.raises(FetchError, match="never kept in the git work tree"):
        fetch_default_tree()
    assert not (project / ".kernel-cache").exists()


def test_version_switches_are_set_both_ways():
    """Each switch as that kernel has it (docs/model.md, the commits named in profiles.py):
    a scenario pinning 6.12's behaviour is modelled as 6.17 when it runs against a 6.17 tree."""
    from cworld.profiles import model_config_for_tree, switches_for
    from model.config import Config
    assert switches_for("6.12.117") == {"split_blk_unmap": True, "concat": "legacy",
                                        "enoent_bug": False, "kernel": "6.12"}
    assert switches_for("6.17.0-rc3") == {"split_blk_unmap": False, "concat": "mandatory",
                                          "enoent_bug": True, "kernel": "6.17"}
    assert switches_for("6.18.8")["enoent_bug"] is False
    assert switches_for("6.13.0")["split_blk_unmap"] is False
    assert switches_for("6.13.0")["concat"] == "legacy"
    assert switches_for(None) == {}
    pinned = Config(split_blk_unmap=True, concat="legacy", enoent_bug=False)
    c = model_config_for_tree(pinned, "6.17.0")
    assert (c.split_blk_unmap, c.concat, c.enoent_bug, c.kernel) == \
        (False, "mandatory", True, "6.17")
