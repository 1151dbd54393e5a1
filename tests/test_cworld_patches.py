"""cworld.patches: unquoting the seed mail, applying patches to a private copy, reject handling.

The seed tests use the real default tree (Debian 6.12, fetched by run_tests.sh); when it is
missing they fail with the fetch command rather than skip.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
from pathlib import Path

import pytest

from cworld import patches as P
from cworld.patches import (
    Hunk,
    PatchError,
    apply_patches,
    is_comment_only,
    parse_patch,
    plain_patch,
    unquote_mail,
)
from cworld.source import ARM_C, FILES, IO_PGTABLE_H, load_tree

SEED = Path(__file__).resolve().parents[2] / "shared" / "seed" / "patch-v1-review.txt"


@pytest.fixture
def tree_612(real_tree):
    """The seed's expected rejects and offsets are those of 6.12."""
    if not real_tree.version.startswith("6.12."):
        pytest.skip(f"seed expectations are for 6.12; the tree is {real_tree.describe()}")
    return real_tree


@pytest.fixture(scope="module")
def seed_text() -> str:
    assert SEED.is_file(), f"the seed patch {SEED} is missing"
    return SEED.read_text()


def snapshot(tree) -> dict[str, tuple[int, str]]:
    """mtime and content hash of every FILE of a tree, to prove it was only read."""
    out = {}
    for rel in FILES:
        p = tree.root / rel
        if p.is_file():
            out[rel] = (p.stat().st_mtime_ns, hashlib.sha256(p.read_bytes()).hexdigest())
    return out


# --- unquote_mail ---------------------------------------------------------------------------


def test_unquote_seed_gives_whole_hunks(seed_text):
    plain = unquote_mail(seed_text)
    for gone in ("I think we must check", "Thanks,", "Praan", "Powered by", "Message-ID"):
        assert gone not in plain
    files = parse_patch(plain)  # raises if a hunk's line counts do not match its header
    assert [fp.target() for fp in files] == [ARM_C, IO_PGTABLE_H]
    assert [len(fp.hunks) for fp in files] == [3, 4]
    walker = files[0].hunks[1]
    assert walker.header.startswith("@@ -582,6 +582,69 @@")
    assert sum(ln[:1] in " -" for ln in walker.lines) == 6
    assert sum(ln[:1] in " +" for ln in walker.lines) == 69
    # the reviewer's suggestion sat between two hunk lines; the hunk continues without it
    i = walker.lines.index("+\t\t\t\t\t\t\t\tiopte_deref(pte, data));")
    assert walker.lines[i + 1] == "+\t\t\t\tsynced_entries++;"


def test_unquoted_seed_dry_run_against_real_tree(tree_612, seed_text, tmp_path):
    for rel in FILES:
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(tree_612.root / rel, tmp_path / rel)
    proc = subprocess.run(
        [shutil.which("patch"), "-p1", "-d", str(tmp_path), "--dry-run", "-f", "--batch"],
        input=unquote_mail(seed_text), capture_output=True, text=True, env={"LC_ALL": "C"})
    out = proc.stdout + proc.stderr
    assert proc.returncode in (0, 1), out
    assert "malformed" not in out and "can't find file" not in out
    # every hunk applies but the @iotlb_sync_map doc-comment line of io-pgtable.h
    assert [ln for ln in out.splitlines() if "FAILED at" in ln] == ["Hunk #3 FAILED at 208."]


def test_unquote_plain_patch_is_identity(seed_text):
    plain = unquote_mail(seed_text)
    assert unquote_mail(plain) == plain
    assert plain_patch(plain) == plain


def test_unquote_keeps_blank_context_and_crlf():
    quoted = "On Mon, X wrote:\r\n> --- a/f.c\r\n> +++ b/f.c\r\n> @@ -1,3 +1,3 @@\r\n" \
             ">  a\r\n>\r\n\r\nreview text\r\n\r\n> -b\r\n> +c\r\n"
    plain = unquote_mail(quoted)
    assert plain == "--- a/f.c\r\n+++ b/f.c\r\n@@ -1,3 +1,3 @@\r\n a\r\n\r\n-b\r\n+c\r\n"
    assert parse_patch(plain)[0].hunks[0].lines == [" a", " ", "-b", "+c"]


def test_reply_to_a_reply_is_unquoted_twice(seed_text):
    plain = unquote_mail(seed_text)
    twice = "Me: what about this?\n" + "".join(
        "> " + ln for ln in seed_text.splitlines(keepends=True))
    assert plain_patch(twice) == plain


def test_trimmed_quote_is_named(seed_text):
    """A reply that cut a quoted hunk line leaves a hunk patch would call malformed."""
    cut = seed_text.replace(">  \t\tptep[i] = pte | paddr_to_iopte(paddr + i * sz, data);\n", "")
    assert cut != seed_text
    with pytest.raises(PatchError) as e:
        parse_patch(unquote_mail(cut), "cut.txt")
    assert "@@ -353,7 +353,7 @@" in str(e.value) and ARM_C in str(e.value)
    assert "cut short" in str(e.value)


# --- comment-only hunks ---------------------------------------------------------------------


def hunk(*lines: str) -> Hunk:
    return Hunk("@@ -1 +1 @@", list(lines))


@pytest.mark.parametrize("h, want", [
    (hunk("  * @oas: bits", "+ * @defer: new", "  *"), True),
    (hunk(" /*", "- * old", "+ * new", " */"), True),
    (hunk(" \tint x;", "+\t/* one line */", "+", "+// c99 comment"), True),
    (hunk("+/**", "+ * doc", "+ */", " int f(void);"), True),
    (hunk("  * @oas: bits", "+ */", "+int leaked;"), False),
    (hunk(" \tint x;", "+\t*p = 0;"), False),
    (hunk(" \tint x;", "+\tint y; /* trailing comment */"), False),
    (hunk(" /* start", "+still comment", " */", "+code();"), False),
    (hunk("+\tputs(\"/* not a comment\");"), False),
    (hunk(" \tint x;"), False),  # no change at all is not a comment change
])
def test_is_comment_only(h, want):
    assert is_comment_only(h) is want


# --- apply_patches on the real tree ---------------------------------------------------------


def test_apply_seed(tree_612, seed_text, tmp_path):
    before = snapshot(tree_612)
    report = apply_patches(tree_612, [SEED], tmp_path / "w")
    assert report.applied == [SEED.name]
    assert [(s.file, s.header.split(" @@")[0]) for s in report.skipped_hunks] == [
        (IO_PGTABLE_H, "@@ -204,6 +208,7")]
    assert "@iotlb_sync_map" in report.skipped_hunks[0].reason
    assert any("fuzz 1" in n for n in report.notes)
    assert any("offset" in n for n in report.notes)
    arm = (tmp_path / "w" / ARM_C).read_text()
    assert "arm_lpae_iotlb_sync_map" in arm and "defer_sync_pte" in arm
    assert "defer_sync_pte;" in (tmp_path / "w" / IO_PGTABLE_H).read_text()
    assert not list((tmp_path / "w").rglob("*.orig")) and not list((tmp_path / "w").rglob("*.rej"))
    assert snapshot(tree_612) == before


def test_patches_apply_in_order(tree_612, seed_text, tmp_path):
    """A second patch on top of the first: v1-review's `if (ret) break;`."""
    fix = tmp_path / "review-fix.patch"
    fix.write_text(
        "--- a/drivers/iommu/io-pgtable-arm.c\n+++ b/drivers/iommu/io-pgtable-arm.c\n"
        "@@ -600,5 +600,7 @@\n"
        " \t\t\t\tret = __arm_lpae_iotlb_sync_map(data, iova, size, lvl + 1,\n"
        " \t\t\t\t\t\t\t\tiopte_deref(pte, data));\n"
        "+\t\t\t\tif (ret)\n"
        "+\t\t\t\t\tbreak;\n"
        " \t\t\t\tsynced_entries++;\n"
        " \t\t\t}\n"
        " \t\t\tsynced = block_size - (iova & (block_size - 1));\n")
    report = apply_patches(tree_612, [SEED, fix], tmp_path / "w")
    assert report.applied == [SEED.name, fix.name]
    assert "iopte_deref(pte, data));\n\t\t\t\tif (ret)\n\t\t\t\t\tbreak;\n" in \
        (tmp_path / "w" / ARM_C).read_text()
    # the fix alone does not apply: its context exists only after the seed
    with pytest.raises(PatchError, match="review-fix.patch"):
        apply_patches(tree_612, [fix], tmp_path / "w2")


def test_rejected_code_hunk_raises(real_tree, seed_text, tmp_path):
    before = snapshot(real_tree)
    line = ">  \t\t__arm_lpae_sync_pte(ptep, num_entries, cfg);\n>  }\n"
    assert seed_text.count(line) == 1
    bad = tmp_path / "bad.patch"
    bad.write_text(seed_text.replace(line, line.replace("sync_pte(", "sync_ptes(")))
    with pytest.raises(PatchError) as e:
        apply_patches(real_tree, [bad], tmp_path / "w")
    msg = str(e.value)
    assert "bad.patch" in msg and ARM_C in msg and "@@ -353,7 +353,7 @@" in msg
    assert "-\tif (!cfg->coherent_walk)" in msg
    assert (e.value.file, e.value.hunk.split(" @@")[0]) == (ARM_C, "@@ -353,7 +353,7")
    # the dry run stopped it: the copy is as it was, and the tree was never touched
    assert (tmp_path / "w" / ARM_C).read_bytes() == (real_tree.root / ARM_C).read_bytes()
    assert snapshot(real_tree) == before


def test_patch_outside_files_raises(real_tree, tmp_path):
    p = tmp_path / "driver.patch"
    p.write_text("--- a/drivers/iommu/arm/arm-smmu-v3/arm-smmu-v3.c\n"
                 "+++ b/drivers/iommu/arm/arm-smmu-v3/arm-smmu-v3.c\n"
                 "@@ -1,1 +1,1 @@\n-a\n+b\n")
    with pytest.raises(PatchError, match=r"arm-smmu-v3\.c, which a C world does not build"):
        apply_patches(real_tree, [p], tmp_path / "w")


def test_not_a_patch_raises(real_tree, tmp_path):
    p = tmp_path / "notes.txt"
    p.write_text("Hi,\n\nthis mail has no diff in it.\n--- \nsig\n")
    with pytest.raises(PatchError, match="notes.txt is not a patch"):
        apply_patches(real_tree, [p], tmp_path / "w")




# --- apply_patches on a fake tree (independent of the kernel version) -----------------------


def fake_tree(root: Path, header: str):
    for rel in FILES:
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(f"/* {rel} */\n")
    (root / IO_PGTABLE_H).write_text(header)
    (root / ARM_C).write_text("void f(void) { iommu_alloc_pages_node(0, 0, 0); "
                              "iommu_free_pages(0, 0); }\n")
    (root / "Makefile").write_text("VERSION = 6\nPATCHLEVEL = 12\nSUBLEVEL = 1\n")
    return load_tree(root, "--kernel-tree")


HEADER = "/**\n * @a: first\n * @b: second\n */\nstruct s {\n\tint a;\n\tint b;\n};\n"


def test_comment_reject_skipped_code_applied(tmp_path):
    tree = fake_tree(tmp_path / "t", HEADER)
    p = tmp_path / "mixed.patch"
    p.write_text("--- a/include/linux/io-pgtable.h\n+++ b/include/linux/io-pgtable.h\n"
                 "@@ -1,4 +1,5 @@\n /**\n  * @a: first\n  * @b: SECOND\n+ * @c: third\n  */\n"
                 "@@ -6,3 +7,4 @@\n \tint a;\n \tint b;\n+\tint c;\n };\n")
    report = apply_patches(tree, [p], tmp_path / "w")
    assert [s.header for s in report.skipped_hunks] == ["@@ -1,4 +1,5 @@"]
    assert (tmp_path / "w" / IO_PGTABLE_H).read_text() == HEADER.replace("\tint b;\n",
                                                                        "\tint b;\n\tint c;\n")
    assert (tree.root / IO_PGTABLE_H).read_text() == HEADER


def test_refuses_to_patch_the_tree_itself(tmp_path):
    """On a fake tree: a bug here would delete the files of the tree it was given."""
    tree = fake_tree(tmp_path / "t", HEADER)
    before = snapshot(tree)
    for dest in (tree.root, tree.root / "drivers", tree.root / "new"):
        with pytest.raises(PatchError, match="refusing to patch inside the kernel tree"):
            apply_patches(tree, [SEED], dest)
    assert not (tree.root / "new").exists()
    (tmp_path / "links/include/linux").mkdir(parents=True)
    (tmp_path / "links" / IO_PGTABLE_H).hardlink_to(tree.root / IO_PGTABLE_H)
    with pytest.raises(PatchError, match="a link into"):
        apply_patches(tree, [SEED], tmp_path / "links")
    assert snapshot(tree) == before


def test_missing_optional_file_is_not_copied(tmp_path):
    tree = fake_tree(tmp_path / "t", HEADER)
    (tree.root / "drivers/iommu/io-pgtable-arm.h").unlink()
    dest = tmp_path / "w"
    (dest / "drivers/iommu").mkdir(parents=True)
    (dest / "drivers/iommu/io-pgtable-arm.h").write_text("stale from an earlier copy\n")
    apply_patches(tree, [], dest)
    assert sorted(str(p.relative_to(dest)) for p in dest.rglob("*") if p.is_file()) == sorted(
        f for f in FILES if f != "drivers/iommu/io-pgtable-arm.h")


def test_missing_gnu_patch_says_how_to_install(tmp_path, monkeypatch):
    tree = fake_tree(tmp_path / "t", HEADER)
    p = tmp_path / "x.patch"
    p.write_text("--- a/include/linux/io-pgtable.h\n+++ b/include/linux/io-pgtable.h\n"
                 "@@ -6,1 +6,1 @@\n-\tint a;\n+\tint z;\n")
    monkeypatch.setattr(P.shutil, "which", lambda name: None)
    P._patch_program.cache_clear()
    try:
        with pytest.raises(PatchError, match="apt-get install patch"):
            apply_patches(tree, [p], tmp_path / "w")
    finally:
        P._patch_program.cache_clear()
