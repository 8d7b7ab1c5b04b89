"""`python -m flows.check`: validate params.yaml before a run (one line on error, exit 2)."""

from flows.cli import PARAMS, run_stage


def main() -> None:
    run_stage(lambda params: print(f"{PARAMS}: ok"))


if __name__ == "__main__":
    main()
