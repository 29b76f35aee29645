"""Checks the resources of a Bicep file against Azure's generated resource type definitions.

The definitions are the Bicep type indexes that Azure/bicep-types-az generates from the REST API
specifications (`generated/<provider>/<apiVersion>/types.json`), vendored under
tests/reference/azure-types/. They are what `bicep build` itself type-checks against, so a property
this check rejects is one Bicep would warn about and Azure Resource Manager would refuse or ignore.
Nothing here compiles Bicep (the Bicep CLI downloads a binary, which this machine cannot): pycep's
parse tree is walked instead, and an expression whose type cannot be told offline is accepted.
pycep writes an identifier and a string literal alike, so a string equal to a declared name is read
as that name: give variables names that are not also literal values of the same file.

A type node is one entry of the index: `{"$type": "ObjectType", "properties": {name: {"type":
{"$ref": "#/N"}, "flags": F}}}` and so on. Property flags: 1 required, 2 read-only, 4 write-only,
8 deploy-time constant, 16 identifier.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pycep import BicepParser

REQUIRED = 1
READ_ONLY = 2

# Keys of a resource body that Bicep itself consumes; they are not sent as resource properties.
BICEP_KEYWORDS = frozenset({"parent", "scope", "dependsOn"})

# siteConfig properties that Flex Consumption refuses with ARM error 51021 ("The following site
# configuration property (...) for Flex Consumption sites is invalid"), quoted verbatim in
# microsoft/azure-pipelines-tasks#21032 (the first four) and Azure/terraform-azurerm-avm-res-web-site#283
# (linuxFxVersion: the runtime lives in functionAppConfig.runtime). DESIGN.md section 5 lists the four.
FLEX_CONSUMPTION_REJECTED_SITE_CONFIG = frozenset(
    {
        "ftpsState",
        "use32BitWorkerProcess",
        "netFrameworkVersion",
        "functionsRuntimeScaleMonitoringEnabled",
        "linuxFxVersion",
    }
)

STRING_FUNCTIONS = frozenset(
    {
        "guid", "string", "format", "unique_string", "to_lower", "to_upper", "replace", "substring", "trim",
        "subscription_resource_id", "resource_id", "tenant_resource_id", "extension_resource_id", "base64", "uri",
    }
)  # fmt: skip
BOOL_FUNCTIONS = frozenset({"empty", "contains", "starts_with", "ends_with", "bool"})
INT_FUNCTIONS = frozenset({"int", "length"})
BOOL_OPERATORS = frozenset(
    {"equals", "not_equals", "equals_case_insensitive", "not_equals_case_insensitive", "and", "or", "not",
     "greater_than", "greater_than_or_equals", "less_than", "less_than_or_equals"}
)  # fmt: skip


class TypeIndex:
    """Every resource type of the vendored type files, by lower-cased `type@apiVersion`."""

    def __init__(self, folder: Path) -> None:
        self.resources: dict[str, tuple[list[dict[str, Any]], dict[str, Any]]] = {}
        for path in sorted(folder.glob("*.json")):
            types: list[dict[str, Any]] = json.loads(path.read_text())
            for entry in types:
                if entry["$type"] == "ResourceType":
                    self.resources[entry["name"].lower()] = (types, entry)

    def body(self, resource_type: str, api_version: str) -> tuple[list[dict[str, Any]], dict[str, Any]] | None:
        found = self.resources.get(f"{resource_type}@{api_version}".lower())
        if found is None:
            return None
        types, entry = found
        return types, resolve(types, entry["body"])


def resolve(types: list[dict[str, Any]], reference: dict[str, Any]) -> dict[str, Any]:
    return types[int(reference["$ref"].removeprefix("#/"))]


@dataclass
class Symbols:
    """The names a Bicep file declares, so that an identifier is not taken for a string literal."""

    parameters: dict[str, Any]
    variables: dict[str, Any]
    others: set[str] = field(default_factory=set)  # resources, modules, loop variables

    def is_symbol(self, name: str) -> bool:
        return name in self.parameters or name in self.variables or name in self.others


def kind_of(value: Any, symbols: Symbols, depth: int = 0) -> str | None:
    """The Bicep type of a value ('string', 'int', 'bool', 'object', 'array'), or None when only a
    deployment could tell (a property of another resource, a function this check does not model)."""
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, list):
        return "array"
    if isinstance(value, str):
        if value in symbols.parameters:
            declared = symbols.parameters[value].get("type")
            return declared if declared in ("string", "int", "bool", "object", "array") else None
        if value in symbols.variables and depth < 10:
            return kind_of(symbols.variables[value]["value"], symbols, depth + 1)
        if value in symbols.others:
            return None
        return "string"
    if isinstance(value, dict):
        if is_expression(value, "function"):
            name = value["function"]["type"]
            if name in STRING_FUNCTIONS:
                return "string"
            if name in BOOL_FUNCTIONS:
                return "bool"
            if name in INT_FUNCTIONS:
                return "int"
            return None
        if is_expression(value, "operator"):
            operator = value["operator"]
            if operator["type"] in BOOL_OPERATORS:
                return "bool"
            if operator["type"] == "conditional":
                branches = [operator["operands"]["true_value"], operator["operands"]["false_value"]]
                live = [b for b in branches if not (is_expression(b, "function") and b["function"]["type"] == "fail")]
                kinds = {kind_of(b, symbols, depth + 1) for b in live}
                return kinds.pop() if len(kinds) == 1 else None
            return None
        return "object"
    return None


def is_literal_string(value: Any, symbols: Symbols) -> bool:
    return isinstance(value, str) and "${" not in value and not symbols.is_symbol(value)


class Checker:
    """Collects every way the resources of one file disagree with their type definitions."""

    def __init__(self, index: TypeIndex, symbols: Symbols, file_name: str) -> None:
        self.index = index
        self.symbols = symbols
        self.file_name = file_name
        self.problems: list[str] = []

    def fail(self, path: str, message: str) -> None:
        self.problems.append(f"{self.file_name}: {path}: {message}")

    def check_resource(self, symbol: str, resource: dict[str, Any]) -> None:
        type_name, api_version = resource["type"], resource["api_version"]
        path = f"{symbol} ({type_name}@{api_version})"
        found = self.index.body(type_name, api_version)
        if found is None:
            self.fail(path, "no such resource type and API version in tests/reference/azure-types")
            return
        types, body = found
        config = unwrap(resource["config"], self.symbols)
        if resource["existing"]:
            if "name" not in config:
                self.fail(path, "an existing resource needs a name")
            return
        sent = {key: value for key, value in config.items() if key not in BICEP_KEYWORDS}
        self.check_value(sent, body, types, path)
        if type_name.lower() == "microsoft.web/sites":
            self.check_flex_consumption(config, path)

    def check_flex_consumption(self, config: dict[str, Any], path: str) -> None:
        properties = config.get("properties")
        if not isinstance(properties, dict) or "functionAppConfig" not in properties:
            return  # functionAppConfig is what makes a site a Flex Consumption app
        site_config = properties.get("siteConfig")
        for name in sorted(set(site_config or {}) & FLEX_CONSUMPTION_REJECTED_SITE_CONFIG):
            self.fail(f"{path}.properties.siteConfig.{name}", "Flex Consumption rejects this siteConfig property")

    def check_value(self, value: Any, node: dict[str, Any], types: list[dict[str, Any]], path: str) -> None:
        kind = kind_of(value, self.symbols)
        expected = node["$type"]
        if expected in ("AnyType", "ResourceFunctionType"):
            return
        if expected == "UnionType":
            self.check_union(value, node, types, path)
        elif expected in ("StringType", "StringLiteralType"):
            if kind not in ("string", None):
                self.fail(path, f"expects a string, gets {kind}")
            elif expected == "StringLiteralType" and is_literal_string(value, self.symbols) and value != node["value"]:
                self.fail(path, f"expects {node['value']!r}, gets {value!r}")
        elif expected == "IntegerType":
            if kind not in ("int", None):
                self.fail(path, f"expects an integer, gets {kind}")
        elif expected == "BooleanType":
            if kind not in ("bool", None):
                self.fail(path, f"expects a bool, gets {kind}")
        elif expected == "ArrayType":
            if isinstance(value, list):
                item = resolve(types, node["itemType"])
                for position, element in enumerate(value):
                    self.check_value(element, item, types, f"{path}[{position}]")
            elif kind not in ("array", None):
                self.fail(path, f"expects an array, gets {kind}")
        elif expected in ("ObjectType", "DiscriminatedObjectType"):
            if is_object_literal(value):
                self.check_object(value, node, types, path)
            elif kind not in ("object", None):
                self.fail(path, f"expects an object, gets {kind}")
        else:
            self.fail(path, f"this check does not know type {expected}")

    def check_union(self, value: Any, node: dict[str, Any], types: list[dict[str, Any]], path: str) -> None:
        failures: list[list[str]] = []
        for element in node["elements"]:
            trial = Checker(self.index, self.symbols, self.file_name)
            trial.check_value(value, resolve(types, element), types, path)
            if not trial.problems:
                return
            failures.append(trial.problems)
        allowed = [resolve(types, e).get("value", resolve(types, e)["$type"]) for e in node["elements"]]
        self.fail(path, f"{value!r} matches none of {allowed}")

    def check_object(self, value: dict[str, Any], node: dict[str, Any], types: list[dict[str, Any]], path: str) -> None:
        if node["$type"] == "DiscriminatedObjectType":
            discriminator = node["discriminator"]
            chosen = value.get(discriminator)
            if not is_literal_string(chosen, self.symbols) or chosen not in node["elements"]:
                self.fail(f"{path}.{discriminator}", f"must be one of {sorted(node['elements'])}, gets {chosen!r}")
                return
            element = resolve(types, node["elements"][chosen])
            merged = {**node.get("baseProperties", {}), **element.get("properties", {})}
            node = {**element, "properties": merged}
        properties: dict[str, Any] = node.get("properties", {})
        extra = node.get("additionalProperties")
        for key, item in value.items():
            name = key.strip("'")
            where = f"{path}.{name}"
            if name in properties:
                declared = properties[name]
                if declared.get("flags", 0) & READ_ONLY:
                    self.fail(where, "is read-only: Azure sets it")
                    continue
                self.check_value(item, resolve(types, declared["type"]), types, where)
            elif extra is not None:
                self.check_value(item, resolve(types, extra), types, where)
            else:
                self.fail(where, f"no such property (known: {', '.join(sorted(properties))})")
        for name, declared in properties.items():
            flags = declared.get("flags", 0)
            if flags & REQUIRED and not flags & READ_ONLY and name not in {k.strip("'") for k in value}:
                self.fail(f"{path}.{name}", "is required")


def is_expression(value: Any, kind: str | None = None) -> bool:
    """pycep writes a function call as {"function": {"type", "parameters"}} and an operator as
    {"operator": {"type", "operands"}}; an object literal may have a property named operator."""
    if not isinstance(value, dict) or len(value) != 1:
        return False
    ((key, inner),) = value.items()
    return key in ((kind,) if kind else ("function", "operator")) and isinstance(inner, dict) and "type" in inner


def is_object_literal(value: Any) -> bool:
    return isinstance(value, dict) and not is_expression(value)


def unwrap(config: dict[str, Any], symbols: Symbols) -> dict[str, Any]:
    """The body of a resource or module, under its `if (...)` condition and `[for ...]` loop."""
    while "config" in config and ("condition" in config or "loop_type" in config):
        detail = (config.get("loop_type") or {}).get("detail") or {}
        symbols.others.update(v for k, v in detail.items() if k.endswith("_name") and k != "array_name" and v)
        config = config["config"]
    return config


def module_outputs_read(tree: Any, modules: set[str]) -> set[tuple[str, str]]:
    """Every `<module>.outputs.<name>` the tree reads, as (module, name)."""
    found: set[tuple[str, str]] = set()
    if is_expression(tree, "operator") and tree["operator"]["type"] == "property_accessor":
        operands = tree["operator"]["operands"]
        inner = operands["operand_2"]
        owner = operands["operand_1"]
        if isinstance(owner, str) and owner in modules and is_expression(inner, "operator"):
            named = inner["operator"]["operands"]
            if named.get("operand_1") == "outputs" and isinstance(named.get("operand_2"), str):
                found.add((operands["operand_1"], named["operand_2"]))
    if isinstance(tree, dict):
        for value in tree.values():
            found |= module_outputs_read(value, modules)
    elif isinstance(tree, list):
        for value in tree:
            found |= module_outputs_read(value, modules)
    return found


def check_file(path: Path, index: TypeIndex) -> list[str]:
    """Every problem in one Bicep file: its resources against the type index, its modules' params
    against the parameters the module declares, and every module output it reads against the
    outputs the module declares."""
    parsed: dict[str, Any] = dict(BicepParser().parse(file_path=path))
    symbols = Symbols(parsed.get("parameters") or {}, parsed.get("variables") or {})
    symbols.others.update(parsed.get("resources") or {}, parsed.get("modules") or {})
    checker = Checker(index, symbols, path.name)
    for name, resource in (parsed.get("resources") or {}).items():
        checker.check_resource(name, resource)
    modules: dict[str, Any] = parsed.get("modules") or {}
    for name, module in modules.items():
        target = path.parent / module["detail"]["path"]
        target_tree: dict[str, Any] = dict(BicepParser().parse(file_path=target))
        declared: dict[str, Any] = target_tree.get("parameters") or {}
        passed = unwrap(module["config"], symbols).get("params") or {}
        for param in sorted(set(passed) - set(declared)):
            checker.fail(f"module {name}", f"passes {param!r}, which {target.name} does not declare")
        for param, spec in sorted(declared.items()):
            if spec.get("default") is None and param not in passed:
                checker.fail(f"module {name}", f"does not pass required parameter {param!r} of {target.name}")
        outputs = target_tree.get("outputs") or {}
        for module, output in sorted(module_outputs_read(parsed, {name})):
            if output not in outputs:
                checker.fail(f"module {module}", f"reads output {output!r}, which {target.name} does not declare")
    return checker.problems


class DeploymentFailed(Exception):
    """fail() was reached: Azure Resource Manager would stop the deployment with this message."""


def evaluate(expression: Any, values: dict[str, Any]) -> Any:
    """The value of an expression in pycep's tree, for the small subset the templates use to decide
    (conditions, checks): identifiers, literals, ==, &&, !, empty(), fail() and ?:."""
    if isinstance(expression, str):
        return values.get(expression, expression)
    if not is_expression(expression):
        return expression
    if is_expression(expression, "function"):
        function = expression["function"]
        arguments = [evaluate(a, values) for a in function["parameters"].values()]
        if function["type"] == "fail":
            raise DeploymentFailed(arguments[0])
        if function["type"] == "empty":
            return not arguments[0]
        raise NotImplementedError(function["type"])
    operator = expression["operator"]
    operands = operator["operands"]
    if operator["type"] == "conditional":
        branch = "true_value" if evaluate(operands["condition"], values) else "false_value"
        return evaluate(operands[branch], values)
    if operator["type"] == "not":
        return not evaluate(operands["bool_value"], values)
    left, right = (evaluate(operands[k], values) for k in ("operand_1", "operand_2"))
    if operator["type"] == "equals":
        return left == right
    if operator["type"] == "and":
        return bool(left) and bool(right)
    raise NotImplementedError(operator["type"])
