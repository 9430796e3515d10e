from dataset_builder.pipeline import memory


def test_work_done_releases_once_per_threshold(monkeypatch):
    calls = []
    monkeypatch.setattr(memory, "release_memory", lambda: calls.append(1))
    monkeypatch.setattr(memory, "_pending", 0)
    released = [memory.work_done(10, every=25) for _ in range(6)]
    assert released == [False, False, True, False, False, True]
    assert len(calls) == 2
    assert memory.work_done(100, every=25)  # one large unit releases at once


def test_release_memory_runs_here():
    memory.release_memory()  # gc + malloc_trim (a no-op off glibc) must not raise
