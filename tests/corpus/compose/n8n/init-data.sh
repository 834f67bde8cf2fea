#!/bin/bash
set -e;
if [ -n "${POSTGRES_NON_ROOT_USER:-}" ]; then
  psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" -c "CREATE USER ${POSTGRES_NON_ROOT_USER}"
fi
