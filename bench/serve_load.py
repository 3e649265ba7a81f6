"""Load test of ``textgym serve`` on loopback (127.0.0.1 only), bounded in count and time.

For each env (FrozenLake, CustomerService) and N = 1, 8, 32 concurrent clients (OpenEnv's async ``EnvClient``,
one WebSocket session each) x 200 steps of seeded random valid actions: steps/s, p50/p99 step latency and the
ratio to the same steps run in-process. Every client's transcript is compared with the local env's for its
seeds (a lost or mixed-up session shows as a mismatch). Then: clients killed mid-episode must leave no
session, and the server's resident memory is read over 1,000 episodes, each in a session of its own.

    python bench/serve_load.py            # about 2-4 minutes on 2 busy cores
    python bench/serve_load.py --clients 1 8 --steps 100 --episodes 300
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import gymnasium as gym
import numpy as np
import requests

import textgym  # noqa: F401 - registers the envs
from textgym.envs.checker import action_rng
from textgym.integrations.openenv_models import TextAction, info_of
from textgym.integrations.remote import TextGymClient

ENVS = ["textgym/FrozenLake-v0", "textgym/CustomerService-v0"]
HOST = "127.0.0.1"
TEXTGYM = str(Path(sys.executable).parent / "textgym")


def start_server(env_id: str, max_sessions: int) -> tuple[subprocess.Popen, str]:
    with socket.socket() as s:
        s.bind((HOST, 0))
        port = s.getsockname()[1]
    process = subprocess.Popen(
        [TEXTGYM, "serve", env_id, "--host", HOST, "--port", str(port), "--max-sessions", str(max_sessions)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    url = f"http://{HOST}:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited: {process.stderr.read()}")
        try:
            if requests.get(f"{url}/health", timeout=1).ok:
                return process, url
        except requests.ConnectionError:
            time.sleep(0.2)
    raise RuntimeError(f"no server at {url}")


def rss_mb(pid: int) -> float:
    """Resident memory of a process (Linux /proc)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def alive(url: str) -> int:
    return requests.get(f"{url}/textgym", timeout=10).json()["alive_envs"]


def local_run(env: gym.Env, seed: int, steps: int) -> list[tuple]:
    """The transcript of ``steps`` seeded random valid steps on a local env; resets: seed, seed+1000, ...."""
    rng = action_rng(seed)
    episode = seed
    observation, info = env.reset(seed=episode)
    record: list[tuple] = [(observation,)]
    for _ in range(steps):
        action = str(rng.choice(info["valid_actions"]))
        observation, reward, terminated, truncated, info = env.step(action)
        record.append((action, observation, reward, terminated, truncated))
        if terminated or truncated:
            episode += 1000
            observation, info = env.reset(seed=episode)
            record.append((observation,))
    return record


async def remote_run(client: TextGymClient, seed: int, steps: int, latencies: list[float]) -> list[tuple]:
    """The same as :func:`local_run` through one connected OpenEnv session; appends each step's latency."""
    rng = action_rng(seed)
    episode = seed
    result = await client.reset(seed=episode)
    record: list[tuple] = [(result.observation.text,)]
    info = info_of(result.observation)
    for _ in range(steps):
        action = str(rng.choice(info["valid_actions"]))
        start = time.perf_counter()
        o = (await client.step(TextAction(text=action))).observation
        latencies.append(time.perf_counter() - start)
        info = info_of(o)
        record.append((action, o.text, o.reward, o.terminated, o.truncated))
        if o.terminated or o.truncated:
            episode += 1000
            result = await client.reset(seed=episode)
            record.append((result.observation.text,))
            info = info_of(result.observation)
    return record


async def concurrent(url: str, seeds: list[int], steps: int) -> tuple[list[list[tuple]], list[float], float]:
    """Connect a client per seed (untimed), then play them all at once: (transcripts, latencies, seconds)."""
    clients = [TextGymClient(base_url=url) for _ in seeds]
    await asyncio.gather(*(client.connect() for client in clients))
    latencies: list[float] = []
    start = time.perf_counter()
    records = await asyncio.gather(
        *(remote_run(c, seed, steps, latencies) for c, seed in zip(clients, seeds))
    )
    wall = time.perf_counter() - start
    await asyncio.gather(*(client.close() for client in clients))
    return list(records), latencies, wall


def in_process_rate(env_id: str, seeds: list[int], steps: int) -> tuple[float, list[list[tuple]]]:
    """Steps/s of the same episodes on local envs, one after another (creation untimed), and transcripts."""
    envs = [gym.make(env_id) for _ in seeds]
    start = time.perf_counter()
    records = [local_run(env, seed, steps) for env, seed in zip(envs, seeds)]
    return len(seeds) * steps / (time.perf_counter() - start), records


async def episodes_in_fresh_sessions(url: str, episodes: int, workers: int) -> None:
    """``episodes`` short episodes, each in a new session (connect, reset, play to the end or 20 steps)."""
    queue = list(range(episodes))

    async def worker() -> None:
        while queue:
            seed = queue.pop()
            rng = action_rng(seed)
            async with TextGymClient(base_url=url) as client:
                info = info_of((await client.reset(seed=seed)).observation)
                for _ in range(20):
                    o = (
                        await client.step(TextAction(text=str(rng.choice(info["valid_actions"]))))
                    ).observation
                    info = info_of(o)
                    if o.done:
                        break

    await asyncio.gather(*(worker() for _ in range(workers)))


def killed_clients_leave_nothing(url: str, count: int) -> tuple[int, int, float]:
    """SIGKILL ``count`` client processes mid-episode: (sessions while alive, after, seconds to free)."""
    code = (
        "import gymnasium as gym, textgym; env = gym.make('textgym/Remote-v0', base_url=%r); "
        "env.reset(seed=0); env.step('left'); print('in', flush=True); import time; time.sleep(300)"
    )
    players = [
        subprocess.Popen([sys.executable, "-c", code % url], stdout=subprocess.PIPE, text=True)
        for _ in range(count)
    ]
    for player in players:
        player.stdout.readline()
    during = alive(url)
    for player in players:
        os.kill(player.pid, signal.SIGKILL)
        player.wait()
    start = time.perf_counter()
    while alive(url) and time.perf_counter() - start < 30:
        time.sleep(0.05)
    return during, alive(url), time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 8, 32])
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--episodes", type=int, default=1000)
    args = parser.parse_args()
    rows = []
    for env_id in ENVS:
        server, url = start_server(env_id, max_sessions=max(args.clients) + 8)
        try:
            for n in args.clients:
                seeds = list(range(n))
                records, latencies, wall = asyncio.run(concurrent(url, seeds, args.steps))
                local_rate, local_records = in_process_rate(env_id, seeds, args.steps)
                mismatches = sum(r != lr for r, lr in zip(records, local_records))
                rate = n * args.steps / wall
                rows.append(
                    (
                        env_id.split("/")[1],
                        n,
                        rate,
                        1e3 * np.percentile(latencies, 50),
                        1e3 * np.percentile(latencies, 99),
                        local_rate,
                        rate / local_rate,
                        mismatches,
                    )
                )
            if env_id == ENVS[0]:
                during, after, seconds = killed_clients_leave_nothing(url, 4)
                print(
                    f"killed clients: {during} sessions while 4 clients played, {after} left "
                    f"{seconds:.2f} s after SIGKILL"
                )
                asyncio.run(episodes_in_fresh_sessions(url, 100, 8))
                memory, start = [rss_mb(server.pid)], time.perf_counter()
                for _ in range(4):
                    asyncio.run(episodes_in_fresh_sessions(url, args.episodes // 4, 8))
                    memory.append(rss_mb(server.pid))
                shown = ", ".join(f"{m:.1f}" for m in memory)
                print(
                    f"server memory after 100 warm-up episodes, then every {args.episodes // 4} more (one "
                    f"session each, {time.perf_counter() - start:.1f} s): {shown} MB; "
                    f"{alive(url)} sessions left"
                )
        finally:
            server.send_signal(signal.SIGINT)
            server.wait(timeout=30)
    print(
        "\n| env | clients | steps/s served | p50 ms | p99 ms | steps/s in-process | served / in-process | "
        "mismatched transcripts |\n|---|---|---|---|---|---|---|---|"
    )
    for name, n, rate, p50, p99, local_rate, ratio, mismatches in rows:
        print(
            f"| {name} | {n} | {rate:,.0f} | {p50:.2f} | {p99:.2f} | {local_rate:,.0f} | {ratio:.4f} | "
            f"{mismatches}/{n} |"
        )


if __name__ == "__main__":
    main()
