"""Prices, estimates and the two hard caps."""

import threading

import pytest

from core.teachers import Budget, Price, UnknownPriceError, estimate, get_provider, price_for
from core.teachers.pricing import _load, cost, worst_case_input_tokens, worst_case_usd
from core.teachers.types import Completion


def test_known_prices_and_dated_snapshots():
    assert price_for("gpt-4-turbo-2024-04-09") == Price(10.0, 30.0)
    assert price_for("gpt-4o-mini-2024-07-18").input == 0.15  # a dated snapshot of gpt-4o-mini
    assert price_for("gpt-4o-2024-08-06").input == 2.5
    assert price_for("claude-sonnet-4-5-20250929").output == 15.0
    assert price_for("claude-3-5-sonnet-latest").output == 15.0
    assert price_for("claude-haiku-4-5").cache_write == pytest.approx(1.25)


def test_no_shorter_prefix_prices_an_unknown_model():
    # gpt-4.5-preview used to inherit gpt-4's price, gpt-4o-audio gpt-4o's
    for model in ("gpt-4.5-preview", "gpt-4o-audio-preview", "claude-opus-4-1-extended", "gpt-4o-mini2"):
        with pytest.raises(UnknownPriceError) as info:
            price_for(model)
        assert model in str(info.value) and "\n" not in str(info.value)


def test_free_only_at_a_local_base_url_or_an_explicit_zero():
    # llama*/qwen*/mistral* used to be free whatever the server: 5 of 5 calls went out under a $0 cap
    for model in ("llama3.1:8b", "qwen2.5:7b", "mistral-large"):
        with pytest.raises(UnknownPriceError):
            price_for(model, base_url="https://api.together.xyz/v1")
        with pytest.raises(UnknownPriceError):
            get_provider("openai", model=model, base_url="https://api.together.xyz/v1")
        for local in ("http://localhost:11434/v1", "http://127.0.0.1:8000/v1", "http://[::1]:8080/v1"):
            assert price_for(model, base_url=local).free
    assert get_provider("openai", model="llama3.1:8b", base_url="https://api.together.xyz/v1",
                        price=(0, 0)).price.free
    # a listed model keeps its price at a local URL (a proxy to the vendor still bills)
    assert price_for("gpt-4o-mini", base_url="http://127.0.0.1:9/v1").input == 0.15


@pytest.mark.parametrize("bad", [-1.0, float("nan"), float("inf")])
def test_negative_nan_or_infinite_prices_are_refused(bad, tmp_path, monkeypatch):
    from core.teachers.pricing import PriceError
    with pytest.raises(PriceError, match="finite number >= 0"):
        price_for("gpt-4o", (bad, 1.0))
    with pytest.raises(PriceError):
        get_provider("openai", model="x", base_url="https://example.com/v1", price=(1.0, bad))
    extra = tmp_path / "prices.toml"
    value = {-1.0: "-1.0", float("inf"): "inf"}.get(bad, "nan")
    extra.write_text(f'[models."mystery-model-7"]\ninput = {value}\noutput = 4.0\n')
    monkeypatch.setenv("ALKD_PRICES", str(extra))
    with pytest.raises(PriceError) as info:
        price_for("gpt-4o")  # a bad file is refused whichever model is asked for
    message = str(info.value)
    assert str(extra) in message and 'models."mystery-model-7"' in message and "input" in message
    with pytest.raises(ValueError):
        Budget(max_usd=float("nan"))
    with pytest.raises(ValueError):
        Budget(max_usd=-0.5)


def test_unknown_model_needs_a_price(monkeypatch, tmp_path):
    with pytest.raises(UnknownPriceError) as info:
        price_for("mystery-model-7")
    message = str(info.value)
    assert "mystery-model-7" in message and "price=" in message and "ALKD_PRICES" in message
    paid = "https://llm.example.com/v1"
    with pytest.raises(UnknownPriceError):
        get_provider("openai", model="mystery-model-7", base_url=paid)
    assert get_provider("openai", model="mystery-model-7", base_url=paid,
                        price=(1.0, 2.0)).price == Price(1.0, 2.0)
    # the fix the message names works as written
    snippet = message[message.index("models."):message.index("}") + 1]
    extra = tmp_path / "prices.toml"
    extra.write_text(snippet.replace("<USD per 1M input tokens>", "3.0").replace("<USD per 1M output tokens>", "4.0"))
    monkeypatch.setenv("ALKD_PRICES", str(extra))
    assert price_for("mystery-model-7") == Price(3.0, 4.0)
    _load.cache_clear()


def test_cost_and_batch_discount():
    completion = Completion("x", input_tokens=1_000_000, output_tokens=100_000)
    assert cost(Price(10, 30), completion) == pytest.approx(13.0)
    assert cost(Price(10, 30), completion, batch=True) == pytest.approx(6.5)
    cached = Completion("x", input_tokens=1_000_000, output_tokens=0, cached_input_tokens=400_000)
    assert cost(price_for("gpt-4o"), cached) == pytest.approx(0.6 * 2.5 + 0.4 * 1.25)


def test_estimate_before_a_run(requests_for, fake_server):
    requests = requests_for(10)
    by_name = estimate(requests, "openai", "gpt-4-turbo-2024-04-09")
    assert by_name.n_requests == 10 and by_name.input_tokens > 5000 and by_name.output_tokens == 10 * 160
    assert by_name.usd == pytest.approx((by_name.input_tokens * 10 + by_name.output_tokens * 30) / 1e6)
    assert by_name.worst_case_usd > by_name.usd
    assert estimate(requests, "openai", "gpt-4-turbo-2024-04-09", batch=True).usd == pytest.approx(by_name.usd / 2)
    typical = estimate(500, "openai", "gpt-4-turbo-2024-04-09")
    assert typical.n_requests == 500 and 2 < typical.usd < 20
    server = fake_server()
    teacher = get_provider("openai", model="gpt-4o", base_url=server.openai_url)
    assert estimate(requests, teacher).model == "gpt-4o" and len(server.calls) == 0
    with pytest.raises(UnknownPriceError):
        estimate(3, "openai", "mystery-model-7")


def test_usd_cap_stops_before_exceeding(db, fake_server, requests_for):
    server = fake_server()
    # $1000 per million tokens: one call costs ~$0.65, its worst case (bytes + 512 output tokens) ~$4.2
    teacher = get_provider("openai", model="pricey", base_url=server.openai_url, price=(1000.0, 1000.0))
    budget = Budget(max_usd=6.0)
    responses = teacher.rank(requests_for(30), db=db, budget=budget, concurrency=8)
    done = [r for r in responses if r.status == "ok"]
    skipped = [r for r in responses if r.status == "skipped"]
    assert done and skipped and len(done) + len(skipped) == 30
    assert all("USD cap" in r.error for r in skipped)
    spent = sum(r.usd for r in done)
    assert spent == pytest.approx(budget.spent_usd) and spent <= 6.0
    assert len(server.calls) == len(done)           # no call started beyond the cap
    assert budget.sessions == len(done)              # skipped sessions do not use the instance budget
    # it stopped only because one more call's worst case would not fit under the cap
    prompt = teacher.build_prompt(requests_for(1)[0])
    worst = worst_case_usd(teacher.price, worst_case_input_tokens(prompt), teacher.max_output_tokens)
    assert 3.5 < worst < 5.0 and spent + worst > 6.0


def test_usd_cap_zero_starts_nothing(db, fake_server, requests_for):
    server = fake_server()
    teacher = get_provider("openai", base_url=server.openai_url)
    responses = teacher.rank(requests_for(3), db=db, budget=Budget(max_usd=0.0))
    assert {r.status for r in responses} == {"skipped"} and not server.calls


def test_budget_reservations_are_thread_safe():
    budget = Budget(max_usd=1.0)
    granted = []

    def worker():
        for _ in range(100):
            if budget.reserve(0.01, wait=False):
                granted.append(1)
                budget.settle(0.01, 0.005)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert budget.spent_usd <= 1.0 + 1e-9 and len(granted) <= 200
