"""Backbone hyper-parameters (each backbone's typed `Config`): reachable from TrainConfig / `alkd train --set`, part
of the checkpoint key only when they differ from the defaults, and with default settings nothing changed."""

from __future__ import annotations

import json

import pytest
import torch
from click.testing import CliRunner
from tiny_data import make_dataset

from core.cli import main
from core.evaluate import evaluate
from core.model_files import load_model, save_model
from core.models import BACKBONES, backbone_config, create
from core.train import (
    TrainConfig,
    checkpoint_path,
    load_checkpoint,
    model_scorer,
    pretrain_settings,
    train,
)

#: Obtained on main at 6ed6131^ (before backbone configs existed), OMP_NUM_THREADS=1, CPU: for each backbone
#: train(make_dataset(n_sessions=80, n_items=15, seed=3), TrainConfig(backbone=b, dim=8, seed=1, max_epochs=3),
#: device="cpu", use_cache=False), then evaluate(model_scorer(model, cpu), dataset.split("test", 5)): the checkpoint
#: file name, test metrics, the best validation NDCG@10 and the per-epoch training losses.
BEFORE = {
    "fpmc": ("fpmc-d8-s1-e137831328.pt", 0.2458009797864923, 0.12632124819624818, 0.0625, 0.229440549419266,
             [0.7534663081169128, 0.7515952587127686, 0.7497288584709167]),
    "stamp": ("stamp-d8-s1-d86eff54a3.pt", 0.3702174258722818, 0.20878201659451656, 0.3125, 0.5350023273712841,
              [2.70805025100708, 2.70805025100708, 2.708050012588501]),
    "attmix": ("attmix-d8-s1-eed0bb7998.pt", 0.514804793791551, 0.38913690476190477, 0.75, 0.5074750331784339,
               [7.731434345245361, 6.224677562713623, 5.147519111633301]),
    "gru4rec": ("gru4rec-d8-s1-e5591210cc.pt", 0.4079064297358477, 0.2771847943722944, 0.5625, 0.5447527122634324,
                [2.710110664367676, 2.6933987140655518, 2.674920082092285]),
    "sasrec": ("sasrec-d8-s1-559fc97583.pt", 0.45924746280675416, 0.32061011904761905, 0.5, 0.4056109657147895,
               [3.364340305328369, 3.2449700832366943, 3.1234326362609863]),
}


@pytest.fixture
def one_thread():
    """The reference values were computed single-threaded (float sums depend on the split)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.mark.parametrize("backbone", list(BEFORE))
def test_default_settings_give_the_results_and_checkpoint_names_of_before(backbone, one_thread):
    dataset = make_dataset(n_sessions=80, n_items=15, seed=3)
    config = TrainConfig(backbone=backbone, dim=8, seed=1, max_epochs=3)
    result = train(dataset, config, device="cpu", use_cache=False)
    test = evaluate(model_scorer(result.model, torch.device("cpu")), dataset.split("test", 5))
    name, ndcg, mrr, recall, valid, losses = BEFORE[backbone]
    assert result.checkpoint.name == checkpoint_path(dataset, config).name == name
    assert test.metrics["ndcg@10"] == pytest.approx(ndcg, abs=1e-9)
    assert test.metrics["mrr@20"] == pytest.approx(mrr, abs=1e-9)
    assert test.metrics["recall@5"] == pytest.approx(recall, abs=1e-9)
    assert result.valid.metrics["ndcg@10"] == pytest.approx(valid, abs=1e-9)
    assert result.curve["train_loss"].tolist()[1:] == pytest.approx(losses, abs=1e-9)


def test_the_default_checkpoint_key_is_unchanged_and_a_setting_changes_it():
    dataset = make_dataset(n_sessions=80, n_items=15, seed=3)
    default = TrainConfig(backbone="sasrec", dim=8, seed=1, max_epochs=3)
    assert "backbone_config" not in default.model_dump() and "backbone_config" not in default.model_dump_json()
    # a setting given at its default value is the default configuration
    same = TrainConfig(backbone="sasrec", dim=8, seed=1, max_epochs=3, layers=2, dropout=0.2)
    assert checkpoint_path(dataset, same).name == checkpoint_path(dataset, default).name == BEFORE["sasrec"][0]
    other = TrainConfig(backbone="sasrec", dim=8, seed=1, max_epochs=3, layers=1)
    assert other.backbone_config == {"layers": 1}
    assert checkpoint_path(dataset, other).name.startswith("sasrec-d8-s1-")
    assert checkpoint_path(dataset, other).name != checkpoint_path(dataset, default).name


@pytest.mark.parametrize("backbone", BACKBONES.names())
def test_every_backbone_declares_a_typed_config_whose_defaults_build_the_model(backbone):
    cls = BACKBONES.get(backbone)
    assert cls.description
    assert backbone_config(backbone).changed() == {}
    model = create(backbone, 12, 6, 4)
    assert isinstance(model.config, cls.Config)
    assert not set(cls.Config.model_fields) & set(TrainConfig.model_fields)     # flat --set keys stay unambiguous
    assert set(cls.authors_code) <= set(cls.Config.model_fields)


def test_settings_reach_the_model_the_checkpoint_and_the_model_file(tmp_path):
    dataset = make_dataset()
    config = TrainConfig(backbone="sasrec", dim=6, max_epochs=1, **{"layers": 1, "heads": 3, "dropout": 0.0})
    result = train(dataset, config, device="cpu")
    model = result.model
    assert len(model.blocks.layers) == 1 and model.blocks.layers[0].self_attn.num_heads == 3
    assert model.blocks.layers[0].dropout.p == 0.0
    loaded, saved = load_checkpoint(result.checkpoint, dataset, torch.device("cpu"))
    assert saved["config"]["backbone_config"] == {"layers": 1, "heads": 3, "dropout": 0.0}
    assert len(loaded.blocks.layers) == 1 and loaded.config == model.config
    again = train(dataset, config, device="cpu")
    assert again.cached and again.checkpoint == result.checkpoint
    path = save_model(model, tmp_path / "m.pt", {})
    shipped, _ = load_model(path)
    assert shipped.config == model.config
    inputs, lengths = torch.tensor([[1, 2, 0, 0, 0]]), torch.tensor([2])
    model.eval()
    assert torch.equal(shipped.score(inputs, lengths), model.score(inputs, lengths))


def test_fpmc_window_basket_and_attmix_last_k_are_reachable():
    fpmc = create("fpmc", 10, 4, 3, TrainConfig(backbone="fpmc", basket="window").backbone_config)
    assert fpmc.basket == "window"
    attmix = create("attmix", 10, 4, 6, TrainConfig(backbone="attmix", last_k=3).backbone_config)
    assert attmix.last_k == 3 and len(attmix.levels) == 3
    gru = create("gru4rec", 10, 4, 3, {"layers": 2})
    assert gru.gru.num_layers == 2


def test_gru4rec_in_recboles_shape_ties_its_tables_and_adds_a_dense_layer():
    recbole = create("gru4rec", 10, 4, 3, TrainConfig(backbone="gru4rec", dropout=0.3, dense=True, tied=True
                                                       ).backbone_config)
    assert recbole.output is None and recbole.item_embeddings() is recbole.embedding.weight
    assert isinstance(recbole.dense, torch.nn.Linear) and recbole.dropout.p == 0.3
    ours = create("gru4rec", 10, 4, 3)
    assert ours.item_embeddings() is ours.output.weight and isinstance(ours.dense, torch.nn.Identity)
    assert sum(p.numel() for p in recbole.parameters()) == sum(p.numel() for p in ours.parameters()) - 11 * 4 + 4 * 5
    inputs, lengths = torch.tensor([[1, 2, 0]]), torch.tensor([2])
    recbole.eval()
    before = recbole.score(inputs, lengths)
    with torch.no_grad():
        recbole.dense.weight.mul_(2)
        recbole.dense.bias.mul_(2)
    assert torch.allclose(recbole.score(inputs, lengths), 2 * before, atol=1e-6)      # the layer is on the path


def test_authors_code_mode_selects_the_authors_variants_unless_the_run_sets_them():
    assert pretrain_settings("fpmc", {}, "authors-code") == {"backbone_config": {"basket": "window"}}
    assert pretrain_settings("fpmc", {"loss": "ce"}, "paper") == {"loss": "ce"}
    assert TrainConfig(backbone="fpmc", **pretrain_settings("fpmc", {"basket": "last"}, "authors-code")
                       ).backbone_config == {}
    # backbones whose authors' code matches ours keep their defaults
    assert pretrain_settings("sasrec", {"layers": 1}, "authors-code") == {"layers": 1}


@pytest.mark.parametrize("settings, words", [
    (dict(backbone="sasrec", layers=0), "sasrec's layers must be greater than or equal to 1"),
    (dict(backbone="fpmc", basket="mean"), "fpmc's basket must be 'last' or 'window'"),
    (dict(backbone="stamp", backbone_config={"basket": "window"}), "stamp has no setting 'basket'"),
])
def test_a_bad_backbone_setting_names_it_and_the_backbones_settings(settings, words):
    with pytest.raises(ValueError, match=words):
        TrainConfig(**settings)


def test_alkd_train_set_reaches_a_backbone_setting_and_refuses_a_bad_one_in_one_line(csv_dataset):
    runner = CliRunner()
    bad = runner.invoke(main, ["train", "--dataset", csv_dataset, "--backbone", "sasrec", "--set", "heads=0"])
    assert bad.exit_code != 0
    line = bad.output.strip()
    assert len(line.splitlines()) == 1 and "heads" in line and "fix:" in line and "Traceback" not in line
    good = runner.invoke(main, ["train", "--dataset", csv_dataset, "--backbone", "gru4rec", "--role", "student",
                                "--set", "max_epochs=1", "--set", "layers=2"])
    assert good.exit_code == 0, good.output
    from core import store
    config = store.query("SELECT config FROM runs WHERE kind = 'train'")["config"].iloc[0]
    assert json.loads(config)["backbone_config"] == {"layers": 2}


@pytest.mark.parametrize("mode, pretrain, basket", [("authors-code", {}, "window"), ("paper", {}, "last"),
                                                    ("authors-code", {"basket": "last"}, "last")])
def test_a_run_in_authors_code_mode_pretrains_the_authors_fpmc(csv_dataset, mode, pretrain, basket):
    from core.pipeline import run_pipeline
    from core.run_spec import RunConfig

    config = RunConfig(dataset=csv_dataset, backbone="fpmc", method="student", mode=mode, device="cpu",
                       pretrain={"max_epochs": 1, **pretrain})
    result = run_pipeline(config)
    assert result.model.basket == basket
    assert result.model.config.changed() == ({"basket": "window"} if basket == "window" else {})
