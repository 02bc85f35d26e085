import numpy as np
import pandas as pd
import pytest

from core.data.dataset import from_raw, load_dataset_dir, save_dataset
from core.data.errors import DataError
from core.data.sessionize import positional_split, random_split, sessionize


def items(*ids):
    return pd.DataFrame({"raw_id": list(ids), "title": [f"T{i}" for i in ids]})


def sessions(rows):
    return pd.DataFrame({"session_id": range(len(rows)), "items": [r[0] for r in rows], "label": [r[1] for r in rows],
                         "split": [r[2] for r in rows]})


def test_from_raw_maps_ids_from_one_and_keeps_zero_for_padding():
    ds = from_raw("d", "t", items("a", "b", "c"), sessions([(["a", "b"], "c", "train"), (["c"], "a", "test")]),
                  file="x.csv")
    assert ds.sessions["items"].tolist() == [[1, 2], [3]]
    assert ds.sessions["label"].tolist() == [3, 1]
    assert ds.titles().tolist() == ["<pad>", "Ta", "Tb", "Tc"]
    batch = ds.split("train", max_len=3)
    assert batch.inputs.tolist() == [[1, 2, 0]] and batch.lengths.tolist() == [2]
    stats = ds.stats()
    assert (stats.n_sessions, stats.n_items, stats.n_interactions, stats.n_train, stats.n_test) == (2, 3, 5, 1, 1)


def test_unknown_items_are_an_error_or_dropped():
    raw = sessions([(["a", "zz"], "b", "train"), (["zz"], "a", "train"), (["a"], "zz", "valid")])
    with pytest.raises(DataError, match=r"x\.csv.*item 'zz'.*not in the items table"):
        from_raw("d", "t", items("a", "b"), raw, file="x.csv")
    ds = from_raw("d", "t", items("a", "b"), raw, file="x.csv", drop_unknown=True)
    assert ds.sessions["items"].tolist() == [[1]] and ds.sessions["label"].tolist() == [2]


@pytest.mark.parametrize("bad, message", [
    (dict(items=items("a", "a")), "duplicate item id 'a'"),
    (dict(sessions=sessions([(["a"], "b", "train"), (["a"], "b", "bogus")])), "unknown split 'bogus'"),
    (dict(sessions=sessions([([], "b", "train")])), "fewer than 2 items"),
    (dict(sessions=sessions([])), "no sessions left"),
])
def test_bad_input_names_the_file_and_problem(bad, message):
    arguments = dict(items=items("a", "b"), sessions=sessions([(["a"], "b", "train")]))
    arguments.update(bad)
    with pytest.raises(DataError, match=message) as error:
        from_raw("d", "t", arguments["items"], arguments["sessions"], file="in.csv")
    assert "in.csv" in str(error.value)


def test_save_is_atomic_and_round_trips(tmp_path, tiny):
    target = tmp_path / "tiny"
    save_dataset(tiny, target)
    loaded = load_dataset_dir(target)
    assert loaded.stats() == tiny.stats()
    assert loaded.sessions["items"].tolist() == tiny.sessions["items"].tolist()
    assert [p.name for p in tmp_path.iterdir()] == ["tiny"]      # no staging left behind

    broken = type(tiny)(tiny.name, tiny.source, tiny.items, tiny.sessions.assign(items=object()), tiny.meta)
    with pytest.raises(ValueError):      # pyarrow's ArrowInvalid: items that are not id lists
        save_dataset(broken, target)
    assert load_dataset_dir(target).stats() == tiny.stats()      # the saved dataset is untouched
    assert [p.name for p in tmp_path.iterdir()] == ["tiny"]


def test_sessionize_by_day_orders_ties_by_item_and_filters():
    day = 86_400
    log = pd.DataFrame({
        "user_id": [1, 1, 1, 1, 1, 1, 2, 2],
        "item_id": [5, 3, 4, 9, 8, 7, 1, 2],
        "timestamp": [10, 10, 20, 30, 40, day + 1, 5, 6],
    })
    out = sessionize(log, by="day", min_length=2, max_length=4)
    # user 1, day 0: (3, 5) tie at t=10 -> 3 first; [3, 5, 4, 9, 8] keeps its last 4
    # user 1, day 1 has one item -> dropped
    assert out["items"].tolist() == [[5, 4, 9, 8], [1, 2]]
    gaps = sessionize(log, by="gap", gap_seconds=5, min_length=2, max_length=None)
    assert gaps["items"].tolist() == [[3, 5], [1, 2]]      # 10 s gaps split user 1's day; singletons dropped


def test_splits():
    labels = random_split(100, seed=1)
    assert (labels == "train").sum() == 60 and (labels == "valid").sum() == 20 and (labels == "test").sum() == 20
    assert np.array_equal(labels, random_split(100, seed=1))
    assert not np.array_equal(labels, random_split(100, seed=2))
    assert positional_split(10).tolist() == ["train"] * 6 + ["valid"] * 2 + ["test"] * 2


def test_a_dataset_with_an_empty_split_is_not_saved(tmp_path):
    two = from_raw("two", "t", items("a", "b", "c"), sessions([(["a", "b"], "c", "train"), (["c"], "a", "test")]),
                   file="x.csv", meta={"files": ["in/x.csv"]})
    with pytest.raises(DataError) as error:
        save_dataset(two, tmp_path / "two")
    assert str(error.value) == ("in/x.csv: dataset 'two' has no valid sessions (its 2 session(s) split into train 1, "
                                "valid 0, test 1) (fix: add sessions (the 6:2:2 split needs at least 3, better "
                                "hundreds) or lower min_length)")
    assert not (tmp_path / "two").exists() and list(tmp_path.iterdir()) == []


def test_save_never_replaces_a_folder_it_did_not_write(tmp_path, tiny):
    foreign = tmp_path / "tiny"
    foreign.mkdir()
    (foreign / "meta.json").write_text("[1, 2]")           # a meta.json, but not alkd's
    with pytest.raises(DataError, match="not an alkd dataset"):
        save_dataset(tiny, foreign)
    assert (foreign / "meta.json").read_text() == "[1, 2]" and [p.name for p in tmp_path.iterdir()] == ["tiny"]
    (tmp_path / "elsewhere").mkdir()
    link = tmp_path / "link"
    link.symlink_to(tmp_path / "elsewhere")
    with pytest.raises(DataError, match="not an alkd dataset"):
        save_dataset(tiny, link)
    assert link.is_symlink() and list((tmp_path / "elsewhere").iterdir()) == []
