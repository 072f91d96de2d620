"""Print a development JWT: `make token ROLE=school_admin SCHOOL=<uuid>`."""

from __future__ import annotations

import argparse
from datetime import timedelta

from servicekit.auth import ROLES, issue_token
from servicekit.settings import ServiceSettings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--role", default="school_admin", choices=ROLES)
    parser.add_argument("--school", default=None, help="school id (UUID), required for school_admin")
    parser.add_argument("--sub", default=None)
    parser.add_argument("--hours", type=float, default=8)
    args = parser.parse_args()
    if args.role == "school_admin" and not args.school:
        parser.error("school_admin needs SCHOOL=<uuid>")
    secret = ServiceSettings().auth_jwt_secret.get_secret_value()
    sub = args.sub or f"{args.role}@local"
    print(issue_token(secret, sub=sub, role=args.role, school_id=args.school, ttl=timedelta(hours=args.hours)))


if __name__ == "__main__":
    main()
