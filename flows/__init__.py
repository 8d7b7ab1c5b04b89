"""One Prefect flow per DVC stage; `python -m flows.<stage>` is the stage's command."""

import logging
import os

# Before prefect is imported: route simclr's library logs into the run logger, and send nothing.
os.environ.setdefault("PREFECT_LOGGING_EXTRA_LOGGERS", "simclr")
os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
os.environ.setdefault("DVC_NO_ANALYTICS", "1")
# simclr's lines logged outside a flow run (simclr embed, tests calling tasks directly) are for
# the terminal only; Prefect would warn about each and, after its server stops, retry sending.
os.environ.setdefault("PREFECT_LOGGING_TO_API_WHEN_MISSING_FLOW", "ignore")
# Prefect gives the extra loggers its handlers but no level, so they inherit the root logger's,
# which Prefect sets to WARNING: simclr's INFO lines (each pretraining epoch, progress) would
# reach neither the terminal nor the run's logs. They take Prefect's own level instead.
logging.getLogger("simclr").setLevel(os.environ.get("PREFECT_LOGGING_LEVEL", "INFO").upper())
