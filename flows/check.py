"""`python -m flows.check`: validate params.yaml before a run (one line on error, exit 2)."""

from flows.cli import PARAMS, run_stage

if __name__ == "__main__":
    run_stage(lambda params: print(f"{PARAMS}: ok"))
