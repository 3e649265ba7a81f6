"""Any Gymnasium text env served with OpenEnv's own server: one env per WebSocket session, a bounded number
of sessions, and sessions whose client left (or that stayed idle past a timeout) closed and freed.

>>> app = make_app("textgym/FrozenLake-v0", max_sessions=8)  # doctest: +SKIP
>>> uvicorn.run(app, host="127.0.0.1", port=8000)  # doctest: +SKIP

The app is OpenEnv's (``/ws`` sessions, ``/reset``, ``/step``, ``/state``, ``/schema``, ``/health``,
``/metadata``, and with ``web=True`` its Gradio page at ``/web``), plus ``GET /textgym``: the env's id, its
text spaces, step limit and the number of envs alive, so clients can check what they talk to.
"""

from __future__ import annotations

import html
import inspect
import os
import threading
from collections.abc import Mapping
from functools import partial
from typing import Any

import gymnasium as gym

import textgym
from textgym.integrations import missing_extra
from textgym.integrations.openenv_models import TextAction, TextGymState, TextObservation, observation_of

try:
    from fastapi import FastAPI
    from openenv.core.env_server.http_server import create_fastapi_app
    from openenv.core.env_server.interfaces import Environment
    from openenv.core.env_server.types import ConcurrencyConfig, EnvironmentMetadata
except ModuleNotFoundError as error:  # the "serve" extra is not installed
    raise missing_extra(error, "serve") from None

DEFAULT_IDLE_TIMEOUT_S = 900.0
"""Sessions idle this long are closed: longer than a PPO update between two rollouts, short enough to free
the slots of clients that hang without closing their socket."""


class SessionCount:
    """How many envs a server has opened and closed (every session, and OpenEnv's short-lived HTTP ones)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.opened = 0
        self.closed = 0

    def open(self) -> None:
        with self._lock:
            self.opened += 1

    def close(self) -> None:
        with self._lock:
            self.closed += 1

    @property
    def alive(self) -> int:
        """Envs opened and not closed yet."""
        return self.opened - self.closed


class ClosedSession(RuntimeError):
    """Raised when a client uses a session the server has closed (idle timeout or shutdown)."""


class TextGymEnvironment(Environment[TextAction, TextObservation, TextGymState]):
    """One session's env: ``gym.make(env_id, **make_kwargs)`` behind OpenEnv's reset/step/state.

    ``reset(seed=..., options=..., reward=...)`` takes Gymnasium's arguments; ``reward`` (weight overrides)
    re-makes the env when it differs from the current weights. The episode's transcript is kept for
    ``state`` and the web page, and cleared at every reset.
    """

    SUPPORTS_CONCURRENT_SESSIONS = True

    def __init__(self, env_id: str, count: SessionCount | None = None, **make_kwargs: Any) -> None:
        super().__init__()
        self.env_id = env_id
        self._make_kwargs = make_kwargs
        self._reward: dict[str, float] = {}
        self._env = gym.make(env_id, **make_kwargs)
        self._count = count
        self._closed = False
        self._seed: int | None = None
        self._transcript: list[dict[str, Any]] = []
        self._steps = 0
        self._episode_id: str | None = None
        if count is not None:
            count.open()

    def reset(
        self,
        seed: int | None = None,
        episode_id: str | None = None,
        options: dict[str, Any] | None = None,
        reward: Mapping[str, float] | None = None,
        **unknown: Any,
    ) -> TextObservation:
        """Gymnasium's reset; ``reward`` overrides weights by name, ``episode_id`` only labels the episode."""
        if unknown:
            raise ValueError(
                f"unknown reset argument(s) {sorted(unknown)}: reset takes seed, episode_id, options "
                "and reward"
            )
        self._check_open()
        if reward is not None and dict(reward) != self._reward:
            self._env.close()
            self._env = gym.make(self.env_id, **{**self._make_kwargs, "reward": dict(reward)})
            self._reward = dict(reward)
        text, info = self._env.reset(seed=seed, options=options)
        self._seed, self._episode_id, self._steps, self._transcript = seed, episode_id, 0, []
        return observation_of(text, info, seed=seed)

    def step(self, action: TextAction, timeout_s: float | None = None) -> TextObservation:
        """Gymnasium's step (``timeout_s``, in OpenEnv's signature, is not used: a text step is quick)."""
        self._check_open()
        text, reward, terminated, truncated, info = self._env.step(action.text)
        self._steps += 1
        self._transcript.append(
            {"action": action.text, "text": text, "reward": reward, "reward_terms": info["reward_terms"]}
        )
        return observation_of(
            text,
            info,
            reward=reward,
            done=terminated or truncated,
            terminated=terminated,
            truncated=truncated,
            seed=self._seed,
        )

    @property
    def state(self) -> TextGymState:
        return TextGymState(
            env_id=self.env_id,
            seed=self._seed,
            episode_id=self._episode_id,
            step_count=self._steps,
            transcript=list(self._transcript),
        )

    def get_metadata(self) -> EnvironmentMetadata:
        doc = type(self._env.unwrapped).__doc__ or ""
        return EnvironmentMetadata(
            name=self.env_id,
            description=(doc.strip().splitlines() or [self.env_id])[0],
            readme_content=f"# {self.env_id}\n\n{inspect.cleandoc(doc)}",
            version=textgym.__version__,
            author="textgym",
        )

    def render_web(self, observation: dict[str, Any]) -> str | None:
        """The page's drawing: the observation, this step's reward terms and the episode's transcript."""
        terms = observation.get("reward_terms") or {}
        rows = "".join(f"<tr><td>{html.escape(k)}</td><td>{v:+.3f}</td></tr>" for k, v in terms.items())
        turns = "".join(
            f"<li><b>{html.escape(t['action'])}</b> → reward {t['reward']:+.3f}"
            f"<pre style='white-space: pre-wrap'>{html.escape(t['text'])}</pre></li>"
            for t in self._transcript
        )
        status = (
            "success" if observation.get("success") else ("ended" if observation.get("done") else "playing")
        )
        text = html.escape(observation.get("text", ""))
        return (
            f'<div class="textgym"><h3>{html.escape(self.env_id)} · seed {self._seed} · step {self._steps}'
            f" · {status}</h3>"
            f"<pre id='textgym-observation' style='white-space: pre-wrap'>{text}</pre>"
            f"<h4>Reward terms</h4><table id='textgym-terms'>{rows}</table>"
            f"<h4>Transcript</h4><ol id='textgym-transcript'>{turns}</ol></div>"
        )

    def web_actions(self, observation: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
        """One button per valid action."""
        return [(action, {"text": action}) for action in observation.get("valid_actions") or []]

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._env.close()
        if self._count is not None:
            self._count.close()

    def _check_open(self) -> None:
        if self._closed:
            raise ClosedSession(
                "this session was closed by the server (idle past its timeout, or shut down): "
                "connect again to start a new one"
            )


def check_servable(env_id: str, **make_kwargs: Any) -> gym.Env:
    """Make ``env_id`` once and check it is a text env; ``ValueError`` names the id and the problem."""
    try:
        env = gym.make(env_id, **make_kwargs)
    except (gym.error.Error, TypeError) as error:  # an unknown id, module or keyword argument
        raise ValueError(f"cannot serve {env_id!r}: {error}") from None
    if not isinstance(env.observation_space, gym.spaces.Text) or not isinstance(
        env.action_space, gym.spaces.Text
    ):
        env.close()
        raise ValueError(
            f"cannot serve {env_id!r}: only text envs (spaces.Text observations and actions) are served"
        )
    return env


def make_app(
    env_id: str,
    max_sessions: int = 64,
    idle_timeout_s: float | None = DEFAULT_IDLE_TIMEOUT_S,
    web: bool | None = None,
    **make_kwargs: Any,
) -> FastAPI:
    """OpenEnv's app serving ``env_id`` (``module:id`` imports the module): at most ``max_sessions`` WebSocket
    sessions, each closed when its client disconnects or after ``idle_timeout_s`` without a message (``None``:
    never). ``web`` adds OpenEnv's web page at ``/web`` (``None``: as ``ENABLE_WEB_INTERFACE`` says).
    """
    if max_sessions < 1:
        raise ValueError(f"max_sessions must be >= 1, got {max_sessions}")
    if idle_timeout_s is not None and idle_timeout_s <= 0:
        raise ValueError(f"idle_timeout_s must be > 0 or None, got {idle_timeout_s}")
    probe = check_servable(env_id, **make_kwargs)
    description = {
        "env_id": env_id,
        "max_observation_length": probe.observation_space.max_length,
        "max_action_length": probe.action_space.max_length,
        "max_episode_steps": probe.spec.max_episode_steps if probe.spec else None,
        "reward_threshold": probe.spec.reward_threshold if probe.spec else None,
        "max_sessions": max_sessions,
        "idle_timeout_s": idle_timeout_s,
    }
    probe.close()
    count = SessionCount()
    factory = partial(TextGymEnvironment, env_id, count, **make_kwargs)
    config = ConcurrencyConfig(max_concurrent_envs=max_sessions, session_timeout=idle_timeout_s)
    name = env_id.replace("/", "_").replace(":", "_")
    if web is None:
        web = os.getenv("ENABLE_WEB_INTERFACE", "false").lower() in ("true", "1", "yes")
    if web:
        from openenv.core.env_server.web_interface import create_web_interface_app

        app = create_web_interface_app(
            factory,
            TextAction,
            TextObservation,
            env_name=name,
            concurrency_config=config,
            state_cls=TextGymState,
            title_override=f"textgym · {env_id}",
        )
    else:
        app = create_fastapi_app(
            factory,
            TextAction,
            TextObservation,
            concurrency_config=config,
            env_name=name,
            state_cls=TextGymState,
        )

    @app.get("/textgym", tags=["Environment Info"], summary="The served env and its live sessions")
    def describe() -> dict[str, Any]:
        return {**description, "alive_envs": count.alive, "opened_envs": count.opened}

    return app
