"""The scout's pure parts: polling policy, geometry, derived values, schedules."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from custom_components.tesla_scout_worker.charge_control import has_off_peak_schedule
from custom_components.tesla_scout_worker.geo import (
    angle_between,
    bearing_deg,
    distance_km,
    mph_to_kmh,
)
from custom_components.tesla_scout_worker.roster import _is_trigger
from custom_components.tesla_scout_worker.scout_habits import Habits, Place
from custom_components.tesla_scout_worker.scout_policy import (
    FINAL_APPROACH,
    LEAVING_WAIT,
    REFERENCE_RATE_PER_HOUR,
    SHORTEST_DRIVE,
    SHORTEST_WAIT,
    SLEEP_TIMER,
    UNSEEN_COST,
    Activity,
    Observation,
    PollSettings,
    activity,
    backoff,
    eta,
    habit_wait,
    heading_home,
    home_lead,
    is_driving,
    next_interval,
    unseen_cost,
)
from custom_components.tesla_scout_worker.time_of_day import time_to_minutes
from custom_components.tesla_scout_worker.vehicle_data import (
    HomeZone,
    VehicleData,
    build_vehicle_data,
)
from homeassistant.core import State
from tesla_fleet_sim import DEFAULT_HOME, DEFAULT_WORK

SETTINGS = PollSettings(
    idle=timedelta(minutes=30),
    asleep=timedelta(minutes=60),
    driving_min=timedelta(minutes=1),
)
HOME = HomeZone(DEFAULT_HOME.lat, DEFAULT_HOME.lon, 0.1)
NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("seen", "expected"),
    [
        (Observation(state="asleep"), timedelta(minutes=60)),
        (Observation(state="offline"), timedelta(minutes=60)),
        # Parked online: checked once its sleep timer ran out, before a drive
        # made meanwhile (at least SHORTEST_DRIVE) and the timer after it end.
        (Observation(state="online"), SLEEP_TIMER + SHORTEST_DRIVE),
        (Observation(state="online", at_home=True), SLEEP_TIMER + SHORTEST_DRIVE),
        # Away, 20 km from home: the drive home takes at least 12 min.
        (
            Observation(state="online", at_home=False, distance_home_km=20),
            SLEEP_TIMER + timedelta(minutes=12),
        ),
        # Too far to be home within idle: idle.
        (
            Observation(state="online", at_home=False, distance_home_km=100),
            timedelta(minutes=30),
        ),
        # Awake again at the same place: something keeps it so; idle.
        (Observation(state="online", stayed_awake=True), timedelta(minutes=30)),
        (Observation(state="online", charging=True), timedelta(minutes=30)),
        (Observation(state="online", driving=True), timedelta(minutes=30)),
        # 20 km at 60 km/h: ETA 20 min, check again after 10.
        (
            Observation(
                state="online",
                driving=True,
                heading_home=True,
                distance_home_km=20,
                speed_kmh=60,
            ),
            timedelta(minutes=10),
        ),
        # Far away: half the ETA, longer than idle, as the car cannot be home
        # sooner than at 100 km/h (2 h).
        (
            Observation(
                state="online",
                driving=True,
                heading_home=True,
                distance_home_km=200,
                speed_kmh=100,
            ),
            timedelta(minutes=60),
        ),
        # Far and fast: never longer than the shortest drive home.
        (
            Observation(
                state="online",
                driving=True,
                heading_home=True,
                distance_home_km=200,
                speed_kmh=40,
            ),
            timedelta(minutes=120),
        ),
        # Not far but slow: never longer than idle.
        (
            Observation(
                state="online",
                driving=True,
                heading_home=True,
                distance_home_km=40,
                speed_kmh=20,
            ),
            timedelta(minutes=30),
        ),
        # Final approach: 4 km at 60 km/h is 4 min, checked at the ETA.
        (
            Observation(
                state="online",
                driving=True,
                heading_home=True,
                distance_home_km=4,
                speed_kmh=60,
            ),
            timedelta(minutes=4),
        ),
        # 8 km at 60 km/h: 8 min, checked with 5 min left, not after 4.
        (
            Observation(
                state="online",
                driving=True,
                heading_home=True,
                distance_home_km=8,
                speed_kmh=60,
            ),
            FINAL_APPROACH,
        ),
        # Driving inside the home zone: leaving, look again soon.
        (
            Observation(state="online", driving=True, at_home=True),
            LEAVING_WAIT,
        ),
        # Driving away, 150 km from home: not home within 90 min.
        (
            Observation(state="online", driving=True, distance_home_km=150),
            timedelta(minutes=90),
        ),
        # Nearly there: never shorter than the minimum.
        (
            Observation(
                state="online",
                driving=True,
                heading_home=True,
                distance_home_km=0.2,
                speed_kmh=50,
            ),
            timedelta(minutes=1),
        ),
        # Stopped at a light: assume 30 km/h; 5 km is 10 min, check after 5.
        (
            Observation(
                state="online",
                driving=True,
                heading_home=True,
                distance_home_km=5,
                speed_kmh=0,
            ),
            timedelta(minutes=5),
        ),
        # Heading home but no home distance known: idle.
        (
            Observation(state="online", driving=True, heading_home=True),
            timedelta(minutes=30),
        ),
    ],
)
def test_next_interval(seen: Observation, expected: timedelta) -> None:
    """The policy in numbers."""
    assert next_interval(SETTINGS, seen) == expected


HABITS = PollSettings(
    idle=timedelta(minutes=30),
    asleep=timedelta(hours=3),
    driving_min=timedelta(minutes=1),
    habit=timedelta(minutes=8),
)
MONDAY_NOON = datetime(2025, 6, 2, 12, 0, tzinfo=UTC)


def steady(rate_per_hour: float) -> Habits:
    """Habits of a car that sets off at ``rate_per_hour`` at any time, anywhere."""
    habits = Habits()
    for place in Place:
        for row in habits.stays[place]:
            row[:] = [100.0] * len(row)
        for row in habits.leaves[place]:
            row[:] = [100.0 * rate_per_hour] * len(row)
    return habits


def test_home_lead() -> None:
    """The shortest drive home: the straight line at 100 km/h."""
    assert home_lead(None) == timedelta(0)
    assert home_lead(-1.0) == timedelta(0)
    assert home_lead(50.0) == timedelta(minutes=30)


def test_a_constant_rate_follows_the_square_root() -> None:
    """Without unseen departures: habit * sqrt(reference / r), a quarter, twice."""
    once = habit_wait(HABITS, steady(REFERENCE_RATE_PER_HOUR), Place.HOME, MONDAY_NOON)
    quarter = habit_wait(
        HABITS, steady(REFERENCE_RATE_PER_HOUR / 4), Place.HOME, MONDAY_NOON
    )
    minute = timedelta(minutes=1)
    assert HABITS.habit <= once <= HABITS.habit + minute
    assert 2 * HABITS.habit <= quarter <= 2 * HABITS.habit + minute


def test_a_likely_departure_is_seen_while_the_car_is_online() -> None:
    """Where departures are likely the wait stays within the online window.

    Linear cost alone would wait sqrt(2 * 0.53 / r) = 25 min at 0.1/h; a
    departure older than the shortest drive plus the sleep timer would be
    missed until the car drives again, so the check comes before that.
    """
    window = SHORTEST_DRIVE + SLEEP_TIMER
    wait = habit_wait(HABITS, steady(0.1), Place.HOME, MONDAY_NOON)
    assert window - timedelta(minutes=2) <= wait <= window + timedelta(minutes=2)


def test_rare_departures_are_checked_rarely() -> None:
    """Where a car hardly ever sets off, the wait grows up to ``asleep``."""
    assert habit_wait(HABITS, steady(0.001), Place.HOME, MONDAY_NOON) == HABITS.asleep
    rare = habit_wait(HABITS, steady(0.02), Place.HOME, MONDAY_NOON)
    assert SHORTEST_DRIVE + SLEEP_TIMER < rare < HABITS.asleep


def test_a_car_far_from_home_is_checked_less_often() -> None:
    """Away, the belief turns wrong only once the car can be home."""
    habits = steady(0.3)
    near = habit_wait(HABITS, habits, Place.AWAY, MONDAY_NOON, distance_home_km=2)
    far = habit_wait(HABITS, habits, Place.AWAY, MONDAY_NOON, distance_home_km=200)
    home = habit_wait(HABITS, habits, Place.HOME, MONDAY_NOON, distance_home_km=200)
    assert near <= SHORTEST_DRIVE + SLEEP_TIMER
    assert far >= home_lead(200)
    assert home < far  # distance counts only where the car is away


def test_an_unknown_place_is_watched_at_the_cost_of_home() -> None:
    """With the place unknown, a departure costs what one from home costs."""
    habits = steady(0.1)
    assert habit_wait(HABITS, habits, None, MONDAY_NOON) == habit_wait(
        HABITS, habits, Place.HOME, MONDAY_NOON
    )


def test_the_wait_is_never_shorter_than_the_shortest() -> None:
    """However likely a departure, SHORTEST_WAIT at least."""
    assert habit_wait(HABITS, steady(50.0), Place.HOME, MONDAY_NOON) == SHORTEST_WAIT


def test_an_unseen_arrival_costs_the_stay_at_home() -> None:
    """A car that came home unseen is believed away for its stay at home."""
    evening = datetime(2025, 6, 2, 21, 0, tzinfo=UTC)
    habits = Habits()  # the prior: departures from home are rare at night
    assert unseen_cost(habits, Place.HOME, evening) == UNSEEN_COST[Place.HOME]
    night = unseen_cost(habits, Place.AWAY, evening)
    assert night == habits.expected_stay(Place.HOME, evening)
    assert night > UNSEEN_COST[Place.AWAY]
    # Where the car leaves home soon after, the assumed cost is the floor.
    assert unseen_cost(steady(5.0), Place.AWAY, evening) == UNSEEN_COST[Place.AWAY]
    # So a car asleep near home in the evening is watched more closely.
    near = habit_wait(HABITS, habits, Place.AWAY, evening, distance_home_km=2)
    assert near <= SHORTEST_DRIVE + SLEEP_TIMER


def test_idle_is_longer_than_the_sleep_timer() -> None:
    """The default idle interval lets a parked car reach its ~15 min sleep."""
    assert SETTINGS.idle > timedelta(minutes=15)


def test_activity() -> None:
    """Classification of observations."""
    assert activity(Observation(state="asleep", driving=True)) is Activity.ASLEEP
    assert activity(Observation(state="online", charging=True)) is Activity.CHARGING
    assert activity(Observation(state="online")) is Activity.PARKED
    assert (
        activity(Observation(state="online", driving=True, heading_home=True))
        is Activity.DRIVING_HOME
    )


def test_settings_keep_minimum_below_idle() -> None:
    """A minimum above idle is capped at idle."""
    settings = PollSettings(
        idle=timedelta(minutes=5),
        asleep=timedelta(minutes=60),
        driving_min=timedelta(minutes=10),
    )
    assert settings.driving_min == timedelta(minutes=5)


def test_backoff() -> None:
    """Retry-After is a floor, never a ceiling."""
    assert backoff(timedelta(minutes=30), 60) == timedelta(minutes=30)
    assert backoff(timedelta(minutes=30), 7200) == timedelta(hours=2)
    assert backoff(None, 0) == timedelta(seconds=1)


def test_geometry() -> None:
    """Distance, bearing and angles on a city scale."""
    home, work = DEFAULT_HOME, DEFAULT_WORK
    km = distance_km(home.lat, home.lon, work.lat, work.lon)
    assert 14 < km < 16
    assert distance_km(home.lat, home.lon, home.lat, home.lon) == 0
    to_work = bearing_deg(home.lat, home.lon, work.lat, work.lon)
    to_home = bearing_deg(work.lat, work.lon, home.lat, home.lon)
    assert 180 < to_work < 270  # south-west
    assert angle_between(to_work, to_home) == pytest.approx(180, abs=1)
    assert angle_between(350, 10) == 20
    assert eta(15, 30) == timedelta(minutes=30)
    assert eta(-1, 30) == timedelta(0)
    assert mph_to_kmh(None) is None
    assert mph_to_kmh(10) == pytest.approx(16.09344)


def test_heading_home() -> None:
    """Coming closer, or pointing toward home."""
    assert heading_home(
        distance_km_now=4, previous_distance_km=5, heading=0, bearing_home=180
    )
    assert not heading_home(
        distance_km_now=6, previous_distance_km=5, heading=0, bearing_home=180
    )
    # Farther than at the last check but pointing home: it parked and turned
    # back in between.
    assert heading_home(
        distance_km_now=6, previous_distance_km=5, heading=180, bearing_home=180
    )
    assert heading_home(
        distance_km_now=6, previous_distance_km=None, heading=200, bearing_home=150
    )
    assert not heading_home(
        distance_km_now=6, previous_distance_km=None, heading=20, bearing_home=150
    )
    assert not heading_home(
        distance_km_now=6, previous_distance_km=None, heading=None, bearing_home=150
    )


def test_is_driving() -> None:
    """Shift state D/R/N or a speed means driving."""
    assert is_driving("D", None)
    assert is_driving(None, 12.0)
    assert not is_driving("P", 0.0)
    assert not is_driving(None, None)


def payload(
    *,
    lat: float = DEFAULT_HOME.lat,
    lon: float = DEFAULT_HOME.lon,
    charging_state: str = "Disconnected",
    shift_state: str | None = None,
    speed: float | None = None,
    heading: int = 0,
) -> dict[str, Any]:
    """Return a vehicle_data response body."""
    return {
        "charge_state": {
            "battery_level": 55,
            "charge_limit_soc": 80,
            "charging_state": charging_state,
            "charger_power": 11 if charging_state == "Charging" else 0,
        },
        "drive_state": {
            "latitude": lat,
            "longitude": lon,
            "shift_state": shift_state,
            "speed": speed,
            "heading": heading,
        },
        "vehicle_state": {"car_version": "2025.14.3 abc"},
        "charge_schedule_data": {"charge_schedules": []},
    }


def check_found(
    state: str,
    now: datetime,
    payload: dict[str, Any] | None,
    previous: VehicleData | None = None,
) -> VehicleData:
    """Return what a check found, HOME being the home zone."""
    return build_vehicle_data(
        state=state, now=now, payload=payload, previous=previous, home=HOME
    )


def test_build_from_payload() -> None:
    """Derived values from a fresh payload."""
    data = check_found("online", NOW, payload(charging_state="Charging"))
    assert data.fresh
    assert data.location == (DEFAULT_HOME.lat, DEFAULT_HOME.lon)
    assert data.distance_home_km == 0
    assert data.at_home
    assert data.plugged_in
    assert data.charging
    assert data.charging_state == "charging"
    assert data.charger_power == 11
    assert not data.driving
    assert not data.heading_home


def test_build_while_asleep_keeps_last_values() -> None:
    """Asleep: the payload stays, charging is off, power is 0."""
    first = check_found("online", NOW, payload(charging_state="Charging"))
    later = NOW + timedelta(hours=1)
    asleep = check_found("asleep", later, None, previous=first)
    assert not asleep.fresh
    assert asleep.checked_at == later
    assert asleep.fetched_at == NOW
    assert asleep.charge_state["battery_level"] == 55
    assert asleep.at_home
    assert asleep.plugged_in
    assert asleep.charging is False
    assert asleep.charging_state is None  # it stopped charging; how is unknown
    assert asleep.charger_power == 0
    offline = check_found("offline", later, None, previous=first)
    assert offline.charging is None
    assert offline.charger_power is None


def test_build_without_anything() -> None:
    """No payload ever and no home: everything unknown."""
    data = build_vehicle_data(
        state="asleep", now=NOW, payload=None, previous=None, home=None
    )
    assert data.location is None
    assert data.at_home is None
    assert data.plugged_in is None
    assert data.charging is False
    assert data.charging_state is None
    no_home = build_vehicle_data(
        state="online",
        now=NOW,
        payload=payload(shift_state="D", speed=30),
        previous=None,
        home=None,
    )
    assert no_home.driving
    assert no_home.distance_home_km is None
    assert not no_home.heading_home
    weird = check_found(
        "online", NOW, {"charge_state": {"charging_state": 3, "charger_power": "x"}}
    )
    assert weird.charging_state is None
    assert weird.charger_power is None
    assert weird.plugged_in is None


def test_build_driving_home_uses_the_previous_sample() -> None:
    """Getting closer between two driving samples means coming home."""
    work = DEFAULT_WORK
    first = check_found(
        "online",
        NOW,
        payload(lat=work.lat, lon=work.lon, shift_state="D", speed=30, heading=45),
    )
    assert first.driving
    assert first.speed_kmh == pytest.approx(48.28, abs=0.01)
    assert first.heading_home  # heading north-east, home is east-north-east
    closer = check_found(
        "online",
        NOW + timedelta(minutes=5),
        payload(
            lat=(work.lat + DEFAULT_HOME.lat) / 2,
            lon=(work.lon + DEFAULT_HOME.lon) / 2,
            shift_state="D",
            speed=30,
            heading=180,  # a detour: the heading alone would say "away"
        ),
        previous=first,
    )
    assert closer.heading_home
    away = check_found(
        "online",
        NOW + timedelta(minutes=10),
        payload(lat=work.lat, lon=work.lon, shift_state="D", speed=30, heading=225),
        previous=closer,
    )
    assert not away.heading_home  # farther, and pointing away


def test_stayed_awake() -> None:
    """Parked online, unmoved, at two checks in a row: something keeps it awake."""
    first = check_found("online", NOW, payload())
    assert not first.stayed_awake
    later = NOW + timedelta(minutes=18)
    again = check_found("online", later, payload(), previous=first)
    assert again.stayed_awake
    assert again.observation().stayed_awake
    moved = check_found(
        "online",
        later,
        payload(lat=DEFAULT_WORK.lat, lon=DEFAULT_WORK.lon),
        previous=first,
    )
    assert not moved.stayed_awake
    charging = check_found("online", NOW, payload(charging_state="Charging"))
    after_charge = check_found("online", later, payload(), previous=charging)
    assert not after_charge.stayed_awake  # the charge kept it awake; now over
    asleep = check_found("asleep", later, None, previous=first)
    assert not asleep.stayed_awake
    driving = check_found(
        "online", later, payload(shift_state="D", speed=20), previous=first
    )
    assert not driving.stayed_awake
    nowhere = check_found("online", later, {"charge_state": {}}, previous=first)
    assert not nowhere.stayed_awake


def test_vehicle_data_observation() -> None:
    """The policy input mirrors the data."""
    data = VehicleData(state="online", checked_at=NOW, driving=True)
    seen = data.observation()
    assert seen.driving
    assert not seen.charging
    assert seen.state == "online"


@pytest.mark.parametrize(
    ("value", "minutes"),
    [("22:00:00", 1320), ("06:30", 390), (90, 90), (1500.0, 60)],
)
def test_time_to_minutes(value: Any, minutes: int) -> None:
    """Times of day from the time selector (or plain minutes)."""
    assert time_to_minutes(value) == minutes


def test_time_to_minutes_rejects_garbage() -> None:
    """Not a time of day."""
    with pytest.raises(ValueError, match="not a time of day"):
        time_to_minutes("late")


def schedule(**changes: Any) -> dict[str, Any]:
    """Return a schedule as charge_schedule_data lists it."""
    return {
        "id": 1,
        "days_of_week": 127,
        "enabled": True,
        "start_enabled": True,
        "start_time": 1320,
        "end_enabled": True,
        "end_time": 360,
        "one_time": False,
        "latitude": DEFAULT_HOME.lat,
        "longitude": DEFAULT_HOME.lon,
    } | changes


@pytest.mark.parametrize(
    ("schedules", "found"),
    [
        ([schedule()], True),
        ([schedule(days_of_week="All")], True),
        ([schedule(latitude=DEFAULT_HOME.lat + 0.002)], True),  # ~220 m: same place
        ([schedule(days_of_week=62)], False),  # weekdays only
        ([schedule(one_time=True)], False),
        ([schedule(enabled=False)], False),
        ([schedule(start_time=1380)], False),
        ([schedule(end_enabled=False)], False),
        ([schedule(latitude=DEFAULT_WORK.lat, longitude=DEFAULT_WORK.lon)], False),
        ([schedule(latitude=None)], False),
        ([schedule(days_of_week="Weekdays")], False),
        ([], False),
    ],
)
def test_has_off_peak_schedule(schedules: list[dict[str, Any]], found: bool) -> None:
    """Only a repeating, enabled, all-days 22:00-06:00 schedule at home counts."""
    home = (HOME.latitude, HOME.longitude, HOME.radius_km)
    assert has_off_peak_schedule(schedules, 1320, 360, home) is found


def test_triggers() -> None:
    """Which state changes ask for a check."""

    def changed(entity_id: str, old: str | None, new: str | None) -> bool:
        return _is_trigger(
            entity_id,
            None if old is None else State(entity_id, old),
            None if new is None else State(entity_id, new),
            plugged_entity="sensor.wallbox",
            home_state="home",
        )

    assert changed("person.me", "not_home", "home")
    assert changed("person.me", "home", "not_home")  # a departure
    assert not changed("person.me", "home", "home")
    assert not changed("person.me", "not_home", "Work")
    assert not changed("person.me", None, "home")  # startup, not an arrival
    assert not changed("person.me", "home", None)  # removed
    assert changed("device_tracker.phone", "Work", "home")
    assert changed("binary_sensor.gate", "off", "on")
    assert not changed("binary_sensor.gate", "on", "off")
    assert changed("sensor.wallbox", "available", "Charging")
    assert changed("sensor.wallbox", "off", "on")
    assert not changed("sensor.wallbox", "charging", "complete")
