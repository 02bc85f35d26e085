"""Everything the dashboard pages read or do, in one place.

Reads go through `core.store.query` (a short-lived read-only connection per query, retried on the CLI's file lock;
the dashboard never holds a DuckDB connection) and are cached with `st.cache_data(ttl=...)`, keyed by the store path
so several stores (tests, ALKD_DB) never mix. Writes (cancel of a vanished process, delete) go through
`core.store.write`. Work is done by the CLI: `launch` starts `alkd run` in the background and returns at once.
"""

from __future__ import annotations

import functools
import itertools
import json
import math
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd
import streamlit as st

from core import stages, store
from core.cli_format import parse_pairs
from core.model_files import model_path
from core.paths import data_home, db_path, is_safe_name
from core.records import delete_runs
from core.run_spec import LaunchSpec, SpecError, check, estimate_usd, shell
from core.teachers.keys import api_key
from core.teachers.providers import key_envs

# ---- names: read from core's registries (core.registry); the pickers call these at render time ---------------

def backbone_options() -> list[str]:
    """Every registered backbone (core.models.BACKBONES), in registry order."""
    from core.models import backbone_names
    return backbone_names()


def baseline_options() -> list[str]:
    """The reference baselines (methods of kind "baseline": no teacher, no LLM)."""
    from core.distill import method_names
    return method_names("baseline")


def method_options() -> list[str]:
    """Every registered method (core.distill.METHODS): distillation methods first, then the reference baselines."""
    from core.distill import method_names
    baselines = baseline_options()
    return [m for m in method_names() if m not in baselines] + baselines


def llm_method_options() -> set[str]:
    """Methods that send pool sessions to the LLM teacher (kind "llm"; the others cost nothing)."""
    from core.distill import method_names
    return set(method_names("llm"))


def teacher_options() -> list[str]:
    """Every registered teacher provider (core.teachers.providers.PROVIDERS), in registry order."""
    from core.teachers.providers import provider_names
    return provider_names()


#: the same lists as of import (pages that render a picker call the functions above, so a new entry shows at once)
BACKBONES = backbone_options()
BASELINES = baseline_options()
#: distillation methods first, then the reference baselines (no teacher, no LLM).
METHODS = [m for m in method_options() if m not in BASELINES]
ALL_METHODS = METHODS + BASELINES
#: methods that send pool sessions to the LLM teacher (the others cost nothing).
LLM_METHODS = llm_method_options()
TEACHERS = teacher_options()
KEY_ENV = key_envs()     # teacher -> its API key's variable, for the paid providers (core.teachers.providers)
DEMO_METHODS = ["student", "teacher", "random", "alkdrec"]
CATEGORIES = ["effective", "similar", "incorrect"]
STORE_TABLES = store.RUN_TABLES
TERMINAL = {"done", "failed", "cancelled"}


# ---- reads ------------------------------------------------------------------------------------------------------

def db() -> str:
    return str(db_path())


@st.cache_data(ttl=2, show_spinner=False, max_entries=256)
def _read_live(sql: str, params: tuple, path: str) -> pd.DataFrame:
    return store.query(sql, list(params), path)


@st.cache_data(ttl=30, show_spinner=False, max_entries=256)
def _read(sql: str, params: tuple, path: str) -> pd.DataFrame:
    return store.query(sql, list(params), path)


def read(sql: str, params: Sequence[Any] = (), *, live: bool = False) -> pd.DataFrame:
    """A cached read of the store (live: 2 s TTL for progress; otherwise 30 s)."""
    return (_read_live if live else _read)(sql, tuple(params), db()).copy()


def clear_cache() -> None:
    _read_live.clear()
    _read.clear()


RUNS_SQL = """
SELECT r.run_id, r.status, r.stage, r.step, r.total, r.message, r.pid, r.pid_started, r.host, r.dataset, r.backbone,
       r.method, r.teacher, r.config,
       coalesce(json_extract_string(r.config, '$.model'), json_extract_string(r.config, '$.teacher_model')) AS model,
       r.seed, r.budget, r.usd_cap, coalesce(r.usd_spent, 0) AS usd_spent, coalesce(r.n_labelled, 0) AS n_labelled,
       r.groups, r.tags, r.kind, r.created_at, r.updated_at, r.finished_at, m.ndcg10, m.recall10,
       TRY_CAST(json_extract(r.config, '$.extra.distill.best_epoch') AS BIGINT) AS best_epoch,
       TRY_CAST(json_extract(r.config, '$.extra.distill.returned_start') AS BOOLEAN) AS returned_start,
       json_extract_string(r.config, '$.extra.label_leak') AS label_leak
FROM runs r LEFT JOIN (
    SELECT run_id, max(value) FILTER (WHERE metric = 'ndcg' AND k = 10) AS ndcg10,
           max(value) FILTER (WHERE metric = 'recall' AND k = 10) AS recall10
    FROM metrics WHERE split = 'test' GROUP BY run_id) m USING (run_id)
ORDER BY r.created_at DESC
"""


def runs() -> pd.DataFrame:
    """All runs with an `effective` status and progress. A 'running' run whose process is gone (or whose pid now
    belongs to a process that started at another time) is stored as failed ('process died') when first seen here;
    in the frame that saw it, `status` is still the 'running' it was read as and `effective` is 'failed'."""
    frame = read(RUNS_SQL, live=True)
    if frame.empty:
        frame["effective"] = pd.Series(dtype=str)
        frame["progress"] = pd.Series(dtype=float)
        return frame
    dead = (frame["status"] == "running") & ~pd.Series(
        [pid_alive(p, started, host) for p, started, host in zip(frame["pid"], frame["pid_started"], frame["host"])],
        index=frame.index, dtype=bool)
    if dead.any():
        store.mark_dead(frame.loc[dead, "run_id"].tolist(), db())   # the next read shows them failed
    frame["effective"] = np.where(dead, "failed", frame["status"])
    frame.loc[dead, "message"] = ("process died: " + frame.loc[dead, "message"].fillna("").astype(str)).str.rstrip(": ")
    frame["progress"] = run_progress(frame)
    frame["tags"] = frame["tags"].map(lambda t: list(t) if t is not None and not isinstance(t, float) else [])
    return frame


#: the stages a run reports, in the order core.pipeline.run_pipeline goes through them (a baseline: load, fit,
#: evaluate; a method without the LLM skips difficulty..categories).
STAGES, BASELINE_STAGES = list(stages.STAGES), list(stages.BASELINE_STAGES)


def run_progress(frame: pd.DataFrame) -> pd.Series:
    """Share of the whole run done, in [0, 1]: (stages finished + step / total of the current one) / stages. A run's
    step/total count within its current stage only (1/1 when loading is over), so read alone they showed a run
    that had just started, or was cancelled early, as 100%. Done runs are 1; a stage not listed (queued) is 0."""
    out = []
    for status, method, stage, step, total in zip(frame["effective"], frame["method"], frame["stage"],
                                                  frame["step"], frame["total"]):
        stages = BASELINE_STAGES if method in BASELINES else STAGES
        if status == "done":
            out.append(1.0)
        elif stage in stages:
            step, total = present(step), present(total)
            within = min(max(float(step) / float(total), 0.0), 1.0) if step is not None and total else 0.0
            out.append((stages.index(stage) + within) / len(stages))
        else:
            out.append(0.0)
    return pd.Series(out, index=frame.index, dtype=float)


#: settings a method that asks no LLM never reads (its pre-trained models, TR's soft targets and the reference
#: baselines do not depend on them): a sweep over budgets runs the student once per budget, and those runs are one
#: configuration, not one per budget.
LLM_SETTINGS = ("teacher", "model", "base_url", "budget", "usd_cap", "ratios", "mu", "hit_rate", "difficulty",
                "force_label", "selection", "replay_path")
#: what differs between the seeds of one configuration, or what a run recorded after it ran: never a setting.
PER_RUN = ("seed", "device", "extra")
#: the runs-table columns that are settings too (they win over the config's copy: older stores lack some in config).
RUN_SETTINGS = ("dataset", "backbone", "method", "teacher", "model", "budget", "usd_cap")


def run_settings(row: Any) -> dict[str, Any]:
    """Everything that makes a run's configuration, flattened ({'method': 'alkdrec', 'budget': 500, 'options.lists':
    'teacher', 'mode': 'paper', ...}): its stored config without PER_RUN, the RUN_SETTINGS columns of its row, and
    for an LLM method the label leakage of its lists (core.pipeline.stored_label_leak). A method that asks no LLM
    drops LLM_SETTINGS. Unset values (None, {}) are left out, so a setting a run lacks equals one it left unset.
    row: a mapping with the columns of `runs()` (config as JSON text)."""
    from core.pipeline import stored_label_leak
    try:
        config = json.loads(row["config"]) if isinstance(row["config"], str) else dict(row["config"] or {})
    except (TypeError, ValueError):
        config = {}
    out = flatten({key: value for key, value in config.items() if key not in PER_RUN})
    for column in RUN_SETTINGS:
        value = present(row.get(column)) if hasattr(row, "get") else None
        if value is not None:
            out[column] = value.item() if isinstance(value, np.generic) else value
    if row.get("method") in LLM_METHODS:
        out["label_leak"] = stored_label_leak(str(row.get("teacher")), str(row.get("dataset")), config)
    else:
        out = {key: value for key, value in out.items() if key.split(".")[0] not in LLM_SETTINGS}
    return {key: value for key, value in out.items() if value is not None and value != {}}


def config_key(row: Any) -> str:
    """run_settings(row) as sorted JSON: equal for two runs of one configuration (whatever their seed)."""
    fields = tuple(present(row.get(c)) for c in ("config", *RUN_SETTINGS))
    return _config_key(tuple(v.item() if isinstance(v, np.generic) else v for v in fields))


@functools.lru_cache(maxsize=65_536)
def _config_key(fields: tuple) -> str:
    """config_key of a row's (config, *RUN_SETTINGS) values: memoised, as every page run keys every stored run."""
    settings = run_settings(dict(zip(("config", *RUN_SETTINGS), fields)))
    return json.dumps(settings, sort_keys=True, default=lambda v: v.item() if isinstance(v, np.generic) else str(v))


def flatten(settings: Any, prefix: str = "") -> dict[str, Any]:
    """{'options': {'lr': 1e-4}, 'seed': 0} -> {'options.lr': 1e-4, 'seed': 0}; lists stay values."""
    if not isinstance(settings, dict):
        return {prefix: settings} if prefix else {}
    out: dict[str, Any] = {}
    for key, value in settings.items():
        name = f"{prefix}.{key}" if prefix else str(key)
        if isinstance(value, dict) and value:
            out.update(flatten(value, name))
        else:
            out[name] = value
    return out


def config_diff(a: Any, b: Any) -> pd.DataFrame:
    """The settings that differ between two stored configs (JSON text or dicts), flattened: setting, a, b (a
    setting one side lacks shows '—'). Empty when they are the same."""
    left, right = (flatten(json.loads(c) if isinstance(c, str) else dict(c or {})) for c in (a, b))
    rows = [(key, left.get(key, "—"), right.get(key, "—")) for key in sorted(set(left) | set(right))
            if json.dumps(left.get(key, "—"), default=str) != json.dumps(right.get(key, "—"), default=str)]
    return pd.DataFrame([(k, json.dumps(x, default=str) if not isinstance(x, str) else x,
                          json.dumps(y, default=str) if not isinstance(y, str) else y) for k, x, y in rows],
                        columns=["setting", "a", "b"])


def finished_runs(frame: pd.DataFrame) -> pd.DataFrame:
    """The runs of `runs()` the Compare page may count: finished ones only (effective 'done': a failed, cancelled or
    still running run may hold partial metrics), with column config_key (`config_key`: every setting that makes the
    configuration)."""
    if frame.empty:
        return frame.assign(config_key=pd.Series(dtype=str))
    done = frame[frame["effective"] == "done"].copy()
    done["config_key"] = [config_key(row) for row in done.to_dict("records")]
    return done


def one_per_seed(frame: pd.DataFrame) -> pd.DataFrame:
    """Exactly one run per (configuration, seed) of `frame` (rows of finished_runs): the newest, so a rerun or a copy
    (another group, an import) replaces its earlier copy instead of counting twice."""
    newest = frame.sort_values("created_at", ascending=False, kind="stable")
    newest = newest.drop_duplicates(["config_key", "seed"], keep="first")
    return frame.loc[frame.index.isin(newest.index)]


def comparable_runs(frame: pd.DataFrame) -> pd.DataFrame:
    """one_per_seed(finished_runs(frame)): the finished runs of the whole store, one per (configuration, seed)."""
    return one_per_seed(finished_runs(frame))


# ---- costs ----------------------------------------------------------------------------------------------------------

MODEL_SQL = ("coalesce(json_extract_string(r.config, '$.model'),"
             " json_extract_string(r.config, '$.extra.teacher_model'),"
             " json_extract_string(r.config, '$.teacher_model'), r.teacher)")


def costs_by_model() -> pd.DataFrame:
    """One row per (provider, model, endpoint) of the stored LLM calls: calls, tokens, USD, mean latency, and
    `priced` - how its USD were priced. endpoint is the base URL the runs named ('' = the provider's API; a call no
    run's selection points to, e.g. a later LLMD4Rec round, counts as the API)."""
    from core.teachers.pricing import is_local_url
    frame = read(
        "WITH ep AS (SELECT s.call_key, min(json_extract_string(r.config, '$.base_url')) AS base_url"
        "  FROM selections s JOIN runs r USING (run_id) WHERE coalesce(s.call_key, '') <> '' GROUP BY s.call_key)"
        " SELECT c.provider, c.model, coalesce(ep.base_url, '') AS endpoint,"
        " bool_or(coalesce(c.simulated, false)) AS simulated, count(*) AS calls,"
        " sum(coalesce(c.input_tokens, 0)) AS input_tokens, sum(coalesce(c.output_tokens, 0)) AS output_tokens,"
        " sum(coalesce(c.cache_read_tokens, 0)) AS cache_read_tokens, sum(coalesce(c.usd, 0)) AS usd,"
        " avg(c.latency_s) AS mean_latency_s FROM llm_calls c LEFT JOIN ep USING (call_key)"
        " GROUP BY ALL ORDER BY usd DESC, calls DESC")
    if frame.empty:
        return frame.assign(priced=pd.Series(dtype=str))
    # a provider named 'simulated' says so already; another provider's simulated calls get the marker
    frame["provider"] = frame["provider"].where(~frame["simulated"] | (frame["provider"] == "simulated"),
                                                frame["provider"] + " (simulated)")
    frame["priced"] = [
        "free" if usd == 0 else
        f"list price, local server {endpoint}: not billed" if is_local_url(endpoint) else
        f"list price at {endpoint}" if endpoint else "provider's price"
        for usd, endpoint in zip(frame["usd"], frame["endpoint"])]
    frame["endpoint"] = frame["endpoint"].where(frame["endpoint"] != "", "provider API")
    return frame.drop(columns=["simulated"])


@dataclass(frozen=True)
class CacheReuse:
    """labels: labelled sessions (over all runs) that came from a stored call; calls: distinct calls among them.
    hit_rate = 1 - calls / labels, the share of labels served by a call made before (0 when there is none)."""

    labels: int
    calls: int

    @property
    def hit_rate(self) -> float:
        return 1 - self.calls / self.labels if self.labels else 0.0


def cache_reuse() -> CacheReuse:
    """Reuse of stored calls over all runs. Replay labels have an empty call key (no call was made) and are left out:
    counted, every replay label would look like a cache hit."""
    frame = read("SELECT count(*) AS labels, count(DISTINCT call_key) AS calls FROM selections"
                 " WHERE picked AND coalesce(call_key, '') <> ''")
    return CacheReuse(int(frame["labels"].iloc[0] or 0), int(frame["calls"].iloc[0] or 0))


def full_labelling() -> pd.DataFrame:
    """Per (dataset, teacher, model) with labelled sessions: runs, pool (training sessions the policy chose from),
    labelled (over all runs), spent_usd (over all runs), usd_per_label (mean USD of the distinct calls behind the
    labels; 0 for teachers without calls) and full_pool_usd = usd_per_label x pool - a full labelling counted once
    per pool, not once per run."""
    return read(
        "WITH lab AS (SELECT r.run_id, r.dataset, r.teacher, " + MODEL_SQL + " AS model,"
        "  coalesce(r.n_labelled, 0) AS n_labelled, coalesce(r.usd_spent, 0) AS usd_spent,"
        "  (SELECT count(*) FROM selections s WHERE s.run_id = r.run_id) AS pool FROM runs r"
        "  WHERE EXISTS (SELECT 1 FROM selections s WHERE s.run_id = r.run_id AND s.picked)),"
        " calls AS (SELECT DISTINCT lab.dataset, lab.teacher, lab.model, s.call_key FROM selections s"
        "  JOIN lab USING (run_id) WHERE s.picked AND coalesce(s.call_key, '') <> ''),"
        " price AS (SELECT k.dataset, k.teacher, k.model, avg(coalesce(c.usd, 0)) AS usd_per_label FROM calls k"
        "  JOIN llm_calls c USING (call_key) GROUP BY ALL)"
        " SELECT lab.dataset, lab.teacher, lab.model, count(*) AS runs, max(lab.pool) AS pool,"
        " sum(lab.n_labelled) AS labelled, sum(lab.usd_spent) AS spent_usd,"
        " coalesce(any_value(price.usd_per_label), 0) AS usd_per_label,"
        " coalesce(any_value(price.usd_per_label), 0) * max(lab.pool) AS full_pool_usd"
        " FROM lab LEFT JOIN price USING (dataset, teacher, model) GROUP BY ALL ORDER BY spent_usd DESC, runs DESC")


def costs_by_run() -> pd.DataFrame:
    """Runs with labelled sessions: what each spent and the tokens of the calls behind its labels."""
    return read(
        "WITH paid AS (SELECT s.run_id, sum(c.input_tokens) AS input_tokens, sum(c.output_tokens) AS output_tokens"
        "  FROM selections s JOIN llm_calls c USING (call_key) WHERE s.picked GROUP BY s.run_id)"
        " SELECT r.run_id, r.method, r.teacher, " + MODEL_SQL + " AS model, r.dataset,"
        " coalesce(r.n_labelled, 0) AS n_labelled, coalesce(r.usd_spent, 0) AS usd_spent, r.usd_cap,"
        " paid.input_tokens, paid.output_tokens FROM runs r LEFT JOIN paid USING (run_id)"
        " WHERE EXISTS (SELECT 1 FROM selections s WHERE s.run_id = r.run_id AND s.picked)"
        " ORDER BY usd_spent DESC, r.created_at DESC")


def protocol(seeds: int | None = None, split: str = "test") -> str:
    """The evaluation protocol behind every score the dashboard shows (core.evaluate), in one line."""
    return (f"**Protocol**: {split} split (for alkdrec-ml / alkdrec-games the authors' own split); each "
            "session ranked against **every item** (full ranking, no sampled negatives), the items already in its "
            "input window excluded; **true NDCG@K** and HR@K with the one true next item"
            + (f"; mean over **{seeds} seed{'s' if seeds != 1 else ''}**" if seeds else "; mean over seeds") + ".")


# ---- the headline on Home ----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Headline:
    """The latest comparison, from the store: one group's runs of one dataset and backbone. Scores are test NDCG@10
    means over the seeds both `method` and the student ran; `p` is the paired t-test of method against student over
    (seed, test session) pairs (core.evaluate). teacher_ndcg is None when the group has no teacher run. bars: one row
    per method of the group (method, mean, std, seeds), for the chart."""

    group: str
    dataset: str
    backbone: str
    teacher: str
    model: str | None
    method: str
    seeds: int
    student_ndcg: float
    method_ndcg: float
    teacher_ndcg: float | None
    labelled: float
    usd: float
    p: float
    leak: str
    bars: pd.DataFrame

    @property
    def sentence(self) -> str:
        who = "the simulated teacher (a what-if stand-in, not an LLM)" if self.teacher == "simulated" else \
            f"the {self.teacher} teacher" + (f" ({self.model})" if self.model and self.model != self.teacher else "")
        start = f"On **{self.dataset}** ({self.backbone}, {self.seeds} seed{'s' if self.seeds > 1 else ''}), "
        if self.teacher_ndcg:
            start += (f"the student reaches **{self.student_ndcg / self.teacher_ndcg:.0%}** of the teacher's "
                      f"NDCG@10 ({self.student_ndcg:.4f} vs {self.teacher_ndcg:.4f}); ")
        else:
            start += f"the student scores NDCG@10 {self.student_ndcg:.4f}; "
        change = self.method_ndcg / self.student_ndcg - 1 if self.student_ndcg else float("nan")
        p = "p n/a" if not math.isfinite(self.p) else f"p = {self.p:.2g}"
        return (start + f"**{self.method}** labels from {who} for **{self.labelled:,.0f} sessions** cost "
                f"**${self.usd:,.2f}** per run and moved it by **{change:+.1%}** (to {self.method_ndcg:.4f}; {p}, "
                "paired over test sessions)"
                + (" — with lists made with the true next item forced in" if self.leak == "forced" else "") + ".")


def headline() -> Headline | None:
    """The newest finished group with a student and an LLM-labelled method (alkdrec first), as a Headline; None
    when the store has no such group."""
    from core.evaluate import paired_ttest, per_session
    from core.pipeline import stored_label_leak
    done = finished_runs(runs())
    done = done[done["ndcg10"].notna() & done["groups"].notna()]
    llm = done[done["method"].isin(LLM_METHODS)]
    for group in llm.sort_values("finished_at", ascending=False)["groups"].drop_duplicates():
        newest = llm[llm["groups"] == group].sort_values("finished_at", ascending=False).iloc[0]
        same = one_per_seed(done[(done["groups"] == group) & (done["dataset"] == newest["dataset"])
                                 & (done["backbone"] == newest["backbone"])])
        methods = set(same["method"])
        if "student" not in methods:
            continue
        # one configuration per method, its newest run's (a sweep's group holds several budgets or teachers): the
        # scores are of one configuration and the t-test meets each (seed, session) once
        latest = same.sort_values("finished_at").groupby("method")["config_key"].last()
        same = same[same["config_key"] == same["method"].map(latest)]
        method = "alkdrec" if "alkdrec" in methods else str(newest["method"])
        of = same[same["method"] == method]
        student = same[same["method"] == "student"]
        seeds = sorted(set(of["seed"]) & set(student["seed"]))
        if not seeds:
            continue
        of, student = of[of["seed"].isin(seeds)], student[student["seed"].isin(seeds)]
        ranks = session_ranks(list(of["run_id"]) + list(student["run_id"]))
        seed_of = pd.concat([of, student]).set_index("run_id")["seed"]
        ranks["seed"] = ranks["run_id"].map(seed_of)
        ranks["ndcg"] = per_session(ranks["rank"].to_numpy(dtype=np.int64), "ndcg@10")
        pairs = ranks[ranks["run_id"].isin(of["run_id"])].merge(
            ranks[ranks["run_id"].isin(student["run_id"])], on=["seed", "session_id"], suffixes=("", "_student"),
            validate="one_to_one")
        p = paired_ttest(pairs["ndcg"], pairs["ndcg_student"]).p_value if len(pairs) > 1 else float("nan")
        teacher = same[same["method"] == "teacher"]
        bars = same.groupby("method", as_index=False).agg(mean=("ndcg10", "mean"), std=("ndcg10", "std"),
                                                          seeds=("seed", "nunique"))
        order = {m: i for i, m in enumerate(dict.fromkeys(["teacher", "student", *METHODS, *BASELINES]))}
        bars = bars.sort_values("method", key=lambda m: m.map(order)).reset_index(drop=True)
        first = of.iloc[0]
        config = json.loads(first["config"]) if isinstance(first["config"], str) else {}
        return Headline(group=str(group), dataset=str(newest["dataset"]), backbone=str(newest["backbone"]),
                        teacher=str(first["teacher"]), model=present(first["model"]), method=method, seeds=len(seeds),
                        student_ndcg=float(student["ndcg10"].mean()), method_ndcg=float(of["ndcg10"].mean()),
                        teacher_ndcg=float(teacher["ndcg10"].mean()) if not teacher.empty else None,
                        labelled=float(of["n_labelled"].mean()), usd=float(of["usd_spent"].mean()), p=float(p),
                        leak=stored_label_leak(str(first["teacher"]), str(first["dataset"]), config), bars=bars)
    return None


def datasets() -> pd.DataFrame:
    """Datasets on disk (core.data.catalog.fetched) with their registered statistics where the store has them."""
    from core.data import catalog
    names = catalog.fetched()
    registered = read("SELECT name, source, n_sessions, n_items, n_interactions, n_train, n_valid, n_test,"
                      " mean_length FROM datasets")
    frame = pd.DataFrame({"name": pd.Series(names, dtype=object)}).merge(registered, on="name", how="left")
    for i, name in enumerate(frame["name"]):  # fall back to meta.json when the store does not know it
        if pd.isna(frame.loc[i, "n_train"]):
            meta = _meta(name)
            stats = meta.get("stats", {})
            frame.loc[i, "source"] = meta.get("source")
            for key in ("n_sessions", "n_items", "n_interactions", "n_train", "n_valid", "n_test", "mean_length"):
                frame.loc[i, key] = stats.get(key)
    return frame


def _meta(name: str) -> dict[str, Any]:
    from core.paths import dataset_dir
    try:
        return json.loads((dataset_dir(name) / "meta.json").read_text())
    except (OSError, ValueError):
        return {}


def pool_size(name: str) -> int | None:
    """The selection pool of a dataset: its training sessions."""
    frame = datasets()
    row = frame[frame["name"] == name]
    if row.empty or pd.isna(row["n_train"].iloc[0]):
        return None
    return int(row["n_train"].iloc[0])


def metrics_long(run_ids: Sequence[str], split: str = "test") -> pd.DataFrame:
    """run_id, dataset, backbone, method, teacher, seed, groups, metric, k, value."""
    if not run_ids:
        return pd.DataFrame(columns=["run_id", "dataset", "backbone", "method", "teacher", "seed", "groups",
                                     "metric", "k", "value"])
    return read("SELECT r.run_id, r.dataset, r.backbone, r.method, r.teacher, r.seed, r.groups, m.metric, m.k, m.value"
                " FROM metrics m JOIN runs r USING (run_id) WHERE m.split = ? AND list_contains(?, r.run_id)",
                [split, list(run_ids)])


def session_ranks(run_ids: Sequence[str], split: str = "test") -> pd.DataFrame:
    return read("SELECT run_id, session_id, rank FROM session_results WHERE split = ? AND list_contains(?, run_id)",
                [split, list(run_ids)])


def label_tokens(run_ids: Sequence[str]) -> pd.DataFrame:
    """run_id, input_tokens, output_tokens: the tokens of the stored calls behind each run's labelled sessions (runs
    whose labels came from no call, e.g. replay, are absent)."""
    return read("SELECT s.run_id, sum(c.input_tokens) AS input_tokens, sum(c.output_tokens) AS output_tokens"
                " FROM selections s JOIN llm_calls c USING (call_key) WHERE s.picked AND list_contains(?, s.run_id)"
                " GROUP BY s.run_id", [list(run_ids)])


def labelled_runs() -> pd.DataFrame:
    """Runs with labelled (picked) sessions, newest first: run_id, dataset, method, teacher, seed, config, groups,
    created_at."""
    return read("SELECT r.run_id, r.dataset, r.method, r.teacher, r.seed, r.config, r.groups, r.created_at"
                " FROM runs r WHERE EXISTS (SELECT 1 FROM selections s WHERE s.run_id = r.run_id AND s.picked)"
                " ORDER BY r.created_at DESC")


NOTES_SQL = """
SELECT run_id, json_extract_string(config, '$.extra.usd.message') AS run_usd,
       json_extract_string(config, '$.extra.launch_usd.message') AS launch_usd,
       CAST(json_extract(config, '$.extra.warnings') AS VARCHAR) AS warnings
FROM runs
"""


def run_notes() -> pd.DataFrame:
    """run_id, run_usd, launch_usd (what the run's and the launch's USD caps did), warnings (JSON list text) as each
    run stored them in its config (live: 2 s)."""
    return read(NOTES_SQL, live=True)


def category_mix(run_ids: Sequence[str]) -> pd.DataFrame:
    return read("SELECT s.run_id, r.method, s.category, count(*) AS n FROM selections s JOIN runs r USING (run_id)"
                " WHERE s.picked AND list_contains(?, s.run_id) GROUP BY ALL", [list(run_ids)])


def selections(run_id: str) -> pd.DataFrame:
    return read("SELECT s.*, c.ranking, c.rationale, c.input_tokens, c.output_tokens, c.usd, c.latency_s, c.provider,"
                " c.model, c.simulated, c.status AS call_status, c.label FROM selections s"
                " LEFT JOIN llm_calls c USING (call_key) WHERE s.run_id = ? AND s.picked ORDER BY s.pick_order",
                [run_id])


def call(call_key: str) -> dict[str, Any]:
    frame = read("SELECT * FROM llm_calls WHERE call_key = ?", [call_key])
    return {} if frame.empty else frame.iloc[0].to_dict()


def candidates(run_id: str, session_id: int) -> list[int]:
    frame = read("SELECT candidates FROM run_candidates WHERE run_id = ? AND session_id = ?", [run_id, int(session_id)])
    return [] if frame.empty or frame["candidates"].iloc[0] is None else [int(x) for x in frame["candidates"].iloc[0]]


#: what the three categories of a labelled session mean (core.selection.categories, spec 6).
CATEGORY_TEXT = {
    "effective": "the LLM had the true next item in its top 25 and the student did not: what distillation can teach",
    "similar": "both the LLM and the student had the true next item in their top 25",
    "incorrect": "the true next item was not in the LLM's top 25 (or the LLM gave no usable list)",
}


def positive_difficulty(consistency: pd.Series) -> pd.Series:
    """Difficulty shown as a positive quantity: 1 - c_s, in [0, 1] (c_s, the session's consistency with its own
    window, is a mean of sigmoids; the engine's key df_s = -c_s orders the pool the same way: larger = harder)."""
    return 1.0 - consistency.astype(float)


def present(value: Any) -> Any:
    """`value`, or None when it is missing: None, NaN, pd.NA or NaT (what a LEFT JOIN with no match gives; pd.NA
    raises on truth tests). Lists and arrays are returned as they are."""
    if value is None or isinstance(value, (list, tuple, np.ndarray, str)):
        return value
    try:
        return None if pd.isna(value) else value
    except (TypeError, ValueError):
        return value


@dataclass(frozen=True)
class Answer:
    """The teacher's answer about one labelled session, wherever the run kept it.

    ranking: item ids in the teacher's order (first = position 1) as answered or recorded. rationale: the teacher's
    words, None when it gave none. source: 'call' (an llm_calls row: a live, simulated or embedding teacher) or
    'recording' (the replay teacher's recorded file; such runs write no llm_calls row). model: who answered."""

    ranking: list[int]
    rationale: str | None
    source: str
    model: str | None


@st.cache_data(ttl=600, show_spinner=False, max_entries=4)
def _replay_records(dataset: str, replay_path: str | None, home: str) -> tuple[dict[int, tuple[list[int], str]],
                                                                              str | None, str | None]:
    """({session id: (recorded list, rationale)}, recorded model, problem) of the file(s) a replay run read: its
    replay_path file, else the authors' files of an alkdrec dataset, found and checked (SHA-256) as the run does."""
    from core.data import catalog
    from core.pipeline import REPLAY_PREFIX, replay_source_dir
    from core.teachers.providers.replay import ReplayProvider
    try:
        if replay_path and not Path(replay_path).is_dir():
            provider = ReplayProvider(replay_path)
        elif dataset in REPLAY_PREFIX:
            provider = ReplayProvider.from_alkdrec(replay_source_dir(catalog.load(dataset), replay_path),
                                                   REPLAY_PREFIX[dataset])
        else:
            return {}, None, f"dataset {dataset!r} has no recorded rankings and the run names no replay file"
    except Exception as error:  # not fetched here, file moved or edited: say so on the page, never a traceback
        return {}, None, str(error).splitlines()[0] if str(error) else type(error).__name__
    records = {sid: ([int(i) for i in r.raw], r.rationale) for sid, r in provider.records.items()}
    return records, provider.model, None


def session_answer(row: pd.Series, teacher: str, dataset: str, config: dict[str, Any]) -> Answer | str:
    """The teacher's answer about a labelled session (`row`: one row of `selections(run_id)`), or one line saying
    why it cannot be shown. A replay run's answer is read back from the recorded file it replayed."""
    ranking = present(row.get("ranking"))
    if ranking is not None:
        rationale, model = present(row.get("rationale")), present(row.get("model"))
        return Answer([int(i) for i in ranking], str(rationale) if rationale else None, "call",
                      str(model) if model else None)
    if teacher != "replay":
        return "no answer stored for this session (the call failed, or its row is not in this store)"
    records, model, problem = _replay_records(dataset, config.get("replay_path"), str(data_home()))
    if problem:
        return f"the recorded ranking cannot be read here: {problem}"
    record = records.get(int(row["session_id"]))
    if record is None:
        return f"the recorded file has no ranking for session {int(row['session_id'])}"
    return Answer(record[0], record[1] or None, "recording", model)


@st.cache_data(ttl=300, show_spinner=False, max_entries=8)
def _dataset(name: str, home: str) -> tuple[dict[int, str], pd.DataFrame] | None:
    from core.data import catalog
    try:
        data = catalog.load(name)
    except Exception:  # not fetched here (a store copied from elsewhere): show ids only
        return None
    titles = dict(zip(data.items["item_id"].astype(int), data.items["title"].astype(str)))
    return titles, data.sessions[["session_id", "items", "label", "split"]]


def dataset_titles(name: str) -> tuple[dict[int, str], pd.DataFrame]:
    """(item id -> title, sessions frame) of a fetched dataset; ({}, empty) when it is not on disk."""
    out = _dataset(name, str(data_home()))
    if out is None:
        return {}, pd.DataFrame(columns=["session_id", "items", "label", "split"])
    return out


# ---- processes ----------------------------------------------------------------------------------------------------

_children: dict[int, subprocess.Popen] = {}


def pid_alive(pid: Any, started: Any = None, host: Any = None) -> bool:
    """Whether a run's process runs (store.process_alive: gone, a zombie, or a reused pid count as dead; a run of
    another host or without a pid as alive); a child we launched that has exited counts as gone (and is reaped)."""
    if pid is not None and not pd.isna(pid):
        child = _children.get(int(pid))
        if child is not None and child.poll() is not None:
            return False
    return store.process_alive(pid, started, host)


def _signal(pid: int, started: Any, signum: int) -> bool:
    """Send `signum` to `pid` only if it is still the process that started at `started` (when known); False if it
    is gone or another process now has the pid. On Linux through a pidfd, so the pid cannot be reused between the
    check and the signal."""
    opener = getattr(os, "pidfd_open", None)
    try:
        handle = opener(pid) if opener is not None else None
    except OSError:
        return False                      # no such process
    try:
        if started is not None and not pd.isna(started):
            now_started = store.process_started(pid)
            if now_started is not None and now_started != int(started):
                return False
        if handle is not None:
            signal.pidfd_send_signal(handle, signum)
        else:
            os.kill(pid, signum)
        return True
    except ProcessLookupError:
        return False
    finally:
        if handle is not None:
            os.close(handle)


def cancel(run_id: str) -> str:
    """SIGTERM the run's process (the CLI then marks it cancelled) - only if it is still the process that started the
    run (same start time, this host); if the process is gone, mark the run cancelled here."""
    frame = store.query("SELECT status, pid, pid_started, host FROM runs WHERE run_id = ?", [run_id], db())
    if frame.empty:
        return f"no run {run_id}"
    status, pid, started, host = (frame[c].iloc[0] for c in ("status", "pid", "pid_started", "host"))
    if status in TERMINAL:
        return f"{run_id} is already {status}"
    if isinstance(host, str) and host and host != socket.gethostname():
        return f"{run_id} runs on host {host}: cancel it there (or stop its process {pid})"
    if pid is not None and not pd.isna(pid) and pid_alive(pid, started, host) \
            and _signal(int(pid), started, signal.SIGTERM):
        clear_cache()
        return f"sent SIGTERM to process {int(pid)}; the run will be marked cancelled"
    with store.write(db()) as con:
        con.execute("UPDATE runs SET status = 'cancelled', message = 'cancelled from the dashboard (process was gone)',"
                    " finished_at = ?, updated_at = ? WHERE run_id = ?"
                    " AND status NOT IN ('done', 'failed', 'cancelled')",
                    [store.now(), store.now(), run_id])
    clear_cache()
    return f"{run_id}: process gone, marked cancelled"


def delete(run_ids: Sequence[str]) -> int:
    """Remove the runs' rows from every table and their saved models (LLM calls stay: they are the shared cache)."""
    removed = delete_runs(list(run_ids), db())
    clear_cache()
    return removed


def model_file(run_id: str) -> Path | None:
    """The run's saved model file (data/models/RUN_ID.pt), or None when it has none (or its id is no plain name)."""
    if not is_safe_name(run_id):
        return None
    path = model_path(run_id)
    return path if path.exists() else None


def set_tags(run_id: str, tags: Sequence[str]) -> None:
    with store.write(db()) as con:
        con.execute("UPDATE runs SET tags = ? WHERE run_id = ?", [sorted(set(tags)), run_id])
    clear_cache()


# ---- launch -------------------------------------------------------------------------------------------------------

#: how the Launch page names a launch field (core.run_spec.LaunchSpec) in its messages
FIELD_LABELS = {"dataset": "Dataset", "backbone": "Backbone", "method": "Methods", "teacher": "Teacher",
                "model": "Model", "base_url": "Base URL", "budget": "LLM budget", "usd_cap": "USD cap per run",
                "launch_usd_cap": "USD cap for the whole launch", "ratios": "Ratios k_ef:k_si:k_in", "mu": "mu",
                "seed": "Seeds", "hit_rate": "Simulated hit rate", "mode": "Mode", "options": "Distillation settings",
                "pretrain": "Pre-training settings", "group": "Group", "tags": "Tags", "device": "Device"}


def spec_message(error: SpecError) -> str:
    """A launch problem on the page: the field's label, then core's one line (with its fix)."""
    return f"{FIELD_LABELS.get(error.field, error.field)}: {error.text()}"


def launch_problems(fields: Mapping[str, Any] | LaunchSpec) -> tuple[LaunchSpec | None, list[str], list[str]]:
    """(the launch or None, errors that block it, warnings). fields: LaunchSpec fields (plural names too) as the page
    read them. The errors are core.run_spec's parsing and checks, the ones `alkd run`/`alkd sweep` make; the
    warnings are the page's own advice (no method asks the paid teacher, a cap below the expected cost, checkpoints
    to train first, a large launch)."""
    spec, problems = (fields, []) if isinstance(fields, LaunchSpec) else LaunchSpec.parse_all(fields)
    if spec is None:
        return None, [spec_message(e) for e in problems], []
    errors = [spec_message(e) for e in check(spec)]
    warnings: list[str] = []
    paid = any(t in KEY_ENV for t in spec.teacher)
    asks = any(m in LLM_METHODS for m in spec.method)
    if paid and not asks:
        warnings.append("None of the chosen methods asks the LLM: the teacher and budget are unused.")
    caps = [c for c in spec.usd_cap if c]
    if paid and asks and caps:
        uncapped = estimate_usd(spec.model_copy(update={"usd_cap": [None], "launch_usd_cap": None}))
        if uncapped is not None and uncapped[0] > min(caps):
            warnings.append(f"The USD cap ${min(caps):,.2f} is below the expected ${uncapped[0]:,.2f} per run: "
                            "labelling stops when the cap is reached.")
    if not errors and any(m not in BASELINES for m in spec.method):
        for dataset, backbone in itertools.product(spec.dataset, spec.backbone):
            warnings.extend(pretraining_warning(dataset, backbone, spec.seed))
    if spec.n_runs() > 20:
        warnings.append(f"{spec.n_runs()} runs will execute"
                        + (" one after another." if is_single(spec) else " as a sweep, a few at a time."))
    return spec, errors, warnings


def n_llm_runs(spec: LaunchSpec) -> int:
    """Runs of the launch that ask the LLM teacher."""
    return sum(c.method in LLM_METHODS for c in spec.runs())


def key_status(teacher: str) -> tuple[str | None, str | None]:
    """(env name, masked key like 'sk-…abcd') from the environment or st.secrets; the key itself never leaves."""
    name = KEY_ENV.get(teacher)
    if name is None:
        return None, None
    value = api_key(name)
    return name, mask(value) if value else None


def mask(key: str) -> str:
    head = key[:3] if key.startswith("sk-") else key[:2]
    return f"{head}…{key[-4:]}" if len(key) > 8 else "…" + key[-2:]


def pretraining_warning(dataset: str, backbone: str, seeds: Sequence[int]) -> list[str]:
    """A warning when some seed has no pre-trained `backbone` checkpoint on `dataset` yet (the launch then trains a
    teacher and a student first), with an estimate from the store's earlier trainings of that backbone there."""
    from core.paths import checkpoints_dir
    folder = checkpoints_dir() / dataset
    missing = [s for s in seeds if len(list(folder.glob(f"{backbone}-d*-s{int(s)}-*.pt"))) < 2]
    if not missing or not is_safe_name(dataset):
        return []
    done = read("SELECT median(epoch(finished_at - started_at)) AS seconds, count(*) AS n FROM runs"
                " WHERE kind = 'train' AND status = 'done' AND dataset = ? AND backbone = ?", [dataset, backbone])
    seconds = done["seconds"].iloc[0] if not done.empty else None
    eta = (f" about {2 * len(missing) * float(seconds) / 60:,.0f} min ({int(done['n'].iloc[0])} earlier training(s) "
           f"of {backbone} here took {float(seconds) / 60:,.1f} min each)" if present(seconds) is not None
           else " minutes on a small dataset, tens of minutes on alkdrec-ml or alkdrec-games on a CPU")
    return [f"No pre-trained {backbone} teacher and student for {dataset} seed(s) "
            f"{', '.join(map(str, missing))} yet: this launch trains them first, which takes{eta}. Later launches "
            "reuse them."]


def alkd_command() -> list[str]:
    exe = Path(sys.executable).parent / "alkd"
    if exe.exists():
        return [str(exe)]
    found = shutil.which("alkd")
    return [found] if found else [sys.executable, "-m", "core.cli"]


def is_single(spec: LaunchSpec) -> bool:
    """One budget and one seed (and nothing else swept but the methods): `alkd run`; else `alkd sweep`."""
    return not [f for f in spec.swept() if f != "method"]


def launch_file(spec: LaunchSpec) -> str:
    """Where a sweep's launch file is written, relative to the data folder (ALKD_HOME), where `alkd sweep` starts."""
    return f"launches/{re.sub(r'[^A-Za-z0-9_.-]+', '_', spec.group or 'GROUP')}.toml"


def launch_args(spec: LaunchSpec) -> list[str]:
    """The `alkd` arguments of a launch: `run` flags (one budget and one seed) or `sweep launches/GROUP.toml`."""
    return spec.run_argv() if is_single(spec) else ["sweep", launch_file(spec)]


def shown_command(spec: LaunchSpec) -> str:
    """The command as a user would type it (shell-quoted, no machine path)."""
    return shell(launch_args(spec))


def parse_settings(text: str) -> dict[str, Any]:
    """'lr=1e-4\npatience=10' (one KEY=VALUE per line or comma separated) -> {'lr': 0.0001, 'patience': 10}, parsed
    as `alkd run` parses --option; ValueError names a setting without '='."""
    return parse_pairs(line.strip() for line in re.split(r"[\n,]", text or "") if line.strip())


def option_table() -> pd.DataFrame:
    """The distillation options with their defaults and meaning (for the Launch page)."""
    from core.distill import OPTIONS
    return pd.DataFrame([{"option": k, "default": "—" if d is None else str(d), "meaning": text}
                         for k, (d, _, text) in OPTIONS.items()])


def pretrain_defaults(backbone: str) -> str:
    """The pre-training settings `backbone` gets when none are given, e.g. 'lr=0.01, patience=5, loss=ce, ...'."""
    from core.train import TrainConfig
    resolved = TrainConfig(backbone=backbone).model_dump(exclude={"backbone", "dim", "seed"})
    return ", ".join(f"{key}={value}" for key, value in resolved.items())


def logs_dir() -> Path:
    return data_home() / "logs"


#: seconds within which the same launch (all settings but the group name) is not started twice
REPEAT_WINDOW_S = 60.0
_recent: dict[str, tuple[float, str, int]] = {}
_recent_lock = threading.Lock()


class RepeatedLaunch(RuntimeError):
    """The same launch was started moments ago (a double click, or two tabs): the message names its group."""


def launch(spec: LaunchSpec) -> tuple[int, Path, list[str]]:
    """Start `alkd run` (one budget and seed) or `alkd sweep` (several) in its own session, output to
    data/logs/GROUP.log; returns (pid, log path, the `alkd` arguments) at once.
    RepeatedLaunch if the same settings (the group name aside) were launched from this server in the last
    REPEAT_WINDOW_S seconds and that process still runs: a double click starts one comparison, not two."""
    signature = json.dumps(spec.model_dump(exclude={"group"}), sort_keys=True, default=str)
    with _recent_lock:
        seen = _recent.get(signature)
        if seen is not None and time.monotonic() - seen[0] < REPEAT_WINDOW_S and pid_alive(seen[2]):
            raise RepeatedLaunch(f"the same launch started {time.monotonic() - seen[0]:.0f} s ago as group "
                                 f"{seen[1]} (process {seen[2]}): follow it on Runs")
        pid, log, argv = _start(spec)
        _recent[signature] = (time.monotonic(), str(spec.group), pid)
    return pid, log, argv


def _start(spec: LaunchSpec) -> tuple[int, Path, list[str]]:
    if not spec.group:
        spec.group = f"{spec.dataset[0]}-{datetime.now():%Y%m%d-%H%M%S}"
    args = launch_args(spec)
    home = data_home()
    if args[0] == "sweep":       # the launch file, beside the data it describes; `alkd sweep` reads it from there
        (home / launch_file(spec)).parent.mkdir(parents=True, exist_ok=True)
        (home / launch_file(spec)).write_text(spec.to_toml(), encoding="utf-8")
    logs_dir().mkdir(parents=True, exist_ok=True)
    log = logs_dir() / f"{re.sub(r'[^A-Za-z0-9_.-]+', '_', spec.group)}.log"
    env = dict(os.environ)
    env["ALKD_HOME"] = str(home)
    env["ALKD_DB"] = db()
    env.setdefault("PYTHONUNBUFFERED", "1")
    for teacher in spec.teacher:
        name = KEY_ENV.get(teacher)
        if name and not env.get(name):  # a key from st.secrets reaches the child only through its environment
            value = api_key(name)
            if value:
                env[name] = value
    with open(log, "ab") as out:
        out.write(("$ " + shell(args) + "\n").encode())
        out.flush()
        process = subprocess.Popen([*alkd_command(), *args], stdout=out, stderr=subprocess.STDOUT,
                                   stdin=subprocess.DEVNULL, start_new_session=True, env=env, cwd=home)
    _children[process.pid] = process
    clear_cache()
    return process.pid, log, args


def demo_runs(dataset: str = "ml-100k") -> pd.DataFrame:
    """The demo comparisons already in the store (runs tagged 'demo' on `dataset`): groups, status, newest first."""
    return read("SELECT groups, count(*) AS runs, count(*) FILTER (WHERE status = 'running') AS running,"
                " count(*) FILTER (WHERE status = 'done') AS done, max(created_at) AS created_at FROM runs"
                " WHERE list_contains(tags, 'demo') AND dataset = ? GROUP BY groups ORDER BY created_at DESC",
                [dataset], live=True)


def demo_config(dataset: str = "ml-100k") -> LaunchSpec:
    return LaunchSpec.parse(dict(dataset=dataset, backbone="fpmc", methods=list(DEMO_METHODS), teacher="simulated",
                                 budget=100, seeds=0, group=f"demo-{datetime.now():%Y%m%d-%H%M%S}", tags=["demo"]))
