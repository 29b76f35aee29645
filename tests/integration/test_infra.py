"""The deployment, checked offline: every Bicep file parses, checkov passes, the templates keep the
promises (no shared keys, identity-based storage, least-privilege roles, no secrets), and the azd
hook that grants the Graph permission retries while a new identity replicates.

Resource types and properties are checked against Azure's type definitions in
tests/unit/test_infra_types.py; this file holds the checks that run tools or scripts."""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path
from typing import Any

import jsonschema  # type: ignore[import-untyped]
import pytest
from pycep import BicepParser

ROOT = Path(__file__).resolve().parents[2]
INFRA = ROOT / "infra"
REFERENCE = ROOT / "tests" / "reference"
BICEP_FILES = sorted(INFRA.rglob("*.bicep"))
ROLES = {
    "b7e6dc6d-f1e8-4753-8033-0f276bb0955b": "Storage Blob Data Owner",
    "974c5e8b-45b9-4653-ba55-5f855dd0fb88": "Storage Queue Data Contributor",
    "0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3": "Storage Table Data Contributor",
    "3913510d-42f4-4e42-8a64-420c390055eb": "Monitoring Metrics Publisher",
}


def parse(name: str) -> dict[str, Any]:
    return dict(BicepParser().parse(file_path=INFRA / name))


def config(template: dict[str, Any], resource: str) -> dict[str, Any]:
    found = template["resources"][resource]["config"]
    return dict(found.get("config", found))


@pytest.mark.parametrize("path", BICEP_FILES, ids=lambda p: str(p.relative_to(INFRA)))
def test_every_bicep_file_parses(path: Path) -> None:
    parsed = BicepParser().parse(file_path=path)
    assert parsed.get("resources") or parsed.get("modules") or parsed.get("outputs")


def test_checkov_bicep_checks_pass_with_reasons_for_every_skip() -> None:
    checkov = Path(os.environ.get("CHECKOV", ROOT / ".venv-tools" / "bin" / "checkov"))
    assert checkov.exists(), "checkov is installed by 'make test' into .venv-tools"
    # checkov's Bicep parser (pycep 0.5) predates fail(); app/checks.bicep declares no resource, only
    # the parameter check that uses it, so checkov has nothing to check there. pycep 0.7 parses it above.
    result = subprocess.run(
        [
            str(checkov),
            "-d",
            str(INFRA),
            "--framework",
            "bicep",
            "--skip-download",
            "--compact",
            "-o",
            "json",
            "--skip-path",
            "infra/app/checks.bicep",
        ],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
        env={**os.environ, "BC_SKIP_MAPPING": "TRUE"},
    )
    report = json.loads(result.stdout)
    report = report[0] if isinstance(report, list) else report
    failed = [(c["check_id"], c["file_path"], c["resource"]) for c in report["results"]["failed_checks"]]
    assert failed == []
    assert report["results"]["parsing_errors"] == []
    assert report["summary"]["passed"] > 10
    for path in BICEP_FILES:
        for line in path.read_text().splitlines():
            if "checkov:skip=" in line:
                reason = line.split("checkov:skip=", 1)[1].split(":", 1)
                assert len(reason) == 2, f"{path.name}: a skip without a reason: {line.strip()}"
                assert len(reason[1].strip()) > 20, f"{path.name}: too short a reason: {line.strip()}"


def test_storage_refuses_shared_keys_and_old_tls() -> None:
    storage = parse("app/storage.bicep")
    properties = config(storage, "storage")["properties"]
    assert properties["allowSharedKeyAccess"] is False
    assert properties["allowBlobPublicAccess"] is False
    assert properties["minimumTlsVersion"] == "TLS1_2"
    assert properties["supportsHttpsTrafficOnly"] is True
    names = {n: config(storage, n)["name"] for n in ("workQueue", "poisonQueue", "statusTable")}
    assert storage["parameters"]["queueName"]["default"] == "cancel-requests"
    assert "-poison" in json.dumps(names["poisonQueue"])
    assert storage["parameters"]["tableName"]["default"] == "cancellations"


def test_function_app_is_flex_consumption_python_311_with_identity_everywhere() -> None:
    api = parse("app/api.bicep")
    plan = config(api, "plan")
    assert plan["sku"] == {"name": "FC1", "tier": "FlexConsumption"}
    assert plan["properties"]["reserved"] is True
    app = config(api, "functionApp")
    assert app["kind"] == "functionapp,linux"
    assert app["identity"]["type"] == "UserAssigned"
    properties = app["properties"]
    assert properties["httpsOnly"] is True
    assert "ftpsState" not in properties["siteConfig"]  # Flex Consumption rejects it
    assert properties["siteConfig"]["minTlsVersion"] == "1.2"
    for policy in ("ftpCredentials", "scmCredentials"):  # FTP and basic-auth publishing stay off
        assert config(api, policy)["properties"] == {"allow": False}
    function_config = properties["functionAppConfig"]
    assert function_config["runtime"] == {"name": "python", "version": "3.11"}
    assert function_config["deployment"]["storage"]["authentication"]["type"] == "UserAssignedIdentity"


def test_app_settings_are_identity_based_and_hold_no_secret() -> None:
    api = parse("app/api.bicep")
    app_settings = config(api, "appSettings")["properties"]
    assert app_settings["AzureWebJobsStorage__credential"] == "managedidentity"
    for name in ("clientId", "blobServiceUri", "queueServiceUri", "tableServiceUri"):
        assert f"AzureWebJobsStorage__{name}" in app_settings
    assert "AzureWebJobsStorage" not in app_settings
    for name in (
        "CANCEL_QUEUE_NAME",
        "STATUS_TABLE_NAME",
        "GRAPH_BASE_URL",
        "AZURE_CLIENT_ID",
        "ALLOWED_ORGANIZERS",
        "CALLER_AUTH",
        "APPLICATIONINSIGHTS_AUTHENTICATION_STRING",
    ):
        assert name in app_settings
    assert "FUNCTIONS_WORKER_RUNTIME" not in app_settings  # Flex Consumption sets the runtime itself
    text = json.dumps(app_settings)
    for secret in ("AccountKey", "SharedAccessKey", "listKeys", "InstrumentationKey=", "secret", "password"):
        assert secret.lower() not in text.lower()


def test_no_template_reads_keys_or_declares_secrets() -> None:
    for path in BICEP_FILES:
        text = path.read_text()
        assert not re.search(r"listKeys|listAccountSas|AccountKey=|DefaultEndpointsProtocol", text, re.IGNORECASE), (
            path.name
        )
        assert "@secure()" not in text, path.name


def test_role_assignments_are_least_privilege_and_named_by_scope_principal_and_role() -> None:
    rbac = parse("app/rbac.bicep")
    assert set(rbac["variables"]["roles"]["value"].values()) == set(ROLES)
    for name in ("storageAssignments", "metricsPublisher"):
        assignment = config(rbac, name)
        guid = assignment["name"]["function"]
        assert guid["type"] == "guid"
        parameters = guid["parameters"]
        assert parameters["base_string"]["operator"]["operands"]["operand_2"] == "id"
        assert parameters["extra_string_1"] == "principalId"
        assert assignment["properties"]["principalType"] == "ServicePrincipal"


def test_monitoring_disables_local_authentication() -> None:
    monitoring = parse("app/monitoring.bicep")
    assert config(monitoring, "applicationInsights")["properties"]["DisableLocalAuth"] is True
    assert config(monitoring, "logAnalytics")["properties"]["features"]["disableLocalAuth"] is True


def test_main_offers_caller_mode_and_national_clouds_and_upper_snake_outputs() -> None:
    main = parse("main.bicep")
    caller = main["parameters"]["callerAuth"]
    assert caller["default"] == "functionKey"
    assert "entra" in json.dumps(caller["decorators"])
    clouds = main["variables"]["graphBaseUrls"]["value"]
    assert clouds["usGovL5"] == "https://dod-graph.microsoft.us/v1.0"
    assert clouds["china"] == "https://microsoftgraph.chinacloudapi.cn/v1.0"
    assert all(re.fullmatch(r"[A-Z][A-Z0-9_]*", name) for name in main["outputs"])
    parameters = json.loads((INFRA / "main.parameters.json").read_text())["parameters"]
    assert set(parameters) == set(main["parameters"])


def load_schema(relative: str) -> dict[str, Any]:
    return dict(json.loads((REFERENCE / relative).read_text()))


@pytest.mark.parametrize(
    ("document", "schema"),
    [
        ("host.json", "azure-functions/host.json.schema.json"),
        ("local.settings.example.json", "azure-functions/local.settings.json.schema.json"),
    ],
)
def test_function_files_validate_against_the_published_schemas(document: str, schema: str) -> None:
    jsonschema.validate(json.loads((ROOT / document).read_text()), load_schema(schema))


# --- azd: the version it needs, and the hook that grants the Graph permission ---------------------

SCRIPTS = INFRA / "scripts"
GRAPH_SP = "5b1f0c2e-0000-4000-8000-00000000c0de"
PRINCIPAL = "9d3e7a10-0000-4000-8000-0000000000aa"

# A stand-in for the Azure CLI on PATH: answers `az rest` as Graph would while a new identity is
# still replicating (STUB_NOT_REPLICATED_FOR calls answer 404), records every call in STUB_LOG.
STUB_AZ = r"""#!/usr/bin/env bash
echo "$*" >> "$STUB_LOG"
count=$(( $(cat "$STUB_STATE" 2>/dev/null || echo 0) + 1 )); echo "$count" > "$STUB_STATE"
case "$*" in
  *"appId='00000003-0000-0000-c000-000000000000'"*) echo "$STUB_GRAPH_SP" ;;
  *"--method GET"*appRoleAssignments*)
    if [ "$STUB_MODE" = forbidden ]; then
      echo "ERROR: Forbidden({\"error\":{\"code\":\"Authorization_RequestDenied\"}})" >&2; exit 1
    fi
    if [ "$(grep -c appRoleAssignments "$STUB_LOG")" -le "$STUB_NOT_REPLICATED_FOR" ]; then
      echo "ERROR: Not Found({\"error\":{\"code\":\"Request_ResourceNotFound\"}})" >&2; exit 1
    fi
    if [ "$STUB_MODE" = granted ]; then echo 1; else echo 0; fi ;;
  *"--method POST"*) echo '{"id": "assignment"}' ;;
  *) echo "unexpected: $*" >&2; exit 2 ;;
esac
"""


def run_hook(
    tmp_path: Path, mode: str = "new", not_replicated_for: int = 0, **env: str
) -> tuple[subprocess.CompletedProcess[str], list[str]]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    (bin_dir / "az").write_text(STUB_AZ)
    (bin_dir / "az").chmod(0o755)
    log = tmp_path / "az.log"
    settings = {
        "PATH": f"{bin_dir}:{os.environ['PATH']}",
        "STUB_LOG": str(log),
        "STUB_STATE": str(tmp_path / "az.count"),
        "STUB_MODE": mode,
        "STUB_NOT_REPLICATED_FOR": str(not_replicated_for),
        "STUB_GRAPH_SP": GRAPH_SP,
        "MANAGED_IDENTITY_PRINCIPAL_ID": PRINCIPAL,
        "GRAPH_BASE_URL": "https://graph.microsoft.us/v1.0",
        "GRANT_ATTEMPTS": "4",
        "GRANT_RETRY_SECONDS": "0",
        **env,
    }
    result = subprocess.run(
        ["sh", str(SCRIPTS / "postprovision.sh")], capture_output=True, text=True, timeout=60, check=False, env=settings
    )
    return result, (log.read_text().splitlines() if log.exists() else [])


def test_azure_yaml_names_the_azd_version_and_the_postprovision_hook() -> None:
    import yaml  # type: ignore[import-untyped]

    project = yaml.safe_load((ROOT / "azure.yaml").read_text())
    assert project["requiredVersions"]["azd"] == ">= 1.23.4"
    assert project["services"] == {"api": {"project": ".", "language": "python", "host": "function"}}
    hook = project["hooks"]["postprovision"]
    assert hook["posix"] == {"shell": "sh", "run": "infra/scripts/postprovision.sh"}
    assert hook["windows"] == {"shell": "pwsh", "run": "infra/scripts/postprovision.ps1"}
    for script in (hook["posix"]["run"], hook["windows"]["run"]):
        assert (ROOT / script).exists()
    ignored = (ROOT / ".funcignore").read_text().split()
    assert "tests" in ignored, "tests (and so tests/reference) stay out of the package"


def test_without_grant_graph_permission_the_hook_calls_nothing(tmp_path: Path) -> None:
    result, calls = run_hook(tmp_path, GRANT_GRAPH_PERMISSION="false")
    assert result.returncode == 0, result.stderr
    assert calls == []
    assert "an administrator grants Calendars.ReadWrite" in result.stdout


def test_the_grant_waits_for_a_new_identity_to_replicate_then_assigns_once(tmp_path: Path) -> None:
    result, calls = run_hook(tmp_path, not_replicated_for=2, GRANT_GRAPH_PERMISSION="true")
    assert result.returncode == 0, result.stderr
    assert result.stderr.count("retrying") == 2
    posts = [c for c in calls if "--method POST" in c]
    assert len(posts) == 1
    assert f"servicePrincipals/{PRINCIPAL}/appRoleAssignments" in posts[0]
    assert '"appRoleId": "ef54d2bf-783f-4e0f-bca1-3210c0444d99"' in posts[0]
    assert f'"resourceId": "{GRAPH_SP}"' in posts[0]
    assert all("--resource https://graph.microsoft.us " in c and "https://graph.microsoft.us/v1.0/" in c for c in calls)
    assert "Granted Calendars.ReadWrite (application)" in result.stdout


def test_entra_mode_also_grants_user_read_all_for_organizer_lookups(tmp_path: Path) -> None:
    result, calls = run_hook(tmp_path, GRANT_GRAPH_PERMISSION="true", CALLER_AUTH="entra")
    assert result.returncode == 0, result.stderr
    posts = [c for c in calls if "--method POST" in c]
    assert len(posts) == 2
    assert '"appRoleId": "ef54d2bf-783f-4e0f-bca1-3210c0444d99"' in posts[0]
    assert '"appRoleId": "df021288-bdef-4463-88db-98f22de89214"' in posts[1]
    assert "Granted User.Read.All (application)" in result.stdout


def test_an_existing_grant_is_left_alone(tmp_path: Path) -> None:
    result, calls = run_hook(tmp_path, mode="granted", GRANT_GRAPH_PERMISSION="true")
    assert result.returncode == 0, result.stderr
    assert not any("--method POST" in c for c in calls)
    assert "already granted" in result.stdout


def test_a_refusal_for_lack_of_rights_stops_at_once(tmp_path: Path) -> None:
    result, calls = run_hook(tmp_path, mode="forbidden", GRANT_GRAPH_PERMISSION="true")
    assert result.returncode == 1
    assert len([c for c in calls if "appRoleAssignments" in c]) == 1
    assert "may not assign app roles" in result.stderr


def test_the_retries_are_bounded(tmp_path: Path) -> None:
    result, calls = run_hook(tmp_path, not_replicated_for=99, GRANT_GRAPH_PERMISSION="true", GRANT_ATTEMPTS="3")
    assert result.returncode == 1
    assert len([c for c in calls if "appRoleAssignments" in c]) == 3
    assert "gave up after 3 attempts" in result.stderr
    assert not any("--method POST" in c for c in calls)
