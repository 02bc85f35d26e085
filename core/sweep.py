"""`alkd sweep GRID.toml`: every run of a launch (core.run_spec.LaunchSpec, any field a list) in parallel, one group.

    alkd sweep grid.toml                          # local: a bounded pool of worker processes (--workers N)
    alkd sweep grid.toml --executor ray           # a local Ray bound to 127.0.0.1, or --address auto|HOST:PORT

Roles: the driver (this process) plans, creates and finishes every run row and is the only process that writes the
run tables; a worker (a pool process or a Ray task) runs `run_pipeline` for one cell and returns its rows as Arrow
tables (`core.persist.result_tables`), which the driver writes in one transaction (`core.persist.write_run`).
Progress events travel from the workers to the driver through a queue; the driver writes them to the run rows, so
the Runs page follows each cell, and draws them on the terminal. (A worker's LLM teacher still reads and writes the
`llm_calls` cache and ledger itself: a paid call's pending row must be stored before its request leaves, so a kill
never pays twice. The replay teacher makes no calls; the simulated one only caches.)

Reruns: a cell is its RunConfig (`RunConfig.key`). A rerun of the same grid (same group) skips every cell with a
done run, redoes (under the same run id) cells whose run failed, was cancelled or died, and runs the new ones. Run rows
carry the driver's pid: a killed driver's runs are stored failed by the next reader (`store.reap_dead_runs`), and a
worker that dies fails its own run at once. Local workers die with the driver (PR_SET_PDEATHSIG).

Scheduling: cells that need the same pre-trained teacher/student (dataset, backbone, seed, pre-training settings)
wait until the first of them has finished, so a checkpoint is trained once rather than by every worker at once.
A launch USD cap is split among the LLM runs still to start: each worker gets a hard cap of an equal share of what is
left (returned when it finishes), so the launch never exceeds its cap.
"""

from __future__ import annotations

import json
import math
import os
import signal
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from core import store
from core.run_spec import LaunchSpec, RunConfig

#: seconds between two progress events of one run sent by a worker (a new stage is sent at once)
PROGRESS_INTERVAL = 0.5


# ---- planning -------------------------------------------------------------------------------------------------------

@dataclass
class Cell:
    """One run of the sweep: its config, key (RunConfig.key), run id (None until created) and state: todo (new),
    redo (an earlier attempt failed, was cancelled or died: its run id is reused), done (skipped), running (another
    live process runs it: left alone)."""

    config: RunConfig
    key: str
    state: str = "todo"
    run_id: str | None = None
    started: float = 0.0
    seconds: float = 0.0
    message: str = ""
    prior_usd: float = 0.0      # what earlier attempts of a redone cell paid

    def label(self) -> str:
        c = self.config
        return f"{c.dataset} {c.backbone} {c.method} b{c.budget} s{c.seed}"

    def checkpoint_key(self) -> tuple | None:
        """What its pre-trained teacher/student depend on (None for reference baselines: no checkpoint)."""
        from core.distill import get_method
        if get_method(self.config.method).kind == "baseline":
            return None
        c = self.config
        return (c.dataset, c.backbone, c.seed, json.dumps(c.pretrain, sort_keys=True))


def stored_key(config_json: Any) -> str | None:
    """The RunConfig key of a stored run's config (its 'extra' dropped); None when it is no RunConfig."""
    try:
        config = json.loads(config_json) if isinstance(config_json, str) else dict(config_json)
        config.pop("extra", None)
        return RunConfig.model_validate(config).key()
    except Exception:  # noqa: BLE001 - an old or foreign row is simply not a cell of this sweep
        return None


def plan(spec: LaunchSpec, group: str, db: Path | str | None = None) -> list[Cell]:
    """The sweep's cells against what `group` already holds (dead runs are stored failed first)."""
    store.reap_dead_runs(db)
    rows = store.query("SELECT run_id, status, config, created_at FROM runs WHERE groups = ? AND kind = 'distill'"
                       " ORDER BY created_at", [group], db)
    by_key: dict[str, list[tuple[str, str]]] = {}
    for row in rows.itertuples(index=False):
        key = stored_key(row.config)
        if key is not None:
            by_key.setdefault(key, []).append((row.run_id, row.status))
    cells = []
    for config in spec.runs():
        cell = Cell(config, config.key())
        earlier = by_key.get(cell.key, [])
        if any(status == "done" for _, status in earlier):
            cell.state, cell.run_id = "done", next(r for r, s in earlier if s == "done")
        elif any(status == "running" for _, status in earlier):
            cell.state, cell.run_id = "running", next(r for r, s in earlier if s == "running")
        elif earlier:
            cell.state, cell.run_id = "redo", earlier[-1][0]
        cells.append(cell)
    return cells


def start_row(cell: Cell, spec: LaunchSpec, group: str, db: Path | str | None = None) -> str | None:
    """Create the cell's run row (status running, the driver's pid), or take over the row of its failed attempt
    (store.claim_run: attempts + 1, what earlier attempts paid as prior_usd). None when another process claimed it."""
    from core.records import create_distill_run, new_run_id

    c = cell.config
    if cell.state == "redo" and cell.run_id:
        # what earlier attempts paid (the driver stored it when they failed) counts against this attempt's cap
        row = store.query("SELECT usd_spent FROM runs WHERE run_id = ?", [cell.run_id], db)
        spent = row["usd_spent"].iloc[0] if not row.empty else None
        cell.prior_usd = 0.0 if spent is None or math.isnan(spent) else float(spent)
        if store.claim_run(cell.run_id, os.getpid(), cell.prior_usd, db) is None:
            return None                     # another process took it over meanwhile (e.g. `alkd run --resume`)
        return cell.run_id
    run_id = new_run_id("sweep", c.dataset, c.backbone, c.method, f"b{c.budget}", f"s{c.seed}")
    create_distill_run(run_id, c, group=group, tags=spec.tags, db=db)
    return run_id


# ---- the worker side ------------------------------------------------------------------------------------------------

class QueueProgress:
    """A run's progress callback in a worker: (run_id, stage, step, total, message) onto the driver's queue, a new stage
    at once, else at most every PROGRESS_INTERVAL seconds."""

    def __init__(self, run_id: str, queue: Any) -> None:
        self.run_id, self.queue, self.stage, self.last = run_id, queue, None, 0.0

    def __call__(self, stage: str, step: int, total: int, message: str = "") -> None:
        store.pause_point(f"worker:{stage}")    # tests kill a worker here (inert unless ALKD_TEST_PAUSE names it)
        now = time.monotonic()
        if self.queue is None or (stage == self.stage and now - self.last < PROGRESS_INTERVAL and step < total):
            return
        self.stage, self.last = stage, now
        try:
            self.queue.put((self.run_id, stage, int(step), int(total), str(message)[:300]))
        except Exception:  # noqa: BLE001 - progress never fails a run
            pass


def run_cell(run_id: str, config_json: str, save_model: bool, allot_usd: float | None, threads: int,
             queue: Any = None) -> dict[str, Any]:
    """One cell in a worker: run_pipeline, then the run's rows as Arrow tables (core.persist.result_tables); touches no
    run table. Returns {"status": "done", "tables": RunTables, "metrics": {...}, "extra": {...}} or {"status":
    "failed", "message": one line, "usd_spent": USD its calls cost}. allot_usd: this run's share of the launch cap."""
    import torch

    from core.persist import result_tables
    from core.pipeline import run_pipeline
    from core.teachers import Budget

    torch.set_num_threads(max(1, int(threads)))
    config = RunConfig.model_validate_json(config_json)
    budget = Budget(max_usd=allot_usd) if allot_usd is not None else None
    try:
        result = run_pipeline(config, QueueProgress(run_id, queue), budget=budget)
        if budget is not None:
            result.extra["launch_usd"] = budget.report().as_dict()
        tables = result_tables(run_id, result, save_model)
        extra = {k: result.extra[k] for k in ("warnings", "usd", "launch_usd", "achieved_ratio") if k in result.extra}
        return {"status": "done", "tables": tables, "metrics": {k: float(v) for k, v in result.test.metrics.items()},
                "extra": json.loads(json.dumps(extra, default=str)), "usd_spent": float(result.usd_spent)}
    except Exception as error:  # noqa: BLE001 - a failing run is reported, never raised into the executor
        if os.environ.get("ALKD_DEBUG"):
            import traceback
            traceback.print_exc()
        return {"status": "failed", "message": f"{type(error).__name__}: {error}"[:500],
                "usd_spent": float(getattr(error, "usd_spent", 0.0) or 0.0)}


def _import_engine() -> None:
    """A pool worker's warm-up: the imports every run needs (torch, the pipeline, the persistence)."""
    import core.persist
    import core.pipeline  # noqa: F401


def _die_with_parent(parent: int) -> None:
    """Pool initializer: the worker is killed when the driver dies (Linux PR_SET_PDEATHSIG), even by SIGKILL."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)     # Ctrl-C reaches the driver, which stops the workers itself
    try:
        import ctypes
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)   # 1 = PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass                                        # not Linux: the worker ends when it next reads the closed queue
    if os.getppid() != parent:                      # the driver died before prctl took effect
        os._exit(1)


# ---- executors ------------------------------------------------------------------------------------------------------

class Executor:
    """Runs cells somewhere; the driver asks for finished ones and for progress events."""

    workers: int = 1
    name: str = ""

    def submit(self, cell: Cell, save_model: bool, allot_usd: float | None) -> Any: ...

    def finished(self, handles: list[Any], timeout: float) -> list[tuple[Any, dict[str, Any]]]: ...

    def progress(self) -> list[tuple[str, str, int, int, str]]: ...

    def close(self, kill: bool = False) -> None: ...


class LocalExecutor(Executor):
    """A bounded pool of `workers` spawned processes (reused across cells, so each keeps its loaded datasets and
    checkpoints), each at `threads` torch threads."""

    name = "local"

    def __init__(self, workers: int, threads: int) -> None:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        self.workers, self.threads = workers, threads
        context = multiprocessing.get_context("spawn")
        self.manager = context.Manager()
        self.queue = self.manager.Queue()
        self._make = lambda: ProcessPoolExecutor(workers, mp_context=context, initializer=_die_with_parent,
                                                 initargs=(os.getpid(),))
        self.pool = self._make()
        self._warm()

    def _warm(self) -> None:
        """Start every worker now, importing the engine in parallel (seconds each), not one by one as cells come."""
        for _ in range(self.workers):
            self.pool.submit(_import_engine)

    def submit(self, cell: Cell, save_model: bool, allot_usd: float | None) -> Any:
        from concurrent.futures.process import BrokenProcessPool
        args = (cell.run_id, cell.config.model_dump_json(), save_model, allot_usd, self.threads, self.queue)
        try:
            return self.pool.submit(run_cell, *args)
        except BrokenProcessPool:       # a worker died earlier: the pool is unusable, start a new one
            self.pool = self._make()
            self._warm()
            return self.pool.submit(run_cell, *args)

    def finished(self, handles: list[Any], timeout: float) -> list[tuple[Any, dict[str, Any]]]:
        from concurrent.futures import FIRST_COMPLETED, wait
        done, _ = wait(handles, timeout=timeout, return_when=FIRST_COMPLETED)
        out = []
        for future in done:
            try:
                out.append((future, future.result()))
            except Exception as error:  # noqa: BLE001 - BrokenProcessPool: a worker process died (killed, OOM)
                out.append((future, {"status": "failed", "usd_spent": 0.0,
                                     "message": f"worker process died ({type(error).__name__}: {error})"[:500]}))
        return out

    def progress(self) -> list[tuple[str, str, int, int, str]]:
        events = []
        try:
            while True:
                events.append(self.queue.get_nowait())
        except Exception:  # noqa: BLE001 - queue.Empty, or a manager gone at shutdown
            pass
        return events

    def close(self, kill: bool = False) -> None:
        if kill:
            for process in list(getattr(self.pool, "_processes", {}).values()):
                process.kill()
        self.pool.shutdown(wait=not kill, cancel_futures=True)
        self.manager.shutdown()


def local_ray_env() -> None:
    """Environment for a Ray started here: with RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0 Ray takes 127.0.0.1 as the node
    address and its processes listen there only (a local Ray is not a cluster; README, sweeps)."""
    os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"


class RayExecutor(Executor):
    """Each cell a Ray task (1 CPU). address None: a local Ray of `workers` CPUs bound to 127.0.0.1, shut down at
    the end; "auto" or HOST:PORT: an existing cluster (its workers need alkd installed and ALKD_HOME on shared
    storage). Progress events come back through a Ray queue actor."""

    name = "ray"

    def __init__(self, workers: int | None, threads: int, address: str | None) -> None:
        self.own = address is None
        if self.own:
            local_ray_env()              # before ray is imported: it reads the variable once, at import
        import ray
        from ray.util.queue import Queue

        self.ray, self.threads = ray, threads
        env = {k: os.environ[k] for k in ("ALKD_HOME", "ALKD_DB", "ALKD_PRICES") if os.environ.get(k)}
        if self.own:
            from ray._private import ray_constants
            # ray was imported earlier in this process (before the variable was set): its node address would be the
            # machine's network address; the processes ray.init starts read the variable themselves
            ray_constants.ENABLE_RAY_CLUSTER = False
            ray.init(num_cpus=workers or os.cpu_count() or 1, include_dashboard=False, log_to_driver=False,
                     _node_ip_address="127.0.0.1")
        else:
            ray.init(address=address, log_to_driver=False, runtime_env={"env_vars": env})
        self.workers = workers or max(1, int(ray.cluster_resources().get("CPU", 1)))
        self.queue = Queue(actor_options={"num_cpus": 0})
        self.remote = ray.remote(num_cpus=1, max_retries=0)(run_cell)

    def submit(self, cell: Cell, save_model: bool, allot_usd: float | None) -> Any:
        return self.remote.remote(cell.run_id, cell.config.model_dump_json(), save_model, allot_usd, self.threads,
                                  self.queue)

    def finished(self, handles: list[Any], timeout: float) -> list[tuple[Any, dict[str, Any]]]:
        ready, _ = self.ray.wait(handles, num_returns=1, timeout=timeout)
        out = []
        for ref in ready:
            try:
                out.append((ref, self.ray.get(ref)))
            except Exception as error:  # noqa: BLE001 - WorkerCrashedError and kin: the worker process died
                out.append((ref, {"status": "failed", "usd_spent": 0.0,
                                  "message": f"Ray worker died ({type(error).__name__}: {error})"[:500]}))
        return out

    def progress(self) -> list[tuple[str, str, int, int, str]]:
        events = []
        try:
            while not self.queue.empty():
                events.append(self.queue.get_nowait())
        except Exception:  # noqa: BLE001 - Empty, or the actor gone at shutdown
            pass
        return events

    def close(self, kill: bool = False) -> None:
        if self.own:
            self.ray.shutdown()
        else:
            try:
                self.queue.shutdown()
            finally:
                self.ray.shutdown()


# ---- the driver -----------------------------------------------------------------------------------------------------

class Cancelled(BaseException):
    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


@dataclass
class Report:
    """What a sweep did: cells done now, skipped (done before), failed; per-run seconds of the cells run now."""

    done: list[Cell] = field(default_factory=list)
    skipped: list[Cell] = field(default_factory=list)
    failed: list[Cell] = field(default_factory=list)
    elsewhere: list[Cell] = field(default_factory=list)
    seconds: float = 0.0


def run_sweep(spec: LaunchSpec, group: str, executor: Executor, *, on_event: Callable[[str, Cell, dict], None]
              | None = None, db: Path | str | None = None) -> Report:
    """Plan, then run every cell not done on `executor`, at most executor.workers at once; the driver writes every
    run row. on_event(kind, cell, info): 'start', 'progress' (info: stage/step/total/message), 'done', 'failed'."""
    from core.distill import get_method
    from core.persist import write_run

    emit = on_event or (lambda *a: None)
    started = time.perf_counter()
    cells = plan(spec, group, db)
    report = Report(skipped=[c for c in cells if c.state == "done"],
                    elsewhere=[c for c in cells if c.state == "running"])
    queue = [c for c in cells if c.state in ("todo", "redo")]
    ready_keys: set[tuple] = set()           # checkpoints some finished cell has made (or failed to)
    in_flight: dict[Any, Cell] = {}
    by_run: dict[str, Cell] = {}
    allotted: dict[str, float] = {}
    spent = 0.0
    llm = {c.key for c in queue if get_method(c.config.method).kind == "llm"}

    def next_cell() -> Cell | None:
        busy = {c.checkpoint_key() for c in in_flight.values()}
        for cell in queue:
            key = cell.checkpoint_key()
            if key is None or key in ready_keys or key not in busy:
                return cell
        return None

    def allot(cell: Cell) -> float | None:
        """A hard USD cap for the run beyond its own: its share of the launch cap, and its own cap less what
        earlier attempts paid. None: no cap beyond the run's own."""
        caps = []
        if cell.prior_usd and cell.config.usd_cap is not None:
            caps.append(max(0.0, cell.config.usd_cap - cell.prior_usd))
        if spec.launch_usd_cap is not None and cell.key in llm:
            left = spec.launch_usd_cap - spent - sum(allotted.values())
            waiting = 1 + sum(1 for c in queue if c.key in llm)
            caps.append(max(0.0, left) / waiting)
        return min(caps) if caps else None

    def finish(cell: Cell, outcome: dict[str, Any]) -> None:
        nonlocal spent
        cell.seconds = time.perf_counter() - cell.started
        allotted.pop(cell.run_id, None)
        spent += float(outcome.get("usd_spent") or 0.0)
        ready_keys.add(cell.checkpoint_key())
        if outcome["status"] == "done":
            try:
                write_run(cell.run_id, outcome["tables"], db)
                if cell.prior_usd:
                    store.set_run_fields(cell.run_id, db, usd_spent=cell.prior_usd + outcome["tables"].usd_spent)
                report.done.append(cell)
                emit("done", cell, outcome)
                return
            except Exception as error:  # noqa: BLE001 - a row the store refused fails this run, not the sweep
                outcome = {"status": "failed", "message": f"storing failed: {type(error).__name__}: {error}"[:500],
                           "usd_spent": outcome.get("usd_spent", 0.0)}
        if outcome.get("usd_spent") or cell.prior_usd:
            store.set_run_fields(cell.run_id, db, usd_spent=cell.prior_usd + float(outcome.get("usd_spent") or 0.0))
        store.finish_run(cell.run_id, "failed", message=outcome["message"], db=db)
        cell.message = outcome["message"]
        report.failed.append(cell)
        emit("failed", cell, outcome)

    def on_signal(signum, _frame):
        raise Cancelled(signum)

    progress = ProgressRows(emit, db)
    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        while queue or in_flight:
            while queue and len(in_flight) < executor.workers:
                cell = next_cell()
                if cell is None:
                    break
                queue.remove(cell)
                run_id = start_row(cell, spec, group, db)
                if run_id is None:
                    report.elsewhere.append(cell)
                    continue
                cell.run_id = run_id
                share = allot(cell)
                cell.started = time.perf_counter()
                if share is not None:
                    allotted[cell.run_id] = share
                by_run[cell.run_id] = cell
                in_flight[executor.submit(cell, spec.save_model, share)] = cell
                emit("start", cell, {"usd_allotted": share})
            for handle, outcome in executor.finished(list(in_flight), timeout=0.3):
                finish(in_flight.pop(handle), outcome)
            progress.add(executor.progress(), by_run)
            progress.flush({c.run_id for c in in_flight.values()})
    except Cancelled as cancel:
        executor.close(kill=True)
        for cell in in_flight.values():
            store.finish_run(cell.run_id, "cancelled", message=f"sweep cancelled by {cancel}", db=db)
        raise
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
    report.seconds = time.perf_counter() - started
    return report


class ProgressRows:
    """Progress events onto the run rows: the latest per run, all of them in one transaction at most every
    `interval` seconds (a DuckDB connection per event would cost the driver a core while the workers compute)."""

    def __init__(self, emit: Callable, db: Path | str | None, interval: float = 1.0) -> None:
        self.emit, self.db, self.interval = emit, db, interval
        self.pending: dict[str, tuple] = {}
        self.last = 0.0

    def add(self, events: Iterable[tuple[str, str, int, int, str]], by_run: dict[str, Cell]) -> None:
        for event in events:
            if event[0] not in by_run:          # not a run of this sweep (a stray event): nothing to show
                continue
            self.pending[event[0]] = event
            self.emit("progress", by_run[event[0]],
                      dict(zip(("stage", "step", "total", "message"), event[1:], strict=True)))

    def flush(self, running: set[str], force: bool = False) -> None:
        """Write the pending events of runs still running (a finished run's row is final)."""
        now = time.monotonic()
        if not self.pending or (not force and now - self.last < self.interval):
            return
        self.last = now
        rows = [e for run_id, e in self.pending.items() if run_id in running]
        self.pending.clear()
        if not rows:
            return
        try:
            stamp = store.now()
            with store.write(self.db) as con:
                for run_id, stage, step, total, message in rows:
                    con.execute("UPDATE runs SET stage = ?, step = ?, total = ?, message = ?, updated_at = ?"
                                " WHERE run_id = ? AND status = 'running'",
                                [stage, step, total, message, stamp, run_id])
        except Exception:  # noqa: BLE001, S110 - progress never fails the sweep
            pass


def make_executor(name: str, workers: int | None, threads: int | None, address: str | None) -> Executor:
    """The executor `name` (local | ray). workers: parallel runs (default: CPUs / threads); threads: torch threads
    per run (default 1)."""
    threads = max(1, threads or 1)
    if name == "local":
        return LocalExecutor(max(1, workers or max(1, (os.cpu_count() or 1) // threads)), threads)
    if name == "ray":
        return RayExecutor(workers, threads, address)
    raise ValueError(f"unknown executor {name!r}: local or ray")


__all__ = ["Cell", "Executor", "LocalExecutor", "RayExecutor", "Report", "make_executor", "plan", "run_cell",
           "run_sweep", "stored_key"]
