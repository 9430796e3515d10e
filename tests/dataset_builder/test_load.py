"""`load_acc_split` reads what is on disk now: a folder recompiled in place, or another folder of the same name, is never
served from the Arrow cache of the first load (which plain `load_dataset(DIR, CONFIG)` does with datasets 5.2)."""

from __future__ import annotations

from pathlib import Path

import pytest
from datasets import Dataset

from dataset_builder.load import acc_config_names, load_acc_split

CARD = """---
configs:
- config_name: all
  data_files:
  - split: train
    path: data/*/train-*.parquet
  default: true
- config_name: swe
  data_files:
  - split: train
    path: data/swe/train-*.parquet
---

# test
"""


def write(folder: Path, rows_per_domain: dict[str, int]) -> Path:
    for domain, n in rows_per_domain.items():
        (folder / "data" / domain).mkdir(parents=True, exist_ok=True)
        rows = {"id": [f"{domain}-{i}" for i in range(n)], "domain": [domain] * n}
        Dataset.from_dict(rows).to_parquet(str(folder / "data" / domain / "train-00000-of-00001.parquet"))
    (folder / "README.md").write_text(CARD)
    return folder


def test_recompiled_folder_and_same_named_folder_are_read_fresh(tmp_path, monkeypatch):
    import datasets.config

    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", tmp_path / "shared_cache")  # one cache for all loads
    a = write(tmp_path / "a" / "acc_data", {"swe": 3, "sql": 2})
    assert len(load_acc_split(str(a), "all")) == 5
    assert len(load_acc_split(str(a), "swe")) == 3
    b = write(tmp_path / "b" / "acc_data", {"swe": 7})  # another corpus, same folder name
    assert sorted(load_acc_split(str(b), "all")["id"]) == sorted(f"swe-{i}" for i in range(7))
    write(a, {"swe": 4, "sql": 2})  # recompiled in place
    assert len(load_acc_split(str(a), "swe")) == 4


def test_configs_and_errors(tmp_path):
    folder = write(tmp_path / "acc", {"swe": 2})
    assert acc_config_names(str(folder)) == ["all", "swe"]
    assert len(load_acc_split(str(folder))) == 2  # default: all
    with pytest.raises(ValueError, match="no config 'sql'"):
        load_acc_split(str(folder), "sql")
    with pytest.raises(ValueError, match="no files for split 'test'"):
        load_acc_split(str(folder), "swe", split="test")
