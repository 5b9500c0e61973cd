"""Multi-process (multi-host) start-up on JAX's distributed runtime, from flags or the environment.

One training run is ``num_processes`` copies of ``train.py``, one per host (or per GPU), that
meet at a coordinator (process 0's ``host:port``) through ``jax.distributed.initialize``. After
that every process sees all devices (``jax.device_count()``) and addresses its own
(``jax.local_device_count()``).

Where the settings come from, first match wins:

1. the arguments (``train.py --coordinator_address=10.0.0.1:1234 --num_processes=2
   --process_id=0``);
2. the environment variables ``JAX_COORDINATOR_ADDRESS``, ``JAX_NUM_PROCESSES``,
   ``JAX_PROCESS_ID``;
3. JAX's cluster auto-detection (Cloud TPU pods, SLURM, Open MPI, …) for whatever is still unset
   (``train.py --distributed`` alone).

Failures are clear errors within ``timeout_s``, never hangs: a non-zero process that cannot reach
the coordinator raises ``TimeoutError`` naming the address; process 0 whose port is taken raises
``OSError``. Should the other processes never join, JAX itself aborts every process after
``timeout_s`` (``DEADLINE_EXCEEDED``), after a message from here saying what was awaited.

On CPU the cross-process collectives go through gloo (``jax_cpu_collectives_implementation``).

>>> resolve_settings(coordinator_address="localhost:1234", num_processes=2, process_id=1, env={})
DistributedSettings(coordinator_address='localhost:1234', num_processes=2, process_id=1)
>>> resolve_settings(env={"JAX_NUM_PROCESSES": "4", "JAX_PROCESS_ID": "3"})
DistributedSettings(coordinator_address=None, num_processes=4, process_id=3)
>>> is_requested(False, env={})
False
"""

from __future__ import annotations

import dataclasses
import logging
import os
import socket
import sys
import threading
import time
from collections.abc import Mapping

import jax

log = logging.getLogger(__name__)

ENV_VARS = ("JAX_COORDINATOR_ADDRESS", "JAX_NUM_PROCESSES", "JAX_PROCESS_ID")


@dataclasses.dataclass(frozen=True)
class DistributedSettings:
    """What ``jax.distributed.initialize`` gets; ``None`` leaves it to cluster auto-detection.

    Made by :func:`resolve_settings` from flags or the ``JAX_*`` environment variables.

    Example:
      >>> DistributedSettings()  # Nothing set: JAX's cluster auto-detection decides.
      DistributedSettings(coordinator_address=None, num_processes=None, process_id=None)
      >>> resolve_settings(env={"JAX_COORDINATOR_ADDRESS": "10.0.0.1:1234",
      ...                       "JAX_NUM_PROCESSES": "2", "JAX_PROCESS_ID": "0"})
      DistributedSettings(coordinator_address='10.0.0.1:1234', num_processes=2, process_id=0)
    """

    coordinator_address: str | None = None
    num_processes: int | None = None
    process_id: int | None = None


def _int_setting(name: str, value, env_name: str, env: Mapping[str, str]) -> int | None:
    if value is None and env.get(env_name, "") != "":
        value, name = env[env_name], f"environment variable {env_name}"
    if value is None:
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be an integer, got {value!r}") from None


def resolve_settings(
    coordinator_address: str | None = None,
    num_processes: int | None = None,
    process_id: int | None = None,
    env: Mapping[str, str] | None = None,
) -> DistributedSettings:
    """Arguments, else ``JAX_*`` environment variables, validated; unset stays ``None``.

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
    count = _int_setting("num_processes", num_processes, "JAX_NUM_PROCESSES", env)
    index = _int_setting("process_id", process_id, "JAX_PROCESS_ID", env)
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


def _split(address: str) -> tuple[str, int]:
    host, _, port = address.rpartition(":")
    return host.strip("[]"), int(port)


def wait_for_coordinator(address: str, timeout_s: float, interval_s: float = 0.25) -> None:
    """Waits until ``address`` accepts TCP connections; ``TimeoutError`` after ``timeout_s``.

    >>> wait_for_coordinator("127.0.0.1:1", timeout_s=0.3)
    Traceback (most recent call last):
    ...
    TimeoutError: coordinator 127.0.0.1:1 not reachable within 0.3 s (connection refused): start process 0 first, check --coordinator_address (process 0's host:port, reachable from this host) and the firewall, or raise --distributed_timeout.
    """
    host, port = _split(address)
    deadline = time.monotonic() + timeout_s
    reason = "no answer"
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError(
                f"coordinator {address} not reachable within {timeout_s:g} s ({reason}): start "
                "process 0 first, check --coordinator_address (process 0's host:port, reachable "
                "from this host) and the firewall, or raise --distributed_timeout."
            )
        try:
            with socket.create_connection((host, port), timeout=min(remaining, 2.0)):
                return
        except ConnectionRefusedError:
            reason = "connection refused"
        except socket.gaierror as error:
            raise ValueError(f"coordinator_address {address!r}: unknown host ({error})") from None
        except OSError as error:
            reason = error.strerror or type(error).__name__
        time.sleep(min(interval_s, max(deadline - time.monotonic(), 0)))


def _check_port_free(address: str) -> None:
    """Process 0 binds the coordinator's port on all interfaces; say so clearly when it is taken."""
    _, port = _split(address)
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("", port))
        except OSError as error:
            raise OSError(
                f"process 0 cannot serve the coordinator on port {port} of {address!r} "
                f"({error.strerror}): choose a free port in --coordinator_address."
            ) from None


def _warn_before_abort(settings: DistributedSettings, timeout_s: float) -> threading.Timer:
    message = (
        f"wsl_jax: process {settings.process_id} has waited {timeout_s:g} s for all "
        f"{settings.num_processes} processes to join at {settings.coordinator_address}; JAX will "
        "now abort (DEADLINE_EXCEEDED). Start every process with the same --coordinator_address "
        "and --num_processes and distinct --process_id values.\n"
    )
    timer = threading.Timer(max(timeout_s - 0.5, 0.0), lambda: sys.stderr.write(message))
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
    """Starts JAX's distributed runtime; returns ``(jax.process_index(), jax.process_count())``.

    Must run before anything touches a JAX device. Unset values come from the ``JAX_*``
    environment variables, then from JAX's cluster auto-detection (TPU pods, SLURM, Open MPI).
    Already initialised: returns at once. Bad settings are refused before anything starts.

    Example (one process per host, e.g. process 1 of 2; not run here)::

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
    if jax.config.jax_cpu_collectives_implementation in (None, "none"):
        jax.config.update("jax_cpu_collectives_implementation", "gloo")  # Collectives on CPU.
    started = time.monotonic()
    explicit = None not in dataclasses.astuple(settings)
    if explicit and settings.process_id == 0:
        _check_port_free(settings.coordinator_address)
    elif explicit and settings.process_id > 0:
        wait_for_coordinator(settings.coordinator_address, timeout_s)
    remaining = max(round(timeout_s - (time.monotonic() - started)), 1)
    log.info(
        "joining %s as process %s of %s",
        settings.coordinator_address,
        settings.process_id,
        settings.num_processes,
    )
    timer = _warn_before_abort(settings, remaining) if explicit else None
    try:
        jax.distributed.initialize(
            settings.coordinator_address,
            settings.num_processes,
            settings.process_id,
            initialization_timeout=remaining,
        )
    except ValueError as error:
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
