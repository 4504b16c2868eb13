"""The main job in a real Home Assistant with its real frontend, as a person does it.

The tests run in order on one logged-in page: add the integration through the
config flow, read the entities on the demo dashboard, plan a special charging
session with the dashboard's button and look at it in Developer tools. The
last test fails on any browser error that is not on the allow-list and on
warnings or errors the integration logged.
"""

from __future__ import annotations

from datetime import UTC, datetime
import re

from playwright.sync_api import Page, expect
import pytest

from demo.launch import DASHBOARD_PATH, DOMAIN, TEMPLATE_DIR, Demo
from demo.simulator import DEFAULT_PROFILE, Profile, build_simulator
from homeassistant.util.yaml import load_yaml
from tests_e2e.helpers import (
    BrowserLog,
    HomeAssistantApi,
    Screenshots,
    tile,
    tile_value,
)

ACCOUNT = "driver@example.com"
CAR = "Sim Model 3"
FLOW_TIMEOUT = 60_000  # ms: the sign-in window and the first look at the car


def test_demo_profile_compresses_the_day() -> None:
    """scripts/develop's profile loads and schedules two steps per cycle."""
    profile = Profile.load(DEFAULT_PROFILE)
    assert profile.day is not None
    sim = build_simulator(profile, now=datetime.now(UTC))
    assert sim.pending_events == len(profile.day.steps) * profile.day.cycles
    assert sim.vehicle().plugged_in


def test_add_integration_through_the_config_flow(
    page: Page, demo: Demo, shots: Screenshots, api: HomeAssistantApi
) -> None:
    """Settings > Devices & services > Add integration, signing in at the simulator."""
    page.goto(f"{demo.ha_url}/config/integrations/dashboard")
    page.get_by_role("button", name="Add integration").click()
    page.get_by_placeholder("Search for a brand name").press_sequentially(
        "Tesla Scout", delay=30
    )
    expect(page.get_by_text("Tesla Scout & Worker", exact=True)).to_be_visible()
    # The integration's own brand image (brand/icon.png), served by Home
    # Assistant; a missing one would be a 404 and a console error.
    expect(
        page.locator(f"img[src*='/api/brands/integration/{DOMAIN}/']")
    ).to_be_visible()
    shots.take(page, "add-integration", docs=True)
    page.get_by_text("Tesla Scout & Worker", exact=True).click()

    # The first step: a collapsed section holds the optional server URL.
    dialog = page.locator("ha-dialog")
    server_url = dialog.locator("wa-input[name=server_url]")
    section = dialog.locator("ha-expansion-panel").filter(
        has=page.locator("wa-input[name=server_url]")
    )
    expect(section).to_be_visible()
    expect(server_url).to_be_hidden()
    section.locator("#summary").click()
    server_url.locator("input").fill(demo.sim_url)
    shots.take(page, "config-flow-server", docs=True)
    # One set of application credentials: the flow goes straight to the
    # sign-in window, which the simulator approves and sends back.
    with page.context.expect_page(timeout=FLOW_TIMEOUT) as popup:
        dialog.get_by_role("button", name="Submit").click()
    assert popup.value is not None

    # Signed in: the triggers are offered before the entry is created, with
    # what the integration proposes pre-selected; submitted as proposed.
    expect(dialog).to_contain_text(
        "Check the car when you arrive or leave", timeout=FLOW_TIMEOUT
    )
    expect(dialog).to_contain_text("Arrival triggers")
    expect(dialog).to_contain_text("Plugged-in trigger")
    shots.take(page, "config-flow-triggers")
    dialog.get_by_role("button", name="Submit").click()

    # The entry is created; the last step names the devices it brought and
    # assigns them to areas: the account and the car.
    expect(dialog.get_by_text("Name and assign")).to_be_visible(timeout=FLOW_TIMEOUT)
    expect(dialog).to_contain_text("Signed in to Tesla.")
    names = dialog.get_by_role("textbox", name="Device name")
    expect(names).to_have_count(2)
    expect(names.nth(0)).to_have_value(ACCOUNT)
    expect(names.nth(1)).to_have_value(CAR)
    expect(dialog).to_contain_text("Fleet API account")
    expect(dialog.get_by_role("img", name="Tesla Scout & Worker")).to_have_count(2)
    shots.take(page, "config-flow-success", docs=True)
    dialog.get_by_role("button", name="Skip and finish").click()
    expect(page.get_by_text("Tesla Scout & Worker")).to_be_visible()
    shots.take(page, "integrations")

    # The sign-in really went through the simulator's authorize page.
    paths = [(r["method"], r["path"]) for r in api.sim_state()["requests"]]
    assert ("GET", "/oauth2/v3/authorize") in paths
    assert ("POST", "/oauth2/v3/token") in paths
    entries = api.request("GET", f"/api/config/config_entries/entry?domain={DOMAIN}")
    assert [(e["title"], e["state"]) for e in entries] == [(ACCOUNT, "loaded")]


def test_entities_show_the_simulators_values(
    page: Page, demo: Demo, shots: Screenshots, api: HomeAssistantApi
) -> None:
    """The dashboard shows the car as the simulator has it."""
    sim = api.sim_state()
    car = next(iter(sim["vehicles"].values()))
    cost = sim["ledger"]["cost_usd"]  # what the simulator billed so far
    battery = round(car["battery_level"])
    limit = int(car["charge_limit_soc"])
    assert (battery, limit, car["plugged_in"]) == (64, 80, False)  # the profile

    page.goto(f"{demo.ha_url}{DASHBOARD_PATH}")
    expect(tile_value(page, "Battery")).to_have_text(f"{battery}%")
    expect(tile_value(page, "Charge limit")).to_have_text(f"{limit}%")
    expect(tile_value(page, "At home")).to_have_text("Home")
    expect(tile_value(page, "Plugged in")).to_have_text("Unplugged")
    expect(tile_value(page, "Charging state")).to_have_text("Disconnected")
    expect(tile_value(page, "Vehicle state")).to_have_text("Online")
    expect(tile_value(page, "Token status")).to_have_text("Valid")
    expect(tile_value(page, "Session")).to_have_text("None")
    expect(tile_value(page, "Estimated cost")).to_have_text(f"${cost:.3f}")
    expect(page.locator("hui-map-card")).to_be_visible()
    shots.take(page, "dashboard", height=-1)

    # Cross-check through the REST API.
    assert api.state("sensor.sim_model_3_battery") == str(battery)
    assert api.state("sensor.sim_model_3_charge_limit") == str(limit)
    assert api.state("binary_sensor.sim_model_3_at_home") == "on"
    assert api.state("binary_sensor.sim_model_3_plugged_in") == "off"
    assert api.state("sensor.driver_example_com_token_status") == "valid"
    spend = api.state("sensor.driver_example_com_fleet_api_cost_this_month")
    assert float(spend) == pytest.approx(cost)
    tracker = api.request("GET", "/api/states/device_tracker.sim_model_3_location")
    assert tracker["state"] == "home"
    assert tracker["attributes"]["latitude"] == car["location"]["lat"]
    assert tracker["attributes"]["longitude"] == car["location"]["lon"]

    # Every entity the dashboard names exists (a renamed entity would show
    # only a warning card, not an error).
    known = {state["entity_id"] for state in api.request("GET", "/api/states")}
    assert dashboard_entities() - known == set()

    # The car's device page lists its entities.
    page.goto(f"{demo.ha_url}/config/devices/dashboard")
    page.get_by_text(CAR, exact=True).click()
    expect(page.get_by_text("Force update")).to_be_visible()
    shots.take(page, "device", height=1250)


def test_plan_special_charging_from_the_dashboard(
    page: Page, demo: Demo, shots: Screenshots, api: HomeAssistantApi
) -> None:
    """The dashboard's button plans a session; its sensors show it."""
    page.goto(f"{demo.ha_url}{DASHBOARD_PATH}")
    expect(tile_value(page, "Session")).to_have_text("None")
    tile(page, "Plan special charging").click()
    expect(tile_value(page, "Session")).to_have_text("Scheduled")
    for name in ("Schedule sent at", "Charging starts", "Charging ends"):
        expect(tile_value(page, name)).not_to_have_text("Unknown")
    shots.take(page, "dashboard-session", height=-1, docs=True)

    sessions = api.request(
        "POST", f"/api/services/{DOMAIN}/list_sessions?return_response", {}
    )["service_response"]["sessions"]
    assert len(sessions) == 1
    session = sessions[0]
    assert (session["state"], session["target_soc"], session["mode"]) == (
        "scheduled",
        90,
        "off_peak",
    )
    assert session["vehicle"] == CAR
    assert datetime.fromisoformat(session["ready_by"]).strftime("%H:%M") == "07:00"
    assert api.state("sensor.sim_model_3_special_charging") == "scheduled"


def test_sessions_in_developer_tools(
    page: Page, demo: Demo, shots: Screenshots
) -> None:
    """Developer tools > Actions runs list_sessions and shows the response."""
    page.goto(f"{demo.ha_url}/developer-tools/action")
    page.get_by_role("button", name="YAML mode").click()
    editor = page.locator("ha-code-editor .cm-content").first
    # The editor shows the previously chosen action first; a fill that lands
    # before it has rendered is overwritten, so wait for it and fill again if so.
    expect(editor).to_contain_text("action:")
    # The action picker above the editor shows the action the YAML names.
    picked = page.locator("ha-service-picker ha-picker-field")
    action_id = picked.locator("[slot=supporting-text]")
    for _ in range(3):
        editor.fill(f"action: {DOMAIN}.list_sessions\ndata: {{}}\n")
        try:
            expect(action_id).to_have_text(f"{DOMAIN}.list_sessions", timeout=3000)
            break
        except AssertionError:
            continue
    expect(action_id).to_have_text(f"{DOMAIN}.list_sessions")
    expect(picked.locator("[slot=headline]")).to_have_text(
        "List special charging sessions"
    )
    page.get_by_role("button", name="Perform action").click()
    response = page.locator("ha-code-editor .cm-content").nth(1)
    expect(response).to_contain_text("state: scheduled")
    expect(response).to_contain_text("target_soc: 90")
    expect(response).to_contain_text(f"vehicle: {CAR}")
    shots.take(page, "developer-tools-sessions", height=1250)


def test_every_integration_was_set_up(demo: Demo) -> None:
    """Home Assistant set up everything it loads: no requirement is missing.

    The demo runs Home Assistant with --skip-pip, so a requirement missing
    from requirements_demo.txt fails that integration's setup (one of the
    voice ones leaves the frontend on "Loading...").
    """
    log = (demo.config_dir / "home-assistant.log").read_text(encoding="utf-8")
    failed = [
        line
        for line in log.splitlines()
        if "[homeassistant.setup] Setup failed for" in line
        or "[homeassistant.setup] Unable to set up dependencies" in line
    ]
    assert not failed, "\n".join(failed)


def test_no_errors_from_the_integration(browser_log: BrowserLog, demo: Demo) -> None:
    """No browser error beyond the allow-list; no warning logged by the integration."""
    assert not browser_log.unexpected(), "\n".join(
        str(p) for p in browser_log.unexpected()
    )
    assert not integration_log_problems(demo), "\n".join(integration_log_problems(demo))


def dashboard_entities() -> set[str]:
    """Return the entity ids the demo dashboard and its scripts refer to."""
    found: set[str] = set()

    def walk(node: object) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key in {"entity", "entity_id"}:
                    found.update([value] if isinstance(value, str) else value)
                walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(load_yaml(TEMPLATE_DIR / "dashboards" / "tesla.yaml"))
    scripts = (TEMPLATE_DIR / "scripts.yaml").read_text()
    found.update(re.findall(r"device_id\('([a-z_]+\.[a-z0-9_]+)'\)", scripts))
    return found


LOG_RECORD = re.compile(
    r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+ (?P<level>[A-Z]+) \([^)]*\) \[(?P<logger>[^\]]+)\]"
)


def integration_log_problems(demo: Demo) -> list[str]:
    """Warnings and errors in Home Assistant's log that concern the integration."""
    log = (demo.config_dir / "home-assistant.log").read_text(encoding="utf-8")
    records: list[tuple[str, str, str]] = []
    for line in log.splitlines():
        if match := LOG_RECORD.match(line):
            records.append((match["level"], match["logger"], line))
        elif records:  # a traceback or a multi-line message
            level, logger, text = records[-1]
            records[-1] = (level, logger, f"{text}\n{line}")
    problems = []
    for level, logger, text in records:
        ours = logger.startswith(f"custom_components.{DOMAIN}")
        if (ours and level in {"WARNING", "ERROR", "CRITICAL"}) or (
            level in {"ERROR", "CRITICAL"} and DOMAIN in text
        ):
            problems.append(text)
    return problems
