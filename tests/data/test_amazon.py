"""amazon-games: raw Amazon Video Games reviews (2014/2018, JSON or dict-literal lines, .gz) -> user-day sessions."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from core.data.errors import DataError
from core.data.sources import build

DAY = 86_400
DAY0 = 1_341_792_000  # 2012-07-09T00:00:00Z; Amazon's unixReviewTime is the review's day at midnight UTC


def review_2014(user: str, asin: str, time: int) -> dict:
    return {"reviewerID": user, "asin": asin, "reviewerName": "Gamer", "helpful": [8, 12], "reviewText": "Fun.",
            "overall": 4.0, "summary": "ok", "unixReviewTime": time, "reviewTime": "07 9, 2012"}


def review_2018(user: str, asin: str, time: int) -> dict:
    return {"overall": 5.0, "verified": True, "reviewTime": "10 17, 2015", "reviewerID": user, "asin": asin,
            "style": {"Format:": " Video Game"}, "reviewerName": "Ambrosia075", "reviewText": "Great", "summary": "A",
            "unixReviewTime": time, "vote": "2"}


def meta_2014(asin: str, title: str | None) -> dict:
    record = {"asin": asin, "price": 37.98, "imUrl": "http://ecx.images-amazon.com/x.jpg",
              "related": {"also_bought": ["B00000JRSB"]}, "salesRank": {"Video Games": 28655},
              "categories": [["Video Games", "Xbox 360", "Games"]]}
    if title is not None:
        record["title"] = title
    return record


def meta_2018(asin: str, title: str) -> dict:
    return {"category": ["Video Games", "PC", "Games"], "tech1": "", "description": ["A game"], "fit": "",
            "title": title, "also_buy": [], "brand": "Sega", "feature": [], "rank": [], "also_view": [],
            "main_cat": "Video Games", "similar_item": "", "date": "", "price": "$9.99", "asin": asin, "imageURL": []}


def write_lines(path: Path, lines: list[str]) -> Path:
    text = "".join(line + "\n" for line in lines)
    if path.suffix == ".gz":
        with gzip.open(path, "wt", encoding="utf-8") as handle:
            handle.write(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


def day_reviews(user: str, asins: list[str], day: int, make=review_2018) -> list[dict]:
    return [make(user, asin, DAY0 + day * DAY) for asin in asins]


def raw_sessions(dataset) -> list[list[str]]:
    raw = list(dataset.items["raw_id"])
    return [[raw[i - 1] for i in seq] + [raw[label - 1]]
            for seq, label in zip(dataset.sessions["items"], dataset.sessions["label"])]


def test_2014_layout_gzip_with_dict_literal_metadata(tmp_path: Path) -> None:
    reviews = (day_reviews("A2HD75EMZR8QLN", ["B05", "B03", "B01", "B03", "B04", "B02"], 0, review_2014)
               + day_reviews("A2HD75EMZR8QLN", ["B06", "B07", "B08", "B09"], 1, review_2014)  # 4 < 5: dropped
               + day_reviews("A3UNLN4RZCOBN", ["B10", "B11", "B12", "B13", "B14"], 1, review_2014))
    write_lines(tmp_path / "reviews_Video_Games_5.json.gz", [json.dumps(r) for r in reviews])
    meta = [meta_2014("B0%d" % k, f"Game {k}") for k in range(1, 6)] + [meta_2014("B10", None)]
    meta += [meta_2014("B11", "Zelda: Link's Awakening"), meta_2014("B99", "never reviewed")]
    lines = [repr(m) for m in meta] + ["{'asin': 'B98', 'title': broken"]  # unparseable, but not a session item
    write_lines(tmp_path / "meta_Video_Games.json.gz", lines)  # Python dict literals, as in 2014
    dataset = build("amazon-games", tmp_path)
    # same unixReviewTime all day: ordered by ASIN, the repeat of B03 removed
    assert raw_sessions(dataset) == [["B01", "B02", "B03", "B04", "B05"], ["B10", "B11", "B12", "B13", "B14"]]
    titles = dict(zip(dataset.items["raw_id"], dataset.items["title"]))
    assert titles["B02"] == "Game 2" and titles["B11"] == "Zelda: Link's Awakening"
    assert titles["B10"] == "B10" and titles["B12"] == "B12"  # no title / no metadata line -> the ASIN
    assert "B99" not in titles and "B06" not in titles
    assert dataset.meta["max_len"] == 20 and dataset.meta["untitled_items"] == 4


def test_2018_layout_plain_json_day_boundaries_and_max_length(tmp_path: Path) -> None:
    user = "A1HP7NVNPFMA4N"
    reviews = [review_2018(user, f"C{k}", DAY0 + DAY - 1) for k in range(5)]  # last second of day 0
    reviews += [review_2018(user, f"D{k}", DAY0 + DAY) for k in range(7)]  # first second of day 1
    write_lines(tmp_path / "Video_Games_5.json", [json.dumps(r) for r in reviews])
    meta = [meta_2018("C1", "Sonic &amp; Knuckles"), meta_2018("C1", "Sonic &amp; Knuckles"), meta_2018("D6", "Last")]
    write_lines(tmp_path / "meta_Video_Games.json", [json.dumps(m) for m in meta])  # identical duplicate: accepted
    dataset = build("amazon-games", tmp_path, max_length=6)
    assert raw_sessions(dataset) == [[f"C{k}" for k in range(5)], [f"D{k}" for k in range(1, 7)]]
    titles = dict(zip(dataset.items["raw_id"], dataset.items["title"]))
    assert titles["C1"] == "Sonic &amp; Knuckles" and titles["D6"] == "Last"
    assert dataset.meta["max_len"] == 6


def test_named_files_dict_literal_reviews_and_split(tmp_path: Path) -> None:
    reviews = [r for u in range(10) for r in day_reviews(f"U{u}", [f"I{u}{k}" for k in range(5)], u)]
    write_lines(tmp_path / "games.txt", [repr(r) for r in reviews])
    write_lines(tmp_path / "titles.jsonl", [json.dumps({"asin": "I00", "title": "First"})])
    first = build("amazon-games", tmp_path, reviews="games.txt", metadata="titles.jsonl", seed=1, min_length=5)
    counts = first.sessions["split"].value_counts()
    assert (counts["train"], counts["valid"], counts["test"]) == (6, 2, 2)
    again = build("amazon-games", tmp_path, reviews="games.txt", metadata="titles.jsonl", seed=1)
    assert list(again.sessions["split"]) == list(first.sessions["split"])
    assert first.items.set_index("raw_id").loc["I00", "title"] == "First"


def error(tmp_path: Path, **options) -> str:
    with pytest.raises(DataError) as info:
        build("amazon-games", tmp_path, **options)
    return str(info.value)


def setup_files(tmp_path: Path, reviews: list[str] | None = None, meta: list[str] | None = None) -> None:
    if reviews is None:
        reviews = [json.dumps(r) for r in day_reviews("U", ["A1", "A2", "A3", "A4", "A5"], 0)]
    write_lines(tmp_path / "Video_Games.json", reviews)
    write_lines(tmp_path / "meta_Video_Games.json", meta or [json.dumps(meta_2018("A1", "One"))])


def test_missing_files(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("x")
    message = error(tmp_path)
    assert str(tmp_path) in message and "*Video_Games*.json*" in message and "notes.txt" in message
    setup_files(tmp_path)
    (tmp_path / "meta_Video_Games.json").unlink()
    message = error(tmp_path)
    assert "metadata" in message and "meta_*Video_Games*.json*" in message
    message = error(tmp_path, reviews="nope.json.gz")
    assert "nope.json.gz" in message and "not found" in message


def test_malformed_line_names_the_line(tmp_path: Path) -> None:
    good = [json.dumps(r) for r in day_reviews("U", ["A1", "A2", "A3", "A4", "A5"], 0)]
    setup_files(tmp_path, good[:2] + ['{"reviewerID": "U", "asin": "A9", '] + good[2:])
    message = error(tmp_path)
    assert "Video_Games.json, line 3" in message and "malformed" in message and "fix:" in message


def test_dict_literal_is_never_evaluated(tmp_path: Path) -> None:
    setup_files(tmp_path, ["__import__('os').system('echo hacked')"])
    assert "line 1" in error(tmp_path)


def test_missing_field_lists_the_fields_present(tmp_path: Path) -> None:
    lines = [json.dumps(r) for r in day_reviews("U", ["A1", "A2", "A3", "A4", "A5"], 0)]
    lines[1] = json.dumps({"reviewerID": "U", "unixReviewTime": DAY0, "overall": 5.0})
    setup_files(tmp_path, lines)
    message = error(tmp_path)
    assert "line 2, field 'asin'" in message and "'reviewerID', 'unixReviewTime', 'overall'" in message


def test_bad_review_time(tmp_path: Path) -> None:
    lines = [json.dumps(r) for r in day_reviews("U", ["A1", "A2", "A3", "A4", "A5"], 0)]
    lines[4] = json.dumps(review_2018("U", "A5", "07 9, 2012"))  # type: ignore[arg-type]
    setup_files(tmp_path, lines)
    message = error(tmp_path)
    assert "Video_Games.json, line 5, field 'unixReviewTime'" in message and "'07 9, 2012'" in message


def test_conflicting_duplicate_metadata(tmp_path: Path) -> None:
    meta = [json.dumps(meta_2018("A2", "Two")), json.dumps(meta_2018("ZZ", "x")), json.dumps(meta_2018("A2", "2"))]
    setup_files(tmp_path, meta=meta)
    message = error(tmp_path)
    assert "meta_Video_Games.json, line 3, field 'asin'" in message and "line 1" in message and "'A2'" in message


def test_broken_gzip(tmp_path: Path) -> None:
    (tmp_path / "Video_Games_5.json.gz").write_bytes(b"not gzip at all")
    write_lines(tmp_path / "meta_Video_Games.json", [json.dumps(meta_2018("A1", "One"))])
    message = error(tmp_path)
    assert "Video_Games_5.json.gz" in message and "gzip" in message


def test_nothing_left_after_filtering(tmp_path: Path) -> None:
    setup_files(tmp_path, [json.dumps(r) for r in day_reviews("U", ["A1", "A2", "A3", "A3", "A4"], 0)])
    message = error(tmp_path)
    assert "Video_Games.json" in message and "no sessions left" in message
