"""The installation's Redis keys: every key AutoCRM writes is named here, under
``AUTOCRM_REDIS_KEY_PREFIX``, so installations can share one Redis.
"""

from __future__ import annotations

from flask import current_app


def redis_key(name: str) -> str:
    """A Redis key of this installation (``AUTOCRM_REDIS_KEY_PREFIX``)."""
    return f"{current_app.config['AUTOCRM_REDIS_KEY_PREFIX']}autocrm:{name}"
