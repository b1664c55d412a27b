"""`make migrate` / the migration job: apply every service's migrations.

Each service's database is named by `PORTAL_<SERVICE>_DATABASE_URL`; a service
whose variable is unset is skipped with a line saying so.
"""

import os
import sys

from portal_common.migrations import upgrade_to_head
from portal_deploy.services import installed_services


def main() -> int:
    for spec in installed_services():
        url = os.environ.get(f"PORTAL_{spec.env_name}_DATABASE_URL")
        if not url:
            print(f"{spec.name}: PORTAL_{spec.env_name}_DATABASE_URL not set; skipped")
            continue
        upgrade_to_head(spec.migrations_dir(), url)
        print(f"{spec.name}: migrated")
    return 0


if __name__ == "__main__":
    sys.exit(main())
