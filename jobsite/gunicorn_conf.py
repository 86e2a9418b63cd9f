"""gunicorn's settings for Jobsite: `gunicorn -c jobsite/gunicorn_conf.py` (README, "Deployment").

/metrics adds up what every process wrote to PROMETHEUS_MULTIPROC_DIR (docs/metrics.md). The
master loads the Django settings first, which set that variable, so that prometheus_client,
imported here and inherited by every worker the master forks, runs in multiprocess mode; and a
worker that exits has its process's live gauges removed. Other options go on the command line
or in GUNICORN_CMD_ARGS (`--workers 4 --bind 0.0.0.0:8000`).
"""

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "jobsite.settings")

from django.conf import settings  # noqa: E402

settings.PROMETHEUS_MULTIPROC_DIR  # noqa: B018 (reading a setting loads the settings)

from prometheus_client import multiprocess  # noqa: E402

wsgi_app = "jobsite.wsgi:application"


def child_exit(server: object, worker: object) -> None:
    multiprocess.mark_process_dead(worker.pid)
