"""The run lifecycle every algorithm shares, in the manner of stable-baselines3's ``BaseAlgorithm``.

:meth:`Algorithm.learn` checks the policy type, sets up the subclass, restores the newest checkpoint when
asked to resume, then repeats the subclass's one iteration until the budget is spent or a callback stops
it. After each iteration (or at each step that a library's own loop reports through
:meth:`Algorithm.on_progress`, for SB3 and TRL) it

* evaluates through the one :func:`~textgym.algorithms.evaluation.evaluate`, every ``eval_every`` units,
  always on the same held-out tasks (reset seeds from ``seed + EVAL_SEED_OFFSET``, as the final evaluation);
* writes a checkpoint every ``checkpoint_every`` units and at the end, atomically (a hidden ``.partial``
  dir renamed into place), keeping the newest ``keep_checkpoints``;
* honours SIGTERM and SIGINT: the run stops there, writes a checkpoint and raises :class:`Interrupted`
  (a second signal acts at once, as it would without textgym).

Envs are closed on every exit path. A subclass writes its set-up (:meth:`_setup`), one iteration
(:meth:`_iterate`), its progress and budget, and, if it checkpoints, what to save and restore.
"""

from __future__ import annotations

import importlib
import json
import logging
import shutil
import signal
import sys
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Generic, TypeVar

import gymnasium as gym

from textgym.algorithms import rng
from textgym.algorithms.callbacks import Callback, CallbackList, TrainingContext
from textgym.algorithms.evaluation import EVAL_SEED_OFFSET, evaluate, vector_env
from textgym.policies.base import Policy

log = logging.getLogger(__name__)

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGUSR2)
"""The signals that stop a run at its next safe point: SLURM preemption and ``timeout`` send SIGTERM,
Ctrl-C SIGINT, and submitit's SLURM jobs get SIGUSR2 before their time limit."""


@dataclass(kw_only=True)
class AlgorithmConfig:
    """What every algorithm's config shares. ``eval_every`` and ``checkpoint_every`` count the algorithm's
    own unit of progress (episodes, env steps or updates: each config says which)."""

    algorithm_class: ClassVar[str]
    """``"module:Class"`` of the algorithm this config configures (imported when it is built)."""
    checkpoints: ClassVar[bool] = True
    """Whether the algorithm can write and resume from checkpoints."""

    eval_every: int = 0
    """Units of progress between evaluations through the shared evaluation path (0 turns them off)."""
    eval_episodes: int = 100
    """Episodes per periodic evaluation."""
    eval_num_envs: int = 8
    """Vector-env slots of the periodic evaluations."""
    checkpoint_every: int = 0
    """Units of progress between checkpoints, when the run has a checkpoint dir (0: only at the end)."""
    keep_checkpoints: int = 2
    """Most recent checkpoints kept."""

    def __post_init__(self) -> None:
        for name in ("eval_every", "checkpoint_every"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name}={getattr(self, name)} must be >= 0 (0 turns it off)")
        for name in ("eval_episodes", "eval_num_envs", "keep_checkpoints"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name}={getattr(self, name)} must be >= 1")
        if self.checkpoint_every and not self.checkpoints:
            raise ValueError(f"checkpoint_every={self.checkpoint_every}: {type(self).__name__} cannot checkpoint; set 0")

    def build(self, seed: int = 0, checkpoint_dir: str | Path | None = None, resume: bool = False) -> Algorithm:
        """The algorithm this config names, configured by it."""
        module, name = self.algorithm_class.split(":")
        return getattr(importlib.import_module(module), name)(self, seed, checkpoint_dir, resume)


class Interrupted(Exception):
    """A run stopped by a signal at a safe point, after writing its checkpoint (if it has a checkpoint dir)."""

    def __init__(self, signum: int, checkpoint: Path | None, progress: str, previous: Any = None) -> None:
        self.signum, self.checkpoint, self.previous = signum, checkpoint, previous
        saved = f"checkpoint {checkpoint} (continue with resume=true)" if checkpoint else "no checkpoint written"
        super().__init__(f"stopped by {signal.Signals(signum).name} after {progress}; {saved}")

    @property
    def exit_code(self) -> int:
        """The shell's convention for a process ended by this signal (130 for SIGINT, 143 for SIGTERM)."""
        return 128 + self.signum

    def exit(self) -> None:
        """End the process: hand the signal to the handler that was there before textgym's, if that was one
        of Python's own (submitit's requeue on SIGUSR2), else exit with :attr:`exit_code`."""
        if callable(self.previous) and self.previous is not signal.default_int_handler:
            self.previous(self.signum, None)
        sys.exit(self.exit_code)


ConfigT = TypeVar("ConfigT", bound=AlgorithmConfig)
PolicyT = TypeVar("PolicyT", bound=Policy)


class Algorithm(ABC, Generic[ConfigT, PolicyT]):
    """Trains a policy of type :attr:`policy_type` (see the module docstring for the lifecycle).

    ``checkpoint_dir`` (None: no checkpoints) is where checkpoints go; with ``resume`` the run continues
    from the newest one there, if any.
    """

    policy_type: ClassVar[type[Policy]]
    """The policy class this algorithm trains."""
    policy_option: ClassVar[str]
    """How a user selects it, e.g. ``"a tabular policy (policy=tabular)"``, for the type error."""
    unit: ClassVar[str]
    """The unit of :meth:`progress` (``episodes``, ``env steps``, ``updates``), for messages."""
    checkpoint_prefix: ClassVar[str] = "checkpoint"
    """Checkpoint dirs are ``<prefix>-<progress>`` (``episode-000001000``, ``update-000012``)."""

    def __init__(
        self, config: ConfigT, seed: int = 0, checkpoint_dir: str | Path | None = None, resume: bool = False
    ) -> None:
        self.config = config
        self.seed = seed
        self.checkpoint_dir = Path(checkpoint_dir) if checkpoint_dir is not None else None
        self.resume = resume
        self.ctx = TrainingContext(total_episodes=0)
        self.callback = CallbackList()
        self.env_fn: Callable[[], gym.Env]
        self.policy: PolicyT
        self._stop_signal: int | None = None
        self._previous_handlers: dict[int, Any] = {}
        self._last_progress = 0
        self._eval_env: gym.vector.VectorEnv | None = None
        self._closing: list[Any] = []

    @property
    def name(self) -> str:
        """The algorithm's name in messages."""
        return type(self).__name__

    # ---- what a subclass writes -----------------------------------------------------------------
    def _setup(self) -> None:
        """Build what the iterations need (envs, models, optimizers); ``self.policy`` and ``self.env_fn`` are set."""

    @abstractmethod
    def _iterate(self) -> bool:
        """One iteration (an episode, an update, a library's whole loop); False when a callback asked to stop."""

    @abstractmethod
    def progress(self) -> int:
        """Units done so far (what ``eval_every`` and ``checkpoint_every`` count)."""

    @abstractmethod
    def budget(self) -> int:
        """Units of the whole run."""

    def _save(self, directory: Path) -> None:
        """Write what resuming needs beyond the counters and global RNGs (the policy, optimizer, buffers)."""

    def _restore(self, directory: Path) -> None:
        """Read what :meth:`_save` wrote."""

    def _rng_states(self) -> dict[str, Any]:
        """JSON-able states of this process's random streams; subclasses add their own generators."""
        return rng.capture_global()

    def _set_rng_states(self, states: dict[str, Any]) -> None:
        rng.restore_global(states)

    def _eval_player(self) -> Policy:
        """What plays the periodic evaluations (the policy; PPO wraps it to record values)."""
        return self.policy

    def _eval_extras(self, player: Policy) -> dict[str, float]:
        """Metrics beyond the evaluation's own, e.g. against exact ground truth."""
        return {}

    # ---- several processes (PPO under Accelerate); one process by default ---------------------
    @property
    def is_main_process(self) -> bool:
        return True

    @property
    def process_index(self) -> int:
        return 0

    def _barrier(self) -> None:
        """Wait for every process."""

    def _any_process(self, flag: bool) -> bool:
        """Whether ``flag`` holds on any process (every process must call this at the same point)."""
        return flag

    # ---- the lifecycle --------------------------------------------------------------------------
    def learn(self, env_fn: Callable[[], gym.Env], policy: PolicyT, callbacks: Sequence[Callback] = ()) -> PolicyT:
        """Train ``policy`` on envs made by ``env_fn``; returns it. Raises :class:`Interrupted` on SIGTERM/SIGINT."""
        self.check_policy(policy)
        self.env_fn, self.policy = env_fn, policy
        try:
            with self._stop_on_signals():
                self._setup()
                self.callback = CallbackList(callbacks if self.is_main_process else [])
                if self.resume:
                    self._resume()
                self._last_progress = self.progress()
                self.callback.on_training_start(self.ctx)
                while self.progress() < self.budget():
                    keep = self._iterate()
                    keep = self.on_progress() and keep
                    if self._any_process(not keep):
                        break
                if self.checkpoint_dir is not None and self.config.checkpoints:
                    self.save_checkpoint()
                self.callback.on_training_end(self.ctx)
        finally:
            self._close()
        return policy

    def check_policy(self, policy: Policy) -> None:
        """A TypeError unless ``policy`` is one this algorithm trains."""
        if not isinstance(policy, self.policy_type):
            raise TypeError(f"{self.name} trains {self.policy_option}, not {type(policy).__name__}")

    def on_progress(self) -> bool:
        """Evaluate and checkpoint when their intervals are crossed, stop on a signal; True to go on.

        The loop calls it after each iteration; algorithms whose library runs the loop call it at each step.
        """
        cfg, progress = self.config, self.progress()
        last, self._last_progress = self._last_progress, progress

        def crossed(every: int) -> bool:
            return every > 0 and progress // every > last // every

        if crossed(cfg.eval_every):
            self.run_evaluation()
        stop = self._any_process(self._stop_signal is not None)
        if self.checkpoint_dir is not None and cfg.checkpoints and (stop or crossed(cfg.checkpoint_every)):
            checkpoint = self.save_checkpoint()
        else:
            checkpoint = None
        if stop:
            self.callback.on_training_end(self.ctx)
            signum = self._stop_signal or signal.SIGTERM  # another process may have got it
            raise Interrupted(signum, checkpoint, f"{progress} {self.unit}", self._previous_handlers.get(signum))
        return True

    def run_evaluation(self) -> None:
        """One periodic evaluation into ``ctx.last_eval``, then the callbacks' ``on_eval`` (main process only)."""
        if not self.is_main_process:
            return
        cfg = self.config
        if self._eval_env is None:
            self._eval_env = self.closing(vector_env(self.env_fn, min(cfg.eval_num_envs, cfg.eval_episodes)))
        player = self._eval_player()
        metrics = evaluate(self._eval_env, player, cfg.eval_episodes, seed=self.seed + EVAL_SEED_OFFSET).metrics()
        self.ctx.last_eval = metrics | self._eval_extras(player)
        self.callback.on_eval(self.ctx)

    def env_id(self) -> str | None:
        """The registered id of the env the run trains on (None for an env made without ``gym.make``)."""
        env = self.env_fn()
        env.close()
        return env.spec.id if env.spec is not None else None

    def closing(self, resource: Any) -> Any:
        """Register an env (anything with ``close()``) to close when the run ends, however it ends."""
        self._closing.append(resource)
        return resource

    def _close(self) -> None:
        while self._closing:
            self._closing.pop().close()
        self._eval_env = None

    # ---- checkpoints ----------------------------------------------------------------------------
    def save_checkpoint(self) -> Path:
        """Write a checkpoint of the run so far, atomically; returns its directory."""
        root = self.checkpoint_dir
        assert root is not None, "save_checkpoint needs a checkpoint_dir"
        final = root / f"{self.checkpoint_prefix}-{self.progress():06d}"
        if final.is_dir():  # taken already at this point (e.g. the interval's and the end's)
            return final
        partial = root / f".{final.name}.partial"
        if self.is_main_process:
            shutil.rmtree(partial, ignore_errors=True)
            partial.mkdir(parents=True)
        self._barrier()
        self._save(partial)
        (partial / f"rng-{self.process_index}.json").write_text(json.dumps(self._rng_states()))
        if self.is_main_process:
            counters = {"progress": self.progress(), "episode": self.ctx.episode, "env_steps": self.ctx.env_steps,
                        "update": self.ctx.update}
            (partial / "counters.json").write_text(json.dumps(counters))
        self._barrier()
        if self.is_main_process:
            shutil.rmtree(final, ignore_errors=True)
            partial.rename(final)
            for old in checkpoints(root)[: -self.config.keep_checkpoints]:
                shutil.rmtree(old)
            log.info("checkpoint %s", final)
        self._barrier()
        return final

    def _resume(self) -> None:
        found = checkpoints(self.checkpoint_dir) if self.checkpoint_dir is not None else []
        if not found:
            log.warning("resume: no checkpoint in %s, starting afresh", self.checkpoint_dir)
            return
        directory = found[-1]
        counters = json.loads((directory / "counters.json").read_text())
        self.ctx.episode, self.ctx.env_steps, self.ctx.update = counters["episode"], counters["env_steps"], counters["update"]
        self._restore(directory)
        states = directory / f"rng-{self.process_index}.json"
        if states.exists():
            self._set_rng_states(json.loads(states.read_text()))
        log.info("resumed from %s (%d %s done)", directory, self.progress(), self.unit)

    # ---- signals --------------------------------------------------------------------------------
    @contextmanager
    def _stop_on_signals(self) -> Iterator[None]:
        """While training, SIGTERM and SIGINT ask for a stop at the next safe point (main thread only)."""
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        previous = self._previous_handlers = {s: signal.getsignal(s) for s in STOP_SIGNALS}

        def request_stop(signum: int, frame: Any) -> None:
            self._stop_signal = signum
            for s, handler in previous.items():  # a second signal acts at once
                signal.signal(s, handler)
            log.warning("%s: stopping at the next safe point (send it again to stop at once)", signal.Signals(signum).name)

        for s in STOP_SIGNALS:
            signal.signal(s, request_stop)
        try:
            yield
        finally:
            for s, handler in previous.items():
                signal.signal(s, handler)


def checkpoints(root: Path) -> list[Path]:
    """The complete checkpoints (``<prefix>-<progress>`` dirs) under ``root``, oldest first."""
    if not root.is_dir():
        return []
    found = [p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".") and p.name.rpartition("-")[2].isdigit()]
    return sorted(found, key=lambda p: int(p.name.rpartition("-")[2]))
