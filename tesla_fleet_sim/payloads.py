"""JSON bodies of the vehicle endpoints, shaped like the real Fleet API's."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
import hashlib
from typing import Any

from .config import VehicleConfig
from .geo import KM_PER_MILE
from .vehicle import VehicleSnapshot

API_VERSION = 84
CHARGE_LIMIT_MIN = 50
CHARGE_LIMIT_MAX = 100
CHARGE_LIMIT_STD = 90
CHARGE_BUFFER = 5
MAX_CHARGE_SCHEDULES = 10
IDLE_PILOT_VOLTAGE = 2
LOCATION_DATA = "location_data"
FLEET_TELEMETRY_VERSION = "1.0.0"
BASE_KEY_COUNT = 3  # phone key and two key cards
DEFAULT_ENDPOINTS = (
    "charge_state",
    "climate_state",
    "drive_state",
    "gui_settings",
    "vehicle_config",
    "vehicle_state",
)


def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def _miles(km: float) -> float:
    return round(km / KM_PER_MILE, 2)


def _vehicle_tokens(vin: str) -> list[str]:
    digest = hashlib.sha256(f"tokens:{vin}".encode()).hexdigest()
    return [digest[:16], digest[16:32]]


def summary(snap: VehicleSnapshot) -> dict[str, Any]:
    """Return the vehicle as GET /api/1/vehicles[/{vin}] lists it."""
    return {
        "id": snap.api_id,
        "vehicle_id": snap.api_vehicle_id,
        "vin": snap.vin,
        "display_name": snap.display_name,
        "option_codes": None,
        "color": snap.color,
        "access_type": "OWNER",
        "tokens": _vehicle_tokens(snap.vin),
        "state": snap.state,
        "in_service": False,
        "id_s": str(snap.api_id),
        "calendar_enabled": True,
        "api_version": API_VERSION,
        "backseat_token": None,
        "backseat_token_updated_at": None,
        "ble_autopair_enrolled": False,
        "granular_access": {"hide_private": False},
        "command_signing": snap.command_signing,
    }


def fleet_status_info(config: VehicleConfig, paired_keys: int) -> dict[str, Any]:
    """Per-vehicle info of POST /api/1/vehicles/fleet_status.

    ``paired_keys``: third-party keys on the keychain as the caller sees them.
    """
    return {
        "firmware_version": config.car_version.split()[0],
        "vehicle_command_protocol_required": config.command_signing == "required",
        "discounted_device_data": False,
        "fleet_telemetry_version": FLEET_TELEMETRY_VERSION,
        "total_number_of_keys": BASE_KEY_COUNT + paired_keys,
    }


def parse_endpoints(raw: str | None) -> tuple[list[str], bool]:
    """Split the endpoints parameter: (sub-objects to include, location requested)."""
    names = [n.strip() for n in (raw or "").split(";") if n.strip()]
    if not names:
        return list(DEFAULT_ENDPOINTS), False
    wants_location = LOCATION_DATA in names
    known = [n for n in names if n in _SECTIONS]
    if wants_location and "drive_state" not in known:
        known.append("drive_state")
    return known, wants_location


def vehicle_data(
    snap: VehicleSnapshot, sections: list[str], with_location: bool, user_id: int
) -> dict[str, Any]:
    """Return the body of a vehicle_data response (inside "response")."""
    body = summary(snap)
    body["user_id"] = user_id
    for name in sections:
        if name == "drive_state":
            body[name] = drive_state(snap, with_location)
        else:
            body[name] = _SECTIONS[name](snap)
    return body


def charge_state(snap: VehicleSnapshot) -> dict[str, Any]:
    """charge_state."""
    charging = snap.charger_power_kw > 0
    range_km = (
        snap.battery_level
        / 100
        * snap.battery_capacity_kwh
        / snap.consumption_kwh_per_km
    )
    amps_now = (
        round(
            snap.charger_power_kw * 1000 / (snap.charger_voltage * snap.charger_phases)
        )
        if charging
        else 0
    )
    voltage = (
        snap.charger_voltage
        if charging
        else (IDLE_PILOT_VOLTAGE if snap.plugged_in else 0)
    )
    added_km = snap.charge_energy_added / snap.consumption_kwh_per_km
    rate_kmh = (
        snap.charger_power_kw * snap.charging_efficiency / snap.consumption_kwh_per_km
    )
    start = snap.scheduled_charging_start
    hours = snap.hours_to_full
    return {
        "battery_heater_on": False,
        "battery_level": round(snap.battery_level),
        "battery_range": _miles(range_km),
        "charge_amps": snap.charge_amps,
        "charge_current_request": snap.charge_amps,
        "charge_current_request_max": snap.charge_amps_max,
        "charge_enable_request": charging,
        "charge_energy_added": round(snap.charge_energy_added, 2),
        "charge_limit_soc": snap.charge_limit_soc,
        "charge_limit_soc_max": CHARGE_LIMIT_MAX,
        "charge_limit_soc_min": CHARGE_LIMIT_MIN,
        "charge_limit_soc_std": CHARGE_LIMIT_STD,
        "charge_miles_added_ideal": _miles(added_km),
        "charge_miles_added_rated": _miles(added_km),
        "charge_port_cold_weather_mode": False,
        "charge_port_color": "<invalid>",
        "charge_port_door_open": snap.plugged_in,
        "charge_port_latch": "Engaged" if snap.plugged_in else "Disengaged",
        "charge_rate": _miles(rate_kmh),
        "charger_actual_current": amps_now,
        "charger_phases": snap.charger_phases if charging else None,
        "charger_pilot_current": snap.charge_amps_max if snap.plugged_in else 0,
        "charger_power": round(snap.charger_power_kw),
        "charger_voltage": voltage,
        "charging_state": snap.charging_state,
        "conn_charge_cable": "IEC" if snap.plugged_in else "<invalid>",
        "est_battery_range": _miles(range_km * 0.9),
        "fast_charger_brand": "<invalid>",
        "fast_charger_present": False,
        "fast_charger_type": "ACSingleWireCAN" if snap.plugged_in else "<invalid>",
        "ideal_battery_range": _miles(range_km),
        "managed_charging_active": False,
        "managed_charging_start_time": None,
        "managed_charging_user_canceled": False,
        "max_range_charge_counter": 0,
        "minutes_to_full_charge": round(hours * 60),
        "not_enough_power_to_heat": None,
        "off_peak_charging_enabled": bool(
            snap.departure.get("off_peak_charging_enabled")
        ),
        "off_peak_charging_times": "all_week",
        "off_peak_hours_end_time": int(snap.departure.get("end_off_peak_time", 0)),
        "preconditioning_enabled": bool(snap.departure.get("preconditioning_enabled")),
        "preconditioning_times": "all_week",
        "scheduled_charging_mode": snap.scheduled_charging_mode,
        "scheduled_charging_pending": snap.scheduled_charging_pending,
        "scheduled_charging_start_time": int(start.timestamp()) if start else None,
        "scheduled_charging_start_time_app": snap.legacy_schedule_time or 0,
        "scheduled_departure_time_minutes": int(
            snap.departure.get("departure_time", 0)
        ),
        "supercharger_session_trip_planner": False,
        "time_to_full_charge": round(hours, 2),
        "timestamp": _ms(snap.time),
        "trip_charging": False,
        "usable_battery_level": max(0, round(snap.battery_level) - 1),
        "user_charge_enable_request": None,
    }


def drive_state(snap: VehicleSnapshot, with_location: bool) -> dict[str, Any]:
    """drive_state; coordinates only when location_data was requested."""
    speed = None if snap.speed_kmh is None else round(snap.speed_kmh / KM_PER_MILE)
    body: dict[str, Any] = {
        "heading": snap.heading,
        "power": round(snap.drive_power_kw),
        "shift_state": snap.shift_state,
        "speed": speed,
        "timestamp": _ms(snap.time),
    }
    if with_location:
        body.update(
            {
                "gps_as_of": int(snap.time.timestamp()),
                "latitude": round(snap.latitude, 6),
                "longitude": round(snap.longitude, 6),
                "native_latitude": round(snap.latitude, 6),
                "native_longitude": round(snap.longitude, 6),
                "native_location_supported": 1,
                "native_type": "wgs",
            }
        )
    return body


def vehicle_state(snap: VehicleSnapshot) -> dict[str, Any]:
    """vehicle_state."""
    return {
        "api_version": API_VERSION,
        "calendar_supported": True,
        "car_version": snap.car_version,
        "center_display_state": 2 if snap.user_present else 0,
        "df": 0,
        "dr": 0,
        "pf": 0,
        "pr": 0,
        "ft": 0,
        "rt": 0,
        "is_user_present": snap.user_present,
        "locked": snap.locked,
        "odometer": round(snap.odometer_km / KM_PER_MILE, 6),
        "remote_start": False,
        "sentry_mode": snap.sentry_mode,
        "sentry_mode_available": True,
        "software_update": {"status": "", "version": " "},
        "timestamp": _ms(snap.time),
        "valet_mode": False,
        "vehicle_name": snap.display_name,
    }


def charge_schedule_data(snap: VehicleSnapshot) -> dict[str, Any]:
    """charge_schedule_data."""
    return {
        "charge_schedules": snap.charge_schedules,
        "charge_buffer": CHARGE_BUFFER,
        "max_num_charge_schedules": MAX_CHARGE_SCHEDULES,
        "next_schedule": any(s["enabled"] for s in snap.charge_schedules),
        "timestamp": _ms(snap.time),
    }


def climate_state(snap: VehicleSnapshot) -> dict[str, Any]:
    """climate_state (static apart from the timestamp)."""
    return {
        "inside_temp": 20.5,
        "outside_temp": 12.0,
        "is_climate_on": False,
        "is_preconditioning": False,
        "battery_heater": False,
        "timestamp": _ms(snap.time),
    }


def gui_settings(snap: VehicleSnapshot) -> dict[str, Any]:
    """gui_settings (metric, 24 h)."""
    return {
        "gui_24_hour_time": True,
        "gui_charge_rate_units": "kW",
        "gui_distance_units": "km/hr",
        "gui_range_display": "Rated",
        "gui_temperature_units": "C",
        "show_range_units": False,
        "timestamp": _ms(snap.time),
    }


def vehicle_config(snap: VehicleSnapshot) -> dict[str, Any]:
    """vehicle_config."""
    return {
        "car_type": snap.car_type,
        "charge_port_type": "CCS",
        "eu_vehicle": True,
        "exterior_color": snap.color or "MidnightSilver",
        "plg": True,
        "can_accept_navigation_requests": True,
        "trim_badging": "74d",
        "timestamp": _ms(snap.time),
    }


_SECTIONS: dict[str, Callable[[VehicleSnapshot], dict[str, Any]]] = {
    "charge_state": charge_state,
    "climate_state": climate_state,
    "drive_state": lambda snap: drive_state(snap, with_location=False),
    "gui_settings": gui_settings,
    "vehicle_config": vehicle_config,
    "vehicle_state": vehicle_state,
    "charge_schedule_data": charge_schedule_data,
}
