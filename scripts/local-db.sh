#!/usr/bin/env bash
# scripts/local-db.sh NAME
#
# Makes sure a local PostgreSQL with PostGIS answers, that the database NAME
# exists on it with the postgis extension, and prints the URL to use as the
# last line on stdout:
#
#     postgresql+asyncpg://ROLE[:PASSWORD]@127.0.0.1:5432/NAME
#
# Everything else goes to stderr. The Makefile calls it only when
# DATABASE_URL / TEST_DATABASE_URL is not set. In order, it tries:
#   a) a server already answering on 127.0.0.1:5432 (PostGIS installed from
#      Debian's packages if it is missing and we are root);
#   b) a Debian/Ubuntu PostgreSQL cluster that is installed but stopped (started),
#      or, as root with apt-get, a new one installed and started;
#   c) `docker compose up -d db` from this repository's docker-compose.yml;
#   d) otherwise it stops and says what to install.
# It is idempotent: when everything is there it only runs a few queries.
# It never prompts (psql -w, apt-get -y), so it runs under CI=true with no stdin.
#
# Settings (environment): LOCAL_DB_HOST (127.0.0.1), LOCAL_DB_PORT (5432),
# PGPASSWORD (tried for the `postgres` role when passwordless login fails),
# POSTGRES_PASSWORD (the compose db's password, default "hulian"),
# HULIAN_APT_UPDATED=1 (apt-get update was already run by the caller).
set -euo pipefail

readonly HOST="${LOCAL_DB_HOST:-127.0.0.1}"
readonly PORT="${LOCAL_DB_PORT:-5432}"
readonly COMPOSE_PASSWORD="${POSTGRES_PASSWORD:-hulian}"
REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
readonly REPO_ROOT

log() { printf 'local-db: %s\n' "$*" >&2; }
die() {
    printf 'local-db: error: %s\n' "$*" >&2
    exit 1
}

usage="usage: scripts/local-db.sh NAME   (NAME: letters, digits and _, e.g. hulian or hulian_test)"
[[ $# -eq 1 ]] || die "$usage"
NAME="$1"
[[ "$NAME" =~ ^[A-Za-z_][A-Za-z0-9_]{0,62}$ ]] || die "bad database name '$NAME'. $usage"

is_root() { [[ "$(id -u)" -eq 0 ]]; }
have() { command -v "$1" >/dev/null 2>&1; }
is_debian() { [[ -f /etc/debian_version ]] && have apt-get; }

# --- apt (root only) ------------------------------------------------------

apt_update_once() {
    if [[ "${HULIAN_APT_UPDATED:-0}" != 1 ]]; then
        log "apt-get update"
        DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 update -q >&2
        export HULIAN_APT_UPDATED=1
    fi
}

apt_install() {
    apt_update_once
    log "apt-get install -y $*"
    DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 install -y -q \
        --no-install-recommends \
        -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold "$@" >&2
}

# --- talking to the server ------------------------------------------------

# Whether something accepts connections on HOST:PORT.
server_answers() {
    if have pg_isready; then
        # 0: accepting; 1: answering but rejecting (e.g. starting up); 2: no answer.
        local rc=0
        pg_isready -q -h "$HOST" -p "$PORT" -t 3 || rc=$?
        [[ $rc -eq 0 || $rc -eq 1 ]]
    elif have timeout; then
        timeout 3 bash -c "exec 3<>/dev/tcp/$HOST/$PORT" 2>/dev/null
    else
        (exec 3<>"/dev/tcp/$HOST/$PORT") 2>/dev/null
    fi
}

# Wait (up to $1 seconds) until the server accepts connections.
wait_for_server() {
    local deadline=$((SECONDS + $1))
    while ((SECONDS < deadline)); do
        if have pg_isready; then
            pg_isready -q -h "$HOST" -p "$PORT" -t 2 && return 0
        else
            server_answers && return 0
        fi
        sleep 1
    done
    return 1
}

# How SQL reaches the server: "psql" (the host's client over TCP) or
# "compose" (psql inside the compose db container).
SQL_VIA=psql
ROLE=""
PASSWORD=""
ADMIN_DB=postgres # the database the checks and CREATE DATABASE run in
LAST_ERROR=""

# sql DB STATEMENT: run one statement, print unaligned tuples.
sql() {
    local db="$1" statement="$2"
    if [[ "$SQL_VIA" == compose ]]; then
        compose exec -T db psql -X -q -v ON_ERROR_STOP=1 -At -U "$ROLE" -d "$db" -c "$statement"
    else
        PGPASSWORD="$PASSWORD" PGCONNECT_TIMEOUT=5 psql -X -w -q -v ON_ERROR_STOP=1 -At \
            -h "$HOST" -p "$PORT" -U "$ROLE" -d "$db" -c "$statement"
    fi
}

ensure_psql() {
    have psql && return 0
    if is_root && is_debian; then
        apt_install postgresql-client
    else
        die "psql is not installed: install the PostgreSQL client (Debian/Ubuntu: apt-get install postgresql-client; macOS: brew install libpq)"
    fi
}

# The one query that tells us what we need: "server_version_num|postgis available|NAME exists".
STATE_QUERY="select current_setting('server_version_num')
  || '|' || exists(select 1 from pg_available_extensions where name = 'postgis')::int
  || '|' || exists(select 1 from pg_database where datname = '$NAME')::int"
STATE=""

# Find a role that logs in over TCP: postgres then the current user without a
# password, then postgres with $PGPASSWORD, then postgres with the compose
# db's password. Sets ROLE, PASSWORD and STATE.
find_role() {
    local me candidates=() candidate role password db
    me="$(id -un)"
    candidates+=("postgres:")
    if [[ "$me" != postgres ]]; then candidates+=("$me:"); fi
    if [[ -n "${PGPASSWORD:-}" ]]; then candidates+=("postgres:$PGPASSWORD"); fi
    if [[ "${PGPASSWORD:-}" != "$COMPOSE_PASSWORD" ]]; then
        candidates+=("postgres:$COMPOSE_PASSWORD")
    fi
    for candidate in "${candidates[@]}"; do
        role="${candidate%%:*}"
        password="${candidate#*:}"
        for db in postgres template1; do
            ROLE="$role" PASSWORD="$password" ADMIN_DB="$db"
            if STATE="$(sql "$db" "$STATE_QUERY" 2>"$ERRFILE")" && [[ -n "$STATE" ]]; then
                return 0
            fi
            LAST_ERROR="$(tail -n 1 "$ERRFILE")"
        done
    done
    ROLE="" PASSWORD="" STATE=""
    return 1
}

refresh_state() { STATE="$(sql "$ADMIN_DB" "$STATE_QUERY")"; }
state_field() { cut -d'|' -f"$1" <<<"$STATE"; }
server_major() { echo $(($(state_field 1) / 10000)); }

ensure_postgis_available() {
    [[ "$(state_field 2)" == 1 ]] && return 0
    local major package
    major="$(server_major)"
    package="postgresql-${major}-postgis-3"
    if is_root && is_debian; then
        log "PostGIS is not available on the PostgreSQL $major server at $HOST:$PORT: installing $package"
        apt_install "$package"
        refresh_state
        [[ "$(state_field 2)" == 1 ]] ||
            die "installed $package but the server at $HOST:$PORT still lists no postgis extension (is it another installation than Debian's PostgreSQL $major?)"
    else
        die "PostGIS is not installed for the PostgreSQL $major server at $HOST:$PORT. Install it and run this again: on Debian/Ubuntu 'sudo apt-get install $package'; on macOS (Homebrew) 'brew install postgis'; or stop that server and use 'docker compose up -d db' (image postgis/postgis)."
    fi
}

# --- b) a Debian cluster --------------------------------------------------

start_debian_cluster() {
    local version="$1" cluster="${2:-main}"
    log "starting PostgreSQL cluster $version/$cluster"
    pg_ctlcluster --skip-systemctl-redirect "$version" "$cluster" start >&2 ||
        service postgresql start >&2
    wait_for_server 60 || die "PostgreSQL $version/$cluster did not start; see /var/log/postgresql/"
}

# A Debian cluster that exists on our port but is down (e.g. after a reboot of
# a machine whose services are started by hand): start it, change nothing else.
start_stopped_cluster() {
    have pg_lsclusters || return 1
    local version cluster port status
    while read -r version cluster port status _; do
        if [[ "$port" == "$PORT" && "$status" == down* ]]; then
            is_root || die "the PostgreSQL cluster $version/$cluster is stopped: start it (sudo pg_ctlcluster $version $cluster start) and run this again"
            start_debian_cluster "$version" "$cluster"
            return 0
        fi
    done < <(pg_lsclusters -h 2>/dev/null)
    return 1
}

# No PostgreSQL at all: install Debian's, with the PostGIS package of the
# same major version, and make TCP logins from 127.0.0.1 work.
install_debian_cluster() {
    is_root && is_debian || return 1
    if have pg_lsclusters && [[ -n "$(pg_lsclusters -h 2>/dev/null)" ]]; then
        # A cluster exists but is not on our port or not ours to change.
        return 1
    fi
    log "no PostgreSQL answers on $HOST:$PORT: installing Debian's PostgreSQL and PostGIS"
    apt_install postgresql postgresql-contrib
    local version
    version="$(find /usr/lib/postgresql -mindepth 1 -maxdepth 1 -printf '%f\n' | sort -n | tail -n 1)"
    [[ -n "$version" ]] || die "installed postgresql but found no version under /usr/lib/postgresql"
    apt_install "postgresql-${version}-postgis-3"
    if [[ -z "$(pg_lsclusters -h 2>/dev/null)" ]]; then
        pg_createcluster --port "$PORT" "$version" main >&2
    fi
    # Debian's cluster asks for a password over TCP (scram-sha-256) and lets
    # `postgres` in only through the socket (peer). We put a `trust` line for
    # 127.0.0.1 first in pg_hba.conf rather than setting a password because
    # the project's defaults (Settings.database_url, the tests'
    # TEST_DATABASE_URL) are passwordless URLs to postgres@127.0.0.1, as on the
    # machines this project runs on; the server only listens on localhost, and
    # we do this only to the development cluster this script has just created.
    local hba="/etc/postgresql/$version/main/pg_hba.conf"
    if ! grep -q '# added by hulian scripts/local-db.sh' "$hba"; then
        sed -i "1i # added by hulian scripts/local-db.sh: local development cluster, trust on loopback\nhost all all 127.0.0.1/32 trust" "$hba"
    fi
    if pg_lsclusters -h 2>/dev/null | awk -v v="$version" '$1 == v && $2 == "main" && $4 ~ /^online/ { ok = 1 } END { exit !ok }'; then
        pg_ctlcluster --skip-systemctl-redirect "$version" main reload >&2
    else
        start_debian_cluster "$version" main
    fi
    return 0
}

# --- c) docker compose ----------------------------------------------------

compose() { docker compose --project-directory "$REPO_ROOT" -f "$REPO_ROOT/docker-compose.yml" "$@"; }

start_compose_db() {
    have docker || return 1
    timeout 20 docker info >/dev/null 2>&1 || return 1
    docker compose version >/dev/null 2>&1 || die "Docker is running but the compose plugin is missing: install docker-compose-plugin"
    log "no PostgreSQL on $HOST:$PORT: starting the compose service db (postgis/postgis)"
    compose up -d db >&2
    local id status deadline=$((SECONDS + 120))
    id="$(compose ps -q db)"
    [[ -n "$id" ]] || die "docker compose did not start the db service"
    while ((SECONDS < deadline)); do
        status="$(docker inspect -f '{{.State.Health.Status}}' "$id" 2>/dev/null || true)"
        [[ "$status" == healthy ]] && return 0
        sleep 2
    done
    die "the compose db did not become healthy in 120 s: docker compose logs db"
}

# --- main -----------------------------------------------------------------

if ! server_answers; then
    if start_stopped_cluster || install_debian_cluster; then
        :
    elif start_compose_db; then
        if ! have psql; then
            SQL_VIA=compose
        fi
        wait_for_server 30 || log "warning: the compose db is healthy but $HOST:$PORT does not answer (is port $PORT taken?)"
    else
        die "no PostgreSQL answers on $HOST:$PORT and none can be set up here. Either
  - install PostgreSQL with PostGIS and start it (Debian/Ubuntu: apt-get install postgresql postgresql-<major>-postgis-3; macOS: brew install postgresql@15 postgis), with a role that logs in from 127.0.0.1 without a password, or
  - install Docker (with the compose plugin) and run this again (it uses docker-compose.yml's db), or
  - set DATABASE_URL / TEST_DATABASE_URL to a postgresql+asyncpg:// URL of a PostgreSQL with PostGIS."
    fi
fi

# Answering may still mean starting up (pg_isready: "rejecting connections").
if have pg_isready; then wait_for_server 30 || true; fi

if [[ "$SQL_VIA" == compose ]]; then
    ROLE=postgres PASSWORD="$COMPOSE_PASSWORD"
    STATE="$(sql postgres "$STATE_QUERY")"
else
    ensure_psql
    ERRFILE="$(mktemp)"
    trap 'rm -f "$ERRFILE"' EXIT
    find_role || die "PostgreSQL answers on $HOST:$PORT but no role logs in over TCP without a password (tried postgres and $(id -un); last error: ${LAST_ERROR:-none}). Allow it in pg_hba.conf (host all all 127.0.0.1/32 trust, for a development server), or set PGPASSWORD, or set DATABASE_URL / TEST_DATABASE_URL yourself."
fi

ensure_postgis_available

if [[ "$(state_field 3)" != 1 ]]; then
    log "creating database $NAME (owner $ROLE)"
    if ! sql "$ADMIN_DB" "CREATE DATABASE \"$NAME\"" >&2; then
        # Lost a race with another run, or the role may not create databases.
        refresh_state
        [[ "$(state_field 3)" == 1 ]] || die "could not create database $NAME as role $ROLE"
    fi
fi

if [[ "$(sql "$NAME" "select exists(select 1 from pg_extension where extname = 'postgis')::int")" != 1 ]]; then
    log "CREATE EXTENSION postgis in $NAME"
    sql "$NAME" "SET client_min_messages = warning; CREATE EXTENSION IF NOT EXISTS postgis" >&2 ||
        die "could not create the postgis extension in $NAME as role $ROLE (it needs a superuser)"
fi

urlencode() {
    local LC_ALL=C s="$1" out="" c i
    for ((i = 0; i < ${#s}; i++)); do
        c="${s:i:1}"
        case "$c" in
            [A-Za-z0-9._~-]) out+="$c" ;;
            *) out+="$(printf '%%%02X' "'$c")" ;;
        esac
    done
    printf '%s' "$out"
}

credentials="$(urlencode "$ROLE")"
if [[ -n "$PASSWORD" ]]; then credentials+=":$(urlencode "$PASSWORD")"; fi
log "ready: PostgreSQL $(server_major) with PostGIS, database $NAME"
printf 'postgresql+asyncpg://%s@%s:%s/%s\n' "$credentials" "$HOST" "$PORT" "$NAME"
