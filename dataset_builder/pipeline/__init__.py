"""The compile as a datatrove pipeline: four stages, each a `PipelineStep` with one job, run by any datatrove executor
(local processes, Slurm, Ray), resumable through datatrove's completion markers.

    read      (N tasks)  input files[rank::N] -> adapt -> extract -> evidence parquet, bucketed by filler group;
                         rejects; per-domain candidates for the filler reservoir (bottom-k by hash)
    pool      (1 task)   merge the candidates into one bounded filler reservoir per domain
    assemble  (M tasks)  buckets[rank::M] -> budget, distractors (bucket first, then reservoir), shuffle, render
                         -> records per bucket and split, sorted by origin
    finalize  (1 task)   records -> bounded parquet shards in bucket order, rejects.jsonl, stats.json, plots, card

Memory is bounded by one input file (read), the reservoir (pool), and one bucket (assemble), not by the corpus.
Every choice depends only on the inputs, the settings and the seed, so the dataset is byte-identical whatever the
number of tasks and workers. See `run.py` for the executors and `layout.py` for the folders.
"""

from dataset_builder.pipeline.settings import CompileSettings

__all__ = ["CompileSettings"]
