#!/usr/bin/env python3
"""launch.py — places the roles of an `rl train` run on a Ray cluster (`placement.mode = "ray"`).

`rl train` embeds this file and runs it as a child, stdin a pipe it never writes:

    PYTHON launch.py --spec SPEC.json

SPEC.json: {"address": null | "auto" | "HOST:PORT" | "ray://HOST:PORT", "node_ip": "127.0.0.1",
"strategy": "PACK" | "SPREAD" | "STRICT_PACK" | "STRICT_SPREAD", "ready_timeout_s": 600,
"roles": [{"name", "argv", "env", "cpus", "gpus", "ready"}, ...]}. A null address starts a
private local Ray instance that lives exactly as long as this process.

Each role gets one bundle of one placement group and one actor in that bundle; the actor runs
the role's argv as a subprocess (RL_PARENT_PID names the actor, which `rl` watches) and, for a
`ready` role, reads its first stdout line: `listening on ADDR (...)`.

stdout carries JSON lines only: {"event": "ready", "role", "addr", "node", "pid"} per role, then
{"event": "all_ready"}, then {"event": "exited", "role", "status"} as roles end; a failure is
{"event": "error", "message"} and exit status 1. Each line rl train writes on stdin is a command:
{"restart": NAME} stops that role's process, has Ray restart its actor (they are created with
unbounded restarts), starts the role again there and emits a new ready event (or an error event
naming it, without stopping). EOF on stdin (rl train is gone), SIGTERM or SIGINT stops every
role and exits 0. Ray's output and the roles' stderr go to stderr.
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import logging
import math
import os
import queue
import signal
import subprocess
import sys
import threading
import time
import uuid
from typing import Any, TextIO

# Read by Ray at import: no usage reporting, and the roles' stderr printed line for line (Ray
# otherwise folds repeats into "[repeated Nx across cluster]"), uncoloured when not a terminal.
os.environ["RAY_USAGE_STATS_ENABLED"] = "0"
os.environ["RAY_DEDUP_LOGS"] = "0"
if not sys.stderr.isatty():
    os.environ.setdefault("RAY_COLOR_PREFIX", "0")

STRATEGIES = ("PACK", "SPREAD", "STRICT_PACK", "STRICT_SPREAD")
READY_PREFIX = "listening on "
KILL_GRACE_S = 5.0  # between a role's SIGTERM and its SIGKILL
POLL_S = 0.5  # how often a wait looks at `stop`
HALT_DEADLINE_S = 25.0  # from halt() to a forced exit, should a Ray call hang (rl train waits 30 s)
MARK = "RL_RAY_LAUNCH"  # environment variable tagging the processes of a private instance

# Runs detached beside a launcher with a private instance and, once the launcher is gone (its
# pipe closes), SIGKILLs what is left of that instance. Ray's gcs and raylet die with the
# launcher (PR_SET_PDEATHSIG) and its workers take the roles along, but its agents linger ~60 s
# reporting the raylet's death to the dead GCS. Ours: the launcher's session (Ray gives workers
# process groups, not sessions, of their own), or, where the launcher could not setsid, the
# MARK=TAG environment entry (a fallback: setproctitle can blank /proc/PID/environ).
WATCHDOG = r"""
import os, signal, sys, time
sid, tag = int(sys.argv[1]), sys.argv[2].encode()
while os.read(0, 4096):
    pass
def ours(pid):
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            state, _, _, session = f.read().rsplit(b")", 1)[1].split()[:4]
        if state == b"Z":
            return False
        if int(session) == sid:
            return True
        with open(f"/proc/{pid}/environ", "rb") as f:
            return tag in f.read().split(b"\0")
    except OSError:  # gone, or not ours to read
        return False
for _ in range(5):  # again while any were found: one may have been starting another
    found = [int(p) for p in os.listdir("/proc") if p.isdigit() and int(p) != os.getpid() and ours(p)]
    for pid in found:
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass
    if not found:
        break
    time.sleep(0.5)
"""


class Failure(Exception):
    """What went wrong, worded for the user: what, and how to fix it."""


stop = threading.Event()  # set by halt()
commands: queue.Queue[dict[str, Any]] = queue.Queue()  # what rl train asked for on stdin
out: TextIO = sys.stdout  # the JSON lines: see protocol_stream
watchdog: subprocess.Popen[bytes] | None = None  # held: its stdin closing means we are gone


def protocol_stream() -> TextIO:
    """Keeps fd 1 for the JSON lines and points fd 1 at stderr for everything else: Ray and
    the processes it starts (which inherit our fds) print there."""
    fd = os.dup(1)  # a dup is not inherited by children
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    return os.fdopen(fd, "w", buffering=1)


def halt(code: int = 0) -> None:
    """Asks for teardown (on stdin EOF, a signal, a closed stdout, or an error), and exits with
    `code` regardless once HALT_DEADLINE_S have passed: a Ray call may block for long."""
    if not stop.is_set():
        stop.set()
        timer = threading.Timer(HALT_DEADLINE_S, os._exit, (code,))
        timer.daemon = True  # a clean exit does not wait for it
        timer.start()


def emit(event: str, **fields: Any) -> None:
    try:
        out.write(json.dumps({"event": event, **fields}) + "\n")
        out.flush()
    except OSError:  # rl train closed our stdout: it is gone
        halt()


def watch_stdin() -> None:
    # os.read, not sys.stdin: a daemon thread blocked in the buffered reader holds its lock,
    # and the interpreter aborts at exit when it cannot take it.
    pending = b""
    while chunk := os.read(0, 4096):
        pending += chunk
        *lines, pending = pending.split(b"\n")
        for line in filter(None, (l.strip() for l in lines)):
            try:
                command = json.loads(line)
            except ValueError:
                command = None
            if isinstance(command, dict) and isinstance(command.get("restart"), str):
                commands.put(command)
            else:
                print(f"launch.py: ignoring {line!r}: not a {{\"restart\": NAME}} command", file=sys.stderr)
    halt()


def load_spec(path: str) -> dict[str, Any]:
    try:
        with open(path) as f:
            spec = json.load(f)
    except (OSError, ValueError) as e:
        raise Failure(f"cannot read the spec {path}: {e}") from e

    def check(ok: Any, key: str, want: str) -> None:
        if not ok:
            raise Failure(f"spec {path}: {key} must be {want}")

    def number(v: Any) -> bool:
        return isinstance(v, (int, float)) and not isinstance(v, bool) and v >= 0

    check(isinstance(spec, dict), "the top level", "a JSON object")
    check(spec.get("address") is None or isinstance(spec["address"], str), "address", "null or a string")
    check(isinstance(spec.get("node_ip"), str), "node_ip", "a string (an IP address)")
    check(spec.get("strategy") in STRATEGIES, "strategy", " | ".join(STRATEGIES))
    check(number(spec.get("ready_timeout_s")) and spec["ready_timeout_s"] > 0, "ready_timeout_s", "seconds > 0")
    check(isinstance(spec.get("roles"), list) and spec["roles"], "roles", "a non-empty list")
    for i, r in enumerate(spec["roles"]):
        key = f"roles[{i}]"
        check(isinstance(r, dict), key, "an object")
        check(isinstance(r.get("name"), str) and r["name"], f"{key}.name", "a non-empty string")
        argv, env = r.get("argv"), r.get("env")
        check(isinstance(argv, list) and argv and all(isinstance(a, str) for a in argv),
              f"{key}.argv", "a non-empty list of strings")
        check(isinstance(env, dict) and all(isinstance(v, str) for v in env.values()),
              f"{key}.env", "an object of strings")
        check(number(r.get("cpus")), f"{key}.cpus", "a number >= 0")
        check(number(r.get("gpus")), f"{key}.gpus", "a number >= 0")
        check(isinstance(r.get("ready"), bool), f"{key}.ready", "true or false")
    names = [r["name"] for r in spec["roles"]]
    check(len(set(names)) == len(names), "roles[].name", f"unique (they are {names})")
    return spec


def bundle(role: dict[str, Any]) -> dict[str, float]:
    # Ray rejects an empty bundle, so a role asking for nothing still holds a sliver of a CPU.
    b = {"CPU": float(role["cpus"]) or 0.01}
    if role["gpus"] > 0:
        b["GPU"] = float(role["gpus"])
    return b


def asked(spec: dict[str, Any], resource: str) -> float:
    return sum(bundle(r).get(resource, 0.0) for r in spec["roles"])


def describe(returncode: int) -> str:
    return f"signal {-returncode}" if returncode < 0 else f"exit code {returncode}"


class Role:
    """The actor holding one role's process (a plain class here; made remote in start_roles)."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str], ready: bool) -> None:
        self.name, self.argv, self.env, self.ready = name, argv, env, ready
        self.proc: subprocess.Popen[bytes] | None = None

    def __repr__(self) -> str:  # Ray prefixes the role's stderr lines with "(NAME pid=...)"
        return self.name

    def start(self) -> dict[str, Any]:
        """Starts the process; for a ready role, waits for its ready line."""
        import ray

        env = {**os.environ, **self.env, "RL_PARENT_PID": str(os.getpid())}
        self.proc = subprocess.Popen(self.argv, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE)
        assert self.proc.stdout is not None
        addr = None
        if self.ready:
            line = self.proc.stdout.readline().decode(errors="replace").strip()
            if not line.startswith(READY_PREFIX):
                try:
                    status = describe(self.proc.wait(timeout=2))
                except subprocess.TimeoutExpired:
                    status = "still running"
                said = f"printed {line!r}" if line else "printed nothing"
                raise RuntimeError(f"{said} instead of 'listening on ADDR (...)' ({status}); its stderr is above")
            addr = line[len(READY_PREFIX):].split()[0]  # there is one: `line` was stripped
        # Keep reading, so that a role printing more never blocks on a full pipe.
        threading.Thread(target=self.forward, args=(self.proc.stdout,), daemon=True).start()
        # The node as the cluster knows it: in a worker, ray.util.get_node_ip_address()
        # guesses the machine's routable address instead of the one its raylet was given.
        me = ray.get_runtime_context().get_node_id()
        node = next((n["NodeManagerAddress"] for n in ray.nodes() if n["NodeID"] == me), None)
        return {"addr": addr, "node": node or ray.util.get_node_ip_address(), "pid": self.proc.pid}

    def forward(self, stdout: Any) -> None:
        for line in stdout:
            sys.stderr.write(line.decode(errors="replace"))
            sys.stderr.flush()

    def wait(self) -> str:
        assert self.proc is not None
        return describe(self.proc.wait())

    def kill(self) -> None:
        proc = getattr(self, "proc", None)  # absent when __del__ runs on Ray's wrapper class
        if proc is None or proc.poll() is not None:
            return
        proc.terminate()
        try:
            proc.wait(timeout=KILL_GRACE_S)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

    def __del__(self) -> None:
        self.kill()


def start_watchdog() -> None:
    """Starts WATCHDOG, which outlives us, to clean up after the private instance."""
    global watchdog
    try:
        os.setsid()  # refused when we lead a process group already: then the tag must do
    except OSError:
        pass
    sid = os.getpid() if os.getsid(0) == os.getpid() else -1
    tag = uuid.uuid4().hex
    watchdog = subprocess.Popen([sys.executable, "-c", WATCHDOG, str(sid), f"{MARK}={tag}"], stdin=subprocess.PIPE,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    os.environ[MARK] = tag  # set after the watchdog started: not in its own environment


def keep_loopback(host: str) -> None:
    """Ray swaps a loopback node or head address for the machine's routable one, so a private
    instance would listen on every interface and a head listening on loopback only would be
    unreachable; this variable (named for Windows and macOS, where it is the default) keeps
    loopback loopback. Read by Ray at import."""
    try:
        loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if loopback:
        os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")


def init_ray(spec: dict[str, Any]) -> Any:
    """Imports Ray and connects to the spec's cluster, or starts the private instance."""
    private = spec["address"] is None
    if private:
        # Token auth is Ray's default for a new local instance (it writes ~/.ray/auth_token
        # once); saying so drops Ray's warning. "local": neither RAY_ADDRESS nor a cluster
        # that `ray start` left on this machine is picked up instead.
        os.environ.setdefault("RAY_AUTH_MODE", "token")
        os.environ.pop("RAY_ADDRESS", None)
        keep_loopback(spec["node_ip"])
        start_watchdog()
    elif "://" not in spec["address"]:  # HOST:PORT (a ray:// client's server resolves its own)
        keep_loopback(spec["address"].rpartition(":")[0].strip("[]"))
    try:
        import ray
    except ImportError as e:
        raise Failure(f"ray is not installed for {sys.executable}: pip install 'ray==2.60.0' "
                      "(scripts/requirements.txt puts it in the project's venv)") from e
    quiet = dict(logging_level=logging.WARNING, log_to_driver=True)
    try:
        if not private:
            ray.init(address=spec["address"], **quiet)
            return ray
        # GPUs: Ray counts the machine's (more would hand out devices that do not exist); 0
        # when no role wants one spares the probe. CPUs may be overcommitted.
        gpus = None if asked(spec, "GPU") > 0 else 0
        cpus = max(os.cpu_count() or 1, math.ceil(asked(spec, "CPU")))
        ray.init(address="local", _node_ip_address=spec["node_ip"], include_dashboard=False,
                 num_cpus=cpus, num_gpus=gpus, **quiet)
        return ray
    except Exception as e:
        if private:
            raise Failure(f"cannot start a private local Ray instance on {spec['node_ip']}: {e}") from e
        hint = "" if os.environ.get("RAY_AUTH_MODE") == "token" else (
            ". If it uses token authentication (`ray start`'s default), export RAY_AUTH_MODE=token: with "
            "an explicit address Ray sends no token otherwise (from ~/.ray/auth_token, RAY_AUTH_TOKEN "
            "or RAY_AUTH_TOKEN_PATH)")
        raise Failure(f"cannot connect to the Ray cluster at {spec['address']!r}: {e}; is it running "
                      f"(ray start --head)? A null address starts a private local instance instead{hint}") from e


def resources(ray: Any, spec: dict[str, Any]) -> str:
    have, free = ray.cluster_resources(), ray.available_resources()
    return (f"the roles ask for {asked(spec, 'CPU'):g} CPUs and {asked(spec, 'GPU'):g} GPUs "
            f"({len(spec['roles'])} bundle(s), strategy {spec['strategy']}); the cluster has "
            f"{have.get('CPU', 0):g} CPUs and {have.get('GPU', 0):g} GPUs, "
            f"{free.get('CPU', 0):g} and {free.get('GPU', 0):g} free (ray.cluster_resources())")


def place(ray: Any, spec: dict[str, Any]) -> Any:
    """The placement group, once placed (or `stop` is set)."""
    from ray.util.placement_group import placement_group

    if spec["address"] is None:
        # A private instance is one node that never grows: fail now rather than after the wait.
        if spec["strategy"] == "STRICT_SPREAD" and len(spec["roles"]) > 1:
            raise Failure("strategy STRICT_SPREAD puts each role on a node of its own, and a private "
                          "local Ray instance is one node: use PACK or SPREAD, or the address of a cluster")
        if any(asked(spec, k) > ray.cluster_resources().get(k, 0) for k in ("CPU", "GPU")):
            raise Failure(f"this machine cannot hold the roles: {resources(ray, spec)}. Ask for fewer "
                          "GPUs, or give the address of a cluster that has them")
    pg = placement_group([bundle(r) for r in spec["roles"]], strategy=spec["strategy"])
    ready, deadline = pg.ready(), time.monotonic() + spec["ready_timeout_s"]
    while not stop.is_set() and not ray.wait([ready], timeout=POLL_S)[0]:
        if time.monotonic() > deadline:
            ray.util.remove_placement_group(pg)
            raise Failure(f"the placement group was not placed within {spec['ready_timeout_s']:g} s: "
                          f"{resources(ray, spec)}. Free or add resources, ask for fewer, or raise "
                          "ready_timeout_s")
    return pg


def start_roles(ray: Any, spec: dict[str, Any], pg: Any, actors: list[Any]) -> None:
    """Starts an actor per role (into `actors`, for teardown) and emits each ready event as it
    comes; returns when all are ready or `stop` is set."""
    from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

    # wait() blocks for good, so kill() needs a thread of its own; unbounded restarts let a
    # restart command have Ray replace an actor and its process.
    remote = ray.remote(max_concurrency=4, max_restarts=-1)(Role)
    pending: dict[Any, str] = {}
    for i, r in enumerate(spec["roles"]):
        b = bundle(r)
        actor = remote.options(
            num_cpus=b["CPU"], num_gpus=b.get("GPU", 0),
            scheduling_strategy=PlacementGroupSchedulingStrategy(placement_group=pg, placement_group_bundle_index=i),
        ).remote(r["name"], r["argv"], r["env"], r["ready"])
        actors.append(actor)
        pending[actor.start.remote()] = r["name"]
    deadline = time.monotonic() + spec["ready_timeout_s"]
    while pending and not stop.is_set():
        for ref in ray.wait(list(pending), timeout=POLL_S)[0]:
            name = pending.pop(ref)
            try:
                emit("ready", role=name, **ray.get(ref))
            except ray.exceptions.RayError as e:  # the cause, without Ray's traceback
                raise Failure(f"the {name} did not start: {getattr(e, 'cause', None) or e}") from e
        if pending and time.monotonic() > deadline:
            raise Failure(f"not ready within {spec['ready_timeout_s']:g} s (ready_timeout_s): "
                          f"{', '.join(pending.values())}; see their stderr above, or raise ready_timeout_s")


def restart(ray: Any, spec: dict[str, Any], actor: Any, name: str) -> Any:
    """Stops role `name`'s process (even a hung one), has Ray restart its actor, starts the role
    there and emits its ready event; the new process's wait reference."""
    try:
        ray.get(actor.kill.remote(), timeout=KILL_GRACE_S + 3)
    except ray.exceptions.RayError:
        pass  # the actor may be gone already: Ray restarts it below all the same
    ray.kill(actor, no_restart=False)
    deadline = time.monotonic() + spec["ready_timeout_s"]
    while True:
        try:
            info = ray.get(actor.start.remote(), timeout=max(deadline - time.monotonic(), 0.1))
            break
        except ray.exceptions.ActorUnavailableError:
            # Calls made while Ray restarts the actor fail this way: ask again once it is back.
            if time.monotonic() > deadline:
                emit("error", message=f"restarting the {name} failed: its actor did not come back")
                return None
            time.sleep(POLL_S)
        except (ray.exceptions.RayError, TimeoutError) as e:
            emit("error", message=f"restarting the {name} failed: {getattr(e, 'cause', None) or e}")
            return None
    emit("ready", role=name, **info)
    return actor.wait.remote()


def watch_roles(ray: Any, spec: dict[str, Any], actors: list[Any]) -> None:
    """Emits an exited event per role as its process ends, and restarts the roles rl train asks
    for, until `stop`."""
    by_name = {r["name"]: a for a, r in zip(actors, spec["roles"])}
    pending = {a.wait.remote(): r["name"] for a, r in zip(actors, spec["roles"])}
    while not stop.is_set():
        while not commands.empty():
            name = commands.get()["restart"]
            if name not in by_name:
                emit("error", message=f"cannot restart {name!r}: the roles are {list(by_name)}")
                continue
            for ref in [ref for ref, n in pending.items() if n == name]:
                del pending[ref]  # the old process's end is not news
            ref = restart(ray, spec, by_name[name], name)
            if ref is not None:
                pending[ref] = name
        if not pending:  # all ended: rl train ends the run
            stop.wait(POLL_S)
            continue
        for ref in ray.wait(list(pending), timeout=POLL_S)[0]:
            name = pending.pop(ref)
            try:
                status = ray.get(ref)
            except ray.exceptions.RayError as e:  # the actor itself died (its node was lost, say)
                status = f"lost with its Ray actor ({type(e).__name__})"
            emit("exited", role=name, status=status)


def teardown(ray: Any, actors: list[Any], pg: Any) -> None:
    # Stop the processes through their actors first: ray.kill ends an actor without its
    # cleanup, leaving the role to notice RL_PARENT_PID on its own.
    try:
        if actors:
            ray.wait([a.kill.remote() for a in actors], num_returns=len(actors), timeout=KILL_GRACE_S + 3)
        for a in actors:
            ray.kill(a)
        if pg is not None:
            ray.util.remove_placement_group(pg)
    except Exception as e:  # best effort: the cluster may be what failed
        print(f"launch.py: teardown: {type(e).__name__}: {e}", file=sys.stderr)
    ray.shutdown()


def on_signal() -> None:
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: halt())


def main() -> int:
    global out
    out = protocol_stream()
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--spec", required=True, help="the JSON spec rl train wrote")
    args = parser.parse_args()
    threading.Thread(target=watch_stdin, daemon=True).start()
    on_signal()
    try:
        spec = load_spec(args.spec)
        ray = init_ray(spec)
    except Failure as e:
        emit("error", message=str(e))
        return 1
    on_signal()  # again: ray.init installs a SIGTERM handler that exits at once
    actors: list[Any] = []
    pg, error = None, None
    try:
        pg = place(ray, spec)
        if not stop.is_set():
            start_roles(ray, spec, pg, actors)
        if not stop.is_set():
            emit("all_ready")
            watch_roles(ray, spec, actors)
    except Failure as e:
        error = str(e)
    except Exception as e:  # Ray itself failing: say so in the protocol, not only a traceback
        error = f"Ray failed: {type(e).__name__}: {e}"
    if error is not None:
        emit("error", message=error)
    halt(1 if error is not None else 0)  # arms the deadline, should teardown hang
    teardown(ray, actors, pg)
    return 1 if error is not None else 0


if __name__ == "__main__":
    sys.exit(main())
