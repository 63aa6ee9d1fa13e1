"""Building test services around real (tiny) runs."""

from __future__ import annotations

import time

from tuneforge.predict.batcher import MicroBatcher
from tuneforge.predict.predictor import Predictor
from tuneforge.serve.app import ServiceState, create_app
from tuneforge.serve.metrics import ServiceMetrics
from tuneforge.serve.registry import ServedModel, load_models, parse_model_specs
from tuneforge.serve.settings import ServeSettings


def make_app(run_dirs, *, keys=(), delay: float = 0.0, **settings):
    """An app serving `run_dirs`; `delay` slows every batch down (to provoke 429/504)."""
    config = ServeSettings(**settings)
    state = ServiceState(settings=config, metrics=ServiceMetrics(), key_digests=[])
    if keys:
        from tuneforge.serve.auth import load_key_digests

        state.key_digests = load_key_digests(environ={"TUNEFORGE_API_KEYS": ",".join(keys)})

    def load():
        if not delay:
            return load_models(parse_model_specs([str(p) for p in run_dirs]), config, state.metrics)
        models = {}
        for name, run_dir in parse_model_specs([str(p) for p in run_dirs]):
            predictor = Predictor.load(run_dir)

            def slow(texts, _p=predictor):
                time.sleep(delay)
                return _p.predict_proba(texts)

            batcher = MicroBatcher(slow, max_batch_size=config.max_batch_size, max_wait_ms=config.max_wait_ms, max_queue=config.max_queue)
            models[name] = ServedModel(name=name, predictor=predictor, batcher=batcher)
        return models

    return create_app(state, load=load), state
