"""API usage counters: cost, monthly reset, persistence."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from freezegun.api import FrozenDateTimeFactory
from pytest_homeassistant_custom_component.common import async_fire_time_changed

from custom_components.tesla_scout_worker.const import DOMAIN
from custom_components.tesla_scout_worker.usage import (
    ApiCategory,
    ApiUsage,
    month_start,
    next_month_start,
)
from homeassistant.core import HomeAssistant
from homeassistant.util import dt as dt_util


def test_month_bounds() -> None:
    """Month starts are local midnights; December rolls into January."""
    moment = datetime(2026, 12, 15, 12, tzinfo=dt_util.UTC)
    assert month_start(moment).day == 1
    assert next_month_start(moment).year == 2027
    assert next_month_start(moment).month == 1
    assert next_month_start(datetime(2026, 3, 31, tzinfo=dt_util.UTC)).month == 4


async def test_cost_and_state_check_billing(hass: HomeAssistant) -> None:
    """Cost follows Tesla's prices; state checks optionally free."""
    usage = ApiUsage(hass, "e1", bill_state_checks=True)
    await usage.async_load()
    for category in (ApiCategory.DATA, ApiCategory.COMMAND, ApiCategory.WAKE):
        usage.record(category)
    usage.record(ApiCategory.STATE_CHECK)
    assert usage.total_calls == 4
    assert usage.cost_usd == round(0.002 + 0.001 + 0.02 + 0.002, 4)
    usage.bill_state_checks = False
    assert usage.cost_usd == round(0.002 + 0.001 + 0.02, 4)
    usage.async_stop()


async def test_persisted_and_rolled_over(
    hass: HomeAssistant,
    hass_storage: dict[str, Any],
    freezer: FrozenDateTimeFactory,
) -> None:
    """Counters survive a restart within the month and reset at its end."""
    freezer.move_to("2026-11-20 12:00:00+00:00")
    usage = ApiUsage(hass, "e1", bill_state_checks=True)
    await usage.async_load()
    usage.record(ApiCategory.DATA)
    usage.record(ApiCategory.DATA)
    await usage.async_save()
    usage.async_stop()

    again = ApiUsage(hass, "e1", bill_state_checks=True)
    await again.async_load()
    assert again.counts[ApiCategory.DATA] == 2
    seen: list[int] = []
    again.async_add_listener(lambda: seen.append(again.total_calls))

    # Local midnight of 1 December in the test instance's time zone.
    freezer.move_to(next_month_start(dt_util.utcnow()) + timedelta(seconds=1))
    async_fire_time_changed(hass)
    await hass.async_block_till_done()
    assert again.counts[ApiCategory.DATA] == 0
    assert again.previous is not None
    assert again.previous["counts"]["data"] == 2
    assert seen == [0]
    again.async_stop()

    # A restart in a later month keeps last month's total as "previous".
    await again.async_save()
    hass_storage[f"{DOMAIN}.usage.e1"]["data"]["period_start"] = (
        "2026-10-01T00:00:00+00:00"
    )
    later = ApiUsage(hass, "e1", bill_state_checks=True)
    await later.async_load()
    assert later.total_calls == 0
    assert later.previous is not None
    assert later.previous["period_start"].startswith("2026-10-01")
    later.async_stop()
