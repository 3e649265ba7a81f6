"""``textgym/Remote-v0``: a Gymnasium env whose episodes run on a textgym OpenEnv server (``textgym serve``),
through OpenEnv's ``EnvClient``. Same seed, same transcript as the local env.

>>> url, env_id = "http://127.0.0.1:8000", "textgym/FrozenLake-v0"
>>> env = gym.make("textgym/Remote-v0", base_url=url, env_id=env_id)  # doctest: +SKIP
>>> observation, info = env.reset(seed=0)  # doctest: +SKIP

Each env holds one WebSocket session on the server, opened at the first ``reset`` and closed by ``close()``;
vector envs hold one per sub-env. The env's oracle and exact MDP stay on the server (privileged state is not
served), so oracle policies and ground-truth values need the local env.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import gymnasium as gym
from gymnasium import spaces

from textgym.envs.base import PRINTABLE
from textgym.integrations import missing_extra
from textgym.integrations.openenv_models import TextAction, TextGymState, TextObservation, info_of

try:
    import requests
    from openenv.core.client_types import StepResult
    from openenv.core.env_client import EnvClient
except ModuleNotFoundError as error:  # the "serve" extra is not installed
    raise missing_extra(error, "serve") from None


class TextGymClient(EnvClient[TextAction, TextObservation, TextGymState]):
    """OpenEnv's typed client of a textgym server (async; ``.sync()`` for blocking calls).

    >>> with TextGymClient(base_url="http://127.0.0.1:8000").sync() as client:  # doctest: +SKIP
    ...     result = client.reset(seed=0)
    ...     result = client.step(TextAction(text=result.observation.valid_actions[0]))
    """

    def _step_payload(self, action: TextAction) -> dict[str, Any]:
        return {"text": action.text}

    def _parse_result(self, payload: dict[str, Any]) -> StepResult[TextObservation]:
        observation = TextObservation.model_validate(
            {
                **payload.get("observation", {}),
                "reward": payload.get("reward"),
                "done": payload.get("done", False),
            }
        )
        return StepResult(observation=observation, reward=observation.reward, done=observation.done)

    def _parse_state(self, payload: dict[str, Any]) -> TextGymState:
        return TextGymState.model_validate(payload)


def describe_server(base_url: str, timeout_s: float = 10.0) -> dict[str, Any]:
    """The server's ``GET /textgym``: its env id, text spaces, step limit and live envs."""
    url = f"{base_url.rstrip('/')}/textgym"
    try:
        response = requests.get(url, timeout=timeout_s)
        response.raise_for_status()
    except requests.RequestException as error:
        raise ConnectionError(
            f"no textgym server answers at {url}: {error}; start one with "
            "`textgym serve <env-id> --port PORT`"
        ) from None
    return response.json()


class RemoteEnv(gym.Env[str, str]):
    """A textgym env served elsewhere (``textgym serve``), played over OpenEnv's WebSocket protocol.

    ## Arguments
    ``gym.make("textgym/Remote-v0", base_url="http://127.0.0.1:8000", env_id="textgym/FrozenLake-v0",
    reward={"step": -0.01})``: ``env_id`` (optional) must be the id the server serves; ``reward`` overrides
    the served env's weights for this session; ``message_timeout_s`` bounds the wait for each answer.

    Observations, rewards, flags and ``info`` are the served env's own. Actions must be strings (a non-string
    raises ``TypeError`` here rather than travelling as an invalid action).
    """

    metadata: ClassVar[dict[str, Any]] = {"render_modes": ["ansi"]}

    def __init__(
        self,
        base_url: str,
        env_id: str | None = None,
        reward: Mapping[str, float] | None = None,
        render_mode: str | None = None,
        message_timeout_s: float = 60.0,
    ) -> None:
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(
                f"render_mode={render_mode!r} is not supported; use one of {self.metadata['render_modes']}"
            )
        served = describe_server(base_url)
        if env_id is not None and served["env_id"] != env_id:
            raise ValueError(
                f"the server at {base_url} serves {served['env_id']!r}, not env_id={env_id!r}: "
                f"start `textgym serve {env_id}` or fix env_id"
            )
        self.env_id: str = served["env_id"]
        self.base_url = base_url
        self.render_mode = render_mode
        self.reward = dict(reward or {})
        self.observation_space = spaces.Text(served["max_observation_length"], charset=PRINTABLE)
        self.action_space = spaces.Text(served["max_action_length"], min_length=0, charset=PRINTABLE)
        self._client = TextGymClient(base_url=base_url, message_timeout_s=message_timeout_s).sync()
        self._observation = ""

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[str, dict[str, Any]]:
        super().reset(seed=seed)
        result = self._client.reset(seed=seed, options=options, reward=self.reward)
        self._observation = result.observation.text
        return self._observation, info_of(result.observation)

    def step(self, action: str) -> tuple[str, float, bool, bool, dict[str, Any]]:
        if not isinstance(action, str):
            raise TypeError(f"actions are text, got a {type(action).__name__}")
        observation = self._client.step(TextAction(text=action)).observation
        self._observation = observation.text
        return (
            observation.text,
            float(observation.reward),
            observation.terminated,
            observation.truncated,
            info_of(observation),
        )

    def render(self) -> str | None:
        """The latest observation's text (``render_mode="ansi"``)."""
        return self._observation if self.render_mode == "ansi" else None

    def close(self) -> None:
        """Close the session: the server frees its env at once."""
        self._client.close()
