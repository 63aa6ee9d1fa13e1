"""Elastic restarts: after `torchrun --max-restarts` restarts the group, every rank continues the SAME run.

Rank 0 records a key of the torchrun job in run.json when it creates the run;
a restarted rank 0 (TORCHELASTIC_RESTART_COUNT > 0) finds the run with that
key under output.dir and the group resumes it from its last complete
checkpoint. The key is the rendezvous id (`--rdzv-id`, a fresh uuid with
`--standalone`); with torchrun's default id "none" it is this host and the
torchrun agent's process id, which stay the same across restarts on one node.
"""

from __future__ import annotations

import logging
import os
import socket
from pathlib import Path

from tuneforge.errors import RunError
from tuneforge.rundir import iter_runs

logger = logging.getLogger(__name__)


def elastic_key() -> str | None:
    """The torchrun job this process belongs to; None outside torchrun."""
    run_id = os.environ.get("TORCHELASTIC_RUN_ID")
    if run_id is None:
        return None
    if run_id != "none":
        return f"rdzv:{run_id}"
    return f"agent:{socket.gethostname()}:{os.getppid()}"


def find_elastic_run(output_dir: str | Path, key: str | None) -> Path | None:
    """The newest run under `output_dir` started by the torchrun job `key`."""
    if key is None:
        return None
    found = []
    for run in iter_runs(output_dir):
        try:
            info = run.info()
        except RunError:  # another run's broken run.json is not ours to judge here
            continue
        if (info.get("distributed") or {}).get("elastic_key") == key:
            found.append((info.get("started", ""), str(run.path)))
    return Path(max(found)[1]) if found else None
