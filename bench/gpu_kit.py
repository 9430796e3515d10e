"""The GPU check's kit: the wheels `make gpu-check` needs that the GPU machine lacks, carried to it (it has no network).

    python bench/gpu_kit.py build [--dry-run]     # here: download the wheels pinned in constraints-gpu.txt, then check
    python bench/gpu_kit.py check                 # here: tags, one version each, total size, requirements met
    python bench/gpu_kit.py install --target DIR  # there: pip install --no-index what that machine lacks, then verify
    python bench/gpu_kit.py preflight             # there: stop with the reason when no CUDA device is visible

The GPU machine (the `device` tool's KINDS.md) has Python 3.12, torch 2.11 + CUDA 13, transformers 5.17, triton 3.6,
accelerate, peft and many common packages, but no trl, datasets or liger-kernel. The kit holds cp312 manylinux
x86_64 wheels pinned exactly in `constraints-gpu.txt`, downloaded without their dependencies: each dependency is
either another pinned wheel or a package that machine has (`DEVICE`, versions where KINDS.md gives them). A pinned
package the machine may already have at a fitting version (fsspec) is a fallback: `install` skips it when the
installed one satisfies every requirement on it. What travels with a device call is limited to 64 MiB, the working
tree included, so the kit must stay well under it (pyarrow alone is 52 MiB: datasets is pinned to a release that
asks no newer pyarrow than TRL does).
"""

from __future__ import annotations

import argparse
import importlib.metadata
import subprocess
import sys
import zipfile
from dataclasses import dataclass, field
from email.parser import Parser
from pathlib import Path

from packaging.requirements import Requirement
from packaging.tags import Tag, compatible_tags, cpython_tags
from packaging.utils import canonicalize_name, parse_wheel_filename
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[1]
KIT = ROOT / ".gpu-kit"
CONSTRAINTS = ROOT / "constraints-gpu.txt"
LIMIT_BYTES = 48 * 2**20  # a device call carries 64 MiB in all; the rest is the working tree and headroom
PYTHON = (3, 12)
PLATFORMS = [f"manylinux_2_{n}_x86_64" for n in (35, 34, 31, 28, 27, 24, 17)] + ["manylinux2014_x86_64", "linux_x86_64"]
MARKER_ENV = {
    "python_version": "3.12", "python_full_version": "3.12.3", "sys_platform": "linux", "platform_system": "Linux",
    "platform_machine": "x86_64", "os_name": "posix", "implementation_name": "cpython",
    "platform_python_implementation": "CPython", "extra": "",
}  # fmt: skip
# What the GPU machine has (KINDS.md, read 2026-11): version where known, None where only the name is listed.
DEVICE: dict[str, str | None] = {
    "torch": "2.11.0", "transformers": "5.17.0", "triton": "3.6.0", "accelerate": "1.15.0",
    "huggingface-hub": "1.33.0", "numpy": "2.5.2", "tokenizers": "0.23.2", "safetensors": "0.8.0",
    **dict.fromkeys(
        "peft pyarrow pandas psutil jinja2 pyyaml packaging filelock tqdm xxhash requests httpx aiohttp fsspec regex "
        "typing-extensions matplotlib pytest hf-xet click typer rich pillow protobuf sympy networkx".split()
    ),
}  # fmt: skip


@dataclass
class Wheel:
    path: Path
    name: str  # canonical
    version: Version
    tags: frozenset[Tag]
    requires: list[Requirement] = field(default_factory=list)  # unconditional ones and those whose marker holds

    @property
    def size(self) -> int:
        return self.path.stat().st_size


def read_pins(path: Path = CONSTRAINTS) -> dict[str, str]:
    """{canonical name: version} from `name==version` lines (comments and blank lines skipped)."""
    pins = {}
    for number, line in enumerate(path.read_text().splitlines(), 1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        requirement = Requirement(line)
        spec = list(requirement.specifier)
        if len(spec) != 1 or spec[0].operator != "==":
            raise ValueError(f"{path}:{number}: {line!r} is not pinned exactly (name==version)")
        pins[canonicalize_name(requirement.name)] = spec[0].version
    return pins


def read_wheel(path: Path, marker_env: dict | None = None) -> Wheel:
    """Name, version and tags from the file name; requirements from its METADATA (markers evaluated for
    `marker_env`, the GPU machine's by default; extras of a requirement are not followed)."""
    name, version, _, tags = parse_wheel_filename(path.name)
    with zipfile.ZipFile(path) as archive:
        metadata = next(n for n in archive.namelist() if n.endswith(".dist-info/METADATA"))
        message = Parser().parsestr(archive.read(metadata).decode())
    env = marker_env or MARKER_ENV
    requires = [Requirement(r) for r in message.get_all("Requires-Dist") or []]
    requires = [r for r in requires if r.marker is None or r.marker.evaluate(env)]
    return Wheel(path, canonicalize_name(name), version, frozenset(tags), requires)


def device_tags() -> set[Tag]:
    """Tags a CPython 3.12 manylinux x86_64 interpreter accepts."""
    tags = set(cpython_tags(PYTHON, abis=["cp312"], platforms=PLATFORMS))
    return tags | set(compatible_tags(PYTHON, interpreter="cp312", platforms=PLATFORMS))


def check_kit(
    wheels: list[Wheel], pins: dict[str, str], device: dict[str, str | None] = DEVICE, limit: int = LIMIT_BYTES
) -> tuple[list[str], list[str]]:
    """(problems, notes) of a kit: every pin has exactly one wheel of its version and nothing else is there, every
    wheel installs on the GPU machine, the kit fits the limit, and every requirement is met by a kit wheel or by the
    machine (notes: requirements on a machine package whose version KINDS.md does not give)."""
    problems, notes = [], []
    accepted = device_tags()
    by_name: dict[str, list[Wheel]] = {}
    for wheel in wheels:
        by_name.setdefault(wheel.name, []).append(wheel)
        if not wheel.tags & accepted:
            problems.append(f"{wheel.path.name}: no tag the GPU machine accepts (CPython 3.12, manylinux x86_64)")
    for name, found in sorted(by_name.items()):
        if len(found) > 1:
            problems.append(f"{name}: {len(found)} wheels ({', '.join(w.path.name for w in found)}); keep one version")
        if name not in pins:
            problems.append(f"{name}: a wheel that constraints-gpu.txt does not pin")
        elif any(str(w.version) != pins[name] for w in found):
            problems.append(f"{name}: wheel {found[0].version}, pinned {pins[name]}; rebuild the kit")
    problems += [
        f"{name}=={version}: pinned, no wheel in the kit" for name, version in pins.items() if name not in by_name
    ]
    total = sum(w.size for w in wheels)
    if total > limit:
        problems.append(f"the kit is {total / 2**20:.1f} MiB, over its {limit / 2**20:.0f} MiB limit")
    versions = {w.name: w.version for w in wheels}
    for wheel in wheels:
        for requirement in wheel.requires:
            name = canonicalize_name(requirement.name)
            if name in versions:
                if not requirement.specifier.contains(versions[name], prereleases=True):
                    problems.append(f"{wheel.name} needs {requirement}; the kit has {name} {versions[name]}")
            elif name not in device:
                problems.append(f"{wheel.name} needs {requirement}: neither in the kit nor on the GPU machine")
            elif device[name] is None:
                if str(requirement.specifier):
                    notes.append(f"{wheel.name} needs {requirement}; the machine's {name} version is checked there")
            elif not requirement.specifier.contains(device[name], prereleases=True):
                problems.append(f"{wheel.name} needs {requirement}; the GPU machine has {name} {device[name]}")
    return problems, notes


def kit_wheels(kit: Path) -> list[Wheel]:
    return [read_wheel(p) for p in sorted(kit.glob("*.whl"))]


def download_command(requirements: list[str], kit: Path) -> list[str]:
    platforms = [arg for platform in PLATFORMS[:-1] for arg in ("--platform", platform)]
    return [
        sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--python-version", "3.12",
        "--implementation", "cp", "--abi", "cp312", *platforms, "--dest", str(kit), *requirements,
    ]  # fmt: skip


def build(kit: Path, constraints: Path, dry_run: bool) -> int:
    pins = read_pins(constraints)
    present = {w.name: w for w in kit_wheels(kit)} if kit.is_dir() else {}
    wanted = [
        f"{name}=={version}"
        for name, version in pins.items()
        if str(getattr(present.get(name), "version", "")) != version
    ]
    stale = [w.path for name, w in present.items() if name not in pins or str(w.version) != pins[name]]
    print(f"kit {kit}: {len(pins)} pinned, {len(pins) - len(wanted)} present, {len(wanted)} to download")
    for path in stale:
        print(f"  remove {path.name} (not pinned at that version)")
    if wanted:
        print("  " + " ".join(download_command(wanted, kit)))
    if dry_run:
        return 0
    kit.mkdir(parents=True, exist_ok=True)
    for path in stale:
        path.unlink()
    if wanted:
        subprocess.run(download_command(wanted, kit), check=True)
    return check(kit, constraints)


def check(kit: Path, constraints: Path) -> int:
    wheels = kit_wheels(kit)
    problems, notes = check_kit(wheels, read_pins(constraints))
    for wheel in sorted(wheels, key=lambda w: -w.size):
        print(f"  {wheel.size / 2**20:7.2f} MiB  {wheel.path.name}")
    print(
        f"  {sum(w.size for w in wheels) / 2**20:7.2f} MiB  in {len(wheels)} wheels (limit {LIMIT_BYTES / 2**20:.0f} MiB)"
    )
    for note in notes:
        print(f"  note: {note}")
    for problem in problems:
        print(f"  PROBLEM: {problem}")
    return 1 if problems else 0


# ---- on the GPU machine --------------------------------------------------------------------------------------------


def installed_version(name: str, paths: list[str] | None = None) -> Version | None:
    found = next(iter(importlib.metadata.distributions(name=name, path=paths or sys.path)), None)
    return Version(found.version) if found is not None else None


def wheels_to_install(wheels: list[Wheel], paths: list[str] | None = None) -> tuple[list[Wheel], list[str]]:
    """The kit wheels this environment needs: those it lacks, then, until nothing changes, those whose installed
    version fails a requirement of a wheel going in; with a line per wheel left out."""
    have = {w.name: installed_version(w.name, paths) for w in wheels}
    needed = [w for w in wheels if have[w.name] is None]
    while True:
        asks = [r for w in needed for r in w.requires]
        more = [
            w
            for w in wheels
            if w not in needed
            and any(
                canonicalize_name(r.name) == w.name and not r.specifier.contains(have[w.name], prereleases=True)
                for r in asks
            )
        ]
        if not more:
            break
        needed += more
    skipped = [f"{w.name}: kept the installed {have[w.name]}" for w in wheels if w not in needed]
    return needed, skipped


def unmet_requirements(wheels: list[Wheel], paths: list[str] | None = None) -> list[str]:
    """Requirements of the kit's packages this environment (with the target on `paths`) does not meet."""
    unmet = []
    for wheel in wheels:
        for requirement in wheel.requires:
            have = installed_version(requirement.name, paths)
            if have is None or not requirement.specifier.contains(have, prereleases=True):
                unmet.append(f"{wheel.name} needs {requirement}, found {have or 'nothing'}")
    return unmet


def install(kit: Path, target: Path) -> int:
    here = sys.version_info[:2]
    env = None if here == PYTHON else MARKER_ENV  # on the GPU machine, its own markers
    wheels = [read_wheel(p, env) for p in sorted(kit.glob("*.whl"))]
    if not wheels:
        print(f"no wheels in {kit}: run `make gpu-kit` on a machine with PyPI access first", file=sys.stderr)
        return 1
    needed, skipped = wheels_to_install(wheels)
    command = [sys.executable, "-m", "pip", "install", "-q", "--no-index", "--no-deps", "--no-compile"]
    command += ["--no-cache-dir", "--upgrade", "--target", str(target)]
    if here != PYTHON:  # a rehearsal away from the GPU machine: install the 3.12 wheels for 3.12 all the same
        command += ["--python-version", "3.12", "--implementation", "cp", "--abi", "cp312", "--only-binary=:all:"]
        command += [arg for platform in PLATFORMS[:-1] for arg in ("--platform", platform)]
        print(f"Python {here[0]}.{here[1]} here, the kit is for 3.12: installing it as for 3.12 (a rehearsal)")
    subprocess.run([*command, *(str(w.path) for w in needed)], check=True)
    print(f"kit: installed {len(needed)} wheels into {target}: {', '.join(f'{w.name} {w.version}' for w in needed)}")
    for line in skipped:
        print(f"kit: {line}")
    unmet = unmet_requirements(needed, [str(target), *sys.path])
    for line in unmet:
        print(f"kit: UNMET {line}", file=sys.stderr)
    if unmet and here != PYTHON:
        print("kit: (a rehearsal on another Python: the GPU machine's own packages are checked there)")
        return 0
    return 1 if unmet else 0


def preflight() -> int:
    """Say what is missing for the GPU part, and stop, where there is no CUDA device."""
    try:
        import torch
    except ImportError:
        print("gpu-check: torch is not importable with this Python; run it with the GPU machine's python3")
        return 2
    if not torch.cuda.is_available():
        print(
            f"gpu-check: needs a CUDA device, and torch {torch.__version__} sees none. The kit is installed and checked as far as "
            "this machine allows; run `make gpu-check` on the GPU machine for the CUDA tests and the benchmark."
        )
        return 2
    name = torch.cuda.get_device_name()
    print(f"gpu-check: {name}, torch {torch.__version__} (CUDA {torch.version.cuda}), Python {sys.version.split()[0]}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=["build", "check", "install", "preflight"])
    parser.add_argument("--kit", type=Path, default=KIT, help="the kit folder (git-ignored)")
    parser.add_argument("--constraints", type=Path, default=CONSTRAINTS)
    parser.add_argument("--target", type=Path, default=Path("/tmp/acc-gpu-site"), help="install: where the wheels go")
    parser.add_argument("--dry-run", action="store_true", help="build: say what would be downloaded, download nothing")
    args = parser.parse_args(argv)
    if args.command == "build":
        return build(args.kit, args.constraints, args.dry_run)
    if args.command == "check":
        return check(args.kit, args.constraints)
    if args.command == "install":
        return install(args.kit, args.target)
    return preflight()


if __name__ == "__main__":
    sys.exit(main())
