"""A real Asterisk 22 on this machine, for development and the end-to-end tests.

Asterisk is not packaged for Debian 12, but Debian ``sid`` has it. So Asterisk runs from a
Debian ``sid`` root built once with ``debootstrap`` into a cache directory and started with
``chroot``; only the network namespace is shared with the host (AMI on 127.0.0.1:5038, SIP on
127.0.0.1:5060 by default). Nothing is mounted into the root: Asterisk runs without ``/proc``.

Layout:

* root (``HOTLINE_ASTERISK_ROOT``, default ``/var/cache/hotline/asterisk-root``): the Debian root.
  ``.hotline-root-complete`` in it marks a finished build; a root without it is half-built and is
  deleted and built again.
* state dir (``HOTLINE_STATE_DIR``, default ``/var/lib/hotline``): ``ami-secret`` (0600),
  ``agents.json`` (endpoint -> SIP password, 0600), ``asterisk.pid``, ``asterisk.out`` (console
  output), ``timings.log`` (how long each ``up`` took).

The configuration comes from the repository's ``asterisk-config/`` (``HOTLINE_ASTERISK_CONFIG_DIR``),
optionally overlaid by the files of ``HOTLINE_ASTERISK_CONFIG_OVERLAY``; ``${HOTLINE_*}``
placeholders are rendered from the environment (see :data:`CONFIG_DEFAULTS`), everything else
(the dialplan's own ``${VAR}``) is left alone. The agents' endpoints go into a generated
``pjsip_agents.conf``.

Python API for the tests: :func:`ensure_running`, :func:`stop`, :func:`status`, :func:`cli`.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from string import Template

log = logging.getLogger(__name__)

DEFAULT_ROOT = Path("/var/cache/hotline/asterisk-root")
DEFAULT_STATE_DIR = Path("/var/lib/hotline")
DEFAULT_MIRROR = "http://deb.debian.org/debian"
SUITE = "sid"
#: Packages installed in the root: Asterisk itself, plus the greeting (hello-world, beep) and the
#: music on hold that extensions.conf / musiconhold.conf use.
PACKAGES = (
    "asterisk",
    "asterisk-modules",
    "asterisk-config",
    "asterisk-core-sounds-en-gsm",
    "asterisk-moh-opsound-gsm",
)
MARKER = ".hotline-root-complete"
#: Directories inside the root that Asterisk (running as user ``asterisk``) must own. Asterisk
#: drops root's capabilities, so root-owned 0640 configs would be unreadable to it.
OWNED_DIRS = (
    "/etc/asterisk",
    "/var/lib/asterisk",
    "/var/log/asterisk",
    "/var/spool/asterisk",
    "/run/asterisk",
)
ETC = "etc/asterisk"
RUN = "run/asterisk"  # asterisk.conf sets astrundir => /run/asterisk
AGENTS_FILE = "pjsip_agents.conf"
FALLBACK_MEMBERS_FILE = "queues_fallback_members.conf"
#: A second AMI user for the end-to-end tests, included by manager.conf when present: the service's
#: own user gets only the events the service uses (its eventfilter), the tests watch whole calls.
OBSERVER_FILE = "manager_observer.conf"
OBSERVER_USERNAME = "hotline-observer"
#: Files rendered 0640 because they contain secrets (the rest are 0644).
SECRET_FILES = frozenset({"manager.conf", AGENTS_FILE, OBSERVER_FILE})

#: ``${HOTLINE_*}`` placeholders in asterisk-config/ and their defaults; each can be overridden
#: by the environment variable of the same name. HOTLINE_AMI_SECRET has no default: it is
#: generated into the state dir.
CONFIG_DEFAULTS: Mapping[str, str] = {
    "HOTLINE_AMI_BIND": "127.0.0.1",
    "HOTLINE_AMI_PORT": "5038",
    "HOTLINE_AMI_USERNAME": "hotline",
    "HOTLINE_AMI_PERMIT": "127.0.0.1/255.255.255.255",
    "HOTLINE_SIP_BIND": "127.0.0.1",
    "HOTLINE_SIP_PORT": "5060",
    "HOTLINE_TRUNK_MATCH": "127.0.0.2",
    "HOTLINE_RTP_BIND": "127.0.0.1",
    "HOTLINE_RTP_START": "10000",
    "HOTLINE_RTP_END": "10999",
    "HOTLINE_FALLBACK_AFTER": "30",
}

Reporter = Callable[[str], None]


class AsteriskError(RuntimeError):
    """Provisioning, starting or talking to the local Asterisk failed (the message says why)."""


class _HotlineTemplate(Template):
    """``${HOTLINE_NAME}`` only: the dialplan's own ``${VAR}``, ``$[...]`` and ``$$`` stay as they are."""

    delimiter = "$"
    flags = re.NOFLAG
    pattern = r"""
        \$(?:
          (?P<escaped>(?!))                 # no escape sequence: '$$' is not ours to touch
          | (?P<named>(?!))                 # only the braced form
          | {(?P<braced>HOTLINE_[A-Z0-9_]+)}
          | (?P<invalid>(?!))
        )
    """


@dataclass(frozen=True)
class LocalAsterisk:
    """How to reach the running local Asterisk."""

    ami_host: str
    ami_port: int
    ami_username: str
    ami_secret: str = field(repr=False)
    ami_secret_file: Path
    sip_host: str
    sip_port: int
    trunk_address: str
    #: endpoint name (agent1...) -> SIP digest password
    agents: dict[str, str] = field(repr=False)
    pid: int
    root: Path
    state_dir: Path
    #: same secret and privileges as ``ami_username``, but no event filter (tests only)
    observer_username: str = OBSERVER_USERNAME


@dataclass(frozen=True)
class Status:
    """What ``hotline asterisk status`` reports."""

    running: bool
    pid: int | None
    ami_reachable: bool
    root_cached: bool
    root: Path
    state_dir: Path


# --------------------------------------------------------------------------------------------
# paths, locking, small helpers


def root_dir() -> Path:
    return Path(os.environ.get("HOTLINE_ASTERISK_ROOT") or DEFAULT_ROOT)


def state_dir() -> Path:
    return Path(os.environ.get("HOTLINE_STATE_DIR") or DEFAULT_STATE_DIR)


def config_dir() -> Path:
    env = os.environ.get("HOTLINE_ASTERISK_CONFIG_DIR")
    return Path(env) if env else Path(__file__).resolve().parents[1] / "asterisk-config"


def config_values(secret: str) -> dict[str, str]:
    """Placeholder values: defaults, overridden by the environment, plus the AMI secret."""
    values = {name: os.environ.get(name) or default for name, default in CONFIG_DEFAULTS.items()}
    values["HOTLINE_AMI_SECRET"] = secret
    return values


@contextlib.contextmanager
def _locked(state: Path) -> Iterator[None]:
    """Serialise up/down between processes (two test sessions, a CLI and a test run)."""
    state.mkdir(parents=True, exist_ok=True)
    with open(state / ".lock", "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _run(cmd: list[str], *, timeout: float, env: Mapping[str, str] | None = None) -> str:
    """Run a command; raise :class:`AsteriskError` with its output tail when it fails."""
    try:
        proc = subprocess.run(
            cmd,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
            env=dict(env) if env is not None else None,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise AsteriskError(f"{' '.join(cmd)!r} did not finish within {timeout:.0f} s") from exc
    if proc.returncode != 0:
        tail = (proc.stdout + proc.stderr).strip().splitlines()[-15:]
        raise AsteriskError(f"{' '.join(cmd)!r} failed with exit code {proc.returncode}:\n" + "\n".join(tail))
    return proc.stdout


def _chroot_env() -> dict[str, str]:
    """A clean environment for processes in the root: the host's (secrets included) stays out."""
    return {
        "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        "LANG": "C.UTF-8",
        "HOME": "/root",
        "DEBIAN_FRONTEND": "noninteractive",
    }


def _write_private(path: Path, text: str) -> None:
    """Write a file readable only by its owner, without a window where it is world-readable."""
    tmp = path.with_suffix(path.suffix + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(text)
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)


# --------------------------------------------------------------------------------------------
# the cached Debian sid root


def debian_mirror() -> str:
    """The Debian mirror to bootstrap from: ``HOTLINE_DEBIAN_MIRROR``, else the host's apt sources."""
    env = os.environ.get("HOTLINE_DEBIAN_MIRROR")
    if env:
        return env
    files = [Path("/etc/apt/sources.list"), *sorted(Path("/etc/apt/sources.list.d").glob("*"))]
    for path in files:
        try:
            text = path.read_text()
        except OSError:
            continue
        for uri in re.findall(r"(?:URIs:\s*|^deb\s+(?:\[[^\]]*\]\s+)?)(\S+)", text, flags=re.MULTILINE):
            if uri.rstrip("/").endswith("/debian"):  # not debian-security, not third-party repos
                return uri.rstrip("/")
    return DEFAULT_MIRROR


def root_cached(root: Path | None = None) -> bool:
    """Whether the root was built completely with every package of :data:`PACKAGES`."""
    marker = (root or root_dir()) / MARKER
    try:
        built = json.loads(marker.read_text())
    except (OSError, ValueError):
        return False
    return set(PACKAGES) <= set(built.get("packages", []))


def _ensure_debootstrap(report: Reporter) -> None:
    if shutil.which("debootstrap"):
        return
    report("debootstrap not found: installing it with apt-get")
    _run(["apt-get", "update", "-q"], timeout=600)
    _run(["apt-get", "install", "-y", "-q", "debootstrap"], timeout=600, env={**os.environ, **_chroot_env()})


def _unmount_below(root: Path) -> None:
    """Unmount anything left mounted inside the root (a crashed debootstrap leaves /proc)."""
    try:
        mounts = Path("/proc/self/mounts").read_text().splitlines()
    except OSError:
        return
    prefix = str(root.resolve()) + "/"
    targets = [line.split()[1] for line in mounts if line.split()[1].startswith(prefix)]
    for target in sorted(targets, key=len, reverse=True):
        subprocess.run(["umount", "-l", target], check=False, capture_output=True)


def _apt_in_root(root: Path, packages: list[str]) -> None:
    # Sid's Release file on the mirror can be past its Valid-Until date; apt refuses it otherwise.
    apt = ["chroot", str(root), "apt-get", "-o", "Acquire::Check-Valid-Until=false", "-q"]
    # Daemons must not start inside the root while installing.
    policy = root / "usr/sbin/policy-rc.d"
    policy.write_text("#!/bin/sh\nexit 101\n")
    policy.chmod(0o755)
    with contextlib.suppress(OSError):
        shutil.copyfile("/etc/resolv.conf", root / "etc/resolv.conf")
    _run([*apt, "update"], timeout=600, env=_chroot_env())
    _run([*apt, "install", "-y", "--no-install-recommends", *packages], timeout=1200, env=_chroot_env())
    _run([*apt, "clean"], timeout=120, env=_chroot_env())


def provision_root(root: Path | None = None, *, rebuild: bool = False, report: Reporter = log.info) -> bool:
    """Build the Debian sid root with Asterisk unless a complete one is cached.

    Returns whether anything was built or installed.
    """
    root = root or root_dir()
    if rebuild or not (root / MARKER).exists():
        if root.exists():
            report(f"removing incomplete or unwanted root {root}")
            _unmount_below(root)
            shutil.rmtree(root)
        _ensure_debootstrap(report)
        mirror = debian_mirror()
        root.parent.mkdir(parents=True, exist_ok=True)
        report(f"debootstrap --variant=minbase {SUITE} {root} {mirror} (about 30 s)")
        started = time.monotonic()
        try:
            _run(["debootstrap", "--variant=minbase", SUITE, str(root), mirror], timeout=1800)
        finally:
            _unmount_below(root)
        report(f"debootstrap done in {time.monotonic() - started:.1f} s")
        missing = list(PACKAGES)
    elif root_cached(root):
        return False
    else:
        built = json.loads((root / MARKER).read_text())
        missing = [p for p in PACKAGES if p not in built.get("packages", [])]
    report(f"apt-get install {' '.join(missing)} in the root")
    started = time.monotonic()
    _apt_in_root(root, missing)
    report(f"packages installed in {time.monotonic() - started:.1f} s")
    version = _run(["chroot", str(root), "asterisk", "-V"], timeout=30, env=_chroot_env()).strip()
    (root / MARKER).write_text(
        json.dumps({"packages": list(PACKAGES), "asterisk": version, "built": time.time()}, indent=1)
    )
    return True


# --------------------------------------------------------------------------------------------
# secrets and agents in the state dir


def ami_secret(state: Path | None = None) -> str:
    """``HOTLINE_AMI_SECRET`` if set, else the one in ``ami-secret``, generated on first use."""
    path = (state or state_dir()) / "ami-secret"
    env = os.environ.get("HOTLINE_AMI_SECRET")
    if env:
        secret = env
    else:
        try:
            secret = path.read_text().strip()
        except FileNotFoundError:
            secret = ""
        secret = secret or secrets.token_urlsafe(24)
    # Keep the file in step so the service can always use HOTLINE_AMI_SECRET_FILE.
    if not path.exists() or path.read_text().strip() != secret:
        path.parent.mkdir(parents=True, exist_ok=True)
        _write_private(path, secret + "\n")
    return secret


def agent_credentials(count: int, state: Path | None = None) -> dict[str, str]:
    """agent1..agentN -> password, keeping the passwords already in ``agents.json``."""
    if count < 0:
        raise ValueError("agent count must be >= 0")
    path = (state or state_dir()) / "agents.json"
    try:
        known = json.loads(path.read_text())
    except (OSError, ValueError):
        known = {}
    agents = {
        f"agent{i}": str(known.get(f"agent{i}") or secrets.token_urlsafe(12)) for i in range(1, count + 1)
    }
    if agents != known:
        path.parent.mkdir(parents=True, exist_ok=True)
        _write_private(path, json.dumps(agents, indent=1) + "\n")
    return agents


def render_agents(agents: Mapping[str, str]) -> str:
    """pjsip_agents.conf: one endpoint/auth/aor triple per agent, from the templates in pjsip.conf."""
    parts = ["; Generated by devtools/local_asterisk.py from agents.json: do not edit.\n"]
    for name, password in agents.items():
        parts.append(
            f"\n[{name}](agent-endpoint)\nauth = {name}\naors = {name}\n"
            f"\n[{name}](agent-auth)\nusername = {name}\npassword = {password}\n"
            f"\n[{name}](agent-aor)\n"
        )
    return "".join(parts)


def render_config(values: Mapping[str, str], agents: Mapping[str, str]) -> dict[str, str]:
    """All config files (name -> text): asterisk-config/*.conf, the overlay, pjsip_agents.conf."""
    sources = sorted(config_dir().glob("*.conf"))
    overlay = os.environ.get("HOTLINE_ASTERISK_CONFIG_OVERLAY")
    if overlay:
        sources += sorted(Path(overlay).glob("*.conf"))
    if not sources:
        raise AsteriskError(f"no *.conf files in {config_dir()}")
    files: dict[str, str] = {}
    for path in sources:  # overlay files come last and replace same-named ones
        text = _HotlineTemplate(path.read_text()).safe_substitute(values)
        leftover = re.findall(r"\$\{HOTLINE_[A-Z0-9_]+\}", text)
        if leftover:
            raise AsteriskError(f"{path}: no value for {', '.join(sorted(set(leftover)))}")
        files[path.name] = text
    files[AGENTS_FILE] = render_agents(agents)
    files[FALLBACK_MEMBERS_FILE] = render_fallback_members(agents)
    files[OBSERVER_FILE] = render_observer(values)
    return files


def render_observer(values: Mapping[str, str]) -> str:
    """manager_observer.conf: the tests' AMI user, the service's privileges without its event filter."""
    return (
        "; Generated by devtools/local_asterisk.py for the end-to-end tests: do not edit.\n"
        f"[{OBSERVER_USERNAME}]\n"
        f"secret = {values['HOTLINE_AMI_SECRET']}\n"
        "deny = 0.0.0.0/0.0.0.0\n"
        f"permit = {values['HOTLINE_AMI_PERMIT']}\n"
        "read = call,user,system\n"
        "write = originate,call,reporting\n"
        "writetimeout = 1000\n"
    )


def render_fallback_members(agents: Mapping[str, str]) -> str:
    """The members of app_queue's fallback queue: every agent phone (see queues.conf)."""
    lines = ["; Generated by devtools/local_asterisk.py from agents.json: do not edit.\n"]
    lines += [f"member => PJSIP/{name}\n" for name in agents]
    return "".join(lines)


def install_config(root: Path, files: Mapping[str, str]) -> bool:
    """Make the root's /etc/asterisk hold exactly these files. Returns whether anything changed."""
    etc = root / ETC
    samples = root / "etc/asterisk.debian-samples"
    if etc.exists() and not samples.exists():
        # Keep Debian's sample configs for reference, out of Asterisk's way, once.
        shutil.copytree(etc, samples, symlinks=True)
    etc.mkdir(parents=True, exist_ok=True)
    changed = False
    for stale in etc.iterdir():
        if stale.name not in files:
            if stale.is_dir() and not stale.is_symlink():
                shutil.rmtree(stale)
            else:
                stale.unlink()
            changed = True
    for name, text in files.items():
        path = etc / name
        if path.exists() and path.read_text() == text:
            continue
        path.write_text(text)
        path.chmod(0o640 if name in SECRET_FILES else 0o644)
        changed = True
    return changed


def _config_digest(files: Mapping[str, str]) -> str:
    return hashlib.sha256(json.dumps(files, sort_keys=True).encode()).hexdigest()


def _fix_ownership(root: Path) -> None:
    (root / RUN).mkdir(parents=True, exist_ok=True)
    # chown inside the root: the root's 'asterisk' uid/gid differ from the host's.
    _run(
        ["chroot", str(root), "chown", "-R", "asterisk:asterisk", *OWNED_DIRS], timeout=120, env=_chroot_env()
    )


# --------------------------------------------------------------------------------------------
# the process


def _pid_file(state: Path) -> Path:
    return state / "asterisk.pid"


def _is_our_asterisk(pid: int, root: Path) -> bool:
    """True if pid is a live (non-zombie) asterisk process running inside this root."""
    proc = Path(f"/proc/{pid}")
    try:
        if (proc / "comm").read_text().strip() != "asterisk":
            return False
        if ") Z" in (proc / "stat").read_text():
            return False
        return os.readlink(proc / "root") == str(root.resolve())
    except OSError:
        return False


def running_pid(root: Path | None = None, state: Path | None = None) -> int | None:
    """The pid of the Asterisk this module started, if it still runs."""
    root, state = root or root_dir(), state or state_dir()
    try:
        pid = int(_pid_file(state).read_text().strip())
    except (OSError, ValueError):
        return None
    return pid if _is_our_asterisk(pid, root) else None


def ami_banner(host: str, port: int, timeout: float = 2.0) -> str | None:
    """The AMI greeting line, or None if nothing AMI-like answers there."""
    try:
        with socket.create_connection((host, port), timeout=timeout) as sock:
            sock.settimeout(timeout)
            data = b""
            while b"\n" not in data:
                chunk = sock.recv(256)
                if not chunk:
                    break
                data += chunk
    except OSError:
        return None
    line = data.split(b"\n", 1)[0].decode(errors="replace").strip()
    return line if line.startswith("Asterisk Call Manager") else None


def _client_host(bind: str) -> str:
    return "127.0.0.1" if bind in ("0.0.0.0", "", "::") else bind


def cli(command: str, *, timeout: float = 15.0, root: Path | None = None) -> str:
    """Run ``asterisk -rx COMMAND`` against the running instance and return its output."""
    root = root or root_dir()
    return _run(
        ["chroot", str(root), "/usr/sbin/asterisk", "-rx", command], timeout=timeout, env=_chroot_env()
    )


def _start(root: Path, state: Path) -> int:
    run = root / RUN
    for stale in ("asterisk.pid", "asterisk.ctl"):
        with contextlib.suppress(FileNotFoundError):
            (run / stale).unlink()
    out = open(state / "asterisk.out", "ab")  # noqa: SIM115 - handed to the child, closed below
    try:
        # setsid --fork: Asterisk is not our child (no zombie when it exits, survives `hotline asterisk
        # up`) and has its own session (no SIGINT from the terminal). Its pid comes from its pid file.
        subprocess.run(
            [
                "setsid",
                "--fork",
                "chroot",
                str(root),
                "/usr/sbin/asterisk",
                "-f",
                "-U",
                "asterisk",
                "-G",
                "asterisk",
            ],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=_chroot_env(),
            check=True,
            timeout=30,
        )
    finally:
        out.close()
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError, ValueError):
            pid = int((run / "asterisk.pid").read_text().strip())
            if _is_our_asterisk(pid, root):
                _pid_file(state).write_text(f"{pid}\n")
                return pid
        time.sleep(0.05)
    raise AsteriskError(
        f"Asterisk did not write {run / 'asterisk.pid'} within 20 s; see {state / 'asterisk.out'}"
    )


def _wait_ready(root: Path, state: Path, pid: int, host: str, port: int, timeout: float = 60.0) -> None:
    """Until the CLI says fully booted and AMI greets on host:port."""
    deadline = time.monotonic() + timeout
    booted = False
    while time.monotonic() < deadline:
        if not _is_our_asterisk(pid, root):
            raise AsteriskError(
                f"Asterisk (pid {pid}) exited while starting:\n{_tail(state / 'asterisk.out', root)}"
            )
        if not booted:
            # The control socket appears a moment after the pid file: until then the CLI fails.
            with contextlib.suppress(AsteriskError):
                booted = "fully booted" in cli("core waitfullybooted", timeout=10, root=root).lower()
        if booted and ami_banner(host, port):
            return
        time.sleep(0.1)
    raise AsteriskError(
        f"Asterisk (pid {pid}) not ready after {timeout:.0f} s (fully booted: {booted}, AMI {host}:{port} "
        f"answering: False):\n{_tail(state / 'asterisk.out', root)}"
    )


def _tail(out: Path, root: Path, lines: int = 20) -> str:
    texts = []
    for path in (out, root / "var/log/asterisk/messages.log"):
        with contextlib.suppress(OSError):
            texts.append(f"--- {path}\n" + "\n".join(path.read_text(errors="replace").splitlines()[-lines:]))
    return "\n".join(texts)


def _timing(state: Path, what: str, seconds: float, report: Reporter) -> None:
    line = f"{time.strftime('%Y-%m-%dT%H:%M:%S')} {what} {seconds:.1f}s"
    with contextlib.suppress(OSError), open(state / "timings.log", "a") as fh:
        fh.write(line + "\n")
    report(f"{what}: {seconds:.1f} s")


def ensure_running(
    agents: int = 10,
    *,
    rebuild: bool = False,
    report: Reporter = log.info,
    root: Path | None = None,
    state: Path | None = None,
) -> LocalAsterisk:
    """Provision (once), configure and start the local Asterisk; a no-op if it already runs.

    When it already runs and the rendered configuration changed (e.g. more agents), it is reloaded
    with ``core reload``. Raises :class:`AsteriskError` saying what failed.
    """
    if os.geteuid() != 0:
        raise AsteriskError("the local Asterisk needs root (debootstrap, chroot)")
    root, state = root or root_dir(), state or state_dir()
    started = time.monotonic()
    if running_pid(root, state) is not None and _modules_changed(root):
        report("modules.conf changed: restarting Asterisk (a reload loads no new modules)")
        stop(report=report, root=root, state=state)
    with _locked(state):
        os.chmod(state, 0o750)
        built = provision_root(root, rebuild=rebuild, report=report)
        secret = ami_secret(state)
        creds = agent_credentials(agents, state)
        values = config_values(secret)
        files = render_config(values, creds)
        changed = install_config(root, files)
        ami_host, ami_port = _client_host(values["HOTLINE_AMI_BIND"]), int(values["HOTLINE_AMI_PORT"])
        pid = running_pid(root, state)
        if pid is not None:
            if changed:
                _fix_ownership(root)
                cli("core reload", root=root)
                report(f"Asterisk already running (pid {pid}); configuration changed: reloaded")
            else:
                report(f"Asterisk already running (pid {pid}); nothing to do")
        else:
            if ami_banner(ami_host, ami_port, timeout=0.5):
                raise AsteriskError(
                    f"something else already answers AMI on {ami_host}:{ami_port}; "
                    "stop it (it was not started by hotline asterisk up)"
                )
            _fix_ownership(root)
            report(f"config installed in {root / ETC} ({len(files)} files, {len(creds)} agents)")
            pid = _start(root, state)
            _wait_ready(root, state, pid, ami_host, ami_port)
            report(f"Asterisk started (pid {pid}); fully booted; AMI answers on {ami_host}:{ami_port}")
            _timing(
                state,
                "up (cold: root built)" if built else "up (warm: root cached)",
                time.monotonic() - started,
                report,
            )
        (state / "config.sha256").write_text(_config_digest(files) + "\n")
    return LocalAsterisk(
        ami_host=ami_host,
        ami_port=ami_port,
        ami_username=values["HOTLINE_AMI_USERNAME"],
        ami_secret=secret,
        ami_secret_file=state / "ami-secret",
        sip_host=_client_host(values["HOTLINE_SIP_BIND"]),
        sip_port=int(values["HOTLINE_SIP_PORT"]),
        trunk_address=values["HOTLINE_TRUNK_MATCH"].split(",")[0].split("/")[0].strip(),
        agents=creds,
        pid=pid,
        root=root,
        state_dir=state,
    )


def _modules_changed(root: Path) -> bool:
    installed = root / ETC / "modules.conf"
    return installed.exists() and installed.read_text() != (config_dir() / "modules.conf").read_text()


def stop(
    *, report: Reporter = log.info, root: Path | None = None, state: Path | None = None, timeout: float = 20.0
) -> bool:
    """Stop the Asterisk this module started (and nothing else). Returns whether one was running."""
    root, state = root or root_dir(), state or state_dir()
    with _locked(state):
        pid = running_pid(root, state)
        if pid is None:
            with contextlib.suppress(FileNotFoundError):
                _pid_file(state).unlink()
            report("Asterisk is not running (no live pid from hotline asterisk up)")
            return False
        with contextlib.suppress(AsteriskError):
            cli("core stop now", timeout=10, root=root)
        deadline = time.monotonic() + timeout
        sent_term = False
        while _is_our_asterisk(pid, root):
            if time.monotonic() > deadline:
                os.kill(pid, signal.SIGKILL)
                report(f"Asterisk (pid {pid}) did not stop in time: killed")
                break
            if not sent_term and time.monotonic() > deadline - timeout / 2:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGTERM)
                sent_term = True
            time.sleep(0.1)
        _pid_file(state).unlink(missing_ok=True)
        report(f"Asterisk (pid {pid}) stopped")
        return True


def status(*, root: Path | None = None, state: Path | None = None) -> Status:
    """Whether our Asterisk runs, its pid, whether AMI answers, whether the root is cached."""
    root, state = root or root_dir(), state or state_dir()
    pid = running_pid(root, state)
    bind = os.environ.get("HOTLINE_AMI_BIND") or CONFIG_DEFAULTS["HOTLINE_AMI_BIND"]
    port = int(os.environ.get("HOTLINE_AMI_PORT") or CONFIG_DEFAULTS["HOTLINE_AMI_PORT"])
    return Status(
        running=pid is not None,
        pid=pid,
        ami_reachable=ami_banner(_client_host(bind), port, timeout=1.0) is not None,
        root_cached=root_cached(root),
        root=root,
        state_dir=state,
    )
