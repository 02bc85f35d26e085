"""Turning interaction logs into sessions, and splitting sessions.

Shared by every raw source (ml-100k, hetrec2011, Amazon, csv) so all of them sessionize the same way.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from core.data.dataset import flatten, to_lists

SECONDS_PER_DAY = 86_400


def sessionize(log: pd.DataFrame, *, by: str = "day", gap_seconds: int = 1800, min_length: int = 5,
               max_length: int | None = 50, dedupe: bool = False) -> pd.DataFrame:
    """Group a log into sessions.

    log: columns user_id, item_id (raw, any type), timestamp (Unix seconds, int or float).
    by: 'day' (one user's interactions in one UTC day) or 'gap' (a new session after `gap_seconds` of inactivity).
    Items are ordered by (timestamp, item_id) so ties break the same way everywhere. `dedupe` keeps the first
    occurrence of a repeated item within a session; sessions shorter than `min_length` (after dedupe) are dropped;
    `max_length` keeps the last items. Returns columns session_key (str), user_id, start (timestamp of the first
    item), items (list of raw ids, input + label), in (user_id, start) order.
    """
    if log.empty:
        return pd.DataFrame(columns=["session_key", "user_id", "start", "items"])
    if by not in ("day", "gap"):
        raise ValueError(f"unknown sessionization {by!r}; expected 'day' or 'gap'")
    user_rank = pd.factorize(log["user_id"].to_numpy(), sort=True, use_na_sentinel=False)[0]
    item_code, item_values = pd.factorize(log["item_id"].to_numpy(), use_na_sentinel=False)
    # ties at one timestamp break by the item id's text: rank the distinct ids by str() once, not per row
    text_rank = pd.factorize(np.asarray([str(value) for value in item_values], dtype=object), sort=True)[0]
    stamps = log["timestamp"].to_numpy()
    order = np.lexsort((text_rank[item_code], stamps, user_rank))   # stable: equal keys keep log order
    user_rank, item_code, stamps = user_rank[order], item_code[order], stamps[order]
    if by == "day":
        part = (stamps // SECONDS_PER_DAY).astype(np.int64)
    else:
        new_session = np.ones(len(order), dtype=bool)
        new_session[1:] = (np.diff(stamps) > gap_seconds) | (user_rank[1:] != user_rank[:-1])
        part = np.cumsum(new_session, dtype=np.int64)
    # the rows of one (user, part) are contiguous: sorted by user then time, and part never decreases in time
    boundary = np.ones(len(order), dtype=bool)
    boundary[1:] = (user_rank[1:] != user_rank[:-1]) | (part[1:] != part[:-1])
    group = np.cumsum(boundary) - 1
    if dedupe:
        repeated = pd.Series(group * (int(item_code.max()) + 1) + item_code).duplicated(keep="first").to_numpy()
        order, stamps, part, group = order[~repeated], stamps[~repeated], part[~repeated], group[~repeated]
    heads = np.flatnonzero(np.r_[True, group[1:] != group[:-1]])
    ends = np.r_[heads[1:], len(order)].astype(np.int64)
    kept = (ends - heads) >= min_length
    heads, ends = heads[kept], ends[kept]
    first = np.maximum(heads, ends - max_length) if max_length else heads   # keep the last max_length items
    offsets = np.zeros(len(heads) + 1, dtype=np.int64)
    np.cumsum(ends - first, out=offsets[1:])
    take = np.repeat(first - offsets[:-1], ends - first) + np.arange(offsets[-1])
    sessions = pd.DataFrame({"user_id": log["user_id"].iloc[order[heads]].reset_index(drop=True),
                             "_part": part[heads], "start": stamps[heads],     # the first item is the earliest
                             "items": pd.Series(to_lists(log["item_id"].to_numpy()[order[take]], offsets),
                                                dtype=object)})
    # already in (user_id, start) order: groups follow the user order, and a user's later part starts later
    sessions["session_key"] = sessions["user_id"].astype(str) + ":" + sessions["_part"].astype(str)
    return sessions[["session_key", "user_id", "start", "items"]]


def random_split(n: int, ratios: tuple[float, float, float] = (0.6, 0.2, 0.2), seed: int = 0) -> np.ndarray:
    """Seeded random assignment of n sessions to train/valid/test in the given ratios. Returns (n,) object array."""
    if n == 0:
        return np.array([], dtype=object)
    total = sum(ratios)
    order = np.random.default_rng(seed).permutation(n)
    n_train = int(np.floor(ratios[0] / total * n))
    n_valid = int(np.floor((ratios[0] + ratios[1]) / total * n)) - n_train
    labels = np.empty(n, dtype=object)
    labels[order[:n_train]] = "train"
    labels[order[n_train:n_train + n_valid]] = "valid"
    labels[order[n_train + n_valid:]] = "test"
    return labels


def positional_split(n: int, ratios: tuple[float, float, float] = (0.6, 0.2, 0.2)) -> np.ndarray:
    """The ALKDRec authors' split: first floor(0.6n) train, up to floor(0.8n) valid, rest test."""
    total = sum(ratios)
    first = int(np.floor(ratios[0] / total * n))
    second = int(np.floor((ratios[0] + ratios[1]) / total * n))
    labels = np.empty(n, dtype=object)
    labels[:first], labels[first:second], labels[second:] = "train", "valid", "test"
    return labels


def to_session_frame(sessions: pd.DataFrame, split: np.ndarray) -> pd.DataFrame:
    """sessionize() output + split labels -> the `sessions` frame from_raw() takes (input = all but last item)."""
    values, offsets = flatten(sessions["items"])
    last = offsets[1:] - 1
    inputs = np.delete(values, last)
    return pd.DataFrame({
        "session_id": np.arange(len(sessions), dtype=np.int64),
        "items": to_lists(inputs, offsets - np.arange(len(offsets))),
        "label": values[last].tolist(),
        "split": split,
    })
