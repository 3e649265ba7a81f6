"""An OpenEnv environment package for one env: ``openenv.yaml``, ``server/app.py``, ``server/Dockerfile``,
``pyproject.toml`` and a README, which ``openenv validate DIR`` accepts and ``openenv build`` /
``openenv push`` take to a container or a Hugging Face Space.

The package's server is :func:`textgym.integrations.openenv_server.make_app`; textgym itself is installed in
the image from ``TEXTGYM_REQUIREMENT`` (a build argument: a version, a wheel or a git URL). A user's env given
as ``module:id`` has its module copied into the package, so the image imports it.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import shutil
from pathlib import Path
from typing import Any

import gymnasium as gym
import yaml

import textgym
from textgym.integrations.openenv_server import check_servable

TEXTGYM_REQUIREMENT = f"textgym[serve]=={textgym.__version__}"
OPENENV_REQUIREMENT = "openenv==0.10.*"

APP = '''"""OpenEnv server of {env_id}, exported by `textgym serve {env_id} --export`.

Run it with `uvicorn server.app:app --port 8000` from this directory, or `python -m server.app --port 8000`.
MAX_CONCURRENT_ENVS (default 64) bounds the sessions, SESSION_IDLE_TIMEOUT_S (default 900) frees idle ones,
ENABLE_WEB_INTERFACE=true adds the page at /web.
"""

import argparse
import os

import uvicorn

from textgym.integrations.openenv_server import make_app

ENV_ID = {env_id!r}
MAKE_KWARGS = {make_kwargs!r}

app = make_app(
    ENV_ID,
    max_sessions=int(os.getenv("MAX_CONCURRENT_ENVS", "64")),
    idle_timeout_s=float(os.getenv("SESSION_IDLE_TIMEOUT_S", "900")),
    **MAKE_KWARGS,
)


def main() -> None:
    """Serve the app: `python -m server.app [--host 0.0.0.0] [--port 8000]`."""
    parser = argparse.ArgumentParser(description=f"Serve {{ENV_ID}} over OpenEnv")
    parser.add_argument("--host", default="0.0.0.0")
    parser.add_argument("--port", type=int, default=8000)
    args = parser.parse_args()
    uvicorn.run(app, host=args.host, port=args.port)


if __name__ == "__main__":
    main()
'''

DOCKERFILE = """# OpenEnv image of {env_id}, exported by `textgym serve {env_id} --export`.
# Build from this directory: docker build -f server/Dockerfile -t {name}:latest .
# TEXTGYM_REQUIREMENT picks the textgym to install, e.g. a wheel copied here or "textgym[serve] @ git+https://...".
FROM python:3.11-slim

ARG TEXTGYM_REQUIREMENT="{textgym_requirement}"
WORKDIR /app/env
COPY . /app/env
RUN pip install --no-cache-dir "$TEXTGYM_REQUIREMENT" "{openenv_requirement}"

ENV PYTHONPATH=/app/env
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=3s --start-period=10s --retries=3 \\
    CMD python -c "import urllib.request; urllib.request.urlopen('http://localhost:8000/health')"
CMD ["uvicorn", "server.app:app", "--host", "0.0.0.0", "--port", "8000"]
"""

PYPROJECT = """[build-system]
requires = ["setuptools>=68"]
build-backend = "setuptools.build_meta"

[project]
name = "openenv-{name}"
version = "{version}"
description = "{env_id} (textgym) served over OpenEnv"
requires-python = ">=3.10"
dependencies = ["{openenv_requirement}", "{textgym_requirement}"]

[project.scripts]
server = "server.app:main"

[tool.setuptools]
packages = ["server"]
"""

README = """# {env_id} over OpenEnv

{description}

Exported by `textgym serve {env_id} --export`. Serve it locally with `uvicorn server.app:app --port 8000`
(from this directory), or build the image: `docker build -f server/Dockerfile -t {name} .` and
`docker run -p 8000:8000 {name}`. Play it from Python:

```python
import gymnasium as gym
import textgym

env = gym.make("textgym/Remote-v0", base_url="http://localhost:8000", env_id="{env_id}")
observation, info = env.reset(seed=0)
observation, reward, terminated, truncated, info = env.step(info["valid_actions"][0])
```
"""


def package_name(env_id: str) -> str:
    """A package name for an env id: ``textgym/FrozenLake-v0`` -> ``frozenlake_v0``."""
    return env_id.rsplit(":", 1)[-1].rsplit("/", 1)[-1].lower().replace("-", "_")


def reward_range(env: gym.Env) -> tuple[float, float]:
    """A bound on one step's reward: the sum of the negative weights to the sum of the positive ones."""
    spec = getattr(env.unwrapped, "reward", None)
    weights = (
        [float(v) for v in dataclasses.asdict(spec).values()]
        if dataclasses.is_dataclass(spec)
        else [0.0, 1.0]
    )
    low, high = sum(w for w in weights if w < 0), sum(w for w in weights if w > 0)
    return low, high if high > low else low + 1.0


def manifest(env_id: str, env: gym.Env) -> dict:
    """The ``openenv.yaml`` of the package (schema 1: static validation; runtime checks need Docker)."""
    low, high = reward_range(env)
    limit = env.spec.max_episode_steps if env.spec else None
    return {
        "spec_version": 1,
        "name": package_name(env_id),
        "version": textgym.__version__,
        "type": "space",
        "runtime": "fastapi",
        "app": "server.app:app",
        "port": 8000,
        "validation": {
            "reward": {"range": [low, high], "oracle_tolerance": 0.0, "floor_margin": 0.1},
            "resources": {
                "cpu": 1.0,
                "memory_mb": 1024,
                "disk_mb": 1024,
                "episode_timeout_s": float(max(60, limit or 60)),
            },
            "network": {"mode": "no-network"},
            "capabilities": {"verifier": {"kind": "reward_channel"}},
            "types": {"tags": ["textgym", "text"]},
        },
    }


def copy_user_module(env_id: str, directory: Path) -> Path | None:
    """Copy the module of a ``module:id`` env into ``directory`` (a file or a package); None for an id."""
    if ":" not in env_id:
        return None
    module = env_id.split(":", 1)[0]
    spec = importlib.util.find_spec(module)
    if spec is None or spec.origin is None:
        raise ValueError(f"cannot export {env_id!r}: module {module!r} is not importable")
    source = Path(spec.origin)
    if spec.submodule_search_locations:  # a package: copy its directory
        target = directory / source.parent.name
        shutil.copytree(
            source.parent, target, dirs_exist_ok=True, ignore=shutil.ignore_patterns("__pycache__")
        )
    else:
        target = directory / source.name
        shutil.copy2(source, target)
    return target


def export_package(env_id: str, directory: str | Path, **make_kwargs: Any) -> Path:
    """Write the OpenEnv package of ``gym.make(env_id, **make_kwargs)`` into ``directory`` (created;
    files there are overwritten)."""
    env = check_servable(env_id, **make_kwargs)
    try:
        fields = {
            "env_id": env_id,
            "make_kwargs": make_kwargs,
            "name": package_name(env_id),
            "version": textgym.__version__,
            "textgym_requirement": TEXTGYM_REQUIREMENT,
            "openenv_requirement": OPENENV_REQUIREMENT,
            "description": ((type(env.unwrapped).__doc__ or "").strip().splitlines() or [env_id])[0],
        }
        root = Path(directory)
        (root / "server").mkdir(parents=True, exist_ok=True)
        (root / "openenv.yaml").write_text(yaml.safe_dump(manifest(env_id, env), sort_keys=False))
        (root / "server" / "__init__.py").write_text("")
        (root / "server" / "app.py").write_text(APP.format(**fields))
        (root / "server" / "Dockerfile").write_text(DOCKERFILE.format(**fields))
        (root / "pyproject.toml").write_text(PYPROJECT.format(**fields))
        (root / "README.md").write_text(README.format(**fields))
        copy_user_module(env_id, root)
    finally:
        env.close()
    return root
