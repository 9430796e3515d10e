"""The GPU check's kit builder and installer (bench/gpu_kit.py), offline: wheels built here (real zip wheels with
METADATA), the checks that a kit installs on the GPU machine (tags, one version each, size, requirements met by the
kit or that machine), the dry run of a build, and a real `pip install --no-index` of a kit into a target folder."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
spec = importlib.util.spec_from_file_location("gpu_kit", ROOT / "bench" / "gpu_kit.py")
gpu_kit = importlib.util.module_from_spec(spec)
sys.modules["gpu_kit"] = gpu_kit  # its dataclasses look their module up
spec.loader.exec_module(gpu_kit)


def make_wheel(folder: Path, name: str, version: str, requires=(), tag="py3-none-any", padding: int = 0) -> Path:
    """A minimal, installable wheel: one module, METADATA with Requires-Dist lines, WHEEL, RECORD."""
    module = name.replace("-", "_")
    dist_info = f"{module}-{version}.dist-info"
    path = folder / f"{module}-{version}-{tag}.whl"
    metadata = "\n".join(
        ["Metadata-Version: 2.1", f"Name: {name}", f"Version: {version}", *(f"Requires-Dist: {r}" for r in requires)]
    )
    wheel = f"Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: {tag}\n"
    folder.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr(f"{module}/__init__.py", f"VERSION = {version!r}\n" + "#" * padding)
        archive.writestr(f"{dist_info}/METADATA", metadata + "\n")
        archive.writestr(f"{dist_info}/WHEEL", wheel)
        archive.writestr(f"{dist_info}/RECORD", "")
    return path


def test_a_good_kit_passes_and_each_kind_of_mistake_is_named(tmp_path):
    kit = tmp_path / "kit"
    make_wheel(
        kit, "acc-kit-a", "1.0", ["acc-kit-b>=2", "numpy>=2.0", "pandas>=2", 'colorama; sys_platform == "win32"']
    )
    make_wheel(kit, "acc-kit-b", "2.1", tag="cp312-cp312-manylinux_2_17_x86_64")
    pins = {"acc-kit-a": "1.0", "acc-kit-b": "2.1"}
    problems, notes = gpu_kit.check_kit(gpu_kit.kit_wheels(kit), pins)
    assert problems == []  # numpy 2.5.2 on the machine; colorama only on Windows
    assert notes == ["acc-kit-a needs pandas>=2; the machine's pandas version is checked there"]

    make_wheel(
        kit, "acc-kit-c", "1.0", ["numpy<2", "acc-kit-b<2", "not-anywhere>=1"], tag="cp311-cp311-macosx_11_0_arm64"
    )
    make_wheel(kit, "acc-kit-b", "2.2")
    problems, _ = gpu_kit.check_kit(gpu_kit.kit_wheels(kit), {**pins, "acc-kit-d": "3.0"}, limit=1000)
    text = "\n".join(problems)
    assert "acc_kit_c-1.0-cp311-cp311-macosx_11_0_arm64.whl: no tag the GPU machine accepts" in text
    assert "acc-kit-b: 2 wheels" in text and "keep one version" in text
    assert "acc-kit-c: a wheel that constraints-gpu.txt does not pin" in text
    assert "acc-kit-d==3.0: pinned, no wheel in the kit" in text
    assert "acc-kit-c needs numpy<2; the GPU machine has numpy 2.5.2" in text
    assert "acc-kit-c needs not-anywhere>=1: neither in the kit nor on the GPU machine" in text
    assert "over its 0 MiB limit" in text


def test_pins_must_be_exact_and_the_real_constraints_pin_what_the_check_needs(tmp_path):
    loose = tmp_path / "c.txt"
    loose.write_text("trl==1.16.0  # fine\n\ndatasets>=5\n")
    with pytest.raises(ValueError, match=r"c.txt:3: 'datasets>=5' is not pinned exactly"):
        gpu_kit.read_pins(loose)
    pins = gpu_kit.read_pins(gpu_kit.CONSTRAINTS)
    assert {"trl", "datasets", "liger-kernel", "dill", "multiprocess"} <= set(pins)
    assert not set(pins) & {"torch", "transformers", "triton", "accelerate"}  # the machine's own are used


def test_dry_run_plans_the_downloads_without_fetching(tmp_path, capsys):
    kit = tmp_path / "kit"
    make_wheel(kit, "acc-kit-a", "1.0")
    make_wheel(kit, "acc-kit-old", "0.1")
    constraints = tmp_path / "constraints-gpu.txt"
    constraints.write_text("acc-kit-a==1.0\nacc-kit-b==2.0\n")
    assert gpu_kit.main(["build", "--dry-run", "--kit", str(kit), "--constraints", str(constraints)]) == 0
    out = capsys.readouterr().out
    assert "2 pinned, 1 present, 1 to download" in out and "remove acc_kit_old-0.1-py3-none-any.whl" in out
    command = next(line for line in out.splitlines() if " pip download " in line)
    assert "--no-deps --only-binary=:all: --python-version 3.12" in command and "--abi cp312" in command
    assert command.endswith("acc-kit-b==2.0")
    assert sorted(p.name for p in kit.iterdir()) == [
        "acc_kit_a-1.0-py3-none-any.whl",
        "acc_kit_old-0.1-py3-none-any.whl",
    ]


def test_install_puts_what_the_environment_lacks_into_the_target_with_no_index(tmp_path):
    """A real `pip install --no-index --no-deps --target`: the wheels this environment lacks go in, a fallback whose
    installed version meets every requirement on it (pyyaml here) stays out, and the requirements are then met."""
    kit = tmp_path / "kit"
    make_wheel(kit, "acc-kit-a", "1.0", ["acc-kit-b>=2", "pyyaml>=5"])
    make_wheel(kit, "acc-kit-b", "2.0")
    make_wheel(kit, "pyyaml", "5.1")
    target = tmp_path / "site"
    result = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "gpu_kit.py"), "install", "--kit", str(kit), "--target", str(target)],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    assert "installed 2 wheels" in result.stdout and "pyyaml: kept the installed 6" in result.stdout
    assert sorted(p.name for p in target.iterdir() if p.suffix != ".dist-info") == ["acc_kit_a", "acc_kit_b"]
    check = subprocess.run(
        [sys.executable, "-c", "import acc_kit_a, acc_kit_b, yaml; print(acc_kit_b.VERSION, yaml.__version__)"],
        capture_output=True, text=True, env={"PYTHONPATH": str(target)}, check=True,
    )  # fmt: skip
    assert check.stdout.split()[0] == "2.0" and check.stdout.split()[1] != "5.1"

    make_wheel(kit, "acc-kit-c", "1.0", ["pyyaml<1"])  # now the installed pyyaml fails a requirement: the kit's goes in
    needed, _ = gpu_kit.wheels_to_install(gpu_kit.kit_wheels(kit))
    assert "pyyaml" in {w.name for w in needed}
