"""The vectorised ingestion (sessionize, to_session_frame, from_raw, to_batch, prefix_instances, load_dataset_dir)
gives exactly what the per-row Python it replaced gave. The reference functions below are that replaced code,
verbatim, kept here only as the oracle."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from tiny_data import make_dataset

from core.data import dataset as data
from core.data.errors import DataError
from core.data.sessionize import random_split, sessionize, to_session_frame
from core.train import training_instances

# ---- the replaced per-row implementations (the oracle) --------------------------------------------------------

def old_sessionize(log, *, by="day", gap_seconds=1800, min_length=5, max_length=50, dedupe=False):
    if log.empty:
        return pd.DataFrame(columns=["session_key", "user_id", "start", "items"])
    frame = log[["user_id", "item_id", "timestamp"]].copy()
    frame["_order_key"] = frame["item_id"].astype(str)
    frame = frame.sort_values(["user_id", "timestamp", "_order_key"], kind="stable")
    if by == "day":
        frame["_part"] = (frame["timestamp"] // 86_400).astype(np.int64)
    else:
        new_session = (frame["timestamp"].diff().fillna(np.inf).gt(gap_seconds)
                       | frame["user_id"].ne(frame["user_id"].shift()))
        frame["_part"] = new_session.cumsum()
    if dedupe:
        frame = frame.drop_duplicates(["user_id", "_part", "item_id"], keep="first")
    grouped = frame.groupby(["user_id", "_part"], sort=False)
    sessions = grouped.agg(start=("timestamp", "min"), items=("item_id", list)).reset_index()
    sessions = sessions[sessions["items"].map(len) >= min_length]
    if max_length is not None:
        sessions["items"] = sessions["items"].map(lambda seq: seq[-max_length:])
    sessions = sessions.sort_values(["user_id", "start"], kind="stable").reset_index(drop=True)
    sessions["session_key"] = sessions["user_id"].astype(str) + ":" + sessions["_part"].astype(str)
    return sessions[["session_key", "user_id", "start", "items"]]


def old_to_session_frame(sessions, split):
    return pd.DataFrame({"session_id": np.arange(len(sessions), dtype=np.int64),
                         "items": [list(seq[:-1]) for seq in sessions["items"]],
                         "label": [seq[-1] for seq in sessions["items"]], "split": split})


def old_map(items, sessions, drop_unknown):
    """The per-row loop of from_raw: (items lists, labels, kept rows) or the DataError message."""
    index = {raw: i + 1 for i, raw in enumerate(items["raw_id"].astype(str))}
    mapped_inputs, mapped_labels, keep = [], [], []
    for row, (seq, label) in enumerate(zip(sessions["items"], sessions["label"])):
        ids = [index.get(str(raw)) for raw in seq]
        label_id = index.get(str(label))
        if not drop_unknown and (label_id is None or None in ids):
            missing = str(label) if label_id is None else str(seq[ids.index(None)])
            return f"session {sessions['session_id'].iloc[row]!r} uses item {missing!r}"
        ids = [i for i in ids if i is not None]
        if not drop_unknown and not ids:
            return f"session {sessions['session_id'].iloc[row]!r} has fewer than 2 items"
        if label_id is None or not ids:
            continue
        mapped_inputs.append(ids)
        mapped_labels.append(label_id)
        keep.append(row)
    return mapped_inputs, mapped_labels, keep


def old_to_batch(inputs, max_len):
    padded = np.zeros((len(inputs), max_len), dtype=np.int64)
    lengths = np.zeros(len(inputs), dtype=np.int64)
    for row, seq in enumerate(inputs):
        window = np.asarray(seq, dtype=np.int64)[-max_len:]
        padded[row, : len(window)] = window
        lengths[row] = len(window)
    return padded, lengths


def old_training_rows(train, max_len, augment):
    inputs, targets = [], []
    for seq, label in zip(train["items"], train["label"]):
        full = list(seq) + [int(label)]
        for end in range(1 if augment else len(full) - 1, len(full)):
            inputs.append(full[max(0, end - max_len):end])
            targets.append(full[end])
    padded, lengths = old_to_batch(inputs, max_len)
    return padded, lengths, np.asarray(targets, dtype=np.int64)


# ---- random tiny logs ---------------------------------------------------------------------------------------

def random_log(seed: int) -> pd.DataFrame:
    """A log of mixed shapes: string or integer ids (object or pandas string columns), ties in time, repeats,
    several days per user, integer or float timestamps."""
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 200))
    users, items = rng.integers(0, 6, n), rng.integers(0, 30, n)
    stamps = rng.integers(0, 3 * 86_400, n) if seed % 2 else rng.integers(0, 30, n).astype(float) * 1200
    kind = seed % 3
    if kind == 0:
        return pd.DataFrame({"user_id": users.astype(str).astype(object),
                             "item_id": np.char.add("it", items.astype(str)).astype(object), "timestamp": stamps})
    if kind == 1:
        return pd.DataFrame({"user_id": users, "item_id": items * 7, "timestamp": stamps})   # "14" sorts before "7"
    return pd.DataFrame({"user_id": pd.Series(users.astype(str)), "item_id": pd.Series(items.astype(str)),
                         "timestamp": stamps})


def outcome(fn):
    try:
        return fn()
    except DataError as error:
        return str(error)


@pytest.mark.parametrize("seed", range(6))
def test_sessionize_and_session_frames_equal_the_per_row_code(seed):
    log = random_log(seed)
    for by in ("day", "gap"):
        for dedupe in (False, True):
            for min_length in (1, 3):
                options = {"by": by, "gap_seconds": 1800, "min_length": min_length, "max_length": 4, "dedupe": dedupe}
                old, new = old_sessionize(log, **options), sessionize(log, **options)
                pd.testing.assert_frame_equal(new, old)
                assert [[type(v) for v in s] for s in new["items"]] == [[type(v) for v in s] for s in old["items"]]
                split = random_split(len(old), seed=seed)
                pd.testing.assert_frame_equal(to_session_frame(new, split), old_to_session_frame(old, split))


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("drop_unknown", [False, True])
@pytest.mark.parametrize("catalogue", ["all", "half"])
def test_from_raw_equals_the_per_row_mapping(seed, drop_unknown, catalogue):
    log = random_log(seed)
    sessions = sessionize(log, by="gap", min_length=1 + seed % 2, max_length=5, dedupe=True)
    frame = to_session_frame(sessions, np.resize(np.array(["train", "valid", "test"], dtype=object), len(sessions)))
    ids = pd.unique(log["item_id"])
    items = pd.DataFrame({"raw_id": ids if catalogue == "all" else ids[: max(1, len(ids) // 2)], "title": "t"})
    expected = old_map(items, frame, drop_unknown)
    got = outcome(lambda: data.from_raw("d", "s", items, frame, file="f.csv", drop_unknown=drop_unknown))
    if isinstance(expected, str):
        assert isinstance(got, str) and expected in got, (expected, got)
        return
    inputs, labels, keep = expected
    if not keep:
        assert isinstance(got, str) and "no sessions left" in got
        return
    assert got.sessions["items"].tolist() == inputs
    assert got.sessions["label"].tolist() == labels and got.sessions["label"].dtype == np.int64
    assert got.sessions["session_id"].tolist() == frame["session_id"].iloc[keep].tolist()
    assert got.sessions["split"].tolist() == frame["split"].iloc[keep].tolist()


@pytest.mark.parametrize("max_len", [1, 2, 5, 50])
def test_batches_and_training_rows_equal_the_per_row_code(max_len):
    dataset = make_dataset(n_sessions=80, n_items=12)
    sequences = list(dataset.sessions["items"]) + [[3], [1, 2, 3, 4, 5, 6, 7, 8]]
    padded, lengths = old_to_batch(sequences, max_len)
    batch = data.to_batch(np.arange(len(sequences)), sequences, np.ones(len(sequences)), max_len)
    assert np.array_equal(batch.inputs, padded) and np.array_equal(batch.lengths, lengths)
    assert batch.inputs.dtype == batch.lengths.dtype == np.int64
    train = dataset.sessions[dataset.sessions["split"] == "train"]
    for augment in (True, False):
        expected = old_training_rows(train, max_len, augment)
        got = data.prefix_instances(train["items"], train["label"].to_numpy(), max_len, augment)
        for a, b in zip(got, expected):
            assert np.array_equal(a, b) and a.dtype == b.dtype
        rows = training_instances(dataset, max_len, augment)
        assert np.array_equal(rows.inputs, expected[0]) and np.array_equal(rows.targets, expected[2])


def test_a_saved_dataset_loads_back_as_lists_of_ints(tmp_path):
    dataset = make_dataset(n_sessions=50)
    loaded = data.load_dataset_dir(data.save_dataset(dataset, tmp_path / "tiny"))
    expected = pd.read_parquet(tmp_path / "tiny" / "sessions.parquet")
    expected["items"] = expected["items"].map(lambda a: np.asarray(a, dtype=np.int64).tolist())   # the old reader
    pd.testing.assert_frame_equal(loaded.sessions, expected)
    assert all(type(v) is int for seq in loaded.sessions["items"] for v in seq)


@pytest.mark.parametrize("seed", range(4))
def test_items_in_order_equals_the_per_item_loop(seed):
    from core.data.sources.csv_source import items_in_order
    sessions = sessionize(random_log(seed), by="day", min_length=1, max_length=5)
    expected = list(dict.fromkeys(item for seq in sessions["items"] for item in seq))   # the replaced loop
    got = items_in_order(sessions)
    assert got == expected and [type(v) for v in got] == [type(v) for v in expected]


def test_a_well_formed_csv_is_checked_without_a_python_row_loop(tmp_path, monkeypatch):
    from core.data.sources import csv_source
    good, short = tmp_path / "good.csv", tmp_path / "short.csv"
    good.write_text('session_id,item_id,timestamp\ns1,"a,b",1\n\ns1,c,2\n')
    short.write_text("session_id,item_id,timestamp\ns1,a,1\ns1,b\n")

    def no_loop(*args, **kwargs):
        raise AssertionError("csv.reader was used")
    monkeypatch.setattr(csv_source.csv, "reader", no_loop)
    csv_source.check_field_counts(good, ",", "utf-8", csv_source.csv.QUOTE_MINIMAL)
    monkeypatch.undo()
    with pytest.raises(DataError, match=r"short\.csv, line 3.*2 fields, but the header line has 3"):
        csv_source.check_field_counts(short, ",", "utf-8", csv_source.csv.QUOTE_MINIMAL)
