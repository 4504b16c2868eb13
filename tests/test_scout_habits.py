"""The scout's habits: what it learns of a car's departures, and when it looks."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from custom_components.tesla_scout_worker.scout_habits import (
    PRIOR_RATE,
    Habits,
    Place,
    Seen,
    left,
)
from custom_components.tesla_scout_worker.scout_policy import (
    SHORTEST_WAIT,
    Observation,
    PollSettings,
    habit_wait,
    next_interval,
)

TZ = ZoneInfo("Europe/Warsaw")
MONDAY = datetime(2025, 6, 2, tzinfo=TZ)
HOME_AT = (52.2297, 21.0122)
SHOP_AT = (52.2500, 21.0500)
SETTINGS = PollSettings(
    idle=timedelta(minutes=30),
    asleep=timedelta(hours=3),
    driving_min=timedelta(minutes=1),
    habit=timedelta(minutes=8),
)


def at(day: int, hour: int, minute: int = 0) -> datetime:
    """Local time on day ``day`` (0: Monday 2 June 2025)."""
    return MONDAY + timedelta(days=day, hours=hour, minutes=minute)


def commuter(weeks: int = 3) -> Habits:
    """Habits of a car checked every 10 min that leaves home at 07:30 each day."""
    habits = Habits()
    for day in range(7 * weeks):
        leave = at(day, 7, 30)
        back = at(day, 17, 30)
        moment = at(day, 0)
        while moment < at(day + 1, 0):
            nxt = moment + timedelta(minutes=10)
            home = not leave <= moment < back
            place = Place.HOME if home else Place.AWAY
            moving = leave <= nxt - timedelta(minutes=5) < leave + timedelta(
                minutes=10
            ) or back <= nxt - timedelta(minutes=5) < back + timedelta(minutes=10)
            after_home = not leave <= nxt < back
            habits.learn(
                Seen(moment, place),
                Seen(nxt, Place.HOME if after_home else Place.AWAY, moving=moving),
            )
            moment = nxt
    return habits


def test_nothing_learnt_uses_the_prior() -> None:
    """Before any check, day and night rates are the assumed ones."""
    habits = Habits()
    assert habits.rate(Place.HOME, at(0, 12)) == pytest.approx(
        PRIOR_RATE[Place.HOME][0]
    )
    assert habits.rate(Place.HOME, at(0, 3)) == pytest.approx(PRIOR_RATE[Place.HOME][1])
    assert habits.rate(Place.AWAY, at(0, 12)) == pytest.approx(
        PRIOR_RATE[Place.AWAY][0]
    )
    assert habits.learnt_hours == 0


def test_a_commuter_is_watched_at_its_departure_time_and_not_at_night() -> None:
    """Learnt departures shorten the wait where they happen; nights lengthen it."""
    habits = commuter()
    monday = at(21, 0)
    departure = habit_wait(SETTINGS, habits, Place.HOME, monday + timedelta(hours=7))
    night = habit_wait(SETTINGS, habits, Place.HOME, monday + timedelta(hours=1))
    noon_home = habit_wait(SETTINGS, habits, Place.HOME, monday + timedelta(hours=12))
    evening_away = habit_wait(
        SETTINGS, habits, Place.AWAY, monday + timedelta(hours=17)
    )
    noon_away = habit_wait(SETTINGS, habits, Place.AWAY, monday + timedelta(hours=12))
    assert departure <= timedelta(minutes=10)
    # Away the belief turns wrong only once the car can be home again.
    assert evening_away <= timedelta(minutes=15)
    assert evening_away < noon_away
    assert night > timedelta(minutes=90)  # never left at night: rarely
    assert noon_home > timedelta(minutes=15)  # never home at noon: the prior


def test_wait_never_shorter_than_the_shortest() -> None:
    """However likely a departure, the scout waits SHORTEST_WAIT at least."""
    habits = Habits()
    for day in range(28):
        habits.add_leave(Place.HOME, at(day, 7, 30), at(day, 7, 30))
    tight = PollSettings(
        idle=timedelta(minutes=30),
        asleep=timedelta(hours=3),
        driving_min=timedelta(minutes=1),
        habit=timedelta(minutes=1),
    )
    assert tight.habit == SHORTEST_WAIT
    assert habit_wait(tight, habits, Place.HOME, at(28, 7, 29)) == SHORTEST_WAIT


def test_an_unknown_place_counts_both() -> None:
    """Without a known place the likelier departure sets the wait."""
    habits = commuter()
    morning = at(21, 7)
    unknown = habit_wait(SETTINGS, habits, None, morning)
    assert unknown <= min(
        habit_wait(SETTINGS, habits, place, morning) for place in Place
    )


def test_a_missed_departure_is_learnt_over_the_gap() -> None:
    """A car found away after resting at home left some time in between."""
    habits = Habits()
    habits.learn(Seen(at(0, 7), Place.HOME), Seen(at(0, 9), Place.AWAY))
    day, slot = 0, 7 * 4
    assert sum(habits.leaves[Place.HOME][day][slot : slot + 8]) == pytest.approx(1.0)
    assert habits.leaves[Place.HOME][day][slot + 8] == 0
    assert habits.learnt_hours == pytest.approx(1.0)  # half the gap, as rest


def test_rest_moves_and_gaps() -> None:
    """Rest adds hours; a move away is a departure; long gaps teach nothing."""
    habits = Habits()
    habits.learn(None, Seen(at(0, 1), Place.HOME))
    habits.learn(Seen(at(0, 1), Place.HOME), Seen(at(0, 2), Place.HOME))
    assert habits.learnt_hours == pytest.approx(1.0)
    habits.learn(Seen(at(0, 2), Place.HOME), Seen(at(0, 15), Place.AWAY))
    habits.learn(Seen(at(0, 15), None), Seen(at(0, 16), Place.AWAY))
    habits.learn(Seen(at(0, 16), Place.AWAY, moving=True), Seen(at(0, 17), Place.AWAY))
    assert habits.learnt_hours == pytest.approx(1.0)
    assert sum(map(sum, habits.leaves[Place.HOME])) == 0
    shop = Seen(at(0, 17), Place.AWAY, location=SHOP_AT)
    habits.learn(shop, Seen(at(0, 17, 30), Place.AWAY, location=HOME_AT))
    assert sum(map(sum, habits.leaves[Place.AWAY])) == pytest.approx(1.0)


def test_left() -> None:
    """A car that moved, drives or changed place left."""
    here = Seen(at(0, 1), Place.AWAY, location=SHOP_AT)
    assert not left(here, Seen(at(0, 2), Place.AWAY, location=SHOP_AT))
    assert not left(here, Seen(at(0, 2), Place.AWAY))
    assert left(here, Seen(at(0, 2), Place.AWAY, moving=True))
    assert left(here, Seen(at(0, 2), Place.HOME))
    assert left(here, Seen(at(0, 2), Place.AWAY, location=HOME_AT))


def test_old_habits_fade() -> None:
    """Knowledge halves in four weeks, once a day."""
    habits = Habits()
    habits.add_leave(Place.HOME, at(0, 7), at(0, 7))
    habits.fade(date(2025, 6, 2))
    habits.fade(date(2025, 6, 1))  # an earlier day changes nothing
    assert sum(map(sum, habits.leaves[Place.HOME])) == 1.0
    habits.fade(date(2025, 6, 30))
    assert sum(map(sum, habits.leaves[Place.HOME])) == pytest.approx(0.5)
    assert habits.faded_on == date(2025, 6, 30)


def test_habits_survive_storage() -> None:
    """as_dict and from_dict round-trip; unreadable data is refused."""
    habits = commuter(weeks=1)
    again = Habits.from_dict(habits.as_dict())
    assert again.faded_on == habits.faded_on
    assert again.rate(Place.HOME, at(7, 7, 30)) == pytest.approx(
        habits.rate(Place.HOME, at(7, 7, 30)), rel=1e-3
    )
    assert Habits.from_dict({}).learnt_hours == 0
    bad: object
    for bad in (
        [],
        {"leaves": []},
        {"leaves": {"home": [[0.0]]}},
        {"stays": {"away": [[0.0] * 96] * 6}},
        {"faded_on": "yesterday"},
    ):
        with pytest.raises((TypeError, ValueError)):
            Habits.from_dict(bad)


def test_next_interval_uses_habits_only_when_asked() -> None:
    """Without habits, local time or habit interval: the fixed asleep interval."""
    asleep = Observation(state="asleep", at_home=True)
    habits = commuter(weeks=1)
    now = at(7, 7, 20)
    assert next_interval(SETTINGS, asleep) == SETTINGS.asleep
    assert next_interval(SETTINGS, asleep, habits=habits) == SETTINGS.asleep
    off = PollSettings(
        idle=timedelta(minutes=30),
        asleep=timedelta(hours=1),
        driving_min=timedelta(minutes=1),
    )
    assert next_interval(off, asleep, habits=habits, now=now) == off.asleep
    assert next_interval(SETTINGS, asleep, habits=habits, now=now) == habit_wait(
        SETTINGS, habits, Place.HOME, now
    )
    away = Observation(state="offline", at_home=False)
    assert next_interval(SETTINGS, away, habits=habits, now=now) == habit_wait(
        SETTINGS, habits, Place.AWAY, now
    )
    online = Observation(state="online", at_home=True, stayed_awake=True)
    assert next_interval(SETTINGS, online, habits=habits, now=now) == SETTINGS.idle


def test_expected_stay() -> None:
    """The mean time to the next departure under the learnt hazard."""
    habits = commuter()
    # Home at 18:00: the night and the morning until 07:30, about 13.5 h.
    evening = habits.expected_stay(Place.HOME, at(21, 18))
    assert timedelta(hours=11) < evening < timedelta(hours=15)
    # Home at 07:00: leaving within the hour.
    morning = habits.expected_stay(Place.HOME, at(21, 7))
    assert morning < timedelta(hours=2)
    # A car that never leaves stays the whole horizon.
    never = Habits()
    for row in never.stays[Place.HOME]:
        row[:] = [1000.0] * len(row)
    assert never.expected_stay(Place.HOME, at(0, 12)) > timedelta(hours=23)
