"""The modules a stage imports that cannot change what it writes, and why: dvc.yaml leaves them
out of every stage's deps, so that editing them (an error's wording, the progress display, how
the Prefect server starts) reruns no stage. tests/test_dvc_deps.py holds dvc.yaml to this list:
every project module a stage imports is either one of its deps or here, and nothing here is a
dep. A module that decides any byte of an output (params, data, the method, paths, provenance,
the report's text) does not belong here."""

PLUMBING = {
    "flows/__init__.py": "environment defaults for logging and telemetry, set before prefect loads",
    "flows/errors.py": "the error boundary: how an error is printed and the exit status",
    "flows/cli.py": "the command-line wrapper: error boundary, Prefect API, run tags",
    "flows/with_server.py": "starts and stops the local Prefect server",
    "simclr/__init__.py": "the lazy `from simclr import load_encoder`; imports nothing itself",
    "simclr/processes.py": "child processes: output passed on line by line, death with the parent",
    "simclr/progress.py": "progress bars and lines; yields the items it wraps unchanged",
    "tasks/advice.py": "the pipeline's advice appended to an error message",
    "tasks/artifacts.py": "what the Prefect UI shows; writes no file",
    "tasks/retries.py": "which failures are retried; a retried task writes the same files",
}
