"""Replay of recorded rankings: the authors' format, our JSONL exports, and the real ALKDRec files."""

from __future__ import annotations

import hashlib
import warnings

import numpy as np
import pandas as pd
import pytest
from shared_data import alkdrec_or_skip
from teacher_helpers import ALKDREC_DIR, make_request

from core.teachers import Budget, PromptOptions, get_provider
from core.teachers.export import export_calls, export_responses
from core.teachers.providers.replay import ReplayProvider
from core.teachers.types import RankRequest


def _request(session_id: int, label: int | None = None, items=(1, 2)) -> RankRequest:
    return RankRequest(session_id=session_id, session_items=list(items), session_titles=["x"] * len(items),
                       candidates=[], candidate_titles=[], label=label)


def test_authors_format_maps_ids_and_keeps_raw(tmp_path):
    path = tmp_path / "X_LLM_Database.data"
    path.write_text("7\t[4, 9, 9, 0, 1]\t1\n8\t[]\t25\n9\t[3, 5]\t25\n")
    replay = ReplayProvider(path)
    assert replay.model == "replay:gpt-4-turbo-2024-04-09" and replay.price.free
    assert replay.available([7, 8, 10, 9]).tolist() == [True, True, False, True]
    out = replay.rank([_request(7, label=10), _request(8, label=3), _request(10), _request(9, label=1)])
    assert out[0].raw_ranking == (5, 10, 10, 1, 2) and out[0].hit_position(10) == 1
    assert out[0].ranking == (5, 10) and out[0].ok    # session items 1, 2 and the duplicate dropped
    assert out[1].status == "failed" and out[1].hit_position(3) == 25
    assert out[2].status == "unavailable" and "no recorded" in out[2].error
    assert out[3].hit_position(1) == 25 and out[3].usd == 0


def test_replay_budget_counts_only_recorded(tmp_path):
    path = tmp_path / "X_LLM_Database.data"
    path.write_text("".join(f"{i}\t[{i}, {i + 1}]\t25\n" for i in range(5)))
    budget = Budget(max_sessions=2)
    out = ReplayProvider(path).rank([_request(i, items=[100]) for i in (9, 0, 1, 2)], budget=budget)
    assert [r.status for r in out] == ["unavailable", "ok", "ok", "skipped"]


def test_jsonl_export_roundtrip(db, tmp_path):
    teacher = get_provider("simulated", hit_rate=0.5, seed=3)
    requests = [make_request(i, label=110 + (i % 7) * 10 + 5, options=PromptOptions(n_out=10)) for i in range(30)]
    responses = teacher.rank(requests, db=db)
    labels = {r.session_id: r.label for r in requests}
    assert export_calls(tmp_path / "calls.jsonl", db=db) == 30
    assert export_responses(tmp_path / "resp.jsonl", responses, labels) == 30
    for name in ("calls.jsonl", "resp.jsonl"):
        replay = ReplayProvider(tmp_path / name)
        assert replay.model == f"replay:{teacher.model}"
        replayed = replay.rank(requests)
        for original, again, request in zip(responses, replayed, requests):
            assert again.raw_ranking == original.raw_ranking
            assert again.hit_position(request.label) == original.hit_position(request.label)
            assert again.hit_position(request.label) == replay.records[request.session_id].hit_position


# ---- the real recorded GPT-4-turbo files -------------------------------------------------------------------

def _own_loader(prefix: str) -> pd.DataFrame:
    """session_id, items, label (ours = authors' + 1), after checking the files' SHA-256 (unpickling runs code)."""
    sums = {}
    for line in (ALKDREC_DIR / "SHA256SUMS").read_text().splitlines():
        digest, name = line.split()
        sums[name] = digest
    for name in (f"{prefix}/{prefix}.pkl", f"{prefix}/{prefix}_title.csv"):
        actual = hashlib.sha256((ALKDREC_DIR / name).read_bytes()).hexdigest()
        assert actual == sums[name], f"checksum mismatch for {name}: refusing to unpickle"
    titles = pd.read_csv(ALKDREC_DIR / prefix / f"{prefix}_title.csv", dtype={"itemID": str}, keep_default_na=False)
    index = {raw: i for i, raw in enumerate(titles["itemID"])}
    raw = pd.read_pickle(ALKDREC_DIR / prefix / f"{prefix}.pkl")
    rows = []
    for seq, label in zip(raw["session"], raw["label"]):
        kept = [index[str(i)] + 1 for i in seq if str(i) in index]
        if str(label) in index and kept:
            rows.append((len(rows), kept, index[str(label)] + 1))
    return pd.DataFrame(rows, columns=["session_id", "items", "label"])


def _sessions(prefix: str) -> pd.DataFrame:
    try:
        from core.data.sources import build
        frame = build({"ML": "alkdrec-ml", "Games": "alkdrec-games"}[prefix], ALKDREC_DIR).sessions
        return frame[["session_id", "items", "label"]]
    except Exception as error:  # the source may not exist yet (another module); use our own checked loader
        warnings.warn(f"core.data.sources.build unavailable ({type(error).__name__}); using the test's loader",
                      stacklevel=2)
        return _own_loader(prefix)


@pytest.mark.integration
@pytest.mark.parametrize("prefix, n_records, n_empty, hit_rate", [("ML", 4992, 1, 0.529),
                                                                  ("Games", 5359, 152, 0.533)])
def test_replay_reproduces_every_recorded_hit_position(prefix, n_records, n_empty, hit_rate):
    alkdrec_or_skip(f"{prefix}/{prefix}_LLM_Database.data")    # fails instead when ALKD_REQUIRE_SHARED=1
    sessions = _sessions(prefix).set_index("session_id")
    replay = ReplayProvider.from_alkdrec(ALKDREC_DIR, prefix)
    assert len(replay.records) == n_records
    ids = sorted(replay.records)
    assert replay.available(ids).all() and not replay.available([10**7])[0]
    requests = [RankRequest(session_id=sid, session_items=list(sessions.at[sid, "items"])[-10:],
                            session_titles=[""] * len(list(sessions.at[sid, "items"])[-10:]), candidates=[],
                            candidate_titles=[], label=int(sessions.at[sid, "label"])) for sid in ids]
    responses = replay.rank(requests)
    replayed = np.array([r.hit_position(q.label) for r, q in zip(responses, requests)])
    recorded = np.array([replay.records[sid].hit_position for sid in ids])
    mismatches = np.flatnonzero(replayed != recorded)
    assert mismatches.size == 0, f"{mismatches.size} hit positions differ, e.g. session {ids[mismatches[0]]}"
    assert sum(r.status == "failed" for r in responses) == n_empty
    assert np.mean(recorded < 25) == pytest.approx(hit_rate, abs=0.0006)


# ---- the authors' files at run time: pinned checksums, no fallback folder ------------------------------------------

def test_an_edited_recorded_file_is_refused_not_replayed(tmp_path):
    from core.data.errors import DataError
    (tmp_path / "ML").mkdir()
    (tmp_path / "ML" / "ML_LLM_Database.data").write_text("0\t[1, 2, 3]\t0\n")   # not the authors' bytes
    with pytest.raises(DataError) as error:
        ReplayProvider.from_alkdrec(tmp_path, "ML")
    message = str(error.value)
    assert message.startswith(f"{tmp_path / 'ML' / 'ML_LLM_Database.data'}: SHA-256 ") and "pinned" in message
    assert "fix: use the files of kk97111/ALKDRec at commit" in message and "\n" not in message
    with pytest.raises(DataError, match="file is missing"):
        ReplayProvider.from_alkdrec(tmp_path, "Games")


def test_one_edited_record_of_the_real_file_is_refused(tmp_path):
    source = ALKDREC_DIR / "ML" / "ML_LLM_Database.data"
    if not source.exists():
        pytest.skip(f"ALKDRec data not found under {ALKDREC_DIR}")
    from core.data.errors import DataError
    (tmp_path / "ML").mkdir()
    lines = source.read_text().splitlines(keepends=True)
    (tmp_path / "ML" / "ML_LLM_Database.data").write_text("".join(lines))
    assert len(ReplayProvider.from_alkdrec(tmp_path, "ML").records) == 4992       # the authors' bytes: accepted
    session, ranking, _ = lines[0].split("\t")
    lines[0] = "\t".join([session, ranking, "0\n"])                                # a forged hit
    (tmp_path / "ML" / "ML_LLM_Database.data").write_text("".join(lines))
    with pytest.raises(DataError, match="does not match the pinned"):
        ReplayProvider.from_alkdrec(tmp_path, "ML")


def _alkdrec_like(source_dir) -> "object":
    """The tiny dataset under the name alkdrec-ml, fetched (meta source_dir) from `source_dir`."""
    from tiny_data import make_dataset

    from core.data.dataset import SessionDataset
    tiny = make_dataset()
    meta = {**tiny.meta, "source_dir": str(source_dir)} if source_dir is not None else dict(tiny.meta)
    return SessionDataset("alkdrec-ml", "alkdrec-ml", tiny.items, tiny.sessions, meta)


def test_the_replay_run_reads_only_the_fetched_or_given_folder_and_checks_it(tmp_path):
    from core.data.errors import DataError
    from core.pipeline import RunConfig, make_provider, replay_source_dir
    config = RunConfig(dataset="alkdrec-ml", teacher="replay")
    for dataset, where in ((_alkdrec_like(tmp_path / "moved"), f"{tmp_path / 'moved'} holds no ML/ folder"),
                           (_alkdrec_like(None), "the dataset does not say where its files are")):
        with pytest.raises(DataError) as error:          # never a fallback to ../shared or anywhere else
            make_provider(config, dataset)
        assert str(error.value) == (
            f"the replay teacher reads the authors' recorded files of 'alkdrec-ml', and {where} (fix: fetch it again "
            "with `alkd data fetch alkdrec-ml --from DIR` (DIR holding ML/ and Games/ of the authors' datasets/), or "
            "give that folder as replay_path)")
    (tmp_path / "partial" / "ML").mkdir(parents=True)
    with pytest.raises(DataError, match="ML.pkl: file is missing"):
        replay_source_dir(_alkdrec_like(tmp_path / "partial"))
    if (ALKDREC_DIR / "ML").is_dir():          # the real files given explicitly as a folder
        import shutil
        shutil.copytree(ALKDREC_DIR / "ML", tmp_path / "edited" / "ML")
        picks = tmp_path / "edited" / "ML" / "ML_hardest.base"
        picks.chmod(0o644)
        picks.write_text("1\n2\n3\n" + picks.read_text())      # the recorded picks of authors-code mode, edited
        with pytest.raises(DataError, match="ML_hardest.base: SHA-256 .* does not match the pinned"):
            replay_source_dir(_alkdrec_like(tmp_path / "edited"))
        provider = make_provider(config.model_copy(update={"replay_path": str(ALKDREC_DIR)}),
                                 _alkdrec_like(tmp_path / "moved"))
        assert len(provider.records) == 4992
        assert replay_source_dir(_alkdrec_like(ALKDREC_DIR)) == ALKDREC_DIR
