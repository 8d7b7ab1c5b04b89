"""`python -m flows.check`: validate params.yaml before a run and, with PREFECT_API_URL set,
that the Prefect API answers (one line on error, exit 2)."""

from flows.cli import PARAMS, boundary, check_api
from simclr.config import load_params


@boundary()
def main() -> None:
    load_params(PARAMS)
    check_api()  # the stages would fail on a dead API only once they start
    print(f"{PARAMS}: ok")


if __name__ == "__main__":
    main()
