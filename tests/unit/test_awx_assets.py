"""The AWX / AAP objects as code (extensions/awx/assets.yml) and the execution environment, checked without AWX.

Schema checks written here (AWX's own rules for credential types and surveys, the `awx import` asset layout), the
links between the assets, the playbooks and roles they name, the environment variables the ESET PROTECT API modules
read, and, when awxkit is installed, the resource names and natural keys awxkit's import uses.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import typing as t
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
ASSETS = REPO / "extensions" / "awx" / "assets.yml"
EE_DIR = REPO / "extensions" / "ee"
COLLECTION_PREFIX = "protectnet.epns."
DEFAULT_ORG = {"name": "Default", "type": "organization"}

# `awx import` resources (awxkit EXPORTABLE_RESOURCES) and each one's asset type and natural key fields (awxkit
# page classes' NATURAL_KEY); test_awxkit_agrees compares them with the installed awxkit.
RESOURCES: t.Dict[str, t.Tuple[str, t.Tuple[str, ...]]] = {
    "credential_types": ("credential_type", ("name", "kind")),
    "execution_environments": ("execution_environment", ("name",)),
    "projects": ("project", ("organization", "name")),
    "inventory": ("inventory", ("organization", "name")),
    "inventory_sources": ("inventory_source", ("organization", "name", "inventory")),
    "job_templates": ("job_template", ("organization", "name")),
    "workflow_job_templates": ("workflow_job_template", ("organization", "name")),
}
SURVEY_TYPES = {"text", "textarea", "password", "integer", "float", "multiplechoice", "multiselect"}
CREDENTIAL_FIELD_KEYS = {"id", "label", "type", "help_text", "multiline", "secret", "ask_at_runtime", "choices",
                         "format", "default"}
ENV_NAME = re.compile(r"^[A-Z_][A-Z0-9_]*$")
JINJA_NAMES = re.compile(r"{{\s*([a-z_][a-z0-9_]*)")


def load_assets() -> t.Dict[str, t.Any]:
    with ASSETS.open(encoding="utf-8") as handle:
        data = yaml.safe_load(handle)
    assert isinstance(data, dict)
    return data


ASSET_DATA = load_assets()


def assets(resource: str) -> t.List[t.Dict[str, t.Any]]:
    return list(ASSET_DATA.get(resource) or [])


def key_of(resource: str, asset: t.Mapping[str, t.Any]) -> t.Dict[str, t.Any]:
    kind, fields = RESOURCES[resource]
    return {**{f: asset[f] if f != "organization" else asset.get("organization", DEFAULT_ORG) for f in fields},
            "type": kind}


def defined_keys() -> t.List[t.Dict[str, t.Any]]:
    keys = [DEFAULT_ORG]
    for resource in RESOURCES:
        keys += [a["natural_key"] for a in assets(resource)]
    return keys


def references(node: t.Any) -> t.Iterator[t.Dict[str, t.Any]]:
    """Every natural-key reference (a dict with a 'type'), outside the assets' own natural_key entries."""
    if isinstance(node, dict):
        if node.get("type") in {kind for kind, _fields in RESOURCES.values()} | {"organization"}:
            yield node
        for key, value in node.items():
            if key != "natural_key":
                yield from references(value)
    elif isinstance(node, list):
        for item in node:
            yield from references(item)


# --- roles, playbooks and the variables they take ------------------------------------------------------------------

def role_options(role: str) -> t.Dict[str, t.Dict[str, t.Any]]:
    spec = yaml.safe_load((REPO / "roles" / role / "meta" / "argument_specs.yml").read_text(encoding="utf-8"))
    return dict(spec["argument_specs"]["main"].get("options") or {})


def playbook_roles(playbook: Path) -> t.Set[str]:
    found: t.Set[str] = set()

    def walk(node: t.Any) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "roles":
                    for role in value:
                        found.add(role["role"] if isinstance(role, dict) else role)
                elif key in ("ansible.builtin.include_role", "ansible.builtin.import_role", "include_role",
                             "import_role"):
                    found.add(value["name"])
                else:
                    walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(yaml.safe_load(playbook.read_text(encoding="utf-8")))
    return {r[len(COLLECTION_PREFIX):] if r.startswith(COLLECTION_PREFIX) else r for r in found}


def playbook_variables(playbook: Path) -> t.Dict[str, t.Optional[t.Dict[str, t.Any]]]:
    """Variable name -> its role argument spec (None for play-level variables the playbook itself reads)."""
    variables: t.Dict[str, t.Optional[t.Dict[str, t.Any]]] = {}
    text = playbook.read_text(encoding="utf-8")
    code = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#"))
    for name in re.findall(r"\b(epns_[a-z0-9_]+)\s*\|\s*default\(", code):
        variables[name] = None
    for role in playbook_roles(playbook):
        variables.update(role_options(role))
    return variables


def job_template_named(name: str) -> t.Dict[str, t.Any]:
    matches = [jt for jt in assets("job_templates") if jt["name"] == name]
    assert len(matches) == 1, name
    return matches[0]


# --- layout ---------------------------------------------------------------------------------------------------------

def test_only_resources_awx_import_knows():
    assert set(ASSET_DATA) <= set(RESOURCES)


@pytest.mark.parametrize("resource", sorted(RESOURCES))
def test_natural_keys_match_the_assets(resource):
    for asset in assets(resource):
        assert asset["natural_key"] == key_of(resource, asset), asset["name"]
    names = [a["name"] for a in assets(resource)]
    assert len(names) == len(set(names)), f"duplicate {resource}"


def test_every_reference_resolves():
    known = defined_keys()
    for ref in references(ASSET_DATA):
        assert ref in known, f"unresolved reference {ref}"


# --- credential types -----------------------------------------------------------------------------------------------

def eset_env_names() -> t.Set[str]:
    from ansible_collections.protectnet.epns.plugins.module_utils._eset_api import _argspec

    return {value for name, value in vars(_argspec).items() if name.startswith("ENV_") and isinstance(value, str)}


def test_credential_types_are_valid():
    assert assets("credential_types"), "no credential type"
    for ctype in assets("credential_types"):
        assert ctype["kind"] in ("cloud", "net"), "custom credential types are kind cloud or net"
        fields = ctype["inputs"]["fields"]
        ids = [f["id"] for f in fields]
        assert len(ids) == len(set(ids))
        for field in fields:
            assert set(field) <= CREDENTIAL_FIELD_KEYS, field
            assert field.get("type", "string") in ("string", "boolean")
            assert field.get("label")
            if "choices" in field:
                assert field.get("default", field["choices"][0]) in field["choices"]
        assert set(ctype["inputs"].get("required", [])) <= set(ids)
        files = set(ctype["injectors"].get("file", {}))
        assert all(re.fullmatch(r"template(\.[a-z_]+)?", f) for f in files)
        for name, template in {**ctype["injectors"].get("env", {}), **ctype["injectors"].get("file", {})}.items():
            assert ENV_NAME.match(name) or name in files
            for ref in JINJA_NAMES.findall(str(template)):
                assert ref in set(ids) | {"tower"}, f"{ctype['name']}: {name} uses unknown input {ref}"
            for ref in re.findall(r"tower\.filename\.([a-z_]+)", str(template)):
                assert f"template.{ref}" in files
        secrets = {f["id"] for f in fields if f.get("secret")}
        assert "password" in secrets


def test_credential_types_inject_what_the_api_modules_read():
    readable = eset_env_names()
    assert {"ESET_PROTECT_SERVER", "ESET_PROTECT_USERNAME", "ESET_PROTECT_PASSWORD", "ESET_PROTECT_REGION",
            "ESET_PROTECT_DEPLOYMENT"} <= readable
    injected = {}
    for ctype in assets("credential_types"):
        env = ctype["injectors"]["env"]
        assert set(env) <= readable, f"{ctype['name']} injects variables no module reads: {set(env) - readable}"
        injected[env["ESET_PROTECT_DEPLOYMENT"]] = set(env)
    assert set(injected) == {"on_prem", "cloud"}
    assert {"ESET_PROTECT_SERVER", "ESET_PROTECT_USERNAME", "ESET_PROTECT_PASSWORD"} <= injected["on_prem"]
    assert {"ESET_PROTECT_REGION", "ESET_PROTECT_USERNAME", "ESET_PROTECT_PASSWORD"} <= injected["cloud"]
    # An injected empty value would fail the module's choices: region only where it is required.
    assert "ESET_PROTECT_REGION" not in injected["on_prem"]


def test_cloud_regions_are_the_modules_regions():
    from ansible_collections.protectnet.epns.plugins.module_utils._eset_api._endpoints import REGIONS

    cloud = next(c for c in assets("credential_types") if c["injectors"]["env"]["ESET_PROTECT_DEPLOYMENT"] == "cloud")
    region = next(f for f in cloud["inputs"]["fields"] if f["id"] == "region")
    assert list(region["choices"]) == list(REGIONS)


# --- the inventory source -------------------------------------------------------------------------------------------

PLUGIN = REPO / "plugins" / "inventory" / "eset_protect.py"
PLUGIN_NAMES = ("protectnet.epns.eset_protect", "eset_protect")
PLUGIN_FILE_NAME = re.compile(r".+\.eset_protect\.ya?ml")  # the contract's verify_file rule


def plugin_documentation() -> t.Dict[str, t.Any]:
    """The plugin's documentation as ansible-doc shows it, doc fragments (the eset_api env entries) merged in."""
    if not PLUGIN.is_file():
        pytest.skip("the inventory plugin is not on this branch yet (i14-inv)")
    env = {**os.environ, "ANSIBLE_COLLECTIONS_PATH": str(REPO / ".build" / "collections"),
           "ANSIBLE_COLLECTIONS_SCAN_SYS_PATH": "false"}
    done = subprocess.run([str(Path(sys.executable).parent / "ansible-doc"), "-t", "inventory", "--json",
                           "protectnet.epns.eset_protect"], capture_output=True, text=True, check=False, env=env,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    doc = json.loads(done.stdout)["protectnet.epns.eset_protect"]["doc"]
    assert isinstance(doc, dict)
    return doc


def plugin_env_names() -> t.Dict[str, str]:
    """Environment variable -> the plugin option that reads it (the `env` entries of DOCUMENTATION)."""
    names = {}
    for option, spec in plugin_documentation()["options"].items():
        for entry in spec.get("env") or []:
            names[entry["name"]] = option
    return names


def test_inventory_source_runs_the_plugin_from_the_project():
    sources = assets("inventory_sources")
    assert sources, "no inventory source"
    projects = {p["name"]: p for p in assets("projects")}
    for source in sources:
        assert source["source"] == "scm", source["name"]
        assert source["source_project"]["name"] in projects
        path = REPO / source["source_path"]
        assert path.is_file(), f"{source['name']}: no file {source['source_path']} in the project"
        assert PLUGIN_FILE_NAME.fullmatch(path.name), f"{path.name}: the plugin's verify_file refuses this name"
        config = yaml.safe_load(path.read_text(encoding="utf-8"))
        assert config["plugin"] in PLUGIN_NAMES
        # The connection comes from the credential's environment only: one file for both deployments.
        assert not set(config) & {"deployment", "server", "port", "region", "username", "password", "ca_path",
                                  "api_urls"}, f"{path.name} names connection options"
        assert "credential" not in source and "credentials" not in source, "credentials are attached in AWX"
        assert source["update_on_launch"] and source["overwrite"]
        assert 0 < source["update_cache_timeout"] <= 3600
        assert "cache" not in config, "the plugin's cache dies with the execution environment; AWX caches"


def test_plugin_accepts_the_source_file():
    plugin_documentation()
    from ansible_collections.protectnet.epns.plugins.inventory.eset_protect import InventoryModule

    for source in assets("inventory_sources"):
        assert InventoryModule().verify_file(str(REPO / source["source_path"])), source["source_path"]
    assert not InventoryModule().verify_file(str(REPO / "extensions" / "awx" / "assets.yml"))


def test_job_templates_can_use_the_source_inventory():
    inventories = {s["inventory"]["name"] for s in assets("inventory_sources")}
    assert inventories <= {i["name"] for i in assets("inventory")}
    for template in [*assets("job_templates"), *assets("workflow_job_templates")]:
        if "playbook" in template and playbook_hosts(REPO / template["playbook"]) == {"localhost"}:
            continue  # runs on the controller only (the API modules): any inventory will do
        assert template.get("ask_inventory_on_launch"), f"{template['name']} cannot run on {sorted(inventories)}"


def playbook_hosts(playbook: Path) -> t.Set[str]:
    plays = yaml.safe_load(playbook.read_text(encoding="utf-8"))
    return {str(play.get("hosts")) for play in plays if "hosts" in play} | {
        "imported" for play in plays if "import_playbook" in play or "ansible.builtin.import_playbook" in play}


def test_every_injected_variable_is_read_by_the_plugin_and_the_modules():
    """A credential type's env injector is the only way the connection reaches the plugin and the modules in AWX:
    a name one of them does not read is a credential that silently does nothing."""
    plugin_reads = plugin_env_names()
    modules_read = eset_env_names()
    for ctype in assets("credential_types"):
        for name in ctype["injectors"]["env"]:
            assert name in plugin_reads, f"{ctype['name']}: the inventory plugin does not read {name}"
            assert name in modules_read, f"{ctype['name']}: the API modules do not read {name}"
    # and both read the same names for the same options
    assert {v: k for k, v in plugin_reads.items() if k in modules_read} == dict(
        zip(("deployment", "server", "port", "region", "username", "password", "ca_path"),
            ("ESET_PROTECT_DEPLOYMENT", "ESET_PROTECT_SERVER", "ESET_PROTECT_PORT", "ESET_PROTECT_REGION",
             "ESET_PROTECT_USERNAME", "ESET_PROTECT_PASSWORD", "ESET_PROTECT_CA_PATH")))


# --- job templates and surveys --------------------------------------------------------------------------------------

def check_survey(owner: str, survey: t.Mapping[str, t.Any]) -> t.List[str]:
    assert survey.get("name") and "description" in survey, owner
    variables = []
    for q in survey["spec"]:
        where = f"{owner}: {q.get('variable')}"
        assert {"question_name", "variable", "type", "required"} <= set(q), where
        assert q["type"] in SURVEY_TYPES, where
        assert re.fullmatch(r"[a-z_][a-z0-9_]*", q["variable"]), where
        assert isinstance(q["required"], bool), where
        if q["type"] in ("multiplechoice", "multiselect"):
            choices = q["choices"]
            assert isinstance(choices, list) and all(isinstance(c, str) for c in choices), where
            if q.get("default") not in (None, ""):
                defaults = str(q["default"]).split("\n") if q["type"] == "multiselect" else [q["default"]]
                assert set(defaults) <= set(choices), where
        if q["type"] in ("integer", "float"):
            number = int if q["type"] == "integer" else (int, float)
            assert isinstance(q.get("default", 0), number), where
            assert q.get("min", 0) <= q.get("default", q.get("min", 0)) <= q.get("max", float("inf")), where
        if q["type"] in ("text", "textarea", "password"):
            assert isinstance(q.get("default", ""), str), where
            assert q.get("min", 0) <= q.get("max", 1024), where
            if q["required"] and q.get("default"):
                assert q.get("min", 0) <= len(q["default"]) <= q.get("max", 1024), where
        variables.append(q["variable"])
    assert len(variables) == len(set(variables)), f"{owner}: a variable asked twice"
    return variables


def check_answer_fits(where: str, question: t.Mapping[str, t.Any], spec: t.Optional[t.Mapping[str, t.Any]]) -> None:
    """The survey's answer (always a string, number or list) passes the role's argument spec."""
    if spec is None:
        return
    kind, qtype = spec.get("type", "str"), question["type"]
    if kind == "bool":
        assert qtype == "multiplechoice" and set(question["choices"]) == {"true", "false"}, where
    elif kind == "int":
        assert qtype == "integer", where
    elif kind == "float":
        assert qtype in ("integer", "float"), where
    elif kind == "list":
        assert qtype in ("text", "textarea", "multiselect"), where  # a string splits on commas
        # AWX passes a valid default as the answer: "" becomes [""], a list with one empty entry, which the
        # modules refuse. Without a default an unanswered question leaves the variable unset.
        assert question.get("default") != "", f"{where}: an empty default is the list ['']"
    elif kind in ("str", "path"):
        assert qtype in ("text", "textarea", "password", "multiplechoice"), where
        if spec.get("choices"):
            assert qtype == "multiplechoice" and set(question["choices"]) <= set(spec["choices"]), where
    else:
        pytest.fail(f"{where}: a survey cannot answer a {kind}")


@pytest.mark.parametrize("jt", assets("job_templates"), ids=lambda jt: jt["name"])
def test_job_template(jt):
    assert {"name", "job_type", "playbook", "project", "natural_key"} <= set(jt)
    assert jt["job_type"] in ("run", "check")
    assert "inventory" in jt or jt.get("ask_inventory_on_launch")
    playbook = REPO / jt["playbook"]
    assert playbook.is_file(), f"{jt['name']}: no playbook {jt['playbook']}"
    variables = playbook_variables(playbook)
    survey = jt.get("related", {}).get("survey_spec")
    assert bool(jt.get("survey_enabled")) == bool(survey), jt["name"]
    if survey:
        check_survey(jt["name"], survey)
        for q in survey["spec"]:
            where = f"{jt['name']}: {q['variable']}"
            assert q["variable"] in variables, f"{where} is not a variable of {jt['playbook']} or its roles"
            check_answer_fits(where, q, variables[q["variable"]])


def test_every_playbook_has_a_job_template():
    used = {jt["playbook"] for jt in assets("job_templates")}
    shipped = {f"playbooks/{p.name}" for p in (REPO / "playbooks").glob("*.yml")}
    assert shipped <= used, f"playbooks without a job template: {sorted(shipped - used)}"


def test_api_job_templates_ask_for_a_credential():
    for jt in assets("job_templates"):
        roles = playbook_roles(REPO / jt["playbook"])
        if "epns_agent_proxy" in roles:
            assert jt.get("ask_credential_on_launch"), jt["name"]


# --- workflow -------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("wf", assets("workflow_job_templates"), ids=lambda wf: wf["name"])
def test_workflow(wf):
    nodes = wf["related"]["workflow_nodes"]
    ids = [n["identifier"] for n in nodes]
    assert len(ids) == len(set(ids))
    edges: t.Dict[str, t.Set[str]] = {}
    playbook_vars: t.Dict[str, t.Any] = {}
    for node in nodes:
        assert node["natural_key"] == {"workflow_job_template": wf["natural_key"], "identifier": node["identifier"],
                                       "type": "workflow_job_template_node"}
        ujt = node["unified_job_template"]
        assert ujt["type"] == "job_template"
        jt = job_template_named(ujt["name"])
        playbook_vars.update(playbook_variables(REPO / jt["playbook"]))
        edges[node["identifier"]] = set()
        for kind in ("success_nodes", "failure_nodes", "always_nodes"):
            for target in node.get(kind, []):
                assert target["workflow_job_template"] == wf["natural_key"]
                assert target["identifier"] in ids, f"{node['identifier']}: no node {target['identifier']}"
                edges[node["identifier"]].add(target["identifier"])
    # acyclic, one root
    seen: t.Set[str] = set()

    def visit(node: str, path: t.Tuple[str, ...]) -> None:
        assert node not in path, f"cycle {(*path, node)}"
        seen.add(node)
        for child in edges[node]:
            visit(child, (*path, node))

    roots = set(ids) - {c for children in edges.values() for c in children}
    assert len(roots) == 1
    visit(roots.pop(), ())
    assert seen == set(ids), f"unreachable nodes {set(ids) - seen}"
    survey = wf["related"].get("survey_spec")
    if survey:
        for q in survey["spec"]:
            assert q["variable"] in playbook_vars, f"{wf['name']}: {q['variable']} is no step's variable"
        check_survey(wf["name"], survey)


def test_workflow_covers_the_steps():
    wf = assets("workflow_job_templates")[0]
    nodes = wf["related"]["workflow_nodes"]
    playbooks = [job_template_named(n["unified_job_template"]["name"])["playbook"] for n in nodes]
    for wanted in ("playbooks/firewall.yml", "playbooks/agent_proxy.yml", "playbooks/verify.yml", "playbooks/wol.yml"):
        assert wanted in playbooks


# --- awxkit ---------------------------------------------------------------------------------------------------------

def test_awxkit_agrees():
    pytest.importorskip("awxkit")
    from awxkit.api import pages
    from awxkit.api.pages.api import EXPORTABLE_RESOURCES

    classes = {
        "credential_types": pages.CredentialType, "execution_environments": pages.ExecutionEnvironment,
        "projects": pages.Project, "inventory": pages.Inventory, "inventory_sources": pages.InventorySource,
        "job_templates": pages.JobTemplate,
        "workflow_job_templates": pages.WorkflowJobTemplate,
    }
    assert set(RESOURCES) <= set(EXPORTABLE_RESOURCES)
    for resource, (_kind, fields) in RESOURCES.items():
        assert tuple(classes[resource].NATURAL_KEY) == fields, resource
    assert tuple(pages.WorkflowJobTemplateNode.NATURAL_KEY) == ("workflow_job_template", "identifier")


def test_awx_cli_reads_the_file():
    pytest.importorskip("awxkit")
    from awxkit import yaml_file

    with ASSETS.open(encoding="utf-8") as handle:
        assert yaml.load(handle, Loader=yaml_file.Loader) == ASSET_DATA  # what `awx import -f yaml` parses


# --- execution environment ------------------------------------------------------------------------------------------

def test_execution_environment_definition():
    ee = yaml.safe_load((EE_DIR / "execution-environment.yml").read_text(encoding="utf-8"))
    assert ee["version"] == 3
    galaxy = yaml.safe_load((EE_DIR / ee["dependencies"]["galaxy"]).read_text(encoding="utf-8"))
    assert any("protectnet-epns" in c["name"] for c in galaxy["collections"])
    meta = yaml.safe_load((REPO / "meta" / "execution-environment.yml").read_text(encoding="utf-8"))
    for kind in ("python", "system"):
        assert (REPO / meta["dependencies"][kind]).is_file()
    awx_ee = assets("execution_environments")[0]
    assert awx_ee["image"] in ee["options"]["tags"]


def test_collection_requirements_cover_controller_imports():
    """Every third-party package the controller-side plugins import is in the EE requirements."""
    wanted = {re.split(r"[<>=\[ ]", line)[0].lower() for line in
              (REPO / "meta" / "ee-requirements.txt").read_text(encoding="utf-8").splitlines()
              if line.strip() and not line.startswith("#")}
    imported = set()
    for path in [*(REPO / "plugins" / "action").glob("*.py"), *(REPO / "plugins" / "plugin_utils").rglob("*.py")]:
        imported |= set(re.findall(r"^\s*(?:import|from)\s+(jinja2|netaddr|yaml|markupsafe)\b", path.read_text(), re.M))
    names = {"yaml": "pyyaml", "markupsafe": "jinja2"}
    assert {names.get(i, i) for i in imported} <= wanted


def test_ansible_builder_accepts_the_definition(tmp_path):
    builder = shutil.which("ansible-builder", path=str(Path(sys.executable).parent))
    if builder is None:
        pytest.skip("ansible-builder is not installed")
    src = tmp_path / "src"
    (src / "collections").mkdir(parents=True)
    for name in ("execution-environment.yml", "requirements.yml"):
        shutil.copy(EE_DIR / name, src / name)
    (src / "collections" / "protectnet-epns.tar.gz").write_bytes(b"")
    done = subprocess.run([builder, "create", "-f", str(src / "execution-environment.yml"), "--context",
                           str(tmp_path / "context"), "--output-filename", "Containerfile"],
                          capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    assert (tmp_path / "context" / "Containerfile").is_file()
    # The collection's EE metadata, as ansible-builder reads it from an installed collection.
    done = subprocess.run([builder, "introspect", str(REPO / ".build" / "collections")],
                          capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert "netaddr" in done.stdout and "openssh" in done.stdout
