"""One Prefect flow per DVC stage; `python -m flows.<stage>` is the stage's command."""

import os

# Before prefect is imported: route simclr's library logs into the run logger, and send nothing.
os.environ.setdefault("PREFECT_LOGGING_EXTRA_LOGGERS", "simclr")
os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
os.environ.setdefault("DVC_NO_ANALYTICS", "1")
