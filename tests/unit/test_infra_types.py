"""Every resource in infra/ against Azure's own type definitions, offline and in milliseconds.

The definitions are vendored from Azure/bicep-types-az (tests/reference/azure-types, MIT); see
tests/unit/bicep_types.py for what is checked and tests/reference/README.md for their source.
Planted mistakes in temporary copies prove that the check fails where Azure would."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pycep import BicepParser

from tests.unit.bicep_types import (
    FLEX_CONSUMPTION_REJECTED_SITE_CONFIG,
    DeploymentFailed,
    TypeIndex,
    check_file,
    evaluate,
)

ROOT = Path(__file__).resolve().parents[2]
INFRA = ROOT / "infra"
TYPES = ROOT / "tests" / "reference" / "azure-types"
BICEP_FILES = sorted([*INFRA.glob("*.bicep"), *(INFRA / "app").glob("*.bicep")])


@pytest.fixture(scope="module")
def index() -> TypeIndex:
    return TypeIndex(TYPES)


@pytest.mark.parametrize("path", BICEP_FILES, ids=lambda p: str(p.relative_to(INFRA)))
def test_every_resource_property_exists_with_its_type_and_is_writable(path: Path, index: TypeIndex) -> None:
    assert check_file(path, index) == []


def test_every_vendored_type_file_is_used_and_licensed() -> None:
    used = set()
    for path in BICEP_FILES:
        for resource in (BicepParser().parse(file_path=path).get("resources") or {}).values():
            used.add(f"{resource['type']}@{resource['api_version']}".lower())
    for path in sorted(TYPES.glob("*.json")):
        declared = {e["name"].lower() for e in json.loads(path.read_text()) if e["$type"] == "ResourceType"}
        assert declared & used, f"{path.name} is vendored but no template uses its types"
    assert (TYPES / "LICENSE-bicep-types-az").read_text().strip().startswith("MIT License")
    table = (ROOT / "tests" / "reference" / "README.md").read_text()
    for path in sorted(TYPES.glob("*.json")):
        assert path.name in table, f"tests/reference/README.md does not list {path.name}"


def plant(tmp_path: Path, source: str, old: str, new: str) -> Path:
    """A temporary copy of an infra file with one mistake planted in it."""
    text = (INFRA / source).read_text()
    assert old in text, f"{old!r} is not in {source}"
    copy = tmp_path / Path(source).name
    for sibling in (INFRA / "app").glob("*.json"):
        (tmp_path / sibling.name).write_text(sibling.read_text())
    copy.write_text(text.replace(old, new, 1))
    return copy


def test_a_planted_unknown_property_fails(tmp_path: Path, index: TypeIndex) -> None:
    unknown = "allowSharedKeyAccess: false\n    allowSharedKeys: false"
    planted = plant(tmp_path, "app/storage.bicep", "allowSharedKeyAccess: false", unknown)
    problems = check_file(planted, index)
    assert len(problems) == 1
    assert "properties.allowSharedKeys: no such property" in problems[0]


@pytest.mark.parametrize(
    ("source", "old", "new", "expected"),
    [
        (
            "app/storage.bicep",
            "allowSharedKeyAccess: false",
            "allowSharedKeyAccess: 'false'",
            "allowSharedKeyAccess: expects a bool",
        ),
        (
            "app/storage.bicep",
            "defaultAction: 'Allow'",
            "defaultAction: 'Allowed'",
            "defaultAction: 'Allowed' matches none",
        ),
        (
            "app/storage.bicep",
            "supportsHttpsTrafficOnly: true",
            "primaryEndpoints: {}",
            "primaryEndpoints: is read-only",
        ),
        (
            "app/storage.bicep",
            "days: 7",
            "days: '7'",
            "days: expects an integer",
        ),
        (
            "app/storage.bicep",
            "storageAccounts@2023-05-01' = {",
            "storageAccounts@2023-05-02' = {",
            "no such resource type and API version",
        ),
        (
            "app/alerts.bicep",
            "groupShortName: 'mtgcancel'",
            "shortName: 'mtgcancel'",
            "groupShortName: is required",
        ),
        (
            "app/alerts.bicep",
            "minFailingPeriodsToAlert: 3",
            "minFailingPeriodsToAlert: '3'",
            "minFailingPeriodsToAlert: expects an integer",
        ),
        (
            "app/api.bicep",
            "name: 'appsettings'",
            "name: 'appSettings'",
            ".name: must be one of",
        ),
        (
            "app/api.bicep",
            "unauthenticatedClientAction: 'Return401'",
            "unauthenticatedClientAction: 'Return 401'",
            "matches none",
        ),
        (
            "app/dashboard.bicep",
            "serializedData: string(workbookContent)",
            "serializedData: workbookContent",
            "serializedData: expects a string, gets object",
        ),
        (
            "app/identity.bicep",
            "tags: tags",
            "tags: tags\n  sku: 'Standard'",
            ".sku: no such property",
        ),
    ],
)
def test_planted_mistakes_of_each_kind_fail(
    tmp_path: Path, index: TypeIndex, source: str, old: str, new: str, expected: str
) -> None:
    problems = check_file(plant(tmp_path, source, old, new), index)
    assert any(expected in problem for problem in problems), problems


@pytest.mark.parametrize("rejected", sorted(FLEX_CONSUMPTION_REJECTED_SITE_CONFIG))
def test_site_config_that_flex_consumption_rejects_fails(tmp_path: Path, index: TypeIndex, rejected: str) -> None:
    value = "'Disabled'" if rejected == "ftpsState" else ("false" if rejected[0] in "uf" else "'v4.0'")
    tls = "minTlsVersion: '1.2'"
    planted = plant(tmp_path, "app/api.bicep", tls, f"{tls}\n      {rejected}: {value}")
    problems = check_file(planted, index)
    assert any(f"siteConfig.{rejected}: Flex Consumption rejects" in p for p in problems), problems


def test_the_flex_rule_applies_only_to_flex_consumption_sites(tmp_path: Path, index: TypeIndex) -> None:
    text = (INFRA / "app/api.bicep").read_text()
    start = text.index("    functionAppConfig: {")
    end = text.index("\n    }\n", text.index("      runtime: {")) + len("\n    }\n")
    classic = tmp_path / "api.bicep"
    ftps = "minTlsVersion: '1.2'\n      ftpsState: 'Disabled'"
    classic.write_text(text[:start] + text[end:].replace("minTlsVersion: '1.2'", ftps, 1))
    assert check_file(classic, index) == []


def test_a_module_parameter_the_module_does_not_declare_fails(tmp_path: Path, index: TypeIndex) -> None:
    (tmp_path / "identity.bicep").write_text((INFRA / "app/identity.bicep").read_text())
    caller = tmp_path / "caller.bicep"
    caller.write_text(
        "module identity 'identity.bicep' = {\n  name: 'identity'\n  params: {\n"
        "    name: 'id-x'\n    location: 'westeurope'\n    tags: {}\n    colour: 'blue'\n  }\n}\n"
    )
    assert check_file(caller, index) == [
        "caller.bicep: module identity: passes 'colour', which identity.bicep does not declare"
    ]
    caller.write_text(caller.read_text().replace("    colour: 'blue'\n", "").replace("    tags: {}\n", ""))
    assert check_file(caller, index) == [
        "caller.bicep: module identity: does not pass required parameter 'tags' of identity.bicep"
    ]


def test_entra_without_an_api_client_id_fails_the_deployment_with_a_message() -> None:
    checks = BicepParser().parse(file_path=INFRA / "app/checks.bicep")
    rule = checks["outputs"]["apiClientId"]["value"]
    with pytest.raises(DeploymentFailed, match="CALLER_AUTH=entra needs API_CLIENT_ID") as failed:
        evaluate(rule, {"callerAuth": "entra", "apiClientId": ""})
    assert "azd env set API_CLIENT_ID" in str(failed.value)
    assert evaluate(rule, {"callerAuth": "entra", "apiClientId": "1d0c"}) == "1d0c"
    assert evaluate(rule, {"callerAuth": "functionKey", "apiClientId": ""}) == ""
    main = BicepParser().parse(file_path=INFRA / "main.bicep")
    assert main["modules"]["checks"]["config"]["params"] == {"callerAuth": "callerAuth", "apiClientId": "apiClientId"}
    passed = json.dumps(main["modules"]["api"]["config"]["params"]["apiClientId"])
    assert '"checks"' in passed, "the app must get the checked client id"
    assert '"apiClientId"' in passed


def test_only_the_function_app_carries_the_azd_service_name_tag() -> None:
    main = BicepParser().parse(file_path=INFRA / "main.bicep")
    tagged = [name for name, module in main["modules"].items() if "azd-service-name" in json.dumps(module)]
    assert tagged == []
    api = BicepParser().parse(file_path=INFRA / "app/api.bicep")
    holders = [name for name, r in api["resources"].items() if "azd-service-name" in json.dumps(r)]
    assert holders == ["functionApp"]
    assert api["resources"]["plan"]["config"]["tags"] == "tags"
    every_other = [p for p in BICEP_FILES if p.name != "api.bicep"]
    assert not any("azd-service-name" in p.read_text() for p in every_other)


def test_app_settings_name_the_tenant_the_body_limit_and_the_telemetry_identity() -> None:
    api = BicepParser().parse(file_path=INFRA / "app/api.bicep")
    settings = api["resources"]["appSettings"]["config"]["properties"]
    assert settings["ENTRA_TENANT_ID"] == "tenantId"
    assert "tenant" in json.dumps(api["parameters"]["tenantId"]["default"])
    assert settings["FUNCTIONS_REQUEST_BODY_SIZE_LIMIT"]["function"]["type"] == "string"
    assert api["parameters"]["requestBodyLimitBytes"]["default"] == 65536
    assert settings["APPLICATIONINSIGHTS_AUTHENTICATION_STRING"] == "Authorization=AAD;ClientId=${identityClientId}"
    assert settings["CALLER_AUTH"] == "callerAuth"


def test_reading_an_output_the_module_does_not_declare_fails(tmp_path: Path, index: TypeIndex) -> None:
    for name in ("identity.bicep",):
        (tmp_path / name).write_text((INFRA / "app" / name).read_text())
    caller = tmp_path / "caller.bicep"
    caller.write_text(
        "module identity 'identity.bicep' = {\n  name: 'identity'\n  params: {\n"
        "    name: 'id-x'\n    location: 'westeurope'\n    tags: {}\n  }\n}\n"
        "output CLIENT string = identity.outputs.clientId\n"
        "output OBJECT string = identity.outputs.objectId\n"
    )
    assert check_file(caller, index) == [
        "caller.bicep: module identity: reads output 'objectId', which identity.bicep does not declare"
    ]
