"""What the simulated catalog images copy from their upstream images: the `USER`, the owner
and mode of their data directories, and what their entrypoints do at start (see
sim/pve/appstart.py for how a start uses it), and the commands a compose healthcheck runs in
them (`commands`, sim/pve/pct_exec.py). Keyed by repository path; `source` names the
upstream file each fact was read from.

An image not listed here runs its entrypoint as root and writes each volume of the package
that names it. Ids are the image's (inside the CT).
"""

from __future__ import annotations

PG_EMPTY = 'initdb: error: directory "{path}" exists but is not empty'

_POSTGRES = {
    "source": "docker-library/postgres 17/bookworm/Dockerfile (mkdir -p $PGDATA, chown postgres, "
              "chmod 1777; VOLUME) and docker-entrypoint.sh (docker_create_db_directories chowns "
              "$PGDATA when root, then gosu postgres initdb, which refuses a non-empty directory)",
    "users": {"postgres": [999, 999]},
    "dirs": {"/var/lib/postgresql/data": [999, 999, 0o1777]},
    "behaviour": {
        "prepare": [{"path": "/var/lib/postgresql/data", "env": "PGDATA", "chown": [999, 999],
                     "mode": 0o700}],
        "empty": [{"path": "/var/lib/postgresql/data", "env": "PGDATA", "marker": "PG_VERSION",
                   "as": [999, 999], "error": PG_EMPTY}],
        "listen": [{"port": 5432, "as": [999, 999]}],
        # postgres' src/bin/scripts/pg_isready.c: "<socket dir>:<port> - accepting connections", exit 0
        "commands": {"pg_isready": {"exit": 0, "stdout": "/var/run/postgresql:5432 - accepting connections"}},
    },
}

_REDIS = {
    "source": "docker-library/redis 8.2/debian/Dockerfile (mkdir /data, chown redis:redis) and "
              "docker-entrypoint.sh (as root it fixes the owner of /data only when nothing "
              "unrelated is in it, then gosu redis)",
    "users": {"redis": [999, 999]},
    "dirs": {"/data": [999, 999, 0o755]},
    "behaviour": {
        "prepare": [{"path": "/data", "chown": [999, 999], "only_if_empty": True}],
        "writes": [{"path": "/data", "as": [999, 999],
                    "error": "Can't open the append-only dir {path}: Permission denied"}],
        "commands": {"redis-cli": {"exit": 0, "stdout": "PONG"}},
    },
}

FACTS: dict[str, dict] = {
    "grafana/grafana": {
        "source": "grafana/grafana Dockerfile (chown -R grafana:$GF_GID_NAME $GF_PATHS_DATA, "
                  "chmod -R 777, USER $GF_UID=472) and packaging/docker/run.sh (exits when "
                  "GF_PATHS_DATA is not writable)",
        "user": "472:0", "users": {"grafana": [472, 0]},
        "dirs": {"/var/lib/grafana": [472, 0, 0o777]},
        "behaviour": {
            "writes": [{"path": "/var/lib/grafana", "env": "GF_PATHS_DATA",
                        "error": "GF_PATHS_DATA='{path}' is not writable."}],
            "listen": [{"port": 3000, "env": "GF_SERVER_HTTP_PORT"}],
        },
    },
    "prom/prometheus": {
        "source": "prometheus/prometheus Dockerfile (chown -R nobody:nobody /etc/prometheus "
                  "/prometheus; USER nobody; VOLUME /prometheus)",
        "user": "nobody",
        "dirs": {"/prometheus": [65534, 65534, 0o755]},
        "behaviour": {
            "writes": [{"path": "/prometheus",
                        "error": "opening storage failed: lock DB directory: open {path}/lock: "
                                 "permission denied"}],
            "listen": [{"port": 9090}],
        },
    },
    "nodered/node-red": {
        "source": "node-red/node-red-docker docker-custom/Dockerfile.custom (adduser node-red "
                  "-u 1000, chown -R node-red:root /data, chmod -R g+rwX; USER node-red)",
        "user": "node-red", "users": {"node-red": [1000, 1000]},
        "dirs": {"/data": [1000, 0, 0o775]},
        "behaviour": {
            "writes": [{"path": "/data",
                        "error": "Error: EACCES: permission denied, mkdir '{path}/node_modules'"}],
            "listen": [{"port": 1880}],
        },
    },
    "requarks/wiki": {
        "source": "requarks/wiki dev/build/Dockerfile (mkdir -p /wiki/data/content, chown -R "
                  "node:node /wiki; USER node)",
        "user": "node", "users": {"node": [1000, 1000]},
        "dirs": {"/wiki": [1000, 1000, 0o755], "/wiki/data": [1000, 1000, 0o755]},
        "behaviour": {
            "writes": [{"path": "/wiki/data",
                        "error": "SQLITE_CANTOPEN: unable to open database file in {path}"}],
            "listen": [{"port": 3000, "env": "PORT"}],
        },
    },
    "filebrowser/filebrowser": {
        "source": "filebrowser/filebrowser Dockerfile (v2.33+: adduser user -u 1000, chown "
                  "/srv /config /database, USER user; port from FB_PORT, default 80)",
        "user": "user", "users": {"user": [1000, 1000]},
        "dirs": {"/database": [1000, 1000, 0o755], "/config": [1000, 1000, 0o755],
                 "/srv": [1000, 1000, 0o755]},
        "behaviour": {
            "writes": [{"path": "/database"}, {"path": "/config"}],
            "listen": [{"port": 80, "env": "FB_PORT"}],
        },
    },
    "library/postgres": _POSTGRES,
    "immich-app/postgres": _POSTGRES,
    "library/redis": _REDIS,
    "valkey/valkey": {
        "source": "valkey-io/valkey-container Dockerfile (mkdir /data, chown valkey:valkey) and "
                  "docker-entrypoint.sh (find . ! -user valkey -exec chown valkey, then "
                  "setpriv to valkey)",
        "users": {"valkey": [999, 999]},
        "dirs": {"/data": [999, 999, 0o755]},
        "behaviour": {
            "prepare": [{"path": "/data", "chown": [999, 999]}],
            "writes": [{"path": "/data", "as": [999, 999]}],
            # valkey's Makefile installs redis-* symlinks (USE_REDIS_SYMLINKS=yes by default)
            "commands": {"valkey-cli": {"exit": 0, "stdout": "PONG"}, "redis-cli": {"exit": 0, "stdout": "PONG"}},
        },
    },
    "library/mariadb": {
        "source": "MariaDB/mariadb-docker docker-entrypoint.sh (docker_create_db_directories "
                  "chowns the datadir to mysql when root, then gosu mysql)",
        "users": {"mysql": [999, 999]},
        "dirs": {"/var/lib/mysql": [999, 999, 0o755]},
        "behaviour": {
            "prepare": [{"path": "/var/lib/mysql", "chown": [999, 999]}],
            "writes": [{"path": "/var/lib/mysql", "as": [999, 999]}],
            "listen": [{"port": 3306, "as": [999, 999]}],
            # MariaDB/mariadb-docker healthcheck.sh: silent, exit 0 when every test passes
            "commands": {"healthcheck.sh": {"exit": 0}},
        },
    },
    "library/nextcloud": {
        "source": "nextcloud/docker docker-entrypoint.sh (as root: rsync --chown www-data the "
                  "code into /var/www/html; config, data, custom_apps and themes only when the "
                  "folder is missing or empty (directory_empty), then apache as www-data)",
        "users": {"www-data": [33, 33]},
        "dirs": {"/var/www/html": [33, 33, 0o755]},
        "behaviour": {
            "prepare": [{"path": "/var/www/html", "chown": [33, 33]},
                        {"path": "/var/www/html/data", "chown": [33, 33], "mode": 0o770,
                         "only_if_empty": True}],
            "writes": [{"path": "/var/www/html", "as": [33, 33]},
                       {"path": "/var/www/html/data", "as": [33, 33],
                        "error": "Your data directory {path} is not writable"}],
        },
    },
    "miniflux/miniflux": {
        "source": "miniflux/v2 packaging/docker/alpine/Dockerfile (USER 65534, listens on "
                  "LISTEN_ADDR 0.0.0.0:8080)",
        "user": "65534",
        "behaviour": {"listen": [{"port": 8080}]},
    },
}


def facts_for(repository: str) -> dict | None:
    """`grafana/grafana` (the path of a normalized reference, without registry and tag)."""
    return FACTS.get(repository)
