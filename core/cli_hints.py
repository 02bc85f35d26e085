"""`alkd hints`: the paper's summarisation step — L teacher-recommender cases in, versioned prompt hints out."""

from __future__ import annotations

import click
import numpy as np
import torch

from core.data import catalog
from core.data.errors import DataError
from core.models import BACKBONES
from core.teachers import get_provider
from core.teachers.hints import run_hints
from core.teachers.providers import PROVIDERS
from core.train import TrainConfig, model_scorer, resolve_device, train


def teacher_cases(dataset, backbone: str, n_cases: int, seed: int, top_k: int = 50,
                  device: str = "auto") -> list[tuple[list[str], list[str]]]:
    """(session titles, the teacher recommender's top-k titles) for n_cases seeded random training sessions."""
    result = train(dataset, TrainConfig(backbone=backbone, dim=100, seed=seed), device=device)
    batch = dataset.split("train", int(dataset.meta.get("max_len", 50)))
    picked = np.random.default_rng(seed).choice(len(batch), size=min(n_cases, len(batch)), replace=False)
    cases = batch.subset(np.sort(picked))
    scores = torch.as_tensor(model_scorer(result.model, resolve_device(device))(cases)).clone()
    scores[:, 0] = -torch.inf
    scores.scatter_(1, torch.as_tensor(cases.inputs), -torch.inf)
    best = scores.topk(min(top_k, dataset.n_items), dim=1)
    titles = dataset.titles()
    return [([titles[i] for i in row[:n]], [titles[i] for i, s in zip(ranked, value) if s > -np.inf])
            for row, n, ranked, value in zip(cases.inputs, cases.lengths, best.indices.numpy(), best.values.numpy())]


@click.command("hints")
@click.option("--dataset", required=True)
@click.option("--teacher", type=PROVIDERS.click_choice(), default="openai", show_default=True,
              help="provider that writes the hints")
@click.option("--model", default=None, help="the provider's model (default: the provider's own)")
@click.option("--base-url", default=None, help="an OpenAI-compatible server")
@click.option("--backbone", type=BACKBONES.click_choice(), default="fpmc", show_default=True,
              help="teacher recommender that supplies the cases")
@click.option("--cases", "n_cases", type=click.IntRange(1, 1000), default=20, show_default=True,
              help="L: sessions summarised")
@click.option("--seed", type=click.IntRange(0, 2**32 - 1), default=0, show_default=True)
@click.option("--show", is_flag=True, help="print the hints `alkd run` uses now for DATASET, and exit")
def hints_cmd(dataset: str, teacher: str, model: str | None, base_url: str | None, backbone: str, n_cases: int,
              seed: int, show: bool) -> None:
    """Summarise L teacher-recommender cases into prompt hints, stored as the dataset's next hints version; every
    later `alkd run` on the dataset sends the newest version (and records it in its config as extra.hints)."""
    from core.teachers import summarize_hints

    try:
        data = catalog.load(dataset)
    except DataError as error:
        raise click.ClickException(str(error)) from None
    if show:
        hints = run_hints(dataset, data.meta.get("domain"))
        label = (f"version {hints.version} ({hints.provider}:{hints.model}{', simulated' if hints.simulated else ''})"
                 if hints.version else "the paper's defaults")
        click.echo(f"{dataset}: `alkd run` uses {label}\n" + "\n".join(hints.lines))
        return
    options = {k: v for k, v in {"model": model, "base_url": base_url}.items() if v}
    provider = get_provider(teacher, **options)
    cases = teacher_cases(data, backbone, n_cases, seed)
    try:
        hints = summarize_hints(provider, cases, dataset=dataset, domain=data.meta.get("domain"))
    except (RuntimeError, ValueError) as error:     # the server failed or replied with no usable hints
        where = f"{teacher}:{provider.model}" + (f" at {base_url}" if base_url else "")
        raise click.ClickException(f"{where}: {error}; no hints stored (fix: check --base-url, --model and the "
                                   "API key, then run `alkd hints` again)") from None
    note = " (simulated teacher: placeholder text, stored but never sent by `alkd run`)" if provider.simulated else ""
    click.echo(f"stored hints version {hints.version} for {dataset}{note}:\n" + "\n".join(hints.lines))
