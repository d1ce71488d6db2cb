"""The Ray executor: the local executor's worker loop in long-lived Ray actors, one backend each.

`mlpsuite run CONFIG --executor ray [--address auto|ray://HOST:10001]`. An actor is started
with its backend, thread budget and reuse setting in its `runtime_env`, imports its framework
once, and keeps its compiled model between trials, exactly as a local worker does: the same
`worker.make_runner` and `worker.run_request`, the same queue grouped by program. Each request
is a streaming actor call: its `started`, `epoch` and `finished` events reach the driver while
the trial runs. The driver is the only MLflow writer.

A trial whose actor dies is run again on a fresh actor up to `max_retries` times, then is a
FAILED run (`worker died`); a death before the request began costs no retry. An actor whose
trial overruns its time limit is killed and the trial is `timeout`, as locally. Imports Ray
only inside `RayExecutor`: Ray is an optional extra.
"""

from __future__ import annotations

import collections
import dataclasses
import logging
import os
import queue
import shutil
import tempfile
import threading
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, cast

from mlpsuite.config import Trial
from mlpsuite.errors import ConfigError
from mlpsuite.executors import wire
from mlpsuite.executors.base import POLL_SECONDS, Event, Handler, Queues, Slot, SlotExecutor, fail
from mlpsuite.executors.units import _Unit
from mlpsuite.results import ERROR, WORKER_DIED, TrialResult

if TYPE_CHECKING:  # Ray is optional: imported at run time only inside RayExecutor
    from ray import ObjectRef
    from ray.actor import ActorHandle

# An actor not ready after this long is said on stderr: Ray waits for a free CPU forever.
UNPLACED_WARNING_S = 60.0
# Deaths before a request began are free this many times per trial: enough for a node lost
# under every actor at once, and no endless loop should actors die on every request.
MAX_UNBEGUN_DEATHS = 3
# How much of Ray's error text a failure keeps: the reason's last line in the one-line message,
# the tail of the whole error (Ray's traceback of the actor) in failure.txt.
REASON_CHARS = 300
DETAILS_CHARS = 5000
logger = logging.getLogger("mlpsuite")


class _TrialActor:
    """A Ray actor around the worker loop: `ready()` once, then `run(trials)` per request."""

    def __init__(self):
        from mlpsuite.trial.worker import make_runner, ready_event

        began = time.perf_counter()
        threads = int(os.environ.get("MLPSUITE_THREADS", "1"))
        self.backend, self.runner, framework = make_runner(threads)
        self.ready_payload = ready_event(self.backend, threads, framework, began)

    def ready(self) -> dict:
        return self.ready_payload

    def run(self, trial_dicts: list[dict]):
        """Events of one request as they happen (a streaming generator), `finished` last."""
        from mlpsuite.trial.worker import run_request

        events: queue.Queue = queue.Queue()
        done = object()

        def work():
            try:
                for key, result in run_request(self.runner, self.backend, trial_dicts, events.put):
                    event = wire.finished(key, result.to_dict())
                    if result.model_dir:  # the driver may run on another machine: send the files
                        event["model_zip"] = _zipped(Path(result.model_dir))
                    events.put(event)
            finally:
                events.put(done)

        threading.Thread(target=work, daemon=True).start()
        while (event := events.get()) is not done:
            yield event


def _zipped(folder: Path) -> bytes:
    """A saved model's folder as zip bytes, and the folder gone (it was the actor's copy)."""
    import io
    import zipfile

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in folder.rglob("*"):
            archive.write(path, path.relative_to(folder))
    shutil.rmtree(folder.parent, ignore_errors=True)
    return buffer.getvalue()


def _unzipped(data: bytes, root: Path) -> Path:
    """The model folder again, on the driver's disk: `<new folder>/model`, as the runner expects."""
    import io
    import zipfile

    folder = Path(tempfile.mkdtemp(prefix="model-", dir=root)) / "model"
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        archive.extractall(folder)
    return folder


@dataclasses.dataclass(kw_only=True)
class _Slot(Slot):
    actor: ActorHandle
    ready_ref: ObjectRef | None  # until the actor has imported its framework
    warned: bool = False  # said that Ray has not started it yet
    unit: _Unit | None = None  # the request in flight
    stream: Iterator[ObjectRef] | None = None  # its ObjectRefGenerator
    finished: set[str] = dataclasses.field(default_factory=set)

    def unfinished(self) -> list[Trial]:
        """The trials of the request in flight that have not reported `finished`."""
        return (
            [trial for trial in self.unit.trials if trial.key not in self.finished]
            if self.unit
            else []
        )


class RayExecutor(SlotExecutor):
    """Runs trials on Ray actors: a local Ray instance, or the cluster at `address`. The
    transport: an actor per slot, a streaming call per request, `ray.wait` over them all."""

    def __init__(
        self,
        jobs: int | None = None,
        reuse: bool = True,
        address: str | None = None,
        max_retries: int = 1,
    ):
        try:
            import ray
        except ImportError:
            raise ConfigError(
                "--executor ray: Ray is not installed; pip install -e '.[ray]' "
                "(or pip install 'ray>=2.40'), or use --executor local"
            ) from None
        self.ray = ray
        if not ray.is_initialized():
            try:
                with (
                    warnings.catch_warnings()
                ):  # Ray's own words for a timeout; ours follow in one line
                    warnings.filterwarnings("ignore", message="Ray Client connection timed out")
                    ray.init(
                        address=address,
                        include_dashboard=False,
                        log_to_driver=False,
                        configure_logging=False,
                    )
            except ConnectionError as error:  # before the store is opened: nothing was written
                reason = str(error).strip().splitlines()[0].split(". Please")[0]
                raise ConfigError(
                    f"--address {address}: no Ray cluster answers ({reason}); start one with "
                    "`ray start --head`, or leave --address out for a local Ray"
                ) from None
        cpus = ray.cluster_resources().get("CPU", 1)
        super().__init__(jobs or max(1, int(cpus)))
        self.threads = max(1, int(cpus) // self.jobs)
        # More actors than CPUs share them, as local workers do: an actor Ray cannot place
        # would wait for a CPU that no other actor gives back.
        self.cpus_per_actor = min(self.threads, cpus / self.jobs)
        self.reuse, self.max_retries = reuse, max_retries
        self._slots: dict[int, _Slot] = {}  # pyright: ignore[reportIncompatibleVariableOverride]
        self._retries: collections.Counter = collections.Counter()
        self._unbegun: collections.Counter = collections.Counter()
        self._model_dir = Path(tempfile.mkdtemp(prefix="mlpsuite-ray-models-"))

    def prestart(self, backends: list[str]) -> None:
        """Actors start when `run` needs them (Ray schedules them; nothing to overlap here)."""

    def shutdown(self, kill: bool = False) -> None:
        """Stop every actor (at once when `kill`) and remove the folder that received their saved
        models."""
        super().shutdown(kill)
        shutil.rmtree(self._model_dir, ignore_errors=True)

    # ------------------------------------------------------------ scheduling hooks

    def _in_flight(self, slot: Slot) -> list[Trial]:
        assert isinstance(slot, _Slot)
        return slot.unfinished()

    def _busy(self, slot: Slot) -> bool:
        assert isinstance(slot, _Slot)
        return slot.unit is not None or slot.ready_ref is not None

    def _stop(self, slot: Slot, kill: bool = False) -> None:
        """An actor holds nothing between requests: it is killed either way."""
        assert isinstance(slot, _Slot)
        self.ray.kill(slot.actor, no_restart=True)

    def _tick(self) -> None:
        self._warn_unplaced()

    def _start(self, index: int, backend: str) -> _Slot:
        env = wire.worker_environment(backend, self.threads, self.reuse, self._model_dir)
        actor_class = self.ray.remote(_TrialActor).options(
            num_cpus=self.cpus_per_actor, runtime_env={"env_vars": env}, max_restarts=0
        )
        # Ray types `remote()` as "the handle, or the class itself" (for editors' hints).
        actor = cast("ActorHandle", actor_class.remote())
        slot = _Slot(index=index, backend=backend, actor=actor, ready_ref=actor.ready.remote())
        self._slots[index] = slot
        return slot

    def _assign(self, slot: Slot, unit: _Unit) -> None:
        assert isinstance(slot, _Slot)
        # The clock starts at once: an actor hung before it says `started` is killed as well.
        slot.unit, slot.program, slot.finished, slot.started_at = unit, unit.program, set(), None
        slot.assigned_at = time.monotonic()
        request = [trial.model_dump(mode="json") for trial in unit.trials]
        slot.stream = slot.actor.run.options(num_returns="streaming").remote(request)

    # ------------------------------------------------------------ events

    def _wait_and_handle(self, queues: Queues, handle: Handler) -> None:
        waiting = {}
        for slot in self._slots.values():
            if slot.ready_ref is not None:
                waiting[slot.ready_ref] = slot
            if slot.stream is not None:
                waiting[slot.stream] = slot
        if not waiting:
            return
        done, _ = self.ray.wait(list(waiting), num_returns=1, timeout=POLL_SECONDS)
        for item in done:
            slot = waiting[item]
            if item is slot.ready_ref:
                self._on_ready(slot, queues, handle)
            else:
                self._on_stream(slot, queues, handle)

    def _on_ready(self, slot: _Slot, queues: Queues, handle: Handler) -> None:
        slot.ready_ref, ref = None, slot.ready_ref
        assert ref is not None  # it was waited on
        try:
            payload = self.ray.get(ref)
        # `import ray` loads ray.exceptions; pyright knows only submodules imported by name.
        except self.ray.exceptions.RayError as error:  # pyright: ignore[reportAttributeAccessIssue]
            # It died starting: the next fill starts another.
            del self._slots[slot.index]
            reason = str(error).strip().splitlines()[-1][:REASON_CHARS]
            self._start_failed(
                slot.backend, queues, f"Ray actor could not start ({reason})", handle
            )
            return
        self._start_succeeded(slot.backend)
        payload["start_s"] = time.monotonic() - slot.spawned_at
        handle(Event("ready", slot.index, slot.backend, payload=payload))

    def _on_stream(self, slot: _Slot, queues: Queues, handle: Handler) -> None:
        assert slot.stream is not None and slot.unit is not None  # a request is in flight
        try:
            event = self.ray.get(next(slot.stream))
        except StopIteration:  # only after every `finished`, unless the actor's thread broke
            for trial in slot.unfinished():
                fail(
                    trial,
                    slot.index,
                    ERROR,
                    "the Ray actor ended the request without the trial's result",
                    handle,
                )
            slot.unit, slot.stream = None, None
            return
        # As in `_on_ready`: ray.exceptions is loaded, though not imported by name.
        except self.ray.exceptions.RayError as error:  # pyright: ignore[reportAttributeAccessIssue]
            self._on_death(slot, error, queues, handle)
            return
        trials = {trial.key: trial for trial in slot.unit.trials}
        kind = event["event"]
        if kind == "finished":
            slot.finished.add(event["key"])
            if slot.finished == set(
                trials
            ):  # the actor is free: no need to wait for the stream's end
                slot.unit, slot.stream = None, None
            result = TrialResult.from_dict(event["result"])
            if "model_zip" in event:
                result.model_dir = str(_unzipped(event["model_zip"], self._model_dir))
            handle(Event("finished", slot.index, slot.backend, trials[event["key"]], result=result))
        elif kind in ("started", "epoch"):
            if kind == "started":
                slot.started_at = time.monotonic()
            handle(Event(kind, slot.index, slot.backend, trials[event["key"]], event))

    def _warn_unplaced(self) -> None:
        """Say when Ray has not started an actor for a while (a lost node, a busy cluster):
        Ray waits for resources without a word, and the grid would look hung."""
        for slot in self._slots.values():
            waited = time.monotonic() - slot.spawned_at
            if slot.ready_ref is not None and not slot.warned and waited > UNPLACED_WARNING_S:
                slot.warned = True
                free = self.ray.available_resources().get("CPU", 0)
                logger.warning(
                    "Ray has not started a %s actor in %.0f s (it needs %g CPU; the cluster has %g "
                    "free): waiting for a node",
                    slot.backend,
                    waited,
                    self.cpus_per_actor,
                    free,
                )

    def _on_death(self, slot: _Slot, error: Exception, queues: Queues, handle: Handler) -> None:
        """The actor died mid-request: run what it left again on a fresh actor, or fail it. A
        request that had not begun (no `started` yet: its actor was already dead, as a lost node's
        are, when the work came) did not cause the death and costs its trials no retry."""
        del self._slots[slot.index]
        left = slot.unfinished()
        reason = f"the Ray actor died ({type(error).__name__})"
        retry, failed = [], []
        for trial in left:
            if slot.started_at is None and self._unbegun[trial.key] < MAX_UNBEGUN_DEATHS:
                self._unbegun[trial.key] += 1
                retry.append(trial)
            elif self._retries[trial.key] < self.max_retries:
                self._retries[trial.key] += 1
                retry.append(trial)
            else:
                failed.append(trial)
        for trials, outcome in ((retry, "running again on a fresh actor"), (failed, "failed")):
            if trials:  # said: a retry is otherwise seen only as a KILLED run in the store
                logger.warning(
                    "%s under %s: %s", reason, ", ".join(t.label() for t in trials), outcome
                )
        for trial in retry:
            handle(Event("retrying", slot.index, slot.backend, trial, {"reason": reason}))
        if retry:
            assert slot.unit is not None  # `retry` holds trials of its unit
            queues[slot.backend].appendleft(_Unit(slot.unit.program, retry))
        for trial in failed:
            fail(
                trial,
                slot.index,
                WORKER_DIED,
                f"{reason}; retried {self.max_retries} times",
                handle,
                str(error)[-DETAILS_CHARS:],
            )
