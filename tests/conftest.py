import os
import sys
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
REAL = ROOT.parent / "shared" / "fixtures" / "real"

# Hermetic caches, set before any test module imports datasets / huggingface_hub / transformers (they read these at
# import): nothing is read from or written to the machine's ~/.cache/huggingface. Each test then gets its own (below).
_SESSION_HOME = Path(tempfile.mkdtemp(prefix="acc-hf-tests-"))
CACHE_ENV = ("HF_HOME", "HF_DATASETS_CACHE", "HF_HUB_CACHE", "HF_MODULES_CACHE", "HF_XET_CACHE")
for _name in CACHE_ENV:
    os.environ[_name] = str(_SESSION_HOME / _name.lower())
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")


@pytest.fixture(autouse=True)
def hermetic_hf_caches(tmp_path_factory, monkeypatch):
    """A fresh Hub/datasets cache for every test, in the environment (for subprocesses) and in `datasets.config`
    (read at import time, so patched in place once datasets is imported)."""
    home = tmp_path_factory.mktemp("hf_home")
    for name in CACHE_ENV:
        monkeypatch.setenv(name, str(home / name.lower()))
    cfg = sys.modules.get("datasets.config")
    if cfg is not None:
        monkeypatch.setattr(cfg, "HF_CACHE_HOME", str(home / "hf_home"))
        monkeypatch.setattr(cfg, "HF_DATASETS_CACHE", home / "hf_datasets_cache")
        monkeypatch.setattr(cfg, "HF_MODULES_CACHE", home / "hf_modules_cache")
        monkeypatch.setattr(cfg, "DOWNLOADED_DATASETS_PATH", home / "hf_datasets_cache" / "downloads")
        monkeypatch.setattr(cfg, "EXTRACTED_DATASETS_PATH", home / "hf_datasets_cache" / "downloads" / "extracted")
    hub = sys.modules.get("huggingface_hub.constants")
    if hub is not None:
        monkeypatch.setattr(hub, "HF_HUB_CACHE", str(home / "hf_hub_cache"))
    yield home


@pytest.fixture(scope="session")
def real() -> Path:
    """The real trajectories of ../shared/fixtures/real, read in place (never copied into the project)."""
    if not REAL.is_dir():
        pytest.skip(f"real fixtures not found at {REAL} (they live beside the checkout, in shared/)")
    return REAL
