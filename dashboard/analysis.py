"""What the Compare page computes from the store's rows: configurations named by every setting that differs, their
summary over seeds, paired t-tests against a baseline, and the budget curve. Functions of frames (`tests` reads its
inputs through dashboard.data and is cached): the SQL is in dashboard.data, the metric formulas and the t-test in
core.evaluate.

A configuration is a run's settings but its seed (dashboard.data.run_settings); `data.comparable_runs` keeps exactly
one run per (configuration, seed), so every pairing here meets each (seed, session) once.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import streamlit as st

from core.evaluate import mean_ci, paired_ttest, per_session
from dashboard import data

NAMES = {"recall": "HR", "ndcg": "NDCG", "mrr": "MRR"}
#: settings shown first, in this order; the others (mode, options.*, pretrain.*, ...) follow alphabetically.
FIRST = ("method", "dataset", "backbone", "teacher", "model", "budget", "usd_cap")
#: settings named by their value alone in a label ("alkdrec · ml-100k · sasrec"); the others as "name=value".
BARE = ("dataset", "backbone", "teacher", "model")
LEAK_LABEL = {"forced": "label forced", "filtered": "no-leak replay"}
#: the reference lines of the budget chart: method -> its name there.
REFERENCES = {"student": "Student", "teacher": "Teacher", "vsknn": "V-SKNN"}
#: the what-if price a free teacher's labels are shown at by default: the paper's teacher (its recorded lists are
#: what the replay teacher plays back).
WHATIF_DEFAULT = "gpt-4-turbo-2024-04-09"


def show(value: Any) -> str:
    """A setting's value as a table cell: '—' when unset, lists and dicts as JSON, numbers without trailing zeros."""
    if value is None:
        return "—"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, (list, tuple, dict)):
        return json.dumps(value, default=str)
    return str(value)


def _part(name: str, value: Any) -> str:
    if value is None:   # set in another configuration of the method, left at its default here
        return f"{name}=default"
    if name == "budget":
        return f"budget {show(value)}"
    if name == "label_leak":
        return LEAK_LABEL.get(str(value), f"leak {show(value)}")
    return show(value) if name in BARE else f"{name}={show(value)}"


@dataclass(frozen=True)
class Configurations:
    """runs: the selected runs with columns label (the configuration's name), line (the label without the budget: one
    budget-chart line) and config_key. table: one row per configuration (config, then the settings that vary in the
    selection as columns, then label leak and line), by method (data.METHODS order) and budget. varying: those
    setting names."""

    runs: pd.DataFrame
    table: pd.DataFrame
    varying: list[str]


def configurations(runs: pd.DataFrame) -> Configurations:
    """Name the configurations of `runs` (rows of data.comparable_runs, with config_key) by what differs.

    A label is the method plus the settings that vary among that method's configurations ('alkdrec · budget 50',
    'student'), so two configurations never share one; lists made with the true next item forced in say 'label
    forced' even when every configuration of the method has them."""
    rank = {m: i for i, m in enumerate(dict.fromkeys([*data.METHODS, *data.BASELINES]))}
    settings = {key: json.loads(key) for key in dict.fromkeys(runs["config_key"])}
    settings = dict(sorted(settings.items(), key=lambda item: (
        rank.get(item[1].get("method"), len(rank)), str(item[1].get("method")),
        float(item[1].get("budget") or 0), item[0])))
    names = list(dict.fromkeys(name for s in settings.values() for name in s))
    methods = list(dict.fromkeys(s.get("method") for s in settings.values()))

    def values(name: str, keys: Sequence[str]) -> set[str]:
        return {json.dumps(settings[k].get(name), sort_keys=True, default=str) for k in keys}

    of_method = {m: [k for k, s in settings.items() if s.get("method") == m] for m in methods}
    # a setting is a column when it takes two values (a method that does not read it, e.g. the student's teacher,
    # is no second value) or when one method's configurations differ in it
    varying = [name for name in names if len(values(name, list(settings)) - {"null"}) > 1
               or any(len(values(name, keys)) > 1 for keys in of_method.values())]
    varying = [n for n in FIRST if n in varying] + sorted(n for n in varying if n not in FIRST)
    labels, lines = {}, {}
    for method, keys in of_method.items():
        own = [n for n in varying if n != "method" and len(values(n, keys)) > 1]
        for key in keys:
            s = settings[key]
            parts = [_part(n, s.get(n)) for n in own if n != "label_leak"]
            leak = s.get("label_leak")
            tail = [LEAK_LABEL[leak]] if leak in LEAK_LABEL else []
            labels[key] = " · ".join([str(method), *parts, *tail])
            lines[key] = " · ".join([str(method), *[p for n, p in zip([n for n in own if n != "label_leak"], parts)
                                                     if n != "budget"], *tail])
    out = runs.assign(label=runs["config_key"].map(labels), line=runs["config_key"].map(lines))
    table = pd.DataFrame([{"config": labels[k], **{n: show(settings[k].get(n)) for n in varying if n != "label_leak"},
                           "label leak": settings[k].get("label_leak", "—"), "line": lines[k]} for k in settings])
    return Configurations(out, table, varying)


# ---- per run and per session values ------------------------------------------------------------------------------

def run_values(metrics: pd.DataFrame, runs: pd.DataFrame, k: int) -> pd.DataFrame:
    """One row per run: run_id, label, line, seed, and one column per metric at K (test split; metrics: rows of
    data.metrics_long)."""
    wide = metrics[metrics["k"] == k].pivot_table(index="run_id", columns="metric", values="value").reset_index()
    return runs[["run_id", "label", "line", "seed"]].merge(wide, on="run_id", how="inner")


def session_values(ranks: pd.DataFrame, runs: pd.DataFrame, metrics: Sequence[str], k: int) -> pd.DataFrame:
    """One row per (run, test session): label, seed, session_id and each metric's per-session value at K from the
    stored 0-based rank (core.evaluate.per_session). ranks: rows of data.session_ranks for all of `runs` at once."""
    out = ranks.drop_duplicates(["run_id", "session_id"]).merge(runs[["run_id", "label", "seed"]], on="run_id")
    rank = out["rank"].to_numpy(dtype=np.int64)
    for metric in metrics:
        out[metric] = per_session(rank, f"{metric}@{k}")
    return out


def summary(values: pd.DataFrame, table: pd.DataFrame, runs: pd.DataFrame, metrics: Sequence[str],
            k: int) -> pd.DataFrame:
    """One row per configuration (table's order): config, the varying settings, seeds, each metric's mean, std and
    95% CI half-width over seeds, label leak, and 'kept start' (the seeds whose distillation returned the starting
    model, 'k of n')."""
    agg = values.groupby("label", sort=False).agg(
        seeds=("seed", "nunique"), **{f"{NAMES[m]}@{k} mean": (m, "mean") for m in metrics},
        **{f"{NAMES[m]}@{k} std": (m, "std") for m in metrics})
    for m in metrics:
        agg[f"{NAMES[m]}@{k} ±95%"] = values.groupby("label", sort=False)[m].agg(lambda v: mean_ci(v)[1])
    kept = runs.groupby("label", sort=False)["returned_start"].agg(
        lambda v: f"{int(v.fillna(False).astype(bool).sum())} of {len(v)}" if v.notna().any() else "—")
    out = table.drop(columns=["line"]).merge(agg.reset_index().rename(columns={"label": "config"}), on="config",
                                             how="inner")
    out["kept start"] = out["config"].map(kept).fillna("—")
    columns = ["config", *[c for c in table.columns if c not in ("config", "label leak", "line")], "seeds",
               *[f"{NAMES[m]}@{k} {s}" for m in metrics for s in ("mean", "std", "±95%")], "label leak", "kept start"]
    return out[columns]


def significance(values: pd.DataFrame, baseline: str, metric: str, by: str) -> dict[str, str]:
    """For every configuration of `values`, '▲** p=0.003' style: the paired t-test (core.evaluate.paired_ttest) of
    it against `baseline` ('baseline' for itself). by='seed': pairs are the two configurations' runs of one seed
    (values: run_values); by='session': pairs are (seed, test session) (values: session_values). 'n/a' with fewer
    than two pairs or no variation. A configuration with two values for one pair is a ValueError (never paired
    twice)."""
    # a dense (pair, configuration) matrix built with numpy: a pivot of 10^5 rows took most of a per-session test
    pair = values["seed"].to_numpy(dtype=np.int64) << 32
    if by != "seed":
        pair = pair + values["session_id"].to_numpy(dtype=np.int64)
    pairs, row = np.unique(pair, return_inverse=True)
    column, names = pd.factorize(values["label"].to_numpy(dtype=object))
    cell = row * len(names) + column
    if len(cell) and np.bincount(cell).max() > 1:
        raise ValueError("a configuration has two values for one (seed, session): one run per configuration and "
                         "seed is paired, never two")
    wide = np.full((len(pairs), len(names)), np.nan)
    wide[row, column] = values[metric].to_numpy(dtype=np.float64)
    names = list(names)
    out = {}
    for config in names:
        if config == baseline:
            out[config] = "baseline"
            continue
        if baseline not in names:
            out[config] = "n/a"
            continue
        both = wide[:, [names.index(config), names.index(baseline)]]
        both = both[~np.isnan(both).any(axis=1)]
        x, y = both[:, 0], both[:, 1]
        if len(x) < 2 or np.allclose(x - y, (x - y)[0]):
            out[config] = "n/a"
            continue
        test = paired_ttest(x, y)
        arrow = "▲" if test.mean_difference > 0 else "▼"
        stars = "**" if test.p_value < 0.01 else "*" if test.p_value < 0.05 else ""
        out[config] = f"{arrow}{stars} p={test.p_value:.3g}"
    return out


@st.cache_data(ttl=30, show_spinner=False, max_entries=32)
def tests(runs: tuple[tuple[str, str, int], ...], baseline: str, metrics: tuple[str, ...], k: int, by: str,
          db: str) -> dict[str, dict[str, str]]:
    """metric -> `significance` of every configuration against `baseline`, for runs given as (run_id, label, seed)
    (one per configuration and seed); by 'seed' from the stored metrics, by 'session' from every run's per-session
    ranks read in one query. Cached per selection and store (db), so a widget that changes nothing here reruns no
    test."""
    frame = pd.DataFrame(list(runs), columns=["run_id", "label", "seed"]).assign(line="")
    ids = list(frame["run_id"])
    if by == "seed":
        values = run_values(data.metrics_long(ids), frame, k)
    else:
        values = session_values(data.session_ranks(ids), frame, metrics, k)
    return {m: significance(values, baseline, m, by) for m in metrics}


# ---- the budget curve ------------------------------------------------------------------------------------------

def whatif_usd(n_labelled: float, input_tokens: float | None, output_tokens: float | None, model: str) -> float:
    """What a run's labels would have cost at `model`'s list price (core/teachers/prices.toml): its calls' token
    counts where the store has them, else n_labelled typical requests (core.teachers.estimate: 8 items, 50
    candidates). UnknownPriceError for a model without a price."""
    from core.teachers import estimate, price_for
    if input_tokens and input_tokens > 0:
        price = price_for(model)
        return (float(input_tokens) * price.input + float(output_tokens or 0) * price.output) / 1e6
    return estimate(int(n_labelled), "openai", model).usd if n_labelled else 0.0


def priced_models() -> list[str]:
    """The models of the price table (shipped prices.toml and ALKD_PRICES) that cost something: the what-if choices."""
    from core.teachers.pricing import price_table
    return [name for name, price in price_table()["models"].items() if not price.free]


def budget_points(values: pd.DataFrame, runs: pd.DataFrame, metric: str) -> pd.DataFrame:
    """The budget chart's points: one per (line, budget) of the LLM methods, over seeds: line, budget, seeds,
    n_labelled (mean), usd (mean spent), whatif_usd (mean; NaN when not computed), free (no run of the point paid
    anything), mean and ci (95% half-width) of `metric`, leak, kept (seeds that returned the starting model).
    values: run_values; runs: the configurations' runs with budget, n_labelled, usd_spent, whatif_usd,
    returned_start and config_key."""
    llm = runs[runs["method"].isin(data.LLM_METHODS)]
    frame = values[["run_id", metric]].merge(llm, on="run_id")
    rows = []
    for (line, budget), part in frame.groupby(["line", "budget"], sort=False):
        mean, half = mean_ci(part[metric].dropna())
        settings = json.loads(part["config_key"].iloc[0])
        rows.append({"line": line, "budget": budget, "seeds": part["seed"].nunique(),
                     "n_labelled": float(part["n_labelled"].mean()), "usd": float(part["usd_spent"].mean()),
                     "whatif_usd": float(part["whatif_usd"].mean()) if "whatif_usd" in part else math.nan,
                     "free": bool((part["usd_spent"].fillna(0) == 0).all()), "mean": mean, "ci": half,
                     "leak": settings.get("label_leak", "none"),
                     "kept": int(part["returned_start"].fillna(False).astype(bool).sum())})
    columns = ["line", "budget", "seeds", "n_labelled", "usd", "whatif_usd", "free", "mean", "ci", "leak", "kept"]
    return pd.DataFrame(rows, columns=columns).sort_values(["line", "n_labelled"], kind="stable")


def references(values: pd.DataFrame, runs: pd.DataFrame, metric: str) -> pd.DataFrame:
    """The horizontal lines: one per REFERENCES method present (name, mean, ci, seeds), from `runs`' configurations
    of that method (the first configuration when there are several)."""
    rows = []
    for method, name in REFERENCES.items():
        of = runs[runs["method"] == method]
        if of.empty:
            continue
        first = of[of["label"] == of["label"].iloc[0]]
        mean, half = mean_ci(values.loc[values["run_id"].isin(first["run_id"]), metric].dropna())
        if not math.isnan(mean):
            rows.append({"name": name, "config": first["label"].iloc[0], "mean": mean, "ci": half,
                         "seeds": first["seed"].nunique()})
    return pd.DataFrame(rows, columns=["name", "config", "mean", "ci", "seeds"])
