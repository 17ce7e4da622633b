"""Prometheus metrics and events: scraped over HTTP while a batch runs against the emulator."""

from __future__ import annotations

import asyncio
import importlib
import logging
import sys
import threading
from typing import TYPE_CHECKING, Any

import aiohttp
import attrs
import pytest
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

import searchcans_async
from searchcans_async import Account, ApiKey, SearchCans, StopReason, events
from searchcans_async._clock import VirtualClock
from searchcans_async.events import (
    BudgetRebased,
    CallFinished,
    ItemFinished,
    LanesResized,
    RetryScheduled,
    Stopped,
    fan_out,
)
from searchcans_async.monitor import AccountWatch, MetricsServer, PrometheusMetrics
from searchcans_async.testing import AccountSpec, Emulator, Fault, Faults, KeySpec, WireOptions

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

NICKNAME = "Nick Canary-Person"
EMAIL = "canary.person@example.invalid"
BULLET = "\u2022"  # masked keys are written with bullets: none may reach a metric


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of an exposition, by name and sorted labels."""
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[sample.name, tuple(sorted(sample.labels.items()))] = sample.value
    return found


def value(found: dict[Any, float], name: str, **labels: str) -> float | None:
    return found.get((name, tuple(sorted(labels.items()))))


def calls(metrics: PrometheusMetrics, endpoint: str, outcome: str, code: str) -> float | None:
    labels = {"endpoint": endpoint, "outcome": outcome, "code": code}
    return metrics.registry.get_sample_value("searchcans_calls_total", labels)


async def scrape(session: aiohttp.ClientSession, server: MetricsServer) -> str:
    async with session.get(server.url) as response:
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/plain")
        return await response.text()


@pytest.fixture
async def personal_emulator(canary_key: str) -> AsyncIterator[Emulator]:
    """1000 credits, 3 lanes; the canary key plus a capped one; personal fields set."""
    spec = AccountSpec(
        credits=1_000,
        lanes=3,
        keys=[KeySpec(canary_key, name="canary"), KeySpec(name="intern", quota=50)],
        nickname=NICKNAME,
        email=EMAIL,
    )
    # Key suffixes tell the two keys apart (the published mask, `sk_` and bullets, would not).
    async with Emulator([spec], latency=0, wire=WireOptions(key_suffix=True)) as emu:
        yield emu


# -- end to end ----------------------------------------------------------------------------------


async def test_metrics_move_as_a_batch_runs_and_settle_on_the_servers_books(
    personal_emulator: Emulator, canary_key: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Scraped mid-batch: lanes busy, credits reserved; after: calls, remain = 1000 - charged."""
    emu = personal_emulator
    caplog.set_level(logging.DEBUG, logger="searchcans_async")
    seen: list[events.Event] = []
    metrics = PrometheusMetrics()
    queries = [f"query {i}" for i in range(30)]
    async with (
        SearchCans(canary_key, base_url=emu.base_url, on_event=fan_out(metrics, seen.append))
        as client,
        MetricsServer(metrics, 0) as server,
        aiohttp.ClientSession() as session,
    ):  # fmt: skip
        watch = AccountWatch(client.account, metrics=metrics, clock=VirtualClock())
        await watch.poll()
        before = samples(await scrape(session, server))
        assert value(before, "searchcans_account_remain_credits") == 1_000
        assert value(before, "searchcans_account_lanes") == 3
        assert value(before, "searchcans_pool_lanes_busy") is None  # no pool observed yet
        assert value(before, "searchcans_calls_total", endpoint="account", outcome="ok", code="0")

        async with client.lanes() as pool:
            metrics.observe_pool(pool)
            emu.pause()  # admitted requests wait in their lanes until resume()
            batch = asyncio.ensure_future(pool.run_batch(client.search, queries))
            while emu.stats().in_flight < 3:  # noqa: ASYNC110  # polls the emulator: no event
                await asyncio.sleep(0.001)
            during = samples(await scrape(session, server))
            emu.resume()
            report = await batch
            after = samples(await scrape(session, server))
        charged = emu.stats().charged
        await watch.poll()
        settled = samples(await scrape(session, server))
        text = await scrape(session, server)

    assert report.stop_reason is StopReason.COMPLETED
    assert report.succeeded == 30 == charged
    assert value(during, "searchcans_pool_lanes_busy") == 3
    assert value(during, "searchcans_pool_lanes") == 3
    assert value(during, "searchcans_pool_reserved_credits") == 3
    assert value(during, "searchcans_pool_committed_credits") == 0
    ok = {"endpoint": "search", "outcome": "ok", "code": "0"}
    assert value(during, "searchcans_calls_total", **ok) is None  # nothing finished yet
    assert value(after, "searchcans_calls_total", **ok) == 30
    assert value(after, "searchcans_charged_credits_total", endpoint="search") == charged
    assert value(after, "searchcans_call_duration_seconds_count", endpoint="search") == 30
    assert value(after, "searchcans_pool_items_total", outcome="succeeded") == 30
    assert value(after, "searchcans_batch_stops_total", reason="completed") == 1
    assert value(after, "searchcans_pool_lanes_busy") == 0
    assert value(after, "searchcans_pool_committed_credits") == charged
    assert value(after, "searchcans_pool_budget_left_credits") == 1_000 - charged
    # The batch's closing account check re-based remain through the hook (BudgetRebased).
    assert value(after, "searchcans_account_remain_credits") == 1_000 - charged
    assert value(settled, "searchcans_account_remain_credits") == 1_000 - charged
    assert value(settled, "searchcans_account_month_credits") == charged
    # Per-key gauges: only the key with its own quota, labelled by name.
    assert value(settled, "searchcans_key_quota_credits", key="intern") == 50
    assert value(settled, "searchcans_key_remain_credits", key="intern") == 50
    assert value(settled, "searchcans_key_quota_credits", key="canary") is None
    # Nothing secret or personal anywhere: metrics, events, log lines.
    logs = "\n".join(f"{r.getMessage()} {r.args!r}" for r in caplog.records)
    for where in (text, repr(seen), logs):
        for secret in (canary_key, NICKNAME, EMAIL, BULLET):
            assert secret not in where
    assert any(isinstance(event, BudgetRebased) for event in seen)


async def test_retries_and_lane_busy_answers_are_counted_by_reason(canary_key: str) -> None:
    """Scripted 1010 and 503 answers: calls by code, retries by reason, each exactly once."""
    faults = Faults(script={1: Fault.lane_busy(), 2: Fault.server_error(503)})
    spec = AccountSpec(credits=100, lanes=2, keys=[KeySpec(canary_key, name="canary")])
    metrics = PrometheusMetrics()
    async with (
        Emulator([spec], latency=0, faults=faults) as emu,
        SearchCans(canary_key, base_url=emu.base_url, on_event=metrics, clock=VirtualClock())
        as client,
    ):  # fmt: skip
        await client.search("one")
        await client.search("two")
    get = metrics.registry.get_sample_value
    assert calls(metrics, "search", "LaneBusyError", "1010") == 1
    assert calls(metrics, "search", "ServerError", "503") == 1
    assert calls(metrics, "search", "ok", "0") == 2
    assert get("searchcans_retries_total", {"endpoint": "search", "reason": "LaneBusyError"}) == 1
    assert get("searchcans_retries_total", {"endpoint": "search", "reason": "ServerError"}) == 1
    assert (
        get("searchcans_charged_credits_total", {"endpoint": "search"}) == 2 == emu.stats().charged
    )


async def test_the_library_logs_retries_rebases_resizes_and_stops_without_the_key(
    canary_key: str, caplog: pytest.LogCaptureFixture
) -> None:
    """At DEBUG: a retry, an account check, a lane resize, a stop; no key, no personal field."""
    caplog.set_level(logging.DEBUG, logger="searchcans_async")
    faults = Faults(script={1: Fault.lane_busy()})
    spec = AccountSpec(
        credits=100, lanes=4, keys=[KeySpec(canary_key, name="c")], nickname=NICKNAME, email=EMAIL
    )
    async with (
        Emulator([spec], latency=0, faults=faults) as emu,
        SearchCans(canary_key, base_url=emu.base_url, clock=VirtualClock()) as client,
        client.lanes(budget=10) as pool,
    ):
        report = await pool.run_batch(client.search, [f"q{i}" for i in range(20)])
    assert report.stop_reason is StopReason.BUDGET
    messages = [record.getMessage() for record in caplog.records]
    assert any(m.startswith("retrying search after LaneBusyError") for m in messages)
    assert any(m.startswith("account check: remain 90, spendable 90, 4 lanes") for m in messages)
    assert "lanes now 2 (lane_busy)" in messages
    assert any(m.startswith("batch stopped (budget): 10 succeeded") for m in messages)
    assert any("10 credits spent" in m for m in messages)
    text = "\n".join(messages)
    for secret in (canary_key, NICKNAME, EMAIL):
        assert secret not in text


# -- events ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "event_class",
    [CallFinished, RetryScheduled, ItemFinished, BudgetRebased, LanesResized, Stopped],
)
def test_events_carry_only_numbers_and_short_names(event_class: type[Any]) -> None:
    """No event has a field that could hold a key, a query, a URL or a personal field."""
    for field in attrs.fields(event_class):
        assert field.name not in {"key", "api_key", "email", "nickname", "query", "url", "message"}
        assert field.type in {"str", "int", "float", "int | None"}, (field.name, field.type)
    text_fields = {f.name for f in attrs.fields(event_class) if f.type == "str"}
    assert text_fields <= {"endpoint", "outcome", "reason"}


def test_fan_out_hands_each_event_to_every_hook_even_after_one_raises(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A failing hook is logged; the hooks after it still get the event."""
    first: list[events.Event] = []
    last: list[events.Event] = []

    def broken(_event: events.Event) -> None:
        raise RuntimeError("boom")

    hook = fan_out(first.append, None, broken, last.append)
    event = LanesResized(lanes=1, reason="lane_busy")
    hook(event)
    assert first == last == [event]
    assert "an on_event hook raised; the event was LanesResized" in caplog.text


# -- the metrics themselves -------------------------------------------------------------------


def test_a_gauge_not_known_yet_has_no_sample() -> None:
    """Before any account is read, remain has no sample (never a false 0 for alerts)."""
    metrics = PrometheusMetrics()
    assert metrics.registry.get_sample_value("searchcans_account_remain_credits") is None
    metrics(BudgetRebased(remain=70, spendable=70, lanes=2, budget_left=60))
    assert metrics.registry.get_sample_value("searchcans_account_remain_credits") == 70
    assert metrics.registry.get_sample_value("searchcans_account_lanes") is None


def test_unknown_codes_share_one_label_value() -> None:
    """An undocumented code is counted under code="other"; a transport failure under "none"."""
    metrics = PrometheusMetrics()
    for code in (7777, 8888):
        metrics(CallFinished("read", 1, "UnexpectedResponseError", 200, code, 0, 0.1))
    metrics(CallFinished("read", 1, "TransportError", None, None, 0, 0.1))
    metrics(CallFinished("read", 1, "ServerError", 502, None, 0, 0.1))
    assert calls(metrics, "read", "UnexpectedResponseError", "other") == 2
    assert calls(metrics, "read", "TransportError", "none") == 1
    assert calls(metrics, "read", "ServerError", "502") == 1


def test_key_gauges_use_names_only_for_own_quotas_and_stay_bounded(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Shared-pool keys get no gauge; clashing names fall back to ids; max_keys caps them."""
    keys = (
        ApiKey(name="shared", id="uk_0", key="sk_\u2022\u2022\u2022\u2022ab12"),
        ApiKey(name="crawler", id="uk_1", total=100, remain=40),
        ApiKey(name="twin", id="uk_2", total=10, remain=1),
        ApiKey(name="twin", id="uk_3", total=20, remain=-5),
        ApiKey(name="spare", id="uk_4", total=5, remain=5),
    )
    account = Account(remain=500, concurrent=2, keys=keys, email=EMAIL, nickname=NICKNAME)
    metrics = PrometheusMetrics(max_keys=3)
    metrics.observe_account(account)
    found = {
        sample.labels["key"]: sample.value
        for family in metrics.registry.collect()
        if family.name == "searchcans_key_remain_credits"
        for sample in family.samples
    }
    assert found == {"crawler": 40, "uk_2": 1, "uk_3": 0}
    assert "only the first 3 get gauges" in caplog.text
    metrics.observe_account(attrs.evolve(account, keys=keys[:2]))  # keys deleted: series go
    gone = metrics.registry.get_sample_value("searchcans_key_remain_credits", {"key": "uk_2"})
    assert gone is None


def test_a_registry_can_be_shared_and_a_second_set_of_metrics_is_refused_there() -> None:
    """Metrics register where told; the same names twice in one registry is an error."""
    registry = CollectorRegistry()
    PrometheusMetrics(registry)
    with pytest.raises(ValueError, match="Duplicated timeseries"):
        PrometheusMetrics(registry)
    PrometheusMetrics()  # each default instance has its own registry


async def test_a_scrape_from_another_thread_reads_the_pool_on_its_loop(canary_key: str) -> None:
    """The server thread asks the pool's loop for statistics (never reads them mid-update)."""
    spec = AccountSpec(credits=100, lanes=2, keys=[KeySpec(canary_key, name="c")])
    metrics = PrometheusMetrics()
    readers: list[str] = []
    async with (
        Emulator([spec], latency=0) as emu,
        SearchCans(canary_key, base_url=emu.base_url) as client,
        client.lanes() as pool,
    ):
        statistics = pool.statistics

        def spy() -> Any:
            readers.append(threading.current_thread().name)
            return statistics()

        pool.statistics = spy  # type: ignore[method-assign]  # to see which thread reads it
        metrics.observe_pool(pool)
        busy = await asyncio.to_thread(metrics.registry.get_sample_value, "searchcans_pool_lanes")
    assert busy == 2
    assert readers == [threading.main_thread().name]


async def test_the_server_binds_loopback_by_default_and_reports_a_taken_port() -> None:
    """127.0.0.1 unless told otherwise; a port in use raises OSError at start."""
    metrics = PrometheusMetrics()
    async with MetricsServer(metrics, 0) as server:
        assert server.url == f"http://127.0.0.1:{server.port}/metrics"
        assert server.port != 0
        with pytest.raises(OSError):  # the start is what raises
            async with MetricsServer(metrics, server.port):
                pass
    await server.aclose()  # idempotent
    assert "stopped" in repr(server)


def test_without_prometheus_client_the_error_names_the_extra(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Importing PrometheusMetrics without the extra says what to install; the watch still works."""
    monkeypatch.setitem(sys.modules, "prometheus_client", None)  # "not installed"
    monkeypatch.delitem(sys.modules, "searchcans_async._monitor.prometheus", raising=False)
    monkeypatch.delattr(searchcans_async._monitor, "prometheus", raising=False)
    monitor = importlib.import_module("searchcans_async.monitor")
    with pytest.raises(ImportError, match=r"pip install 'searchcans-async\[monitor\]'"):
        monitor.PrometheusMetrics  # noqa: B018  # the attribute access is the import
    assert monitor.AccountWatch is AccountWatch
