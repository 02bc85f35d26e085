import pytest
import torch

from core.models import backbone_names, create
from core.models.fpmc import FPMC

BACKBONES = ["fpmc", "stamp", "attmix", "gru4rec", "sasrec"]


def test_registry_has_the_five_backbones():
    assert set(BACKBONES) <= set(backbone_names())
    with pytest.raises(KeyError, match="unknown backbone"):
        create("nope", 10, 4, 5)


@pytest.mark.parametrize("name", BACKBONES)
@pytest.mark.parametrize("dim", [10, 7])
def test_shapes_and_padding_invariance(name, dim):
    torch.manual_seed(0)
    model = create(name, n_items=20, dim=dim, max_len=6).eval()
    inputs = torch.tensor([[3, 4, 5, 0, 0, 0], [7, 0, 0, 0, 0, 0]])
    lengths = torch.tensor([3, 1])
    scores = model.score(inputs, lengths)
    assert scores.shape == (2, 21)
    assert model.encode(inputs, lengths).shape == (2, dim)
    assert model.item_embeddings().shape == (21, dim)
    # what sits in the padding never changes a session's vector (right padding, lengths given)
    noisy = inputs.clone()
    noisy[0, 4] = 0
    assert torch.allclose(model.score(noisy, lengths), scores, atol=1e-6)
    # a shorter window of the same session (same padded shape) is still fine and finite
    assert torch.isfinite(scores[:, 1:]).all()


@pytest.mark.parametrize("name", BACKBONES)
@pytest.mark.parametrize("loss", ["ce", "bpr-inbatch"])
def test_training_steps_reduce_the_loss(name, loss):
    torch.manual_seed(0)
    model = create(name, n_items=12, dim=16, max_len=4)
    inputs = torch.tensor([[i, i + 1, 0, 0] for i in range(1, 10)])
    lengths = torch.full((9,), 2)
    targets = torch.arange(3, 12)
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-2)
    model.train()
    first = model.loss(inputs, lengths, targets, loss).item()
    for _ in range(60):
        optimiser.zero_grad()
        model.loss(inputs, lengths, targets, loss).backward()
        optimiser.step()
    assert model.loss(inputs, lengths, targets, loss).item() < first


def test_weighted_loss_and_unknown_loss():
    torch.manual_seed(0)
    model = create("fpmc", 10, 4, 3)
    inputs, lengths, targets = torch.tensor([[1, 2, 0], [3, 0, 0]]), torch.tensor([2, 1]), torch.tensor([3, 4])
    per_row = [model.loss(inputs[i:i + 1], lengths[i:i + 1], targets[i:i + 1]).item() for i in range(2)]
    weighted = model.loss(inputs, lengths, targets, weights=torch.tensor([3.0, 1.0])).item()
    assert weighted == pytest.approx((3 * per_row[0] + per_row[1]) / 4, rel=1e-5)
    with pytest.raises(ValueError, match="unknown loss"):
        model.loss(inputs, lengths, targets, "hinge")


def test_fpmc_baskets():
    torch.manual_seed(0)
    last, window = FPMC(10, 4, 3), FPMC(10, 4, 3, basket="window")
    window.load_state_dict(last.state_dict())
    inputs, lengths = torch.tensor([[2, 5, 0]]), torch.tensor([2])
    assert torch.allclose(last.encode(inputs, lengths), last.source.weight[5])
    assert torch.allclose(window.encode(inputs, lengths), (last.source.weight[2] + last.source.weight[5]) / 2)
    with pytest.raises(ValueError):
        FPMC(10, 4, 3, basket="all")
