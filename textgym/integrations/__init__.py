"""Integrations at the edge of textgym: envs as OpenEnv services, a Gymnasium client of such a service, and
SkyRL-Gym registrations. Each needs an optional extra; importing this package needs none of them.

* ``textgym.integrations.openenv_server``: any gym env id served with OpenEnv's server (``textgym serve``);
* ``textgym.integrations.remote``: ``gym.make("textgym/Remote-v0", base_url=...)``, the client side;
* ``textgym.integrations.openenv_export``: an OpenEnv environment package (``textgym serve --export DIR``);
* ``textgym.integrations.skyrl``: importing it registers every textgym env with skyrl_gym.
"""

from __future__ import annotations


def missing_extra(error: ModuleNotFoundError, extra: str) -> ImportError:
    """The one-line error for an optional dependency that is not installed, naming the extra to install."""
    return ImportError(
        f"{error.name} is not installed; it comes with textgym's {extra!r} extra: "
        f"pip install 'textgym[{extra}]'"
    )
