"""`ExperimentLog`: every run, paid for or failed, in SQLite next to the notebook.

A row is written when the job is created (before anything is sent) and updated at every transition, so
a kernel that dies mid-wait leaves the task id behind for `lab.resume()`. WAL journal with
`synchronous=FULL`: a commit survives a crash of the process and of the machine. Several kernels may
share one file; a lease per row (`claimed_by`, `claimed_until`) keeps two of them from polling the
same task at once. A lease names its owner's host, boot, pid and process start time, so on the same
machine a dead owner's rows are taken over at once; from another machine, when the lease runs out.

Modules: `schema` (columns, typing into pandas, keyword filters), `db` (the file, its checks, the connection),
`writer` (the thread a job's updates are committed on, in batches), `events` (what a job's event writes, and a
failed write reported back to the job), `leases` (owners, liveness, claims, the heartbeat, the submit lock),
`frame` (the Arrow snapshot behind `log.df`), `export` (CSV, Parquet, MLflow), `core` (`ExperimentLog`).
"""

from .core import ExperimentLog
from .db import LogError, default_home
from .leases import LEASE_S, describe_owner, owner_alive
from .schema import COLUMNS, NAMES, RESULT_TTL_S, TERMINAL

__all__ = [
    "ExperimentLog",
    "LogError",
    "TERMINAL",
    "RESULT_TTL_S",
    "LEASE_S",
    "NAMES",
    "COLUMNS",
    "default_home",
    "describe_owner",
    "owner_alive",
]
