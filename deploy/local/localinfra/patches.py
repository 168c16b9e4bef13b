"""FerretDB source patches: the unified diffs in deploy/local/patches/, applied in name order.

Each NN-name.patch starts with a free-text header (what, why, how the bug showed) followed by a
plain unified diff against the FerretDB module source (`a/` and `b/` prefixes, so `patch -p1` or
`git apply` take it too). A later patch may touch a file an earlier one changed: its line numbers
count on the earlier patches. A hunk applies only at its recorded line with its exact context
(no offset, no fuzz): a patch that does not fit the pinned upstream source aborts the install.
Patches change existing files only (no `/dev/null` sides).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

from .common import InfraError
from .versions import PATCHES_DIR

_HUNK = re.compile(r"^@@ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@")


@dataclass(frozen=True)
class Hunk:
    old_start: int  # 1-based line number in the file before this patch
    old: list[str]  # context and removed lines, with their line ends
    new: list[str]  # context and added lines


def patch_files(patches_dir: Path = PATCHES_DIR) -> list[Path]:
    return sorted(patches_dir.glob("*.patch"))


def patch_set_id(patches_dir: Path = PATCHES_DIR) -> str:
    """Names and contents of the patch set: a changed patch rebuilds the cached binary."""
    h = hashlib.sha256()
    files = patch_files(patches_dir)
    for f in files:
        h.update(f.name.encode() + b"\0" + f.read_bytes() + b"\0")
    return f"{len(files)}-{h.hexdigest()[:12]}"


def parse_patch(text: str) -> list[tuple[str, list[Hunk]]]:
    """[(path relative to the source root, hunks)], in the order the diff names the files."""
    lines = text.splitlines(keepends=True)
    files: list[tuple[str, list[Hunk]]] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.startswith("--- a/") and i + 1 < len(lines) and lines[i + 1].startswith("+++ b/"):
            files.append((lines[i + 1][len("+++ b/") :].rstrip("\n").split("\t")[0], []))
            i += 2
            continue
        m = _HUNK.match(line)
        if m and files:
            old_n, new_n = int(m.group(2) or 1), int(m.group(4) or 1)
            old: list[str] = []
            new: list[str] = []
            i += 1
            while len(old) < old_n or len(new) < new_n:
                body = lines[i] if i < len(lines) else ""
                tag, rest = body[:1], body[1:]
                if tag == " " or body == "\n":  # an empty context line may have lost its space
                    old.append(rest or "\n")
                    new.append(rest or "\n")
                elif tag == "-":
                    old.append(rest)
                elif tag == "+":
                    new.append(rest)
                else:
                    raise InfraError(f"malformed hunk {line.strip()!r}: unexpected line {body!r}")
                i += 1
            files[-1][1].append(Hunk(int(m.group(1)), old, new))
            continue
        i += 1  # header text, `diff --git`, `index` lines
    return files


def apply_patch(src: Path, patch: Path) -> None:
    for rel, hunks in parse_patch(patch.read_text(encoding="utf-8")):
        target = src / rel
        with open(target, encoding="utf-8", newline="") as f:
            lines = f.read().splitlines(keepends=True)
        for hunk in reversed(hunks):  # from the bottom up, so earlier line numbers stay valid
            at = hunk.old_start - 1 if hunk.old else hunk.old_start
            if lines[at : at + len(hunk.old)] != hunk.old:
                raise InfraError(f"FerretDB patch {patch.name} does not apply to {rel} at line {hunk.old_start}")
            lines[at : at + len(hunk.old)] = hunk.new
        with open(target, "w", encoding="utf-8", newline="") as f:
            f.write("".join(lines))


def apply_patches(src: Path, patches_dir: Path = PATCHES_DIR) -> list[str]:
    """Apply every patch to the source tree at src; returns the patch names."""
    files = patch_files(patches_dir)
    for patch in files:
        apply_patch(src, patch)
    return [p.stem for p in files]
