"""The micro-batcher on its own: routing, coalescing, bounds, cancellation, shutdown."""

import threading
import time

import numpy as np
import pytest

from tuneforge.predict.batcher import BatcherClosed, MicroBatcher, QueueFull


def fake_model(texts):
    """Probability rows that encode each text, so a mix-up between callers would show."""
    return np.array([[len(t), 1.0] for t in texts])


def test_each_caller_gets_its_own_rows_from_shared_batches():
    calls = []

    def model(texts):
        calls.append(len(texts))
        time.sleep(0.01)
        return fake_model(texts)

    batcher = MicroBatcher(model, max_batch_size=16, max_wait_ms=30, max_queue=1000)
    results = {}

    def client(i):
        texts = ["x" * (i + 1), "y" * (i + 100)]
        results[i] = batcher.predict(texts, timeout=5)

    threads = [threading.Thread(target=client, args=(i,)) for i in range(24)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    batcher.close()
    for i, probs in results.items():
        assert probs[:, 0].tolist() == [i + 1, i + 100]
    assert len(results) == 24
    assert max(calls) > 2  # requests were coalesced
    assert max(calls) <= 16 + 2  # a batch stops growing once it reaches max_batch_size
    assert batcher.depth == 0


def test_full_queue_rejects_at_once():
    gate = threading.Event()
    batcher = MicroBatcher(lambda texts: (gate.wait(5), fake_model(texts))[1], max_batch_size=1, max_wait_ms=0, max_queue=3)
    first = batcher.submit(["a", "b"])
    started = time.perf_counter()
    with pytest.raises(QueueFull):
        batcher.submit(["c", "d"])
    assert time.perf_counter() - started < 0.5
    gate.set()
    assert first.result(5).probabilities.shape == (2, 2)
    batcher.close()


def test_cancelled_request_is_skipped_and_frees_its_slot():
    gate, seen = threading.Event(), []

    def model(texts):
        seen.extend(texts)
        gate.wait(5)
        return fake_model(texts)

    batcher = MicroBatcher(model, max_batch_size=1, max_wait_ms=0, max_queue=10)
    running = batcher.submit(["running"])
    time.sleep(0.05)
    waiting = batcher.submit(["gave-up"])
    assert batcher.depth == 2
    assert waiting.cancel()
    gate.set()
    running.result(5)
    batcher.close()
    assert "gave-up" not in seen
    assert batcher.depth == 0


def test_close_finishes_queued_work_then_refuses():
    batcher = MicroBatcher(lambda texts: (time.sleep(0.02), fake_model(texts))[1], max_batch_size=1, max_wait_ms=0, max_queue=100)
    futures = [batcher.submit([str(i)]) for i in range(5)]
    batcher.close(timeout=5)
    assert all(f.done() and not f.cancelled() for f in futures)
    with pytest.raises(BatcherClosed):
        batcher.submit(["late"])


def test_model_error_reaches_the_callers_and_worker_survives():
    state = {"fail": True}

    def model(texts):
        if state["fail"]:
            raise RuntimeError("bad batch")
        return fake_model(texts)

    batcher = MicroBatcher(model, max_batch_size=4, max_wait_ms=0, max_queue=10)
    with pytest.raises(RuntimeError, match="bad batch"):
        batcher.predict(["a"], timeout=5)
    state["fail"] = False
    assert batcher.predict(["abc"], timeout=5)[0, 0] == 3
    assert batcher.depth == 0
    batcher.close()


def test_every_depth_change_is_reported():
    """The service writes these to its queue-depth gauge (each worker its own, summed by /metrics)."""
    gate, depths = threading.Event(), []
    batcher = MicroBatcher(
        lambda texts: (gate.wait(5), fake_model(texts))[1], max_batch_size=1, max_wait_ms=0, max_queue=10, on_depth=depths.append
    )
    first, second = batcher.submit(["a", "b"]), batcher.submit(["c"])
    assert depths == [2, 3]
    gate.set()
    first.result(5), second.result(5)
    batcher.close()
    assert depths == [2, 3, 1, 0] and batcher.depth == 0
