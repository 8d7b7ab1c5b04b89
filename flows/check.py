"""`python -m flows.check`: validate params.yaml before a run (one line on error, exit 2)."""

from flows.cli import PARAMS, boundary
from simclr.config import load_params


@boundary()
def main() -> None:
    load_params(PARAMS)
    print(f"{PARAMS}: ok")


if __name__ == "__main__":
    main()
