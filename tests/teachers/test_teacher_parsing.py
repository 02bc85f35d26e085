import pytest

from core.teachers.parsing import parse_reply

CANDS = list(range(10, 60))


@pytest.mark.parametrize("text, expected", [
    ('{"ranking": [12, 11, 10], "rationale": "because"}', (12, 11, 10)),
    ('```json\n{"ranking": [12, 11], "rationale": "r"}\n```', (12, 11)),
    ('Sure! Here it is:\n{"ranking": ["<ID_12>", "ID_13", "14"], "rationale": "r"} Hope it helps', (12, 13, 14)),
    ("[<ID_12>, <ID_40>, <ID_33>]", (12, 40, 33)),
    ("ID_12, ID_13", (12, 13)),
    ("[15, 16, 17]", (15, 16, 17)),
    ("15 16 17", (15, 16, 17)),
    ('```\n[20, 21]\n```', (20, 21)),
])
def test_formats(text, expected):
    assert parse_reply(text, CANDS).ranking == expected


def test_only_candidates_no_duplicates_order_kept():
    parsed = parse_reply('{"ranking": [12, 999, 12, 5, 13, 11, 13], "rationale": "x"}', CANDS)
    assert parsed.ranking == (12, 13, 11)
    assert parsed.raw_ids == (12, 999, 12, 5, 13, 11, 13)
    assert parsed.n_valid == 3 and parsed.rationale == "x"


def test_cut_to_n_out_but_n_valid_counts_all():
    parsed = parse_reply(str(CANDS), CANDS, n_out=25)
    assert len(parsed.ranking) == 25 and parsed.n_valid == 50


@pytest.mark.parametrize("text", ["", "   ", "I cannot help with that.", '{"ranking": [], "rationale": "none"}',
                                  '{"ranking": [1, 2, 3]}', None])
def test_no_usable_ranking(text):
    parsed = parse_reply(text, CANDS)
    assert not parsed.usable and parsed.ranking == ()


def test_truncated_json_reads_ranking_part_only():
    parsed = parse_reply('{"ranking": [12, 13, 14], "rationale": "films from 1995 and 20', CANDS)
    assert parsed.ranking == (12, 13, 14) and parsed.rationale.startswith("films from")
    cut = parse_reply('{"ranking": [12, 13, 14', CANDS)
    assert cut.ranking == (12, 13, 14)


def test_dict_items_and_other_keys():
    assert parse_reply('{"recommendations": [{"id": 20}, {"id": "ID_21"}]}', CANDS).ranking == (20, 21)
