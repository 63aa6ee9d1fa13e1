"""`tuneforge train --nproc N`: start the same command under `torchrun` (torch.distributed.run) for the user.

We never write our own launcher: this builds torchrun's command line — one node
with `--standalone`, several with a c10d rendezvous — sets the environment a
shared CPU needs (passive OpenMP waiting, cores split between processes) and
reruns the user's own arguments, minus the launcher flags, in every process.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from tuneforge.errors import ConfigError, TuneforgeError

# flags of `tuneforge train` that belong to the launcher, all of which take a value
LAUNCHER_FLAGS = ("--nproc", "--max-restarts", "--nnodes", "--node-rank", "--rdzv-endpoint", "--rdzv-id")


class LaunchFailed(TuneforgeError):
    """torchrun ended with a failure; the failing rank's own error was printed above it."""

    exit_code = 1


@dataclass(frozen=True)
class Launch:
    nproc: int = 1
    max_restarts: int = 0
    nnodes: str = "1"  # "2", or "MIN:MAX" for an elastic number of nodes
    node_rank: int = 0
    rdzv_endpoint: str | None = None  # host:port of the c10d rendezvous (node 0's address)
    rdzv_id: str | None = None  # the same on every node, unique per job (default $SLURM_JOB_ID)

    @property
    def multi_node(self) -> bool:
        return self.nnodes != "1"


def strip_launcher_flags(argv: Sequence[str]) -> list[str]:
    """`argv` without the launcher flags and their values (`--nproc 2` and `--nproc=2` alike)."""
    kept: list[str] = []
    skip = False
    for arg in argv:
        if skip:
            skip = False
        elif arg in LAUNCHER_FLAGS:
            skip = True
        elif not arg.startswith(tuple(f"{flag}=" for flag in LAUNCHER_FLAGS)):
            kept.append(arg)
    return kept


def torchrun_command(argv: Sequence[str], launch: Launch, *, environ: Mapping[str, str] = os.environ) -> list[str]:
    """The torchrun command that runs `tuneforge ARGV` (launcher flags removed) in `launch.nproc` processes per node."""
    if launch.nproc < 1 or launch.max_restarts < 0:
        raise ConfigError(f"--nproc must be >= 1 and --max-restarts >= 0, got {launch.nproc} and {launch.max_restarts}")
    if "RANK" in environ or "TORCHELASTIC_RUN_ID" in environ:
        raise ConfigError("--nproc starts torchrun itself; run `tuneforge train` without --nproc under torchrun")
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", str(launch.nproc)]
    command += ["--max-restarts", str(launch.max_restarts)]
    if launch.multi_node:
        rdzv_id = launch.rdzv_id or environ.get("SLURM_JOB_ID")
        if not launch.rdzv_endpoint or not rdzv_id:
            raise ConfigError(
                f"--nnodes {launch.nnodes} needs --rdzv-endpoint HOST:PORT (node 0's address, the same on every node) and "
                "--rdzv-id ID (the same on every node, unique per job; $SLURM_JOB_ID under SLURM)"
            )
        command += ["--nnodes", launch.nnodes, "--node-rank", str(launch.node_rank)]
        command += ["--rdzv-backend", "c10d", "--rdzv-endpoint", launch.rdzv_endpoint, "--rdzv-id", rdzv_id]
    elif launch.rdzv_endpoint:  # one node, but a chosen address/port (e.g. a port known to be free)
        command += ["--nnodes", "1", "--rdzv-backend", "c10d", "--rdzv-endpoint", launch.rdzv_endpoint]
        command += ["--rdzv-id", launch.rdzv_id or os.urandom(8).hex()]
    else:
        command += ["--standalone"]  # a free local port and a fresh rendezvous id
    return [*command, "-m", "tuneforge.cli", *strip_launcher_flags(argv)]


def launcher_env(nproc: int, environ: Mapping[str, str] = os.environ) -> dict[str, str]:
    """The ranks' environment: OpenMP threads sleep when idle, the cores are split between the processes, and each
    restart gets a fresh store.

    Spinning OpenMP threads of several processes slow a shared CPU 3-10x; settings the user made are kept."""
    env = dict(environ)
    env.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    env.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // nproc)))
    env.setdefault("TOKENIZERS_PARALLELISM", "false")
    # a fresh store for every attempt: with torchrun's shared store a restarted group can read the previous
    # attempt's addresses and fail to connect (pytorch/pytorch#135712)
    env.setdefault("TORCH_DISABLE_SHARE_RDZV_TCP_STORE", "1")
    return env


def run_torchrun(argv: Sequence[str], launch: Launch) -> None:
    """Run the job under torchrun and wait; a failure raises `LaunchFailed` naming where the details are."""
    command = torchrun_command(argv, launch)
    code = subprocess.call(command, env=launcher_env(launch.nproc))
    if code != 0:
        raise LaunchFailed(
            f"torchrun ended with exit code {code} after {launch.max_restarts} allowed restart(s); the failing rank's "
            "error is printed above, and ranks other than 0 log to RUN/logs/rank<N>.log"
        )


def check_distributable(config, *, resume=None) -> None:
    """Refuse, before any process starts, a method that trains in a single process (head, tfidf, recommend...)."""
    from tuneforge.engine.distributed import distributed_problem
    from tuneforge.rundir import RunDir
    from tuneforge.tasks import resolve_task

    if config is None:
        config = RunDir.open(resume).read_config()
    task = resolve_task(config)
    method = task.method_of(config)
    problem = distributed_problem(method, own_trainer=task.trainer(method) is not None)
    if problem:
        raise ConfigError(problem)
