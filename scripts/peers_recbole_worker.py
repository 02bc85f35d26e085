"""Train one RecBole 1.2.1 model on benchmark files written by scripts/bench_peers.py and save what it needs.

Runs INSIDE RecBole's scratch venv (`bench_peers.py setup`): imports only recbole, torch and numpy, never `core`.

    peers_recbole_worker.py JOB.json

JOB.json: model (FPMC|STAMP|GRU4Rec|SASRec), dataset (the benchmark files' name), data_path (the folder holding the
`<dataset>/` folder), d, lr, batch, epochs, stopping_step, seed, max_len, out (a folder; RecBole's log/, saved/ and
log_tensorboard/ land there too, as the worker runs with it as working directory).

Writes into `out`: result.json (best_epoch 1-based, epochs_run, train_seconds: wall time of Trainer.fit with its
per-epoch validation, recbole_test: RecBole's own full-sort test metrics, n_train/n_valid/n_test rows and n_items as
RecBole loaded them), scores.npy (n_test, max_token_id + 1) float32: row i = RecBole's full-sort scores of test row i
at the best epoch, column t = our item id t (column 0 and ids RecBole does not know: -inf), and sessions.npy (n_test,)
int64: the session id of each row (the test rows' user tokens are `e<session_id>`).
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np
import torch


def trust_own_checkpoints() -> None:
    """RecBole 1.2.1 loads its own best checkpoint with torch.load's pre-2.6 default; that file is the worker's own.
    Patched only when the worker runs (main), never on import: tests import this module into the suite's process."""
    torch_load = torch.load

    def load_trusted(*args, **kwargs):
        kwargs["weights_only"] = False
        return torch_load(*args, **kwargs)

    torch.load = load_trusted


def our_columns(scores: np.ndarray, item_tokens: np.ndarray) -> np.ndarray:
    """RecBole's (n, n_recbole_items) scores as (n, max_id + 1) float32 in our item id order: column t = our id t.
    item_tokens: RecBole's field2id_token["item_id"] (internal id -> our id as text, "[PAD]" at 0). Column 0 and any
    id RecBole does not know stay -inf (never ranked above a real candidate)."""
    ours = np.array([int(t) for t in item_tokens[1:]], dtype=np.int64)
    out = np.full((scores.shape[0], int(ours.max()) + 1), -np.inf, dtype=np.float32)
    out[:, ours] = scores[:, 1:]
    return out


def session_of(user_token: str) -> int:
    """Our session id of a test row's user token `e<session_id>` (bench_peers.convert writes them)."""
    if not user_token.startswith("e"):
        raise ValueError(f"test row of user {user_token!r}: expected e<session id>")
    return int(user_token[1:])


def recbole_config(job: dict) -> dict:
    """RecBole's config dict for `job`: benchmark files as our split, our batch/lr/epoch limit/patience, full-sort
    evaluation with NDCG@10 as the validation metric, CPU, one row per user (no history masking across rows)."""
    d = int(job["d"])
    config = {
        "data_path": job["data_path"], "benchmark_filename": ["train", "valid", "test"],
        "USER_ID_FIELD": "user_id", "ITEM_ID_FIELD": "item_id", "TIME_FIELD": None, "RATING_FIELD": None,
        "load_col": {"inter": ["user_id", "item_id_list", "item_id"], "item": ["item_id"]},
        "alias_of_item_id": ["item_id_list"], "MAX_ITEM_LIST_LENGTH": int(job["max_len"]),
        "eval_args": {"split": {"RS": [0.8, 0.1, 0.1]}, "order": "TO", "group_by": "user", "mode": "full"},
        "metrics": ["Recall", "NDCG"], "topk": [10], "valid_metric": "NDCG@10", "metric_decimal_place": 6,
        "eval_batch_size": 2048,
        "epochs": int(job["epochs"]), "train_batch_size": int(job["batch"]), "learner": "adam",
        "learning_rate": float(job["lr"]), "weight_decay": 0.0, "eval_step": 1,
        "stopping_step": int(job["stopping_step"]), "seed": int(job["seed"]), "reproducibility": True,
        "use_gpu": False, "device": "cpu", "gpu_id": "", "worker": 0, "show_progress": False, "state": "WARNING",
        "checkpoint_dir": str(Path(job["out"]) / "saved"), "log_wandb": False, "save_dataset": False,
        "save_dataloaders": False, "embedding_size": d, "hidden_size": d,
    }
    if job["model"] == "FPMC":
        config.update(loss_type="BPR", train_neg_sample_args={"distribution": "uniform", "sample_num": 1})
    else:
        config.update(loss_type="CE", train_neg_sample_args=None)
    if job["model"] == "SASRec":
        config["inner_size"] = d          # our SASRec's feed-forward width is d too
    return config


def main(job_file: str) -> None:
    # imported here: the helpers above need only numpy, so tests import this module without RecBole
    torch.set_num_threads(1)
    trust_own_checkpoints()
    from recbole.config import Config
    from recbole.data import create_dataset, data_preparation
    from recbole.utils import get_model, get_trainer, init_logger, init_seed

    job = json.loads(Path(job_file).read_text())
    out = Path(job["out"])
    out.mkdir(parents=True, exist_ok=True)
    config = Config(model=job["model"], dataset=job["dataset"], config_dict=recbole_config(job))
    init_seed(config["seed"], config["reproducibility"])
    init_logger(config)
    dataset = create_dataset(config)
    train_data, valid_data, test_data = data_preparation(config, dataset)
    init_seed(config["seed"], config["reproducibility"])
    model = get_model(config["model"])(config, train_data._dataset).to(config["device"])
    trainer = get_trainer(config["MODEL_TYPE"], config["model"])(config, model)
    improved: list[int] = []                       # 0-based epochs at which RecBole saved its best model
    save = trainer._save_checkpoint

    def saved(epoch, *args, **kwargs):
        improved.append(int(epoch))
        return save(epoch, *args, **kwargs)

    trainer._save_checkpoint = saved
    started = time.perf_counter()
    trainer.fit(train_data, valid_data, saved=True, show_progress=False, verbose=False)
    train_seconds = time.perf_counter() - started
    test_metrics = trainer.evaluate(test_data, load_best_model=True, show_progress=False)

    tokens = dataset.field2id_token["item_id"]
    users = dataset.field2id_token["user_id"]
    rows, sessions = [], []
    model.eval()                        # the best epoch's weights: evaluate(load_best_model=True) loaded them
    with torch.no_grad():
        for interaction, _history, _positive_u, _positive_i in test_data:
            scores = model.full_sort_predict(interaction.to(config["device"])).view(len(interaction), -1)
            rows.append(our_columns(scores.cpu().numpy(), tokens))
            sessions += [session_of(users[u]) for u in interaction["user_id"].tolist()]
    np.save(out / "scores.npy", np.concatenate(rows))
    np.save(out / "sessions.npy", np.asarray(sessions, dtype=np.int64))
    result = {
        "best_epoch": improved[-1] + 1 if improved else 0, "epochs_run": len(trainer.train_loss_dict),
        "train_seconds": train_seconds, "recbole_test": {k: float(v) for k, v in dict(test_metrics).items()},
        "n_train": len(train_data._dataset), "n_valid": len(valid_data._dataset), "n_test": len(test_data._dataset),
        "n_items": int(dataset.item_num) - 1, "torch": torch.__version__, "threads": torch.get_num_threads(),
    }
    (out / "result.json").write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: peers_recbole_worker.py JOB.json")
    main(sys.argv[1])
