"""The deployment files hold together: the crontab line runs (its flock too), the systemd units
parse, carry their hardening and pass `systemd-analyze verify` where it exists, and the
Dockerfile and compose.yaml name files, commands and variables that exist. Nothing here builds
an image or needs Docker."""

from __future__ import annotations

import argparse
import json
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from aggregator.cli.main import build_parser
from aggregator.cron import parse_cron
from tests.support.loopback import LoopbackServer
from tests.support.processes import ROOT, HeldFeed, feed_xml, wait_for, write_config

CRON = ROOT / "cron"
UNITS = ("aggregator.service", "aggregator-schedule.service", "aggregator.timer")
HARDENING = {
    "DynamicUser": "yes",
    "ProtectSystem": "strict",
    "StateDirectory": "aggregator",
    "NoNewPrivileges": "yes",
    "ProtectHome": "yes",
    "PrivateTmp": "yes",
    "CapabilityBoundingSet": "",
}


def _aggregator_args(command: list[str]) -> argparse.Namespace:
    """The arguments of an ``aggregator ...`` command line, as the real parser reads them."""
    assert Path(command[0]).name == "aggregator", command
    return build_parser().parse_args(command[1:])


def _environment_names() -> set[str]:
    """Every AGGREGATOR_* / OPENAI_* variable the package reads."""
    found: set[str] = set()
    for path in (ROOT / "aggregator").rglob("*.py"):
        found.update(re.findall(r"\b((?:AGGREGATOR|OPENAI)_[A-Z_]+)\b", path.read_text()))
    return found


# -- cron --------------------------------------------------------------------------------------


def _crontab_lines() -> list[str]:
    text = (CRON / "crontab").read_text()
    return [line for line in text.splitlines() if line.strip() and not line.startswith("#")]


def test_the_crontab_line_is_a_schedule_and_a_flock_guarded_run() -> None:
    [line] = _crontab_lines()
    fields = line.split(None, 5)
    schedule, command = " ".join(fields[:5]), fields[5]
    assert parse_cron(schedule).minutes == (0, 30)
    words = shlex.split(command.split("&&", 1)[1].split(">>", 1)[0])
    assert words[:4] == ["flock", "-n", "-E", "75"]  # busy: skip, with aggregator's own code
    lock, run = words[4], words[5:]
    assert Path(lock).name != "aggregator.lock"  # aggregator's own lock must stay its own
    args = _aggregator_args(run)
    assert args.command == "run" and args.config == "sources.yaml"


@pytest.mark.skipif(shutil.which("flock") is None, reason="flock(1) is not installed")
def test_the_crontab_line_runs_and_a_second_start_is_skipped_with_75(tmp_path: Path) -> None:
    """The line itself, run by sh in a folder laid out as it expects (/srv/aggregator)."""
    [line] = _crontab_lines()
    command = line.split(None, 5)[5].replace("/srv/aggregator", str(tmp_path))
    venv = tmp_path / ".venv" / "bin"
    venv.mkdir(parents=True)
    script = venv / "aggregator"
    script.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m aggregator "$@"\n')
    script.chmod(0o755)
    (tmp_path / "data").mkdir()
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)}
    env["AGGREGATOR_ALLOW_PRIVATE_NETWORKS"] = "1"
    with LoopbackServer() as srv:
        held = HeldFeed(feed_xml("wire", srv.url("/")))
        srv.routes["/wire.xml"] = held
        write_config(tmp_path / "sources.yaml", {"wire": srv.url("/wire.xml")})
        first = subprocess.Popen(["sh", "-c", command], env=env)
        try:
            wait_for(held.entered.is_set, "the first run to ask for the feed")
            second = subprocess.run(["sh", "-c", command], env=env, timeout=60, check=False)
            assert second.returncode == 75  # flock skipped it at once
            held.release.set()
            assert first.wait(120) == 0
        finally:
            held.release.set()
            if first.poll() is None:
                first.kill()
    log = (tmp_path / "data" / "cron.log").read_text()
    assert "new articles" in log and (tmp_path / "site" / "index.html").exists()


# -- systemd -----------------------------------------------------------------------------------


def _unit(name: str) -> dict[str, dict[str, list[str]]]:
    """A unit file's sections: key -> every value it was given (keys may repeat)."""
    sections: dict[str, dict[str, list[str]]] = {}
    current: dict[str, list[str]] | None = None
    for raw in (CRON / name).read_text().splitlines():
        line = raw.strip()
        if not line or line[0] in "#;":
            continue
        if line.startswith("[") and line.endswith("]"):
            current = sections.setdefault(line[1:-1], {})
            continue
        assert current is not None and "=" in line, f"{name}: {raw!r}"
        key, value = line.split("=", 1)
        current.setdefault(key.strip(), []).append(value.strip())
    return sections


def test_the_services_are_hardened_and_run_real_commands() -> None:
    environment = _environment_names()
    for name, command in (
        ("aggregator.service", "run"),
        ("aggregator-schedule.service", "schedule"),
    ):
        service = _unit(name)["Service"]
        for key, value in HARDENING.items():
            assert service.get(key) == [value], (name, key)
        [start] = service["ExecStart"]
        args = _aggregator_args(shlex.split(start))
        assert args.command == command and args.config == "/etc/aggregator/sources.yaml"
        # every variable set is one the package reads; state and site where the unit may write
        settings = dict(v.split("=", 1) for v in service["Environment"])
        assert set(settings) <= environment, set(settings) - environment
        state = "/var/lib/" + service["StateDirectory"][0]
        assert settings["AGGREGATOR_DATA_DIR"] == state
        assert settings["AGGREGATOR_HEALTH_FILE"].startswith(state + "/")
        site = Path(settings["AGGREGATOR_OUTPUT_DIR"])
        assert service["ReadWritePaths"] == [str(site.parent)]  # the releases go beside it
    assert _unit("aggregator.service")["Service"]["SuccessExitStatus"] == ["75"]
    daemon = _unit("aggregator-schedule.service")["Service"]
    assert daemon["KillSignal"] == ["SIGTERM"] and daemon["KillMode"] == ["mixed"]


def test_the_timer_starts_the_service() -> None:
    timer = _unit("aggregator.timer")
    assert timer["Timer"]["OnCalendar"] == ["*:00/30"] and timer["Timer"]["Persistent"] == ["true"]
    assert (CRON / timer["Timer"].get("Unit", ["aggregator.service"])[0]).exists()
    assert timer["Install"]["WantedBy"] == ["timers.target"]


@pytest.mark.skipif(
    shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed here"
)
def test_systemd_analyze_verify_finds_nothing_to_say(tmp_path: Path) -> None:
    """verify checks every key and value; it needs ExecStart's program to exist, so a stand-in
    takes the place of /opt/aggregator/bin/aggregator."""
    stand_in = tmp_path / "aggregator"
    stand_in.write_text("#!/bin/sh\nexit 0\n")
    stand_in.chmod(0o755)
    for name in UNITS:
        text = (CRON / name).read_text().replace("/opt/aggregator/bin/aggregator", str(stand_in))
        (tmp_path / name).write_text(text)
    result = subprocess.run(
        ["systemd-analyze", "verify", *(str(tmp_path / name) for name in UNITS)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    # verify exits 0 for an unknown key or a value it cannot read, but says so: nothing said
    assert result.returncode == 0 and result.stderr.strip() == "", result.stderr


# -- Docker ------------------------------------------------------------------------------------


def _dockerfile() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of every instruction, continuation lines joined."""
    instructions: list[tuple[str, str]] = []
    pending = ""
    for raw in (ROOT / "Dockerfile").read_text().splitlines():
        if raw.strip().startswith("#") or not raw.strip():
            continue
        pending += raw.rstrip()
        if pending.endswith("\\"):
            pending = pending[:-1] + " "
            continue
        word, _, rest = pending.strip().partition(" ")
        instructions.append((word.upper(), rest.strip()))
        pending = ""
    return instructions


def test_the_dockerfile_copies_real_files_and_runs_real_commands() -> None:
    instructions = _dockerfile()
    bases = [args.split()[0] for word, args in instructions if word == "FROM"]
    assert bases and all(base.startswith("python:") and base.endswith("-slim") for base in bases)
    for word, args in instructions:
        if word == "COPY" and not args.startswith("--from"):
            for source in args.split()[:-1]:
                assert (ROOT / source).exists(), source
    runs = " ".join(args for word, args in instructions if word == "RUN")
    assert "--constraint constraints.txt" in runs and "--constraint /tmp/constraints.txt" in runs
    [user] = [args for word, args in instructions if word == "USER"]
    assert user not in {"root", "0"}
    entry = json.loads(next(a for w, a in instructions if w == "ENTRYPOINT"))
    command = json.loads(next(a for w, a in instructions if w == "CMD"))
    assert _aggregator_args([*entry, *command]).command == "schedule"
    check = next(a for w, a in instructions if w == "HEALTHCHECK")
    health = _aggregator_args(json.loads(check.split("CMD", 1)[1]))
    assert health.command == "status" and health.healthcheck
    # the variables exist, and the state and the site live on the volumes
    env = dict(re.findall(r"(\w+)=(\S+)", next(a for w, a in instructions if w == "ENV")))
    assert {k for k in env if k.startswith("AGGREGATOR_")} <= _environment_names()
    volumes = json.loads(next(a for w, a in instructions if w == "VOLUME"))
    assert env["AGGREGATOR_DATA_DIR"] in volumes
    assert str(Path(env["AGGREGATOR_HEALTH_FILE"]).parent) in volumes
    # the site is a link the publisher replaces: inside a volume, never the volume itself
    assert str(Path(env["AGGREGATOR_OUTPUT_DIR"]).parent) in volumes


def test_compose_runs_the_image_with_postgres_and_serves_the_site() -> None:
    compose = yaml.safe_load((ROOT / "compose.yaml").read_text())
    services = compose["services"]
    assert services["postgres"]["image"].startswith("postgres:")
    assert "pg_isready" in " ".join(services["postgres"]["healthcheck"]["test"])
    app = services["aggregator"]
    assert app["build"] == "." and (ROOT / "Dockerfile").exists()
    assert _aggregator_args(["aggregator", *app["command"]]).command == "schedule"
    assert app["depends_on"]["postgres"]["condition"] == "service_healthy"
    environment = app["environment"]
    assert set(environment) <= _environment_names()
    url = environment["AGGREGATOR_DB_URL"]
    assert url.startswith("postgresql+psycopg://") and "@postgres:5432/" in url
    mounts = {m.split(":")[1]: m.split(":")[0] for m in app["volumes"]}
    assert (ROOT / mounts["/config/sources.yaml"]).exists()  # the repository's sources.yaml
    declared = set(compose["volumes"])
    for service in services.values():
        for mount in service.get("volumes", []):
            source = mount.split(":")[0]
            assert source.startswith("./") or source in declared, mount
    # nginx serves the same volume the site is published to, at the output folder's name
    [web] = services["web"]["volumes"]
    assert web.split(":")[0] == mounts["/srv/site"] and web.split(":")[1] == "/usr/share/nginx"
    dockerfile_env = dict(
        re.findall(r"(\w+)=(\S+)", next(a for w, a in _dockerfile() if w == "ENV"))
    )
    assert dockerfile_env["AGGREGATOR_OUTPUT_DIR"] == "/srv/site/html"  # nginx's html


def test_the_ci_workflow_publishes_the_site_and_commits_no_data() -> None:
    """cron/github-actions.yml: a valid schedule, commands the CLI accepts, the database kept
    in the Actions cache (never committed), the site uploaded from where the run writes it."""
    workflow = yaml.safe_load((CRON / "github-actions.yml").read_text(encoding="utf-8"))
    triggers = workflow[True] if True in workflow else workflow["on"]  # YAML 1.1 reads on: as True
    for entry in triggers["schedule"]:
        parse_cron(entry["cron"])
    assert workflow["permissions"]["contents"] == "read"  # it cannot push a commit
    assert workflow["concurrency"]["cancel-in-progress"] is False
    build = workflow["jobs"]["build"]
    env = build["env"]
    known = set(
        re.findall(r'"(AGGREGATOR_[A-Z_]+)"', (ROOT / "aggregator" / "settings.py").read_text())
    )
    known |= {"AGGREGATOR_CONFIG", "AGGREGATOR_LOG_FORMAT"}  # read by the CLI
    assert {k for k in env if k.startswith("AGGREGATOR_")} <= known
    parser = build_parser()
    runs = [step["run"] for step in build["steps"] if "run" in step]
    for line in runs:
        assert not re.search(r"\bgit\s+(commit|push|add)\b", line), line
        if line.startswith("aggregator "):
            parser.parse_args(shlex.split(line)[1:])  # exits (fails the test) on a bad option
    assert "aggregator run" in runs
    uses = {step.get("uses", "").split("@")[0]: step for step in build["steps"]}
    assert uses["actions/cache/restore"]["with"]["path"] == env["AGGREGATOR_DATA_DIR"]
    assert uses["actions/cache/save"]["with"]["path"] == env["AGGREGATOR_DATA_DIR"]
    assert uses["actions/upload-pages-artifact"]["with"]["path"] == env["AGGREGATOR_OUTPUT_DIR"]
    assert env["AGGREGATOR_HEALTH_FILE"].startswith(env["AGGREGATOR_DATA_DIR"] + "/")
    deploy = workflow["jobs"]["deploy"]
    assert deploy["needs"] == "build"
    assert deploy["steps"][0]["uses"].startswith("actions/deploy-pages@")
