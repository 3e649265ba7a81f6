"""``textgym serve`` as a user runs it (the installed console script in a subprocess, on a free local port),
played through ``textgym/Remote-v0`` and through OpenEnv's own generic client: the same transcripts as the
local envs, isolated concurrent sessions, sessions freed when clients die or idle, bad input answered, and an
exported OpenEnv package that ``openenv validate`` accepts and that serves."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
from conftest import ENV_IDS

from textgym.envs.checker import action_rng

pytest.importorskip("openenv", reason="needs textgym[serve]")
import requests  # noqa: E402 - openenv brings it
from openenv.cli._validation import validate_running_environment  # noqa: E402
from openenv.core.generic_client import GenericEnvClient  # noqa: E402
from websockets.sync.client import connect  # noqa: E402

from textgym.integrations.openenv_models import TextObservation, info_of  # noqa: E402

BIN = Path(sys.executable).parent
TEXTGYM = str(BIN / "textgym")  # the installed console script
EXAMPLES = Path(__file__).parent / "examples"
INVALID = "@@ not an action"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def describe(url: str) -> dict[str, Any]:
    return requests.get(f"{url}/textgym", timeout=10).json()


class Server:
    """A server process on a free loopback port: ``textgym serve <env-id> ...``, or ``command``."""

    def __init__(
        self,
        env_id: str,
        *flags: str,
        cwd: Path,
        command: list[str] | None = None,
        env: dict[str, str] | None = None,
    ) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        args = command or [TEXTGYM, "serve", env_id]
        self.process = subprocess.Popen(
            [*args, "--port", str(self.port), *flags],
            cwd=cwd,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def wait(self, timeout: float = 90.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(
                    f"server exited with {self.process.returncode}: {self.process.stderr.read()}"
                )
            try:
                if requests.get(f"{self.url}/health", timeout=1).ok:
                    return
            except requests.ConnectionError:
                pass
            time.sleep(0.2)
        raise AssertionError(f"no server at {self.url} after {timeout} s")

    def stop(self) -> None:
        """Ask the server to shut down (uvicorn's Ctrl-C); :meth:`join` waits for it."""
        self.process.send_signal(signal.SIGINT)

    def join(self) -> None:
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


@contextmanager
def serving(*env_ids: str, cwd: Path, flags: tuple[str, ...] = (), **kwargs: Any) -> Iterator[list[str]]:
    """Start one server per env id (all at once), wait until they answer, yield their URLs, stop them."""
    servers = [Server(env_id, *flags, cwd=cwd, **kwargs) for env_id in env_ids]
    try:
        for server in servers:
            server.wait()
        yield [server.url for server in servers]
    finally:
        for server in servers:
            server.stop()
        for server in servers:
            server.join()


def remote(url: str, env_id: str | None = None, **kwargs: Any) -> gym.Env:
    return gym.make("textgym/Remote-v0", base_url=url, env_id=env_id, **kwargs)


def scripted_actions(env_id: str, seed: int, steps: int = 40) -> list[str]:
    """The local env's oracle moves for ``seed``, with invalid actions at steps 2 and 4 (privileged oracle:
    computed locally, replayed remotely)."""
    env = gym.make(env_id)
    env.reset(seed=seed)
    actions = []
    for t in range(steps):
        actions.append(INVALID if t in (1, 3) else env.unwrapped.oracle_action())
        *_, terminated, truncated, _ = env.step(actions[-1])
        if terminated or truncated:
            break
    return actions


def transcript(env: gym.Env, seed: int, actions: list[str], random_steps: int = 12) -> list:
    """reset(seed) and ``actions``, then an unseeded reset (the env's RNG goes on) and random valid moves."""
    record: list = [env.reset(seed=seed)]
    record += [env.step(action) for action in actions]
    observation, info = env.reset()
    record.append((observation, info))
    rng = action_rng(seed)
    for _ in range(random_steps):
        step = env.step(str(rng.choice(info["valid_actions"])))
        record.append(step)
        info = step[4]
        if step[2] or step[3]:
            break
    return record


def generic_client_transcript(url: str, seed: int, actions: list[str]) -> list:
    """The scripted part of :func:`transcript` through OpenEnv's GenericEnvClient (plain dicts)."""

    def parsed(result: Any) -> TextObservation:
        return TextObservation.model_validate(
            {**result.observation, "reward": result.reward, "done": result.done}
        )

    with GenericEnvClient(base_url=url).sync() as client:
        first = parsed(client.reset(seed=seed))
        record: list = [(first.text, info_of(first))]
        for action in actions:
            o = parsed(client.step({"text": action}))
            record.append((o.text, o.reward, o.terminated, o.truncated, info_of(o)))
    return record


QUICK_IDS = [
    "textgym/CustomerService-v0",
    "textgym/FrozenLake-v0",
    "textgym/GuessNumber-v0",
    "textgym/TicTacToe-v0",
]
REST_IDS = [env_id for env_id in ENV_IDS if env_id not in QUICK_IDS]
GROUPS = [  # servers start 6 s of imports each: the default run covers 4 envs, the slow one every other env
    pytest.param(QUICK_IDS, id="quick"),
    *(pytest.param(REST_IDS[i::2], id=f"rest-{i}", marks=pytest.mark.slow) for i in range(2)),
]


@pytest.mark.parametrize("group", GROUPS)
def test_every_shipped_env_plays_its_local_transcript_remotely(group: list[str], tmp_path: Path) -> None:
    with serving(*group, cwd=tmp_path) as urls:
        for env_id, url in zip(group, urls):
            actions = scripted_actions(env_id, seed=7)
            local = transcript(gym.make(env_id), 7, actions)
            served = remote(url, env_id)
            assert transcript(served, 7, actions) == local, env_id
            served.close()
            assert generic_client_transcript(url, 7, actions) == local[: len(actions) + 1], env_id
            assert any(
                step[4]["reward_terms"].get("invalid_action") for step in local[1:4]
            )  # the penalty came back
        report = validate_running_environment(urls[0])  # what `openenv validate --url` runs
        assert report["passed"], report["criteria"]


def test_32_concurrent_sessions_keep_their_own_episodes(tmp_path: Path) -> None:
    env_id = "textgym/CustomerService-v0"
    seeds = range(100, 132)
    actions = {seed: scripted_actions(env_id, seed) for seed in seeds}
    local = {seed: transcript(gym.make(env_id), seed, actions[seed]) for seed in seeds}
    with serving(env_id, cwd=tmp_path, flags=("--max-sessions", "32")) as [url]:
        envs = {seed: remote(url, env_id) for seed in seeds}
        for env in envs.values():
            env.reset()  # opens the session
        assert describe(url)["alive_envs"] == 32
        extra = remote(url, env_id)
        with pytest.raises(RuntimeError, match="CAPACITY_REACHED"):
            extra.reset(seed=0)
        with ThreadPoolExecutor(32) as pool:
            played = dict(zip(seeds, pool.map(lambda s: transcript(envs[s], s, actions[s]), seeds)))
        for seed in seeds:
            assert played[seed] == local[seed], seed
        for env in envs.values():
            env.close()
        extra.close()
        assert _eventually(lambda: describe(url)["alive_envs"] == 0)


def _eventually(condition: Any, timeout: float = 15.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return condition()


def test_bad_input_gets_the_env_answer_or_a_protocol_error(tmp_path: Path) -> None:
    with (
        serving("textgym/GuessNumber-v0", cwd=tmp_path) as [url],
        connect(url.replace("http", "ws") + "/ws") as ws,
    ):

        def ask(message: str | dict) -> dict:
            ws.send(message if isinstance(message, str) else json.dumps(message))
            return json.loads(ws.recv(timeout=30))

        assert ask({"type": "reset", "data": {"seed": 1}})["type"] == "observation"
        answer = ask({"type": "step", "data": {"text": "fly"}})  # not an action of the env: its own answer
        assert answer["type"] == "observation" and answer["data"]["reward"] == pytest.approx(-0.1)
        assert answer["data"]["observation"]["reward_terms"]["invalid_action"] == pytest.approx(-0.1)
        assert "Invalid action 'fly'" in answer["data"]["observation"]["text"]
        assert ask("{not json")["data"]["code"] == "INVALID_JSON"
        assert ask({"type": "step", "data": {"text": 5}})["data"]["code"] == "VALIDATION_ERROR"
        assert ask({"type": "step", "data": {"txet": "8"}})["data"]["code"] == "VALIDATION_ERROR"
        assert ask({"type": "jump"})["data"]["code"] == "UNKNOWN_TYPE"
        error = ask({"type": "reset", "data": {"seeed": 1}})["data"]
        assert error["code"] == "EXECUTION_ERROR" and "seeed" in error["message"]
        error = ask({"type": "reset", "data": {"reward": {"sucess": 2}}})["data"]
        assert error["code"] == "EXECUTION_ERROR" and "sucess" in error["message"]
        answer = ask({"type": "step", "data": {"text": "8"}})  # the session survived all of it
        assert (
            answer["type"] == "observation" and answer["data"]["observation"]["info"]["invalid_actions"] == 1
        )
        assert requests.get(f"{url}/health", timeout=10).json()["status"] == "healthy"


def test_killed_and_idle_clients_leave_no_session(tmp_path: Path) -> None:
    client = (
        "import gymnasium as gym, textgym; env = gym.make('textgym/Remote-v0', base_url={url!r}); "
        "env.reset(seed=0); env.step('left'); print('playing', flush=True); import time; time.sleep(600)"
    )
    with serving("textgym/FrozenLake-v0", cwd=tmp_path, flags=("--idle-timeout", "1")) as [url]:
        player = subprocess.Popen(
            [sys.executable, "-c", client.format(url=url)], stdout=subprocess.PIPE, text=True, cwd=tmp_path
        )
        assert player.stdout.readline().strip() == "playing"
        assert describe(url)["alive_envs"] == 1
        player.kill()  # mid-episode, no close
        player.wait()
        assert _eventually(lambda: describe(url)["alive_envs"] == 0, timeout=10)

        idle = remote(url)
        idle.reset(seed=0)
        assert describe(url)["alive_envs"] == 1
        assert _eventually(lambda: describe(url)["alive_envs"] == 0, timeout=20)  # reaped after 1 s idle
        with pytest.raises(RuntimeError, match="closed by the server"):
            idle.step("left")
        idle.close()


def test_vector_envs_and_train_run_unchanged_against_a_server(tmp_path: Path) -> None:
    env_id = "textgym/FrozenLake-v0"
    with serving(env_id, cwd=tmp_path) as [url]:
        vector = gym.vector.SyncVectorEnv([lambda: remote(url, env_id)] * 3)
        observations, infos = vector.reset(seed=[1, 2, 3])
        local = [gym.make(env_id).reset(seed=s)[0] for s in (1, 2, 3)]
        assert list(observations) == local
        vector.close()

        pytest.importorskip("trl")  # the GRPO bridge's tools, driving the served env as TRL's rollouts would
        from textgym.algorithms.grpo import environment_factory

        tools = [environment_factory(fn)() for fn in (lambda: remote(url, env_id), lambda: gym.make(env_id))]
        replies = [[t.reset(prompt=[], seed=4), t.right(), t.down(), t.down()] for t in tools]
        assert replies[0] == replies[1] and tools[0].get_reward() == tools[1].get_reward()
        assert type(tools[0]).__name__ == "RemoteTools"  # one tool per move, as for the local env

        quick = [
            "algorithm.episodes=200",
            "algorithm.eval_every=0",
            "eval.episodes=24",
            "logger=none",
        ]  # no GroundTruth mid-run: it draws from the policy's RNG
        runs = {}
        served = [
            "env.id=textgym/Remote-v0",
            "~env.kwargs",
            f"+env.kwargs={{base_url:'{url}',env_id:'{env_id}'}}",
        ]
        for name, overrides in {"local": [], "remote": served}.items():
            run = subprocess.run(
                [TEXTGYM, "train", *quick, *overrides, f"hydra.run.dir={name}"],
                cwd=tmp_path,
                capture_output=True,
                text=True,
                timeout=300,
                env={**os.environ, "HOME": str(tmp_path)},
            )
            assert run.returncode == 0, run.stderr
            runs[name] = json.loads((tmp_path / name / "results.json").read_text())["metrics"]
        assert runs["remote"] == {
            k: v for k, v in runs["local"].items() if k != "regret"
        }  # no exact MDP over the wire


def test_export_is_a_valid_openenv_package_that_serves_a_users_env(tmp_path: Path) -> None:
    env_id = "ladder:example/Ladder-v0"
    with_examples = {**os.environ, "PYTHONPATH": str(EXAMPLES)}
    run = subprocess.run(
        [TEXTGYM, "serve", env_id, "--kwargs", '{"max_invalid_streak": 2}', "--export", "pkg"],
        cwd=tmp_path,
        env=with_examples,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr
    package = tmp_path / "pkg"
    for name in (
        "openenv.yaml",
        "server/app.py",
        "server/Dockerfile",
        "pyproject.toml",
        "README.md",
        "ladder.py",
    ):
        assert (package / name).is_file(), name
    report = subprocess.run(
        [str(BIN / "openenv"), "validate", str(package)], capture_output=True, text=True, timeout=120
    )
    assert report.returncode == 0, report.stdout + report.stderr
    assert "PASS  static.manifest" in report.stdout and "FAIL" not in report.stdout

    # the package's own server, without PYTHONPATH: it imports the copied module
    actions = ["step", "jump", INVALID, "step", "step", INVALID, INVALID]  # truncated by max_invalid_streak=2
    import textgym  # noqa: F401

    sys.path.insert(0, str(EXAMPLES))
    try:
        local = transcript(gym.make(env_id, max_invalid_streak=2), 3, actions)
    finally:
        sys.path.remove(str(EXAMPLES))
    command = [sys.executable, "-m", "server.app", "--host", "127.0.0.1"]
    with serving(env_id, cwd=package, command=command) as [url]:
        assert transcript(remote(url, env_id), 3, actions) == local


def test_bad_command_lines_fail_with_one_line_before_serving(tmp_path: Path) -> None:
    def serve(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
        return subprocess.run(
            [TEXTGYM, "serve", *args], cwd=tmp_path, capture_output=True, text=True, timeout=120, env=env
        )

    run = serve("textgym/Nope-v0", "--port", str(free_port()))
    assert (
        run.returncode == 1 and "textgym/Nope-v0" in run.stderr and len(run.stderr.strip().splitlines()) == 1
    )
    run = serve("textgym/FrozenLake-v0", "--max-sessions", "0")
    assert run.returncode == 2 and "--max-sessions" in run.stderr
    run = serve("textgym/FrozenLake-v0", "--kwargs", "[1]")
    assert run.returncode == 2 and "--kwargs" in run.stderr
    run = serve("textgym/FrozenLake-v0", "--kwargs", '{"slippery": false}', "--port", str(free_port()))
    assert run.returncode == 1 and "slippery" in run.stderr and len(run.stderr.strip().splitlines()) == 1
    fake = tmp_path / "no_openenv"  # a stand-in for an install without the serve extra
    fake.mkdir()
    (fake / "openenv.py").write_text(
        "raise ModuleNotFoundError(\"No module named 'openenv'\", name='openenv')\n"
    )
    run = serve("textgym/FrozenLake-v0", env={**os.environ, "PYTHONPATH": str(fake)})
    assert run.returncode == 1 and "pip install 'textgym[serve]'" in run.stderr, run.stderr


def test_trl_grpo_trains_against_a_served_env(tmp_path: Path, monkeypatch, one_thread) -> None:
    """TRL's GRPOTrainer (textgym's bridge, a tiny model on the CPU), every rollout in a served session."""
    pytest.importorskip("trl")
    from test_sft_grpo import tiny_policy
    from tiny_llm import tiny_tokenizer

    from textgym.algorithms.grpo import GRPO, EpisodeTools
    from textgym.algorithms.grpo_config import GRPOConfig

    monkeypatch.setenv("TRL_EXPERIMENTAL_SILENCE", "1")
    scored: list[float] = []

    def spy(self: EpisodeTools) -> float:
        scored.append(self.episode_return)
        return self.episode_return

    monkeypatch.setattr(EpisodeTools, "get_reward", spy)
    env_id = "textgym/FrozenLake-v0"
    with serving(env_id, cwd=tmp_path, flags=("--kwargs", '{"is_slippery": false}')) as [url]:
        config = GRPOConfig(
            max_steps=2,
            tasks=4,
            num_generations=2,
            per_device_train_batch_size=4,
            max_completion_length=24,
            max_tool_calling_iterations=3,
            learning_rate=1e-2,
            cpu=True,
        )
        grpo = GRPO(config)
        grpo.learn(lambda: remote(url, env_id), tiny_policy(tiny_tokenizer()))
        logs = [entry for entry in grpo.trainer.state.log_history if "reward" in entry]
        assert [entry["step"] for entry in logs] == [1, 2] and len(scored) == 2 * 4
        for step, entry in enumerate(logs):
            assert entry["rewards/RemoteTools/mean"] == pytest.approx(
                np.mean(scored[4 * step : 4 * step + 4])
            )
        assert describe(url)["opened_envs"] >= 4  # TRL's env per rollout slot (reused across steps), served
