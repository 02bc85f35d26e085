"""csv: your own interactions file (session_id or user_id, item_id, timestamp) + optional items file."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.data.errors import DataError
from core.data.sources import build

T0 = 1_700_006_400  # 2023-11-15T00:00:00Z


def write(tmp_path: Path, name: str, lines: list[str]) -> Path:
    path = tmp_path / name
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def raw_sessions(dataset) -> list[list[str]]:
    raw = list(dataset.items["raw_id"])
    return [[raw[i - 1] for i in seq] + [raw[label - 1]]
            for seq, label in zip(dataset.sessions["items"], dataset.sessions["label"])]


def error(tmp_path: Path, **options) -> str:
    with pytest.raises(DataError) as info:
        build("csv", tmp_path, **options)
    return str(info.value)


def test_column_sessions_ordered_deduped_with_titles(tmp_path: Path) -> None:
    write(tmp_path, "interactions.csv", [
        "session_id,item_id,timestamp,extra",
        f"s1,b,{T0 + 20},x",
        f"s1,a,{T0 + 10},x",
        f"s1,c,{T0 + 10},x",  # tie with a: ordered by item id
        f"s1,a,{T0 + 30},x",  # repeat: first kept
        "s2,d,2023-11-15T10:00:00Z,x",  # ISO-8601
        "s2,e,2023-11-15T10:00:01+00:00,x",
        "s3,f,2023-11-15T11:00:00,x",  # dropped by min_length=3 below, so f has no item id
        "s3,g,2023-11-15T11:00:05,x",
        "s4,h,5,x", "s4,d,6,x", "s4,e,7,x",
    ])
    write(tmp_path, "items.csv", ["item_id,title", "a,Alpha", "b,Beta", "c,\"Gamma, the third\"", "d,Delta",
                                  "e,", "f,Foxtrot", "g,Golf", "h,Hotel"])
    dataset = build("csv", tmp_path)  # items.csv is picked up from the folder
    assert raw_sessions(dataset) == [["a", "c", "b"], ["d", "e"], ["f", "g"], ["h", "d", "e"]]
    titles = dict(zip(dataset.items["raw_id"], dataset.items["title"]))
    assert titles["c"] == "Gamma, the third" and titles["e"] == "e"  # an empty title falls back to the id
    assert dataset.meta["max_len"] == 50 and dataset.name == dataset.source == "csv"
    three = build("csv", tmp_path, min_length=3, dataset_name="shop")
    assert raw_sessions(three) == [["a", "c", "b"], ["h", "d", "e"]] and three.name == "shop"
    assert "f" not in set(three.items["raw_id"])


def test_without_items_file_titles_are_ids_and_max_length(tmp_path: Path) -> None:
    lines = ["session_id,item_id,timestamp"] + [f"7,{item},{T0 + k}" for k, item in enumerate("pqrstu")]
    write(tmp_path, "log.csv", lines)
    dataset = build("csv", tmp_path, interactions="log.csv", max_length=4)
    assert raw_sessions(dataset) == [["r", "s", "t", "u"]]
    assert list(dataset.items["title"]) == ["r", "s", "t", "u"] and dataset.meta["max_len"] == 4


def test_day_sessions_use_utc_days(tmp_path: Path) -> None:
    write(tmp_path, "interactions.csv", [
        "user_id,item_id,timestamp",
        "u1,a,2023-11-15T23:59:59Z", "u1,b,2023-11-15T22:00:00-01:00",  # 23:00 UTC, same day
        "u1,c,2023-11-15T23:30:00-01:00",  # 00:30 UTC the next day
        f"u1,d,{T0 + 86_400 + 3600}",  # 01:00 UTC the next day
        "u2,a,2023-11-15T01:00:00Z", "u2,a,2023-11-15T02:00:00Z",  # one distinct item: dropped
    ])
    dataset = build("csv", tmp_path, session_by="day")
    assert raw_sessions(dataset) == [["b", "a"], ["c", "d"]]


def test_gap_sessions(tmp_path: Path) -> None:
    write(tmp_path, "interactions.csv", [
        "user_id,item_id,timestamp",
        f"u1,a,{T0}", f"u1,b,{T0 + 1800}", f"u1,c,{T0 + 3601}", f"u1,d,{T0 + 3700}",
        f"u2,x,{T0}", f"u2,y,{T0 + 60}",
    ])
    assert raw_sessions(build("csv", tmp_path, session_by="gap")) == [["a", "b"], ["c", "d"], ["x", "y"]]
    assert raw_sessions(build("csv", tmp_path, session_by="gap", gap_seconds=10_000)) == [["a", "b", "c", "d"],
                                                                                         ["x", "y"]]


def test_split_6_2_2_seeded(tmp_path: Path) -> None:
    lines = ["session_id,item_id,timestamp"] + [f"s{s},i{s}{k},{T0 + k}" for s in range(10) for k in range(3)]
    write(tmp_path, "interactions.csv", lines)
    first = build("csv", tmp_path, seed=5)
    counts = first.sessions["split"].value_counts()
    assert (counts["train"], counts["valid"], counts["test"]) == (6, 2, 2)
    assert list(build("csv", tmp_path, seed=5).sessions["split"]) == list(first.sessions["split"])


def test_missing_file(tmp_path: Path) -> None:
    message = error(tmp_path)
    assert "interactions.csv" in message and "not found" in message and "fix:" in message
    write(tmp_path, "interactions.csv", ["session_id,item_id,timestamp", f"s,a,{T0}", f"s,b,{T0}"])
    assert "nope.csv" in error(tmp_path, items="nope.csv")


def test_missing_column_names_columns_and_mode(tmp_path: Path) -> None:
    write(tmp_path, "interactions.csv", ["user_id,item_id,timestamp", f"u,a,{T0}"])
    message = error(tmp_path)
    assert "interactions.csv, line 1, field 'session_id'" in message
    assert "'user_id', 'item_id', 'timestamp'" in message and "session_by=day or gap" in message


def test_bad_timestamp_names_the_line(tmp_path: Path) -> None:
    write(tmp_path, "interactions.csv", ["session_id,item_id,timestamp", f"s,a,{T0}", "s,b,last tuesday"])
    message = error(tmp_path)
    assert "interactions.csv, line 3, field 'timestamp'" in message and "'last tuesday'" in message


def test_millisecond_timestamps_are_refused(tmp_path: Path) -> None:
    write(tmp_path, "interactions.csv", ["session_id,item_id,timestamp", f"s,a,{T0 * 1000}", f"s,b,{T0 * 1000}"])
    message = error(tmp_path)
    assert "line 2, field 'timestamp'" in message and "milliseconds" in message


def test_empty_value_and_wrong_field_count(tmp_path: Path) -> None:
    write(tmp_path, "interactions.csv", ["session_id,item_id,timestamp", f"s,a,{T0}", f"s,,{T0}"])
    assert "line 3, field 'item_id'" in error(tmp_path)
    write(tmp_path, "interactions.csv", ["session_id,item_id,timestamp", f"s,a,{T0}", f"s,b,{T0},oops"])
    message = error(tmp_path)
    assert "interactions.csv, line 3" in message and "fields" in message


def test_duplicate_item_in_items_file(tmp_path: Path) -> None:
    write(tmp_path, "interactions.csv", ["session_id,item_id,timestamp", f"s,a,{T0}", f"s,b,{T0}"])
    write(tmp_path, "items.csv", ["item_id,title", "a,A", "b,B", "a,A again"])
    message = error(tmp_path)
    assert "items.csv, line 4, field 'item_id'" in message and "'a'" in message and "line 2" in message


def test_items_file_row_for_an_item_never_used(tmp_path: Path) -> None:
    write(tmp_path, "interactions.csv", ["session_id,item_id,timestamp", f"s,a,{T0}", f"s,b,{T0}"])
    write(tmp_path, "items.csv", ["item_id,title", "a,A", "zz,Unused", "b,B"])
    message = error(tmp_path)
    assert "items.csv, line 3, field 'item_id'" in message and "'zz'" in message and "never occurs" in message


def test_interacted_item_missing_from_items_file(tmp_path: Path) -> None:
    write(tmp_path, "interactions.csv", ["session_id,item_id,timestamp", f"s,a,{T0}", f"s,b,{T0}"])
    write(tmp_path, "items.csv", ["item_id,title", "a,A"])
    message = error(tmp_path)
    assert "interactions.csv, line 3, field 'item_id'" in message and "'b'" in message


def test_items_file_missing_title_column(tmp_path: Path) -> None:
    write(tmp_path, "interactions.csv", ["session_id,item_id,timestamp", f"s,a,{T0}", f"s,b,{T0}"])
    write(tmp_path, "items.csv", ["item_id,name", "a,A", "b,B"])
    message = error(tmp_path)
    assert "items.csv, line 1, field 'title'" in message and "'item_id', 'name'" in message


def test_short_session_in_column_mode(tmp_path: Path) -> None:
    write(tmp_path, "interactions.csv", ["session_id,item_id,timestamp", f"s1,a,{T0}", f"s1,b,{T0 + 1}",
                                         f"s2,c,{T0}", f"s2,c,{T0 + 5}"])
    message = error(tmp_path)
    assert "interactions.csv, line 4, field 'session_id'" in message and "'s2'" in message


def test_nothing_left_after_filtering(tmp_path: Path) -> None:
    write(tmp_path, "interactions.csv", ["user_id,item_id,timestamp", f"u,a,{T0}", f"u,b,{T0 + 86_400}"])
    message = error(tmp_path, session_by="day")
    assert "interactions.csv" in message and "no sessions left" in message and "min_length=2" in message


def test_bad_options(tmp_path: Path) -> None:
    write(tmp_path, "interactions.csv", ["session_id,item_id,timestamp", f"s,a,{T0}", f"s,b,{T0}"])
    assert "field 'session_by'" in error(tmp_path, session_by="week")
    assert "field 'min_length'" in error(tmp_path, min_length=1)
    assert "field 'seed'" in error(tmp_path, seed="x")
    assert "field 'gap_seconds'" in error(tmp_path, session_by="gap", gap_seconds="soon")
    assert "field 'dedupe'" in error(tmp_path, dedupe="maybe")


def test_repeats_kept_without_dedupe(tmp_path: Path) -> None:
    write(tmp_path, "interactions.csv", ["session_id,item_id,timestamp", f"s,a,{T0}", f"s,b,{T0 + 1}", f"s,a,{T0 + 2}"])
    assert raw_sessions(build("csv", tmp_path, dedupe="false")) == [["a", "b", "a"]]
    assert raw_sessions(build("csv", tmp_path)) == [["a", "b"]]


def test_a_row_with_one_field_more_than_the_header_is_refused(tmp_path: Path) -> None:
    # pandas would read the extra field of the first row as an index and shift every column silently
    write(tmp_path, "interactions.csv", ["session_id,item_id,timestamp", f"s,a,{T0},extra", f"s,b,{T0 + 1},extra",
                                         f"t,a,{T0},extra", f"t,b,{T0 + 1},extra"])
    message = error(tmp_path)
    assert message.startswith(f"{tmp_path / 'interactions.csv'}, line 2: 4 fields, but the header line has 3")
    assert "fix:" in message and "\n" not in message


def test_a_row_with_fewer_fields_than_the_header_is_refused(tmp_path: Path) -> None:
    write(tmp_path, "interactions.csv", ["session_id,item_id,timestamp", f"s,a,{T0}", f"s,b,{T0 + 1}"])
    write(tmp_path, "items.csv", ["item_id,title", "a,Alpha", "b"])        # would become an untitled item
    message = error(tmp_path)
    assert message.startswith(f"{tmp_path / 'items.csv'}, line 3: 1 field, but the header line has 2")
    write(tmp_path, "items.csv", ["item_id,title", "a,\"Alpha, the first\"", "", "b,\"Beta\nsecond line\""])
    write(tmp_path, "interactions.csv", ["session_id,item_id,timestamp", f"s,a,{T0}", f"s,b,{T0 + 1}", "s,a"])
    message = error(tmp_path)                 # quoted commas and line breaks and blank lines count right
    assert message.startswith(f"{tmp_path / 'interactions.csv'}, line 4: 2 fields, but the header line has 3")
