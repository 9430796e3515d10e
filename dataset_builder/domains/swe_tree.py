"""SWE filler from the repository itself: other files of the base commit's tree, the ones near the gold files first.

With a checkout, a record's distractors are files of the same repository at the same commit (never another
repository's), listed at extract time in this order, so that assembly (which takes them in order while they fit)
needs no repository access:

1. files in the same directory as a gold file;
2. Python modules a gold file imports, and modules of the tree that import a gold module;
3. tests of the gold modules (`test_<name>.py`, `<name>_test.py`, `tests/.../<name>.py`);
4. files the agent saw in listings (ls / find / grep);
5. the rest of the tree, by how much of their directory path they share with a gold file, then by path.

Only text files, each up to `MAX_FILE_CHARS`, in all up to `MAX_TREE_CHARS`; blobs are read in one
`git cat-file --batch` process. Importers are searched among the tree's Python files up to `MAX_SCAN_FILES`.

When the trajectory names no base commit, `infer_base` accepts the checkout's HEAD if it holds every pre-image blob
that the patch's `index <old>..<new>` lines name (git's own check that a patch applies to that tree).
"""

from __future__ import annotations

import posixpath
import re
import subprocess

from dataset_builder.schema import Piece

MAX_FILE_CHARS = 200_000
MAX_TREE_CHARS = 1_200_000  # ~300k tokens: more than the largest budget can take
MAX_SCAN_FILES = 2000
TEXT_SUFFIXES = {
    ".py", ".pyi", ".md", ".rst", ".txt", ".cfg", ".toml", ".ini", ".yaml", ".yml", ".json", ".js", ".ts", ".tsx",
    ".jsx", ".c", ".h", ".cc", ".cpp", ".hpp", ".go", ".rs", ".java", ".kt", ".rb", ".php", ".sh", ".pony", ".scala",
    ".cs", ".swift", ".m", ".sql", ".html", ".css", ".xml", "",
}  # fmt: skip
_IMPORT = re.compile(r"^\s*(?:from\s+(\.*[\w.]*)\s+import\s+([\w.*, ()]+)|import\s+([\w.]+(?:\s*,\s*[\w.]+)*))", re.M)
_INDEX = re.compile(
    r"^diff --git a/(.+?) b/.+\n(?:(?:old|new|deleted|similarity|rename|copy).*\n)*index ([0-9a-f]{7,40})\.\.", re.M
)


def read_blobs(git, paths: list[str], limit_each: int, total: int) -> dict[str, str]:
    """Texts of `paths` (in order) from the tree, read in one `git cat-file --batch`; binary, large or symlinked
    files are skipped, and reading stops at `total` characters."""
    entries = [(p, git.entries[p]) for p in paths if p in git.entries]
    entries = [(p, sha) for p, (mode, kind, sha) in entries if kind == "blob" and mode != "120000"]
    if not entries:
        return {}
    from dataset_builder.domains.swe import GIT_TIMEOUT_S

    stdin = "".join(f"{sha}\n" for _, sha in entries).encode()
    cmd = ["git", "-C", str(git.root), "cat-file", "--batch"]
    try:
        done = subprocess.run(cmd, input=stdin, capture_output=True, timeout=GIT_TIMEOUT_S, env=_git_env())
    except (subprocess.TimeoutExpired, OSError):
        return {}
    out, data, pos, size_sum = {}, done.stdout, 0, 0
    for path, _ in entries:
        end = data.find(b"\n", pos)
        if end < 0:
            break
        head = data[pos:end].split()
        if len(head) < 3 or head[1] != b"blob":
            pos = end + 1
            continue
        n = int(head[2])
        blob = data[end + 1 : end + 1 + n]
        pos = end + 1 + n + 1
        if n > limit_each or b"\x00" in blob[:8192]:
            continue
        text = blob.decode("utf-8", errors="replace")
        if not text.strip():
            continue
        if size_sum + len(text) > total:
            break
        out[path] = text
        size_sum += len(text)
    return out


def _git_env() -> dict[str, str]:
    import os

    return {**os.environ, "GIT_TERMINAL_PROMPT": "0", "GIT_OPTIONAL_LOCKS": "0", "LC_ALL": "C"}


def module_name(path: str) -> str:
    """'src/pkg/mod.py' -> 'pkg.mod' is unknowable without the import root; we use the dotted path and match suffixes."""
    stem = path[:-3] if path.endswith(".py") else path
    stem = stem[: -len("/__init__")] if stem.endswith("/__init__") else stem
    return stem.replace("/", ".")


def imported_modules(path: str, text: str) -> set[str]:
    """Dotted names a Python file imports (relative imports resolved against its package)."""
    package = posixpath.dirname(path).replace("/", ".")
    names: set[str] = set()
    for m in _IMPORT.finditer(text):
        if m.group(3):
            names.update(n.strip() for n in m.group(3).split(","))
            continue
        base, items = m.group(1), m.group(2)
        if base.startswith("."):
            dots = len(base) - len(base.lstrip("."))
            parts = package.split(".") if package else []
            parts = parts[: len(parts) - (dots - 1)] if dots > 1 else parts
            base = ".".join([*parts, base.lstrip(".")]).strip(".")
        names.add(base)
        for item in re.split(r"[\s,()]+", items):
            if item and item != "*":
                names.add(f"{base}.{item}" if base else item)
    return {n for n in names if n}


def _matches(module: str, name: str) -> bool:
    """Whether a file's dotted path `module` is what the import `name` refers to (suffix match on dotted parts)."""
    return module == name or module.endswith("." + name)


def near_order(git, gold: dict[str, str], listed: list[str], exclude: set[str]) -> list[str]:
    """Paths of the tree (text files, not `exclude`) in filler order: see the module docstring."""
    paths = [
        p
        for p, (mode, kind, _) in git.entries.items()
        if kind == "blob" and mode != "120000" and p not in exclude and _suffix(p) in TEXT_SUFFIXES
    ]
    gold_dirs = {posixpath.dirname(p) for p in gold}
    same_dir = [p for p in paths if posixpath.dirname(p) in gold_dirs]
    modules = {p: module_name(p) for p in paths if p.endswith(".py")}
    wanted = {n for p, t in gold.items() if p.endswith(".py") for n in imported_modules(p, t)}
    imports = [p for p, mod in modules.items() if any(_matches(mod, n) for n in wanted)]
    gold_modules = [module_name(p) for p in gold if p.endswith(".py")]
    stems = {posixpath.basename(m.replace(".", "/")) for m in gold_modules}
    scan = sorted(modules, key=lambda p: (-_shared(p, gold_dirs), p))[:MAX_SCAN_FILES]
    importers = []
    if gold_modules:
        texts = read_blobs(git, scan, MAX_FILE_CHARS, 8 * MAX_TREE_CHARS)
        importers = [
            p for p, t in texts.items() if any(_matches(g, n) for n in imported_modules(p, t) for g in gold_modules)
        ]
    tests = [
        p
        for p in paths
        if any(
            posixpath.basename(p) in (f"test_{s}.py", f"{s}_test.py", f"tests_{s}.py")
            or ("test" in p.split("/")[0] and posixpath.basename(p) == f"{s}.py")
            for s in stems
        )
    ]
    rest = sorted(paths, key=lambda p: (-_shared(p, gold_dirs), p))
    return list(dict.fromkeys([*same_dir, *imports, *importers, *tests, *[p for p in listed if p in paths], *rest]))


def _suffix(path: str) -> str:
    name = posixpath.basename(path)
    return name[name.rfind(".") :].lower() if "." in name.strip(".") else ""


def _shared(path: str, dirs: set[str]) -> int:
    parts = posixpath.dirname(path).split("/")
    best = 0
    for d in dirs:
        other = d.split("/") if d else []
        k = 0
        while k < min(len(parts), len(other)) and parts[k] == other[k]:
            k += 1
        best = max(best, k)
    return best


def repository_filler(git, gold: dict[str, str], listed: list[str], exclude: set[str]) -> list[Piece]:
    """Distractor pieces: other files of the tree at the base commit, near the gold files first."""
    order = near_order(git, gold, listed, exclude)
    texts = read_blobs(git, order, MAX_FILE_CHARS, MAX_TREE_CHARS)
    return [Piece(kind="file", title=p, text=texts[p], is_distractor=True) for p in order if p in texts]


def infer_base(root, patch: str) -> tuple[str | None, str]:
    """(HEAD's commit, note) when HEAD holds every pre-image blob the patch's index lines name, else (None, why)."""
    from dataset_builder.domains.swe import _git

    wanted = [(path, sha) for path, sha in _INDEX.findall(patch) if set(sha) != {"0"}]
    if not wanted:
        return None, "no base_commit and the patch has no index lines to find it by"
    head = _git(root, "rev-parse", "--verify", "--quiet", "HEAD^{commit}")
    if head.returncode != 0:
        return None, "no base_commit and the checkout has no HEAD"
    commit = head.stdout.decode().strip()
    for path, sha in wanted:
        blob = _git(root, "rev-parse", "--verify", "--quiet", f"{commit}:{path}")
        if blob.returncode != 0 or not blob.stdout.decode().strip().startswith(sha):
            return None, f"no base_commit, and the checkout's HEAD does not hold {path} at {sha} (the patch's base)"
    return commit, f"base commit {commit[:12]}: the checkout's HEAD holds every pre-image blob of the patch"
