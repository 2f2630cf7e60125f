"""Start ROS 2 node processes in a private, isolated ROS environment and stop them cleanly.

ROS-free (no rclpy import): nodes run as `python -m <module> --ros-args ...` child processes with
their own ROS_DOMAIN_ID, localhost-only discovery and ROS logs under a given folder; stdout and
stderr of each go to `<log_dir>/<name>.log`. Children get their own session, so a Ctrl-C in the
terminal reaches only the parent, which then stops them in a chosen order: SIGINT (as Ctrl-C
would), a wait, then SIGTERM and finally SIGKILL.
"""

from __future__ import annotations

import ctypes
import os
from pathlib import Path
import signal
import subprocess
import sys
import time
from typing import Any, Iterable, Mapping, Sequence

__all__ = ['ManagedProcess', 'ProcessError', 'ProcessGroup', 'private_domain_id',
           'ros_environment', 'ros_arguments']

#: largest ROS_DOMAIN_ID that is safe on every platform (REP/DDS port mapping)
MAX_SAFE_DOMAIN_ID = 101
_PR_SET_PDEATHSIG = 1  # prctl option (linux/prctl.h)


class ProcessError(RuntimeError):
    """A node process that failed to start, exited early, or did not become ready."""


def private_domain_id(seed: int | None = None) -> int:
    """Return a ROS_DOMAIN_ID in 1..101 derived from `seed` (default: this process id).

    SEG_DEMO_DOMAIN_ID in the environment overrides it.
    """
    forced = os.environ.get('SEG_DEMO_DOMAIN_ID')
    if forced:
        value = int(forced)
        if not 0 <= value <= MAX_SAFE_DOMAIN_ID:
            raise ProcessError(f'SEG_DEMO_DOMAIN_ID must be in 0..{MAX_SAFE_DOMAIN_ID}, got '
                               f'{value}')
        return value
    seed = os.getpid() if seed is None else seed
    return 1 + (seed * 7919) % MAX_SAFE_DOMAIN_ID


def ros_environment(*, domain_id: int, log_dir: Path,
                    base: Mapping[str, str] | None = None) -> dict[str, str]:
    """Return an environment with a private domain, localhost discovery and logs in `log_dir`."""
    env = dict(os.environ if base is None else base)
    env['ROS_DOMAIN_ID'] = str(int(domain_id))
    env['ROS_AUTOMATIC_DISCOVERY_RANGE'] = 'LOCALHOST'
    env.pop('ROS_LOCALHOST_ONLY', None)
    env['ROS_LOG_DIR'] = str(log_dir)
    env['RCUTILS_COLORIZED_OUTPUT'] = '0'
    env['PYTHONUNBUFFERED'] = '1'
    return env


def _param_text(value: Any) -> str:
    """Render a parameter value the way `--ros-args -p` parses it (YAML)."""
    if isinstance(value, bool):
        return 'true' if value else 'false'
    if isinstance(value, (list, tuple)):
        return '[' + ','.join(f"'{v}'" if isinstance(v, str) else _param_text(v)
                              for v in value) + ']'
    return str(value)


def ros_arguments(*, params: Mapping[str, Any] | None = None,
                  remaps: Mapping[str, str] | None = None,
                  namespace: str | None = None) -> list[str]:
    """Return `--ros-args` and its -p/-r items (empty when there is nothing to pass)."""
    items: list[str] = []
    if namespace:
        items += ['-r', f'__ns:=/{namespace.strip("/")}']
    for key, value in (params or {}).items():
        items += ['-p', f'{key}:={_param_text(value)}']
    for source, target in (remaps or {}).items():
        items += ['-r', f'{source}:={target}']
    return ['--ros-args', *items] if items else []


def _die_with_parent() -> None:  # pragma: no cover - runs in the child before exec
    """Ask Linux to SIGTERM this child when its parent dies (even by SIGKILL)."""
    try:
        ctypes.CDLL('libc.so.6', use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    except (OSError, AttributeError):
        pass


class ManagedProcess:
    """One child process with its log file."""

    def __init__(self, name: str, command: Sequence[str], *, env: Mapping[str, str],
                 log_path: Path, cwd: Path | None = None) -> None:
        self.name = name
        self.command = list(command)
        self.log_path = log_path
        self._log = open(log_path, 'wb')
        try:
            self.popen = subprocess.Popen(self.command, stdout=self._log,
                                          stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                          env=dict(env), cwd=cwd, start_new_session=True,
                                          preexec_fn=_die_with_parent)
        except OSError as exc:
            self._log.close()
            raise ProcessError(f'cannot start {name} ({self.command[0]}): {exc}') from exc
        self.started_s = time.monotonic()
        self.stop_method: str | None = None

    @property
    def returncode(self) -> int | None:
        """Return the exit status, or None while running."""
        return self.popen.poll()

    def is_running(self) -> bool:
        """Return True while the process has not exited."""
        return self.popen.poll() is None

    def cpu_seconds(self) -> float | None:
        """Return the CPU time (user + system, all threads) used so far; None if unknown.

        Read from /proc (Linux); None on other systems or once the process is gone.
        """
        try:
            stat = Path(f'/proc/{self.popen.pid}/stat').read_text()
        except OSError:
            return None
        fields = stat[stat.rindex(')') + 2:].split()  # after "pid (comm) "
        return (int(fields[11]) + int(fields[12])) / os.sysconf('SC_CLK_TCK')

    def output(self) -> str:
        """Return what the process has written to its log so far."""
        self._log.flush()
        try:
            return self.log_path.read_text(encoding='utf-8', errors='replace')
        except OSError:
            return ''

    def tail(self, lines: int = 8) -> str:
        """Return the last lines of the log, for error messages."""
        return '\n'.join(self.output().rstrip().splitlines()[-lines:])

    def wait_for_output(self, text: str, timeout_s: float) -> None:
        """Wait until `text` appears in the log; raise ProcessError on exit or timeout."""
        deadline = time.monotonic() + timeout_s
        while True:
            if text in self.output():
                return
            if not self.is_running():
                raise ProcessError(f'{self.name} exited with status {self.returncode} before '
                                   f'it was ready; log {self.log_path}:\n{self.tail()}')
            if time.monotonic() >= deadline:
                raise ProcessError(f'{self.name} not ready after {timeout_s:.0f} s (no '
                                   f'{text!r} in {self.log_path}):\n{self.tail()}')
            time.sleep(0.05)

    def wait(self, timeout_s: float) -> int | None:
        """Wait up to `timeout_s` for the process to exit; return its status or None."""
        try:
            return self.popen.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            return None

    def stop(self, *, sigint_timeout_s: float = 10.0, sigterm_timeout_s: float = 5.0) -> int:
        """Stop with SIGINT, then SIGTERM, then SIGKILL; return the exit status (idempotent)."""
        if self.is_running():
            for signum, timeout_s, method in ((signal.SIGINT, sigint_timeout_s, 'SIGINT'),
                                              (signal.SIGTERM, sigterm_timeout_s, 'SIGTERM'),
                                              (signal.SIGKILL, 5.0, 'SIGKILL')):
                try:
                    self.popen.send_signal(signum)
                except ProcessLookupError:
                    break
                self.stop_method = method
                if self.wait(timeout_s) is not None:
                    break
        code = self.popen.wait()
        if not self._log.closed:
            self._log.close()
        return code


class ProcessGroup:
    """Node processes sharing one isolated ROS environment; a context manager that stops them.

    Processes are stopped in reverse start order unless `stop()` is given names.
    """

    def __init__(self, *, log_dir: Path, domain_id: int | None = None,
                 cwd: Path | None = None, python: str = sys.executable) -> None:
        self.log_dir = Path(log_dir)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        (self.log_dir / 'ros').mkdir(exist_ok=True)
        self.domain_id = private_domain_id() if domain_id is None else int(domain_id)
        self.env = ros_environment(domain_id=self.domain_id, log_dir=self.log_dir / 'ros')
        self.cwd = cwd
        self.python = python
        self.processes: dict[str, ManagedProcess] = {}
        self.exit_codes: dict[str, int] = {}

    def start(self, name: str, module: str, *, args: Sequence[str] = (),
              params: Mapping[str, Any] | None = None,
              remaps: Mapping[str, str] | None = None,
              namespace: str | None = None) -> ManagedProcess:
        """Start `python -m module args --ros-args ...`; logs go to <log_dir>/<name>.log."""
        if name in self.processes:
            raise ProcessError(f'a process named {name!r} is already in this group')
        command = [self.python, '-m', module, *args,
                   *ros_arguments(params=params, remaps=remaps, namespace=namespace)]
        process = ManagedProcess(name, command, env=self.env,
                                 log_path=self.log_dir / f'{name}.log', cwd=self.cwd)
        self.processes[name] = process
        return process

    def wait_ready(self, name: str, text: str, timeout_s: float) -> None:
        """Wait until `text` is in process `name`'s log; fail early if any process exits."""
        process = self.processes[name]
        deadline = time.monotonic() + timeout_s
        while text not in process.output():
            self.check_running(allow_finished=True)
            if time.monotonic() >= deadline:
                raise ProcessError(f'{name} not ready after {timeout_s:.0f} s (no {text!r} in '
                                   f'{process.log_path}):\n{process.tail()}')
            time.sleep(0.05)

    def check_running(self, names: Iterable[str] | None = None, *,
                      allow_finished: bool = False) -> None:
        """Raise ProcessError naming the first process that has exited (with its log tail).

        allow_finished: a process that exited with status 0 (done, like a bag player) is fine.
        """
        for name in (self.processes if names is None else names):
            process = self.processes[name]
            if not process.is_running() and not (allow_finished and process.returncode == 0):
                raise ProcessError(f'{name} exited with status {process.returncode}; log '
                                   f'{process.log_path}:\n{process.tail()}')

    def stop(self, names: Iterable[str] | None = None, *, sigint_timeout_s: float = 10.0) -> None:
        """Stop the named processes (default: all, newest first) in that order."""
        order = list(reversed(self.processes)) if names is None else list(names)
        for name in order:
            process = self.processes.get(name)
            if process is not None and name not in self.exit_codes:
                self.exit_codes[name] = process.stop(sigint_timeout_s=sigint_timeout_s)

    def __enter__(self) -> ProcessGroup:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
