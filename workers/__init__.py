"""Celery workers: ``celery -A workers worker`` and ``celery -A workers beat``.

The worker module is one line over ``create_app()``; tasks live in ``workers.tasks``.
"""

from autocrm import create_app

# Workers emit to Socket.IO rooms through Redis but serve no sockets (no eventlet here).
flask_app = create_app({"AUTOCRM_SOCKET_SERVER": False})
celery = flask_app.extensions["celery"]
celery.autodiscover_tasks(["workers"], related_name="tasks", force=True)
