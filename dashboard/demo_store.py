"""A synthetic run store for the dashboard's tests and benchmark (no training: rows written straight to DuckDB).

`seed_store(path, ...)` writes runs in groups (one run per method x seed), test metrics, per-session ranks,
selections over a pool with LLM calls for the picked sessions, candidates and accounting, all deterministic.
With teacher="replay" it writes what a replay run writes: no llm_calls row (empty call keys) and the recorded
rankings in a JSONL file (`replay_path`, named in each run's config as the real run names its file).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import pandas as pd

from core import store
from core.distill import method_names

LLM = set(method_names("llm"))      # the methods that ask the LLM teacher (core.distill's registry)
QUALITY = {"student": 0.10, "teacher": 0.16, "random": 0.12, "alkdrec": 0.14, "popular": 0.05, "easiest": 0.115,
           "hardest": 0.118, "rad-bc": 0.13, "tr": 0.125, "dllm2rec": 0.128, "llmd4rec": 0.126}


def seed_store(path: Path | str, *, groups: Sequence[str] = ("g1",), methods: Sequence[str] = ("student", "alkdrec"),
               seeds: Sequence[int] = (0, 1, 2), dataset: str = "tiny", pool: Sequence[int] | int = 40,
               budget: int = 10, test_sessions: Sequence[int] | int = 20, n_items: int = 12,
               teacher: str = "simulated", model: str = "simulated", usd_per_call: float = 0.0,
               rationale: str = "Session {sid}: the user walks upward through the catalogue.",
               base_time: pd.Timestamp | None = None, replay_path: Path | str | None = None,
               labels: Mapping[int, int] | None = None, base_url: str | None = None) -> pd.DataFrame:
    """Write the rows; returns the wide per-run test metrics (run_id, method, seed, recall@10, ndcg@10, ...).
    labels: the true next item of each pool session (a real dataset's), else session id % n_items + 1. base_url: the
    server the runs' config names (a local OpenAI-compatible one, say)."""
    replay = teacher == "replay"
    if replay and replay_path is None:
        raise ValueError("teacher='replay' needs replay_path: the JSONL file of recorded rankings to write")
    pool_ids = np.arange(pool) if isinstance(pool, int) else np.asarray(pool)
    test_ids = np.arange(test_sessions) if isinstance(test_sessions, int) else np.asarray(test_sessions)
    rng = np.random.default_rng(0)
    base_time = base_time or pd.Timestamp("2026-01-01", tz="UTC")
    runs, metrics, results, selections, candidates, calls, recorded = [], [], [], [], [], {}, {}
    counter = 0
    for group in groups:
        for method in methods:
            for seed in seeds:
                run_id = f"{group}-{method}-s{seed}"
                counter += 1
                llm = method in LLM
                ranks = rng.geometric(QUALITY.get(method, 0.1), size=len(test_ids)) - 1
                results.append(pd.DataFrame({"run_id": run_id, "split": "test", "session_id": test_ids,
                                             "target": (test_ids % n_items) + 1, "rank": ranks}))
                for k in (5, 10, 20):
                    hit = ranks < k
                    ndcg = np.where(hit, 1 / np.log2(ranks + 2.0), 0.0)
                    mrr = np.where(hit, 1 / (ranks + 1.0), 0.0)
                    metrics += [(run_id, "test", "recall", k, float(hit.mean())),
                                (run_id, "test", "ndcg", k, float(ndcg.mean())),
                                (run_id, "test", "mrr", k, float(mrr.mean()))]
                n_lab = 0
                if llm:
                    n = len(pool_ids)
                    consistency = np.sort(rng.random(n))
                    order = rng.permutation(n)[:budget]
                    picked = np.zeros(n, dtype=bool)
                    picked[order] = True
                    pick_order = np.full(n, -1)
                    pick_order[order] = np.arange(budget)
                    hit_pos = rng.integers(-1, 10, size=n)
                    if replay:   # one recorded answer per session, the same in every run
                        hit_pos = (pool_ids * 7) % 12 - 1
                    student_rank = rng.integers(0, 50, size=n)
                    # as core.selection.categories: LLM top 25 missed -> incorrect; else student top 25 -> similar
                    category = np.where(hit_pos < 0, "incorrect", np.where(student_rank < 25, "similar", "effective"))
                    keys = np.array(["" if replay else f"{model}-{sid}" for sid in pool_ids], dtype=object)
                    selections.append(pd.DataFrame({
                        "run_id": run_id, "session_id": pool_ids, "consistency": consistency,
                        "difficulty": -consistency, "position": np.arange(1, n + 1),
                        "gain": 1.0 / np.arange(1, n + 1) ** 10.0, "probability": np.where(picked, 1.0 / budget, 0.0),
                        "picked": picked, "pick_order": pd.array(np.where(picked, pick_order, -1)).astype("Int64"),
                        "category": np.where(picked, category, None), "call_key": np.where(picked, keys, None),
                        "hit_position": np.where(picked, hit_pos, -1), "student_rank": student_rank,
                        "n_valid": 20}))
                    for sid, key, hp in zip(pool_ids[order], keys[order], hit_pos[order]):
                        ranking = [int(x) for x in ((np.arange(10) + sid) % n_items) + 1]
                        label = int(labels[int(sid)]) if labels is not None else int(sid % n_items) + 1
                        if label in ranking:   # the label where the stored hit position says (absent if < 0)
                            ranking.remove(label)
                        if hp >= 0:
                            ranking.insert(int(hp), label)
                        candidates.append({"run_id": run_id, "session_id": int(sid),
                                           "candidates": [int(x) for x in (np.arange(20) + sid) % n_items + 1]})
                        if replay:
                            recorded.setdefault(int(sid), {"session_id": int(sid), "raw_ranking": ranking,
                                                           "hit_position": int(hp) if hp >= 0 else 25,
                                                           "label": label, "model": model})
                            continue
                        calls.setdefault(key, {
                            "call_key": key, "provider": teacher, "model": model, "prompt_hash": key,
                            "prompt": f"Rank the candidates for session {sid}", "raw_reply": json.dumps(ranking),
                            "ranking": ranking, "rationale": rationale.format(sid=int(sid)), "n_valid": 10,
                            "input_tokens": 800, "output_tokens": 120, "usd": usd_per_call, "latency_s": 0.8,
                            "error": None, "simulated": teacher == "simulated", "created_at": base_time,
                            "session_id": int(sid), "dataset": dataset, "label": label, "status": "ok",
                            "cache_read_tokens": 0, "cache_write_tokens": 0})
                    n_lab = budget
                stamp = base_time + pd.Timedelta(seconds=counter)
                runs.append({"run_id": run_id, "kind": "run", "status": "done", "dataset": dataset,
                             "backbone": "fpmc", "role": "student", "method": method,
                             "teacher": teacher if llm else None, "seed": int(seed),
                             "config": json.dumps({"model": model, "base_url": base_url} if not replay else {
                                 "model": None, "replay_path": str(replay_path),
                                 "extra": {"teacher_model": f"replay:{model}"}}),
                             "versions": "{}", "timings": "{}",
                             "message": "", "stage": "done", "step": 1, "total": 1, "pid": None, "tags": [],
                             "created_at": stamp, "started_at": stamp, "finished_at": stamp, "updated_at": stamp,
                             "budget": budget if llm else 0, "usd_cap": None,
                             "usd_spent": n_lab * usd_per_call, "n_labelled": n_lab, "groups": group})
    with store.write(path) as con:
        frame = pd.DataFrame(runs)
        frame["pid"] = frame["pid"].astype("Int64")
        frame["usd_cap"] = frame["usd_cap"].astype("Float64")
        store.insert_frame(con, "runs", frame)
        store.insert_frame(con, "metrics", pd.DataFrame(metrics, columns=["run_id", "split", "metric", "k", "value"]))
        store.insert_frame(con, "session_results", pd.concat(results, ignore_index=True))
        if selections:
            store.insert_frame(con, "selections", pd.concat(selections, ignore_index=True))
            store.insert_frame(con, "run_candidates", pd.DataFrame(candidates))
            existing = set(con.execute("SELECT call_key FROM llm_calls").df()["call_key"])
            store.insert_frame(con, "llm_calls", pd.DataFrame([c for k, c in calls.items() if k not in existing]))
    if replay:
        Path(replay_path).write_text("".join(json.dumps(r) + "\n" for r in recorded.values()))
    wide = pd.DataFrame(metrics, columns=["run_id", "split", "metric", "k", "value"])
    wide["key"] = wide["metric"] + "@" + wide["k"].astype(str)
    return wide.pivot(index="run_id", columns="key", values="value").reset_index()
