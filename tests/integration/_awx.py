"""Run the job templates and inventory sources of extensions/awx/assets.yml as AWX runs them, through ansible-runner.

AWX's rules, read in ansible/awx (devel, Oct 2024) and written here from those facts:

- Credential injection (awx/main/models/credential.py, CredentialType.inject_credential): the template namespace
  holds the credential's inputs that are set and non-empty (a boolean field never given is False); an unset field is
  undefined, which Jinja renders as "" (ImmutableSandboxedEnvironment, default Undefined). File injectors render
  first, each to a fresh mkstemp file under <private_data_dir>/env with mode 0600; `template` names the file
  `tower.filename`, `template.<label>` names it `tower.filename.<label>`. Env injectors render next; ANSIBLE_* names
  and the ENV_BLOCKLIST names (awx/main/constants.py) are refused. Extra-vars injectors render into a YAML file
  (mode 0400) passed as `-e @file`, for jobs only: not for inventory updates (INVENTORY_UPDATE_ID in the env).
- Credential inputs (awx/main/fields.py, CredentialInputField): a field given empty takes the field's default;
  choices are an enum; required fields must be given.
- Inventory update of an scm source (awx/main/tasks/jobs.py, RunInventoryUpdate): the project is copied into
  <private_data_dir>/project, the command `ansible-inventory --list --export -i project/<source_path> --output
  artifacts/<id>/output.json --playbook-dir <its dir>` (plus -vvv at verbosity 1) goes into <private_data_dir>/args,
  which runner runs as it is; the env gets STANDARD_INVENTORY_UPDATE_ENV, INVENTORY_SOURCE_ID, INVENTORY_UPDATE_ID,
  the source_vars and the credential.
- Job (RunJob): `-u <machine user, else root>`, --become, --diff, --forks, -l from the template; extra vars are the
  template's extra_vars, then each survey default that passes the survey's own validation, then the launch answers
  (awx/main/models/mixins.py, _update_unified_job_kwargs), in env/extravars; the machine credential's key goes to
  runner's ssh_key (ssh-agent); the inventory is a script in inventory/hosts that prints the inventory's JSON.

Paths are host paths: AWX maps them to /runner/... inside the execution environment, which this harness stands in
for with the venv's ansible and .build/collections (the collection as the EE image holds it).
"""
from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
import tempfile
import typing as t
from dataclasses import dataclass, field
from pathlib import Path

import ansible_runner
import ansible_runner.utils
import yaml
from jinja2 import sandbox

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
COLLECTIONS = REPO / ".build" / "collections"
ASSETS = REPO / "extensions" / "awx" / "assets.yml"

ENV_BLOCKLIST = frozenset((
    "VIRTUAL_ENV", "PATH", "PYTHONPATH", "JOB_ID", "INVENTORY_ID", "INVENTORY_SOURCE_ID", "INVENTORY_UPDATE_ID",
    "AD_HOC_COMMAND_ID", "REST_API_URL", "REST_API_TOKEN", "MAX_EVENT_RES", "CALLBACK_QUEUE", "CALLBACK_CONNECTION",
    "CACHE", "JOB_CALLBACK_DEBUG", "INVENTORY_HOSTVARS", "AWX_HOST", "PROJECT_REVISION", "SUPERVISOR_CONFIG_PATH"))
STANDARD_INVENTORY_UPDATE_ENV = {
    "ANSIBLE_INVENTORY_UNPARSED_FAILED": "True", "ANSIBLE_INVENTORY_EXPORT": "True",
    "ANSIBLE_VERBOSE_TO_STDERR": "True", "ANSIBLE_HOST_PATTERN_MISMATCH": "error"}
PROJECT_IGNORE = shutil.ignore_patterns(".git", ".venv", ".build", "__pycache__", ".mypy_cache", ".ruff_cache",
                                        ".pytest_cache")
_IDS = iter(range(1000, 10 ** 6))


def assets(resource: str) -> t.List[t.Dict[str, t.Any]]:
    return list(yaml.safe_load(ASSETS.read_text(encoding="utf-8")).get(resource) or [])


def named(resource: str, name: str) -> t.Dict[str, t.Any]:
    found = [a for a in assets(resource) if a["name"] == name]
    if len(found) != 1:
        raise KeyError(f"{resource}: no single asset named {name!r}")
    return found[0]


@dataclass
class Credential:
    """A credential of a custom type: its type as assets.yml (or a test) defines it, and the user's inputs."""
    ctype: t.Mapping[str, t.Any]
    inputs: t.Mapping[str, t.Any]


@dataclass
class Machine:
    """AWX's managed Machine credential (no injectors: the job's -u and runner's ssh_key)."""
    username: str
    ssh_key_data: str


@dataclass
class Run:
    status: str
    rc: int
    stdout: str
    private_data_dir: Path
    env: t.Dict[str, str]
    output: t.Optional[t.Dict[str, t.Any]] = None
    extra_vars: t.Dict[str, t.Any] = field(default_factory=dict)

    def hosts(self) -> t.Set[str]:
        assert self.output is not None, self.stdout[-3000:]
        return set(self.output.get("_meta", {}).get("hostvars", {}))


def credential_inputs(ctype: t.Mapping[str, t.Any], given: t.Mapping[str, t.Any]) -> t.Dict[str, t.Any]:
    """What AWX stores: an empty value takes the field's default; choices and required fields are enforced."""
    fields = {f["id"]: f for f in ctype["inputs"]["fields"]}
    unknown = set(given) - set(fields)
    if unknown:
        raise ValueError(f"{ctype['name']}: no input fields {sorted(unknown)}")
    inputs = dict(given)
    for name, value in given.items():
        if value in ("", None) and "default" in fields[name]:
            inputs[name] = fields[name]["default"]
        if fields[name].get("choices") and inputs[name] not in fields[name]["choices"]:
            raise ValueError(f"{ctype['name']}: {name} {inputs[name]!r} is not one of {fields[name]['choices']}")
    missing = [n for n in ctype["inputs"].get("required", []) if inputs.get(n) in ("", None)]
    if missing:
        raise ValueError(f"{ctype['name']}: required inputs missing: {missing}")
    return inputs


class _Tower:
    """The reserved `tower` namespace; `tower.filename` is a path or a namespace of labelled paths."""


def inject(credential: Credential, env: t.Dict[str, str], args: t.List[str], private_data_dir: Path) -> None:
    ctype = credential.ctype
    injectors = ctype.get("injectors") or {}
    inputs = credential_inputs(ctype, credential.inputs)
    tower = _Tower()
    namespace: t.Dict[str, t.Any] = {"tower": tower}
    for name, value in inputs.items():
        if isinstance(value, bool) or len(value):
            namespace[name] = value
    for spec in ctype["inputs"]["fields"]:
        if spec.get("type") == "boolean" and spec["id"] not in inputs:
            namespace[spec["id"]] = False
    jinja = sandbox.ImmutableSandboxedEnvironment()
    env_dir = private_data_dir / "env"
    env_dir.mkdir(parents=True, exist_ok=True)
    for label, template in (injectors.get("file") or {}).items():
        handle, path = tempfile.mkstemp(dir=env_dir)
        with os.fdopen(handle, "w") as out:
            out.write(jinja.from_string(template).render(**namespace))
        os.chmod(path, stat.S_IRUSR | stat.S_IWUSR)
        if "." not in label:
            tower.filename = path  # type: ignore[attr-defined]
        else:
            if not hasattr(tower, "filename"):
                tower.filename = _Tower()  # type: ignore[attr-defined]
            setattr(tower.filename, label.split(".", 1)[1], path)  # type: ignore[attr-defined]
    for name, template in (injectors.get("env") or {}).items():
        if name.startswith("ANSIBLE_") or name in ENV_BLOCKLIST:
            continue  # AWX logs "Ignoring prohibited env var" and goes on
        env[name] = jinja.from_string(template).render(**namespace)
    if "INVENTORY_UPDATE_ID" in env or not injectors.get("extra_vars"):
        return

    def render(node: t.Any) -> t.Any:
        if isinstance(node, dict):
            return {render(k): render(v) for k, v in node.items()}
        if isinstance(node, list):
            return [render(x) for x in node]
        return jinja.from_string(node).render(**namespace)

    handle, path = tempfile.mkstemp(dir=env_dir)
    with os.fdopen(handle, "w") as out:
        out.write(yaml.safe_dump(render(injectors["extra_vars"])))
    os.chmod(path, stat.S_IRUSR)
    args += ["-e", f"@{path}"]


def survey_problems(question: t.Mapping[str, t.Any], value: t.Any) -> t.List[str]:
    """AWX's _survey_element_validation for the question types the assets use."""
    var, kind = question["variable"], question["type"]
    low, high = question.get("min"), question.get("max")
    if kind in ("text", "textarea", "password"):
        if not isinstance(value, str):
            return [f"Value {value} for '{var}' expected to be a string."]
        size: float = len(value)
    elif kind in ("integer", "float"):
        if type(value) is not int and (kind == "integer" or type(value) is not float):
            return [f"Value {value} for '{var}' expected to be {'an integer' if kind == 'integer' else 'numeric'}."]
        size = value
    elif kind == "multiplechoice":
        choices = question["choices"]
        choices = choices.split("\n") if isinstance(choices, str) else choices
        return [] if value in choices else [f"Value {value} for '{var}' expected to be one of {choices}."]
    else:
        raise NotImplementedError(kind)
    problems = []
    if low not in ("", None) and size < float(low):
        problems.append(f"'{var}' value {value} is too small (must be at least {low}).")
    if high not in ("", None) and size > float(high):
        problems.append(f"'{var}' value {value} is too large (must be no more than {high}).")
    return problems


def launch_extra_vars(template: t.Mapping[str, t.Any], answers: t.Mapping[str, t.Any]) -> t.Dict[str, t.Any]:
    """Template extra_vars, then the survey defaults that validate, then the answers (refused if invalid)."""
    extra_vars = dict(yaml.safe_load(template.get("extra_vars") or "{}") or {})
    survey = (template.get("related") or {}).get("survey_spec") if template.get("survey_enabled") else None
    questions = {q["variable"]: q for q in (survey or {}).get("spec", [])}
    for var, question in questions.items():
        if question.get("default") is not None and not survey_problems(question, question["default"]):
            extra_vars[var] = question["default"]
    problems = [p for var, value in answers.items() if var in questions
                for p in survey_problems(questions[var], value)]
    problems += [f"'{var}' value missing" for var, q in questions.items()
                 if q["required"] and var not in {**extra_vars, **answers}]
    if problems:
        raise ValueError(f"{template['name']}: AWX refuses the launch: {problems}")
    extra_vars.update(answers)
    return extra_vars


def private_data_dir(workdir: Path) -> Path:
    """The job's private data dir with the project checked out into project/, as AWX's sync_and_copy does."""
    workdir.mkdir(parents=True, exist_ok=True)
    pdd = Path(tempfile.mkdtemp(prefix="awx_", dir=workdir))
    shutil.copytree(REPO, pdd / "project", ignore=PROJECT_IGNORE, symlinks=True,
                    ignore_dangling_symlinks=True)
    for sub in ("env", "inventory", "artifacts"):
        (pdd / sub).mkdir()
    return pdd


def ee_env(unified_job_id: int, pdd: Path, extra: t.Optional[t.Mapping[str, str]] = None) -> t.Dict[str, str]:
    """What the execution environment and AWX's build_env give every run (before credentials)."""
    env = {
        "ANSIBLE_COLLECTIONS_PATH": str(COLLECTIONS),  # the collection as the EE image holds it
        "ANSIBLE_COLLECTIONS_SCAN_SYS_PATH": "false",
        "ANSIBLE_NOCOLOR": "1",
        "ANSIBLE_RETRY_FILES_ENABLED": "False",
        "AWX_PRIVATE_DATA_DIR": str(pdd),
        "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
    }
    env.update(extra or {})
    return env


def _runner(pdd: Path, env: t.Mapping[str, str], timeout: int, **kwargs: t.Any) -> t.Tuple[str, int, str]:
    for name in ("ANSIBLE_CONFIG", "ANSIBLE_INVENTORY"):  # AWX runs with the project's config, not ours
        os.environ.pop(name, None)
    done = ansible_runner.run(private_data_dir=str(pdd), envvars=dict(env), quiet=True, timeout=timeout,
                              settings={"suppress_ansible_output": True}, suppress_env_files=True, **kwargs)
    stdout = done.stdout.read() if done.stdout else ""
    return done.status, int(done.rc if done.rc is not None else -1), stdout


def inventory_update(source_name: str, credential: t.Optional[Credential], workdir: Path, *,
                     ee: t.Optional[t.Mapping[str, str]] = None, timeout: int = 120) -> Run:
    source = named("inventory_sources", source_name)
    pdd = private_data_dir(workdir)
    update_id = next(_IDS)
    source_path = pdd / "project" / source["source_path"]
    output = pdd / "artifacts" / str(update_id) / "output.json"
    output.parent.mkdir(parents=True)
    args = ["ansible-inventory", "--list", "--export", "-i", str(source_path), "--output", str(output),
            "--playbook-dir", str(source_path.parent)]
    if source.get("verbosity"):
        args.append("-" + "v" * min(5, source["verbosity"] * 2 + 1))
    env = ee_env(update_id, pdd, ee)
    env.update({"INVENTORY_SOURCE_ID": "1", "INVENTORY_UPDATE_ID": str(update_id), **STANDARD_INVENTORY_UPDATE_ENV})
    for name, value in (yaml.safe_load(source.get("source_vars") or "{}") or {}).items():
        env.setdefault(str(name), str(value))
    if credential is not None:
        inject(credential, env, [], pdd)
    (pdd / "args").write_text(" ".join(args))  # AWX's write_args_file; runner runs it as is (raw mode)
    status, rc, stdout = _runner(pdd, env, timeout, ident=str(update_id))
    data = json.loads(output.read_text()) if status == "successful" and output.is_file() else None
    return Run(status, rc, stdout, pdd, env, data)


def inventory_script(data: t.Mapping[str, t.Any], pdd: Path) -> Path:
    """inventory/hosts as AWX writes it for a job: a script that prints the inventory's JSON."""
    path = pdd / "inventory" / "hosts"
    path.write_text(f"#! {sys.executable}\n# -*- coding: utf-8 -*-\nprint({json.dumps(json.dumps(data))})\n")
    path.chmod(0o700)
    return path


def job(template_name: str, inventory: t.Mapping[str, t.Any], workdir: Path, *,
        credentials: t.Sequence[Credential] = (), machine: t.Optional[Machine] = None,
        answers: t.Optional[t.Mapping[str, t.Any]] = None, limit: str = "",
        ee: t.Optional[t.Mapping[str, str]] = None, timeout: int = 300) -> Run:
    template = named("job_templates", template_name)
    pdd = private_data_dir(workdir)
    job_id = next(_IDS)
    extra_vars = launch_extra_vars(template, dict(answers or {}))
    extra_vars.update({"awx_job_id": job_id, "tower_job_id": job_id, "awx_job_template_name": template_name,
                       "tower_job_template_name": template_name, "awx_job_launch_type": "manual"})
    args = ["-u", machine.username if machine else "root"]
    args += ["--become"] if template.get("become_enabled") else []
    args += ["--diff"] if template.get("diff_mode") else []
    args += [f"--forks={template['forks']}"] if template.get("forks") else []
    args += ["-l", limit] if limit else []
    args += [f"-{'v' * min(5, template['verbosity'])}"] if template.get("verbosity") else []
    env = ee_env(job_id, pdd, ee)
    env.update({"JOB_ID": str(job_id), "INVENTORY_ID": "1",
                "ANSIBLE_SSH_CONTROL_PATH_DIR": str(pdd / "cp")})
    for credential in credentials:
        inject(credential, env, args, pdd)
    hosts = inventory_script(inventory, pdd)
    status, rc, stdout = _runner(
        pdd, env, timeout, ident=str(job_id), project_dir=str(pdd / "project"), playbook=template["playbook"],
        inventory=str(hosts), extravars=extra_vars, cmdline=ansible_runner.utils.args2cmdline(*args),
        ssh_key=machine.ssh_key_data if machine else None)
    return Run(status, rc, stdout, pdd, env, extra_vars=extra_vars)


def static_inventory(sources: t.Sequence[Path], drop_vars: t.Sequence[str] = ()) -> t.Dict[str, t.Any]:
    """An inventory's JSON as AWX keeps it after an import (`ansible-inventory --list --export`), without the
    variables a credential provides in AWX (the machine credential's key, for one)."""
    argv = [str(BIN / "ansible-inventory"), "--list", "--export"]
    for source in sources:
        argv += ["-i", str(source)]
    done = subprocess.run(argv, capture_output=True, text=True, check=True, timeout=60,
                          env={**os.environ, "ANSIBLE_COLLECTIONS_PATH": str(COLLECTIONS)})
    data: t.Dict[str, t.Any] = json.loads(done.stdout)

    def scrub(variables: t.Dict[str, t.Any]) -> None:
        for name in drop_vars:
            variables.pop(name, None)

    for group in data.values():
        if isinstance(group, dict) and "vars" in group:
            scrub(group["vars"])
    for variables in data.get("_meta", {}).get("hostvars", {}).values():
        scrub(variables)
    return data
