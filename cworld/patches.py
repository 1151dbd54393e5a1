"""Apply patches (plain, or quoted in a mail reply) to a private copy of a kernel tree's FILES.

A C world compiles only `source.FILES`, so a patch is applied to a copy of just those files,
never to the tree itself.  GNU patch does the work; this module reads what it prints and decides:
a rejected hunk that changes only comments (a doc comment that differs between kernel versions,
as the seed's `@iotlb_sync_map` line does on 6.12) is reported and skipped, because it cannot
change what is compiled; a rejected code hunk is a PatchError naming the patch, file and hunk.
"""

from __future__ import annotations

import functools
import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from model.errors import IopgfuzzError

from .source import FILES, OPTIONAL_FILES, KernelTree

#: How many levels of mail quoting `apply_patches` strips (a reply to a reply to the patch).
MAX_QUOTE_DEPTH = 4


class PatchError(IopgfuzzError):
    """A patch cannot be applied as the C world needs it; the message names patch, file, hunk."""

    def __init__(self, message: str, patch: str = "", file: str = "", hunk: str = ""):
        super().__init__(message)
        self.patch = patch
        self.file = file
        self.hunk = hunk


@dataclass(frozen=True)
class SkippedHunk:
    """A rejected hunk that was skipped because it only changes comments."""

    patch: str
    file: str
    header: str
    reason: str


@dataclass
class ApplyReport:
    """What `apply_patches` did: patches applied in order, hunks skipped, offsets and fuzz."""

    dest: Path
    applied: list[str] = field(default_factory=list)
    skipped_hunks: list[SkippedHunk] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


# --- unified diff parsing ---------------------------------------------------------------------


@dataclass
class Hunk:
    header: str  # the whole `@@ -a,b +c,d @@ context` line
    lines: list[str]  # body lines without line endings, each starting with ' ', '+', '-' or '\'

    def changed(self) -> list[str]:
        return [ln for ln in self.lines if ln[:1] in "+-"]

    def first_change(self) -> str:
        ch = self.changed()
        return ch[0] if ch else ""


@dataclass
class FilePatch:
    old: str  # path as given after `--- `, without a timestamp
    new: str  # path as given after `+++ `
    hunks: list[Hunk]

    def target(self, strip: int = 1) -> str:
        """The tree-relative path patch -p`strip` works on (the old path when deleting)."""
        raw = self.old if self.new == "/dev/null" else self.new
        parts = PurePosixPath(raw).parts[strip:]
        return str(PurePosixPath(*parts)) if parts else raw

    def creates(self) -> bool:
        return self.old == "/dev/null"


_HUNK_RE = re.compile(r"^@@ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@")


def _header_path(line: str) -> str:
    """`--- a/x\\t2025-01-01 ...` -> `a/x`: drop the marker and a diff -u timestamp."""
    return line[4:].split("\t")[0].strip()


def parse_patch(text: str, name: str = "patch") -> list[FilePatch]:
    """The file sections and hunks of a unified diff, each hunk read by its header's counts.

    Reading by counts is what GNU patch does, so a hunk that a mail reply has cut or padded is
    caught here with a message naming it, instead of as patch's "malformed patch at line N" of
    a temporary file.  Lines outside file sections (mail headers, diffstat) are ignored.
    """
    lines = text.splitlines()
    files: list[FilePatch] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.startswith("--- ") and i + 1 < len(lines) and lines[i + 1].startswith("+++ "):
            files.append(FilePatch(_header_path(line), _header_path(lines[i + 1]), []))
            i += 2
            continue
        m = _HUNK_RE.match(line)
        if m and files:
            hunk, i = _read_hunk(lines, i, m, name, files[-1])
            files[-1].hunks.append(hunk)
            continue
        i += 1
    return files


def _read_hunk(lines: list[str], i: int, m: re.Match[str], name: str,
               fp: FilePatch) -> tuple[Hunk, int]:
    """Read the hunk whose header is lines[i]; return it and the index after it."""
    header = lines[i]
    old_left = int(m.group(2)) if m.group(2) is not None else 1
    new_left = int(m.group(4)) if m.group(4) is not None else 1
    body: list[str] = []
    i += 1
    while old_left > 0 or new_left > 0:
        line = lines[i] if i < len(lines) else None
        kind = None if line is None else (line[:1] or " ")  # an empty line is blank context
        if kind not in (" ", "+", "-", "\\"):
            got = f"line {line!r}" if line is not None else "the end of the patch"
            raise PatchError(
                f"{name}: {fp.target()}: hunk {header.split(' @@')[0]} @@ is cut short: "
                f"{old_left} old and {new_left} new line(s) still expected when {got} came. "
                f"If the patch was quoted in a mail, the reply may have trimmed or wrapped "
                f"quoted lines; use the original patch",
                patch=name, file=fp.target(), hunk=header)
        body.append(" " if line == "" else line)
        if kind in (" ", "-"):
            old_left -= 1
        if kind in (" ", "+"):
            new_left -= 1
        i += 1
    while i < len(lines) and lines[i].startswith("\\"):  # "\ No newline at end of file"
        body.append(lines[i])
        i += 1
    return Hunk(header, body), i


# --- mail quoting -----------------------------------------------------------------------------


_QUOTED_DIFF_RE = re.compile(r"^(?:> ?)+(?:diff --git |--- a/)", re.MULTILINE)


def is_quoted(text: str) -> bool:
    """Whether `text` holds a patch quoted with `> ` (a reply to the patch's mail, or deeper)."""
    return _QUOTED_DIFF_RE.search(text) is not None


def unquote_mail(text: str) -> str:
    """A patch quoted in a mail reply, as a plain patch; a plain patch is returned unchanged.

    Keeps only the quoted lines (`> ...` or a bare `>`, which was an empty line or a blank
    context line whose trailing space the mailer dropped) with one level of quoting removed:
    the reviewer's unquoted text between two hunk lines, the archive's header and footer all
    vanish, and the hunks are whole again because the reviewer never edits quoted lines.
    """
    if not is_quoted(text):
        return text
    out = []
    for line in text.splitlines(keepends=True):
        if line.startswith("> "):
            out.append(line[2:])
        elif line.startswith(">"):
            out.append(line[1:])
    return "".join(out)


def plain_patch(text: str) -> str:
    """Strip mail quoting until no quoted patch is left (a reply to a reply quotes twice)."""
    for _ in range(MAX_QUOTE_DEPTH):
        if not is_quoted(text):
            break
        text = unquote_mail(text)
    return text


# --- comment-only hunks -----------------------------------------------------------------------


_CONTINUATION_RE = re.compile(r"^\s*\*(?:/|\s|$)")


def _scan_line(line: str, in_comment: bool) -> tuple[bool, bool]:
    """(whether `line` has code outside comments, whether a comment is open after it)."""
    i, n, code = 0, len(line), False
    while i < n:
        if in_comment:
            end = line.find("*/", i)
            if end < 0:
                return code, True
            in_comment, i = False, end + 2
        elif line.startswith("//", i):
            return code, False
        elif line.startswith("/*", i):
            in_comment, i = True, i + 2
        elif line[i].isspace():
            i += 1
        else:
            code = True
            if line[i] in "\"'":  # skip a literal, so "/*" in a string opens no comment
                close = line.find(line[i], i + 1)
                i = n if close < 0 else close + 1
            else:
                i += 1
    return code, in_comment


def _side_is_comment_only(lines: list[str], changed: str) -> bool:
    """Whether every `changed` ('+' or '-') line, read with the context of its side, is comment.

    A hunk may start inside a block comment; its first non-blank line then looks like a
    continuation (` * text` or ` */`), which as code would be a dereference like `*p = x;`.
    """
    side = [ln[1:] for ln in lines if ln[:1] in (" ", changed)]
    kinds = [ln[:1] for ln in lines if ln[:1] in (" ", changed)]
    first = next((s for s in side if s.strip()), "")
    in_comment = bool(_CONTINUATION_RE.match(first))
    for text, kind in zip(side, kinds, strict=True):
        code, in_comment = _scan_line(text, in_comment)
        if code and kind == changed:
            return False
    return True


def is_comment_only(hunk: Hunk) -> bool:
    """Whether every added and removed line of `hunk` is inside a C comment or blank."""
    if not hunk.changed():
        return False
    return _side_is_comment_only(hunk.lines, "-") and _side_is_comment_only(hunk.lines, "+")


# --- running GNU patch ------------------------------------------------------------------------


@functools.cache
def _patch_program() -> str:
    """The GNU patch executable; the options used here are GNU ones."""
    exe = shutil.which("patch")
    if exe is None:
        raise PatchError("GNU patch is not installed; install it with `apt-get install patch`")
    try:
        version = subprocess.run([exe, "--version"], capture_output=True, text=True,
                                 timeout=30).stdout
    except (OSError, subprocess.TimeoutExpired) as e:
        raise PatchError(f"cannot run {exe}: {e}") from e
    if "GNU patch" not in version:
        raise PatchError(f"{exe} is not GNU patch; install it with `apt-get install patch`")
    return exe


@dataclass
class _HunkResult:
    file_index: int  # which `patching file` section, in order
    number: int  # patch's hunk number within the section, from 1
    status: str  # "FAILED", "succeeded", "ignored"
    line: int = 0
    fuzz: int = 0
    offset: int = 0


_FILE_RE = re.compile(r"^(?:patching|checking) file (.+)$")
_RESULT_RE = re.compile(
    r"^Hunk #(\d+) (succeeded|FAILED) at (\d+)(?: with fuzz (\d+))?"
    r"(?: \(offset (-?\d+) lines?\))?\.")


def _parse_output(out: str) -> tuple[list[str], list[_HunkResult]]:
    """The files patch worked on, in order, and the hunk results it printed for each."""
    files: list[str] = []
    results: list[_HunkResult] = []
    for line in out.splitlines():
        m = _FILE_RE.match(line)
        if m:
            files.append(m.group(1).strip("'\""))
            continue
        m = _RESULT_RE.match(line)
        if m and files:
            results.append(_HunkResult(len(files) - 1, int(m.group(1)), m.group(2),
                                       int(m.group(3)), int(m.group(4) or 0),
                                       int(m.group(5) or 0)))
    return files, results


def _run_patch(patch_file: Path, dest: Path, rej: Path, dry_run: bool, name: str) -> str:
    """Run GNU patch and return what it printed; exit 2 (trouble) is a PatchError."""
    cmd = [_patch_program(), "-p1", "-d", str(dest), "--no-backup-if-mismatch", "-r", str(rej),
           "-f", "--batch", "-i", str(patch_file)]
    if dry_run:
        cmd.append("--dry-run")
    env = {**os.environ, "LC_ALL": "C", "QUOTING_STYLE": "literal"}
    env.pop("POSIXLY_CORRECT", None)
    env.pop("PATCH_VERSION_CONTROL", None)
    env.pop("VERSION_CONTROL", None)
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120, env=env)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise PatchError(f"{name}: running patch failed: {e}", patch=name) from e
    out = proc.stdout + proc.stderr
    if proc.returncode not in (0, 1):
        raise PatchError(f"{name}: patch could not apply it (exit {proc.returncode}):\n  "
                         + "\n  ".join(out.strip().splitlines()[-6:]), patch=name)
    return out


def _check_targets(name: str, files: list[FilePatch], dest: Path) -> None:
    """Refuse patches for files the build does not compile, or that this tree lacks."""
    for fp in files:
        target = fp.target()
        if target not in FILES:
            raise PatchError(
                f"{name} changes {target}, which a C world does not build; it compiles only "
                f"{', '.join(FILES)}. Remove that file's part from the patch",
                patch=name, file=target)
        if not (dest / target).is_file() and not fp.creates():
            raise PatchError(
                f"{name} changes {target}, which this kernel tree does not have "
                f"(it is optional in newer kernels); use a patch made for this kernel version",
                patch=name, file=target)


def _classify(name: str, files: list[FilePatch], printed: list[str],
              results: list[_HunkResult]) -> tuple[list[SkippedHunk], list[str]]:
    """Skipped comment-only rejects and offset/fuzz notes; a rejected code hunk raises."""
    skipped: list[SkippedHunk] = []
    notes: list[str] = []
    if len(printed) != len(files):
        raise PatchError(
            f"{name}: patch worked on {len(printed)} file(s) ({', '.join(printed)}) but the "
            f"patch has {len(files)} file section(s); it may be damaged", patch=name)
    for r in results:
        fp = files[r.file_index]
        target = fp.target()
        if not 1 <= r.number <= len(fp.hunks):
            raise PatchError(f"{name}: patch reported hunk #{r.number} of {target}, which has "
                             f"{len(fp.hunks)} hunk(s)", patch=name, file=target)
        hunk = fp.hunks[r.number - 1]
        if r.status == "FAILED":
            if not is_comment_only(hunk):
                raise PatchError(
                    f"{name}: {target}: hunk #{r.number} `{hunk.header}` does not apply to "
                    f"this tree (first change: `{hunk.first_change()}`); it changes code, so "
                    f"the patch must be rebased onto this kernel version",
                    patch=name, file=target, hunk=hunk.header)
            skipped.append(SkippedHunk(
                name, target, hunk.header,
                f"rejected, but it only changes comments (first change: "
                f"`{hunk.first_change()}`); this tree's comment differs and the compiled "
                f"code is unaffected"))
        elif r.fuzz or r.offset:
            how = ", ".join(x for x in (f"offset {r.offset:+d} lines" if r.offset else "",
                                        f"fuzz {r.fuzz}" if r.fuzz else "") if x)
            notes.append(f"{name}: {target}: hunk #{r.number} `{hunk.header}` applied at "
                         f"line {r.line} ({how})")
    return skipped, notes


def _count_rejects(rej: Path) -> int:
    """How many hunks patch saved to the reject file."""
    if not rej.is_file():
        return 0
    return sum(1 for ln in rej.read_text(errors="replace").splitlines() if _HUNK_RE.match(ln))


def _copy_files(tree: KernelTree, dest: Path) -> None:
    """Copy the tree's FILES into `dest` with their relative paths; the tree is only read."""
    for rel in FILES:
        src, dst = tree.root / rel, dest / rel
        if not src.is_file():
            if rel in OPTIONAL_FILES:
                dst.unlink(missing_ok=True)
                continue
            raise PatchError(f"kernel tree {tree.root} lacks {rel}", file=rel)
        dst.parent.mkdir(parents=True, exist_ok=True)
        if dst.exists() and os.path.samefile(src, dst):
            raise PatchError(f"{dst} is the tree's own {rel} (a link into {tree.root}); give a "
                             f"private destination folder", file=rel)
        # unlink first: a hard link into the tree would otherwise be patched in place
        dst.unlink(missing_ok=True)
        shutil.copyfile(src, dst)


def _read_patch(path: Path) -> str:
    try:
        # surrogateescape: bytes that are not UTF-8 survive the round trip to the temp file
        return path.read_bytes().decode("utf-8", errors="surrogateescape")
    except OSError as e:
        raise PatchError(f"cannot read patch {path}: {e}", patch=path.name) from e


def _apply_one(path: Path, dest: Path, work: Path, index: int, report: ApplyReport) -> None:
    """Check one patch with --dry-run, then apply it, so a failing patch leaves dest untouched."""
    name = path.name
    text = plain_patch(_read_patch(path))
    files = [fp for fp in parse_patch(text, name) if fp.hunks]
    if not files:
        raise PatchError(f"{path} is not a patch: no unified-diff hunks (`--- a/FILE`, "
                         f"`+++ b/FILE`, `@@ ... @@`) found in it", patch=name)
    _check_targets(name, files, dest)
    plain = work / f"{index:02d}.patch"
    plain.write_bytes(text.encode("utf-8", errors="surrogateescape"))
    rej = work / f"{index:02d}.rej"
    printed, results = _parse_output(_run_patch(plain, dest, rej, True, name))
    skipped, notes = _classify(name, files, printed, results)
    rej.unlink(missing_ok=True)
    _run_patch(plain, dest, rej, False, name)
    if _count_rejects(rej) != len(skipped):
        raise PatchError(f"{name}: patch rejected {_count_rejects(rej)} hunk(s) on the real run "
                         f"but {len(skipped)} on the dry run; dest {dest} is now unreliable",
                         patch=name)
    report.applied.append(name)
    report.skipped_hunks.extend(skipped)
    report.notes.extend(notes)


def apply_patches(tree: KernelTree, patches: list[Path], dest: Path) -> ApplyReport:
    """Copy the tree's FILES into `dest`, then apply `patches` there in order.

    Each patch may be a plain patch or quoted in a mail reply.  A rejected hunk that changes
    only comments is skipped and reported in `skipped_hunks`; a rejected code hunk, a patch
    for a file outside FILES or a file that is no patch raises PatchError (dest then holds
    the patches before it).  Offsets and fuzz are recorded in `notes`.
    """
    dest = Path(dest)
    if dest.resolve().is_relative_to(tree.root.resolve()):
        raise PatchError(f"refusing to patch inside the kernel tree {tree.root}: give a "
                         f"private destination folder")
    dest.mkdir(parents=True, exist_ok=True)
    _copy_files(tree, dest)
    report = ApplyReport(dest=dest)
    with tempfile.TemporaryDirectory(prefix="iopgfuzz-patch-") as tmp:
        for index, path in enumerate(patches):
            _apply_one(Path(path), dest, Path(tmp), index, report)
    return report
