"""Multi-process (multi-host) start-up: a thin layer over ``jax.distributed.initialize``.

One run is ``num_processes`` copies of ``train.py``, one per host (or GPU), that meet at process
0's ``host:port``. Settings, first match wins: the arguments (``--coordinator_address``,
``--num_processes``, ``--process_id``); the variables ``JAX_COORDINATOR_ADDRESS``,
``JAX_NUM_PROCESSES``, ``JAX_PROCESS_ID``; JAX's cluster detection (Cloud TPU, SLURM, Open MPI)
for what is still unset (``--distributed`` alone). JAX does the rest (detection, retries,
``initialization_timeout``); this module adds what users need on top, clear errors:

* bad settings are refused before anything starts, naming the argument;
* process 0 whose port is taken: ``OSError`` naming it;
* another process that cannot reach the coordinator within ``timeout_s``: ``TimeoutError``
  naming the address (JAX itself would abort the process);
* processes that never join: JAX aborts every process after ``timeout_s`` (``DEADLINE_EXCEEDED``),
  after a line from here saying how many processes were awaited where;
* incomplete settings and no cluster detected: ``ValueError`` listing the flags and variables.

On CPU the cross-process collectives go through gloo.

>>> resolve_settings("localhost:1234", 2, 1, env={})
DistributedSettings(coordinator_address='localhost:1234', num_processes=2, process_id=1)
>>> resolve_settings(env={"JAX_NUM_PROCESSES": "4", "JAX_PROCESS_ID": "3"})
DistributedSettings(coordinator_address=None, num_processes=4, process_id=3)
"""

from __future__ import annotations

import logging
import os
import socket
import sys
import threading
import time
from collections.abc import Mapping
from typing import NamedTuple

import jax

log = logging.getLogger(__name__)

ENV_VARS = ("JAX_COORDINATOR_ADDRESS", "JAX_NUM_PROCESSES", "JAX_PROCESS_ID")


class DistributedSettings(NamedTuple):
    """What ``jax.distributed.initialize`` gets; ``None`` leaves it to JAX's cluster detection.

    >>> DistributedSettings()
    DistributedSettings(coordinator_address=None, num_processes=None, process_id=None)
    """

    coordinator_address: str | None = None
    num_processes: int | None = None
    process_id: int | None = None


def _int_setting(name: str, value, env: Mapping[str, str]) -> int | None:
    env_name = f"JAX_{name.upper()}"
    if value is None and env.get(env_name, "") != "":
        value, name = env[env_name], f"environment variable {env_name}"
    try:
        return None if value is None else int(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be an integer, got {value!r}") from None


def resolve_settings(
    coordinator_address: str | None = None,
    num_processes: int | None = None,
    process_id: int | None = None,
    env: Mapping[str, str] | None = None,
) -> DistributedSettings:
    """Arguments, else ``JAX_*`` environment variables, checked; unset stays ``None``.

    >>> resolve_settings(num_processes=2, process_id=2, env={})
    Traceback (most recent call last):
    ...
    ValueError: process_id must be in [0, num_processes=2), got 2
    >>> resolve_settings(coordinator_address="localhost", env={})
    Traceback (most recent call last):
    ...
    ValueError: coordinator_address must be 'host:port', got 'localhost'
    """
    env = os.environ if env is None else env
    address = coordinator_address or env.get("JAX_COORDINATOR_ADDRESS") or None
    count = _int_setting("num_processes", num_processes, env)
    index = _int_setting("process_id", process_id, env)
    if address is not None:
        host, _, port = address.rpartition(":")
        if not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError(f"coordinator_address must be 'host:port', got {address!r}")
    if count is not None and count < 1:
        raise ValueError(f"num_processes must be >= 1, got {count}")
    if index is not None and index < 0:
        raise ValueError(f"process_id must be >= 0, got {index}")
    if count is not None and index is not None and index >= count:
        raise ValueError(f"process_id must be in [0, num_processes={count}), got {index}")
    return DistributedSettings(address, count, index)


def is_requested(distributed: bool = False, *values, env: Mapping[str, str] | None = None) -> bool:
    """Whether to start the distributed runtime: ``distributed``, any value given, or a ``JAX_*``.

    >>> is_requested(False, None, 2, env={}), is_requested(False, env={"JAX_PROCESS_ID": "0"})
    (True, True)
    """
    env = os.environ if env is None else env
    return bool(
        distributed or any(v is not None for v in values) or any(env.get(k) for k in ENV_VARS)
    )


def _host_port(address: str) -> tuple[str, int]:
    host, _, port = address.rpartition(":")
    return host.strip("[]"), int(port)


def _check_port_free(address: str) -> None:
    """Process 0 serves the coordinator on all interfaces (JAX binds ``[::]:port``)."""
    port = _host_port(address)[1]
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("", port))
        except OSError as error:
            raise OSError(
                f"process 0 cannot serve the coordinator on port {port} of {address!r} "
                f"({error.strerror}): choose a free port in --coordinator_address."
            ) from None


def _wait_for_coordinator(address: str, timeout_s: float) -> None:
    """Returns once ``address`` accepts TCP connections (JAX would abort the process instead)."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            socket.create_connection(_host_port(address), timeout=1.0).close()
            return
        except socket.gaierror as error:
            raise ValueError(f"coordinator_address {address!r}: unknown host ({error})") from None
        except OSError as error:
            if time.monotonic() >= deadline:
                raise TimeoutError(
                    f"coordinator {address} not reachable within {timeout_s:g} s "
                    f"({error.strerror or type(error).__name__}): start process 0 first, check "
                    "--coordinator_address (process 0's host:port, reachable from this host) "
                    "and the firewall, or raise --distributed_timeout."
                ) from None
        time.sleep(0.25)


def _explain_abort(settings: DistributedSettings, timeout_s: float) -> threading.Timer:
    """A line on stderr just before JAX aborts a process whose peers never joined."""
    message = (
        f"wsl_jax: process {settings.process_id} has waited {timeout_s:g} s for all "
        f"{settings.num_processes} processes to join at {settings.coordinator_address}; JAX will "
        "now abort (DEADLINE_EXCEEDED). Start every process with the same --coordinator_address "
        "and --num_processes and distinct --process_id values.\n"
    )
    timer = threading.Timer(max(timeout_s - 0.5, 0.0), sys.stderr.write, [message])
    timer.daemon = True
    timer.start()
    return timer


def initialize(
    coordinator_address: str | None = None,
    num_processes: int | None = None,
    process_id: int | None = None,
    *,
    timeout_s: int = 300,
    env: Mapping[str, str] | None = None,
) -> tuple[int, int]:
    """``jax.distributed.initialize`` with clear errors; ``(jax.process_index(), process_count())``.

    Must run before anything touches a JAX device; already initialised, it returns at once.

    Example (process 1 of 2; not run here)::

        initialize("10.0.0.1:1234", num_processes=2, process_id=1)  # -> (1, 2)

    Bad settings:
      >>> initialize("10.0.0.1:1234", num_processes=2, process_id=2, env={})
      Traceback (most recent call last):
      ...
      ValueError: process_id must be in [0, num_processes=2), got 2
      >>> initialize(env={"JAX_NUM_PROCESSES": "two"})
      Traceback (most recent call last):
      ...
      ValueError: environment variable JAX_NUM_PROCESSES must be an integer, got 'two'
    """
    if timeout_s <= 0:
        raise ValueError(f"timeout_s must be > 0, got {timeout_s}")
    if jax.distributed.is_initialized():
        return jax.process_index(), jax.process_count()
    settings = resolve_settings(coordinator_address, num_processes, process_id, env)
    address, count, index = settings
    explicit = None not in settings  # Else JAX's cluster detection fills the gaps.
    started = time.monotonic()
    if explicit and index == 0:
        _check_port_free(address)
    elif explicit:
        _wait_for_coordinator(address, timeout_s)
    remaining = max(round(timeout_s - (time.monotonic() - started)), 1)
    if jax.config.jax_cpu_collectives_implementation in (None, "none"):
        jax.config.update("jax_cpu_collectives_implementation", "gloo")  # Collectives on CPU.
    log.info("joining %s as process %s of %s", address, index, count)
    timer = _explain_abort(settings, remaining) if explicit else None
    try:
        jax.distributed.initialize(address, count, index, initialization_timeout=remaining)
    except ValueError as error:  # JAX's "... should be defined": nothing detected the rest.
        if explicit:
            raise
        raise ValueError(
            f"multi-process settings incomplete ({error}) and no cluster detected (Cloud TPU, "
            "SLURM, Open MPI): give --coordinator_address, --num_processes and --process_id, or "
            "the environment variables JAX_COORDINATOR_ADDRESS, JAX_NUM_PROCESSES, JAX_PROCESS_ID."
        ) from error
    finally:
        if timer is not None:
            timer.cancel()
    return jax.process_index(), jax.process_count()


def initialize_if_requested(
    distributed: bool = False,
    coordinator_address: str | None = None,
    num_processes: int | None = None,
    process_id: int | None = None,
    *,
    timeout_s: int = 300,
    env: Mapping[str, str] | None = None,
) -> tuple[int, int]:
    """``initialize(...)`` when ``is_requested``, else nothing (one process); the flags of train.py.

    >>> initialize_if_requested(False, env={})
    (0, 1)
    """
    if not is_requested(distributed, coordinator_address, num_processes, process_id, env=env):
        return jax.process_index(), jax.process_count()
    return initialize(coordinator_address, num_processes, process_id, timeout_s=timeout_s, env=env)
