"""Constants for Tesla Scout & Worker."""

from __future__ import annotations

from datetime import timedelta
import logging
from typing import Final

DOMAIN: Final = "tesla_scout_worker"
LOGGER = logging.getLogger(__package__)

# Tesla OAuth endpoints and scopes.
AUTHORIZE_URL: Final = "https://auth.tesla.com/oauth2/v3/authorize"
TOKEN_URL: Final = "https://fleet-auth.prd.vn.cloud.tesla.com/oauth2/v3/token"
AUTHORIZE_URL_CN: Final = "https://auth.tesla.cn/oauth2/v3/authorize"
TOKEN_URL_CN: Final = "https://auth.tesla.cn/oauth2/v3/token"  # ou_code CN
AUTHORIZE_PATH: Final = "/oauth2/v3/authorize"
TOKEN_PATH: Final = "/oauth2/v3/token"
SCOPES: Final = (
    "openid",
    "offline_access",
    "vehicle_device_data",
    "vehicle_location",
    "vehicle_cmds",
    "vehicle_charging_cmds",
)
SCOPE_VEHICLE_LOCATION: Final = "vehicle_location"

# Fleet API servers by region (the token's ou_code claim).
FLEET_API_SERVERS: Final = {
    "na": "https://fleet-api.prd.na.vn.cloud.tesla.com",
    "eu": "https://fleet-api.prd.eu.vn.cloud.tesla.com",
    "cn": "https://fleet-api.prd.cn.vn.cloud.tesla.cn",
}
# Hosts a base URL named by Tesla (GET /api/1/users/region) may have.
TESLA_API_HOST_SUFFIXES: Final = (".tesla.com", ".tesla.cn")

# Config entry data keys.
CONF_TOKEN: Final = "token"
CONF_REGION: Final = "region"
CONF_SERVER_URL: Final = "server_url"
CONF_COMMANDS_URL: Final = "commands_url"
CONF_COMMANDS_VERIFY_SSL: Final = "commands_verify_ssl"  # verify the proxy's cert
CONF_COMMANDS_CA_FILE: Final = "commands_ca_file"  # PEM CA to trust for it
CONF_FLEET_API_URL: Final = "fleet_api_url"  # what users/region answered after 421
CONF_FLOW_REQUESTS: Final = "flow_requests"  # billed before the entry existed
CONF_KEY_FILE: Final = "key_file"  # the user's own signing key (PEM), if any
CONF_DOMAIN: Final = "domain"  # the app's domain (hosts its public key), once known
CONF_AUTH_REGION: Final = "auth_region"  # sign in at tesla.com or tesla.cn
AUTH_REGION_GLOBAL: Final = "global"
AUTH_REGION_CHINA: Final = "cn"

# Option keys (defaults below).
CONF_HOME_ZONE: Final = "home_zone"
CONF_ARRIVAL_ENTITIES: Final = "arrival_entities"
CONF_PLUGGED_ENTITY: Final = "plugged_entity"
CONF_IDLE_INTERVAL: Final = "idle_interval"
CONF_ASLEEP_INTERVAL: Final = "asleep_interval"
CONF_DRIVING_MIN_INTERVAL: Final = "driving_min_interval"
CONF_HABIT_INTERVAL: Final = "habit_interval"
CONF_BILL_STATE_CHECKS: Final = "bill_state_checks"
CONF_OFF_PEAK_START: Final = "off_peak_start"
CONF_OFF_PEAK_END: Final = "off_peak_end"
CONF_OFF_PEAK_LIMIT: Final = "off_peak_limit"
CONF_OFF_PEAK_ACTION: Final = "off_peak_action"
CONF_BATTERY_CAPACITY: Final = "battery_capacity"
CONF_CHARGING_POWER: Final = "charging_power"
CONF_LEAD_TIME: Final = "lead_time"
CONF_DAILY_CHECK_TIME: Final = "daily_check_time"
CONF_PRICE_ENTITY: Final = "price_entity"
CONF_CALENDAR_ENTITY: Final = "calendar_entity"

DEFAULT_HOME_ZONE: Final = "zone.home"
DEFAULT_IDLE_INTERVAL: Final = 30  # minutes between checks while parked
DEFAULT_ASLEEP_INTERVAL: Final = 180  # longest wait between checks while asleep
DEFAULT_HABIT_INTERVAL: Final = 8  # minutes where the car usually leaves; 0: off
DEFAULT_DRIVING_MIN_INTERVAL: Final = 1  # minutes, lower bound while driving home
DEFAULT_BILL_STATE_CHECKS: Final = True
DEFAULT_OFF_PEAK_START: Final = "22:00:00"
DEFAULT_OFF_PEAK_END: Final = "06:00:00"
DEFAULT_OFF_PEAK_LIMIT: Final = 80
DEFAULT_OFF_PEAK_ACTION: Final = False
DEFAULT_BATTERY_CAPACITY: Final = 75.0  # kWh
DEFAULT_CHARGING_POWER: Final = 11.0  # kW
DEFAULT_LEAD_TIME: Final = 120  # minutes before charging start
DEFAULT_DAILY_CHECK_TIME: Final = "23:00:00"

# Fleet API billing (pay per use), USD per request.
PRICE_DATA: Final = 0.002
PRICE_COMMAND: Final = 0.001
PRICE_WAKE: Final = 0.02
MONTHLY_CREDIT: Final = 10.0

UPDATE_TIMEOUT: Final = timedelta(seconds=30)
