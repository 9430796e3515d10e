"""SWE filler from the repository itself (a real local git repository built here), never from another one."""

import json
import subprocess
from pathlib import Path

from dataset_builder.compile import compile_trajectories
from dataset_builder.domains import DomainOptions

RUNS = Path("swe/SWE-agent__SWE-agent/tests/test_data/trajectories")
TEST_REPO_RUN = (
    RUNS
    / "gpt4__swe-agent-test-repo__default_from_url__t-0.00__p-0.95__c-3.00__install-1/6e44b9__sweagenttestrepo-1c2844.traj"
)
PYDICOM_RUN = (
    RUNS / "gpt4__swe-bench-dev-easy_first_only__default__t-0.00__p-0.95__c-3.00__install-1/pydicom__pydicom-1458.traj"
)
# the file as the run shows it (10 lines, the last one empty): git names it 20edef5, as the run's patch does
MISSING_COLON = (
    "#!/usr/bin/env python3\n\n\ndef division(a: float, b: float) -> float\n    return a/b\n\n\n"
    'if __name__ == "__main__":\n    print(division(123, 15))\n\n'
)
FILES = {
    "tests/missing_colon.py": MISSING_COLON,
    "tests/test_missing_colon.py": "from tests.missing_colon import division\n\n\ndef test_division():\n    assert division(4, 2) == 2\n",
    "README.md": "# test-repo\n\nSmall broken programs for SWE-agent's tests.\n",
    "src/calc/ops.py": "def add(a, b):\n    return a + b\n",
}


def git(root: Path, *args: str) -> str:
    env = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.org", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@example.org", "HOME": str(root), "PATH": "/usr/bin:/bin"}  # fmt: skip
    return subprocess.run(["git", "-C", str(root), *args], check=True, capture_output=True, env=env).stdout.decode()


def make_repo(root: Path) -> None:
    root.mkdir(parents=True)
    git(root, "init", "-q")
    for path, text in FILES.items():
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_text(text)
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "base")
    assert git(root, "rev-parse", "HEAD:tests/missing_colon.py").startswith("20edef5")


def test_record_built_with_a_checkout_holds_only_its_own_files(real, tmp_path):
    make_repo(tmp_path / "repos" / "SWE-agent__test-repo")
    inputs = [real / TEST_REPO_RUN, real / PYDICOM_RUN]  # pydicom's files are in the pool: they must not be filler
    opts = DomainOptions(repos_dir=tmp_path / "repos")
    result = compile_trajectories(inputs, tmp_path / "out", domain_options=opts, progress=False)
    (record,) = [r for r in result.records if "test-repo" in json.loads(r.meta).get("repo", "")]
    titles = [p.title for p in record.pieces]
    assert set(titles) == set(FILES)  # the gold file and every other file of that tree, nothing else
    assert [p.title for p in record.pieces if not p.is_distractor] == ["tests/missing_colon.py"]
    meta = json.loads(record.meta)
    assert meta["filler"] == "repository at the base commit" and meta["evidence"]["filler"] == "repository"
    assert any("HEAD holds every pre-image blob" in n for n in meta["evidence"]["notes"])
    assert "among them files of the repository at the commit to fix" in record.prompt[0]["content"]


def test_near_files_come_first(real, tmp_path):
    from dataset_builder.adapters import read_file
    from dataset_builder.domains import extract

    make_repo(tmp_path / "repos" / "SWE-agent__test-repo")
    (traj,) = list(read_file(real / TEST_REPO_RUN))
    ev = extract(traj, DomainOptions(repos_dir=tmp_path / "repos"))
    order = [p.title for p in ev.distractors]
    # same directory and the test importing the gold module first, then the rest of the tree
    assert order[0] == "tests/test_missing_colon.py" and set(order[1:]) == {"README.md", "src/calc/ops.py"}


def test_without_a_checkout_the_record_says_where_its_filler_came_from(real, tmp_path):
    inputs = [real / TEST_REPO_RUN, real / PYDICOM_RUN]
    result = compile_trajectories(inputs, tmp_path / "out", progress=False)
    (record,) = [r for r in result.records if "test-repo" in json.loads(r.meta).get("repo", "")]
    meta = json.loads(record.meta)
    assert meta["evidence"]["filler"] == "other runs"
    assert meta["filler"] == "other runs" and any(p.is_distractor for p in record.pieces)  # pydicom's files
