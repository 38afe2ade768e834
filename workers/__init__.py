"""Celery workers: ``celery -A workers worker`` and ``celery -A workers beat``.

The worker module is one line over ``create_app()``; tasks live in ``workers.tasks``.
"""

from autocrm import create_app

flask_app = create_app()
celery = flask_app.extensions["celery"]
celery.autodiscover_tasks(["workers"], related_name="tasks", force=True)
