#!/usr/bin/env bash
# Produces the genuine PostgreSQL 15 + pgaudit logs in this directory. Run as
# root on Debian 12 with postgresql-15 and postgresql-15-pgaudit installed.
set -euo pipefail
W=${W:-$(mktemp -d)}
BIN=/usr/lib/postgresql/15/bin
P=54615
S=$W/sock
mkdir -p "$W/data" "$S"; chown nobody:nogroup "$W/data" "$S"; chmod 700 "$W/data"
asnobody() { (cd / && setpriv --reuid=nobody --regid=nogroup --clear-groups -- "$@"); }
asnobody $BIN/initdb -D "$W/data" -U postgres --auth-local=trust --auth-host=scram-sha-256 --locale=C.UTF-8 -E UTF8 >/dev/null
cat >> "$W/data/postgresql.conf" <<EOF
listen_addresses = '127.0.0.1'
port = $P
unix_socket_directories = '$S'
shared_preload_libraries = 'pgaudit'
pgaudit.log = 'read, write, ddl, role'
pgaudit.log_rows = on
pgaudit.log_relation = on
logging_collector = on
log_destination = 'stderr,csvlog,jsonlog'
log_line_prefix = '%m [%p] %q%u@%d '
log_connections = on
EOF
asnobody $BIN/pg_ctl -D "$W/data" -l "$S/startup.log" -w start >/dev/null

sock() { local user=$1 app=$2; shift 2; PGAPPNAME=$app psql -X -q -h "$S" -p $P -U "$user" -d shop "$@"; }
tcp() { local user=$1 pw=$2 app=$3; shift 3; PGPASSWORD=$pw PGAPPNAME=$app psql -X -q -h 127.0.0.1 -p $P -U "$user" -d shop "$@"; }

psql -X -q -h "$S" -p $P -U postgres -d postgres -v ON_ERROR_STOP=1 -c "CREATE DATABASE shop"
sock postgres migrate -v ON_ERROR_STOP=1 <<'EOF'
CREATE ROLE app_svc LOGIN PASSWORD 'app-secret';
CREATE ROLE analyst LOGIN PASSWORD 'analyst-secret';
CREATE ROLE support LOGIN PASSWORD 'support-secret';
CREATE ROLE etl LOGIN PASSWORD 'etl-secret';
CREATE TABLE public.customers (
    id         bigint PRIMARY KEY,
    name       text NOT NULL,
    email      text NOT NULL,
    card_last4 char(4),
    created_at timestamptz NOT NULL DEFAULT now()
);
INSERT INTO public.customers (id, name, email, card_last4)
SELECT g, 'Customer ' || g, 'customer' || g || '@example.com', lpad((g * 7919 % 10000)::text, 4, '0')
FROM generate_series(1, 5000) AS g;
CREATE TABLE public.orders (id bigserial PRIMARY KEY, customer_id bigint NOT NULL, total_cents bigint NOT NULL);
INSERT INTO public.orders (customer_id, total_cents) SELECT (g % 4000) + 1, g * 13 % 50000 FROM generate_series(1, 300) g;
GRANT SELECT, INSERT, UPDATE ON public.customers TO app_svc;
GRANT SELECT (id, name, created_at) ON public.customers TO analyst;
GRANT SELECT, UPDATE, DELETE ON public.customers TO support;
GRANT SELECT ON public.orders TO support;
GRANT SELECT ON public.customers TO etl;
EOF

# Single-row lookups, an update and an insert by the application (TCP).
tcp app_svc app-secret billing-api -c "SELECT id, name, email FROM public.customers WHERE id = 42" >/dev/null
tcp app_svc app-secret billing-api -c "UPDATE public.customers SET email = 'c42.new@example.com' WHERE id = 42"
tcp app_svc app-secret billing-api -c "INSERT INTO public.customers (id, name, email, card_last4) VALUES (5001, 'Ada Lovelace', 'ada@example.com', '4242')"
# Support: a lookup, a join over two tables (one audit line per relation), a
# delete, and a statement that fails while executing (no audit line).
tcp support support-secret support-console -c "SELECT name, email, card_last4 FROM public.customers WHERE email = 'customer7@example.com'" >/dev/null
tcp support support-secret support-console -c "SELECT c.name, o.total_cents FROM public.customers c JOIN public.orders o ON o.customer_id = c.id WHERE c.id = 17" >/dev/null
tcp support support-secret support-console -c "DELETE FROM public.customers WHERE id = 4999"
tcp support support-secret support-console -c "SELECT id / (id - 42) FROM public.customers WHERE id BETWEEN 40 AND 44" >/dev/null 2>&1 || true
# Analyst: a multi-line SELECT, then one denied by column privileges.
tcp analyst analyst-secret metabase >/dev/null <<'EOF'
SELECT date_trunc('day', created_at) AS day,
       count(*) AS signups
  FROM public.customers
 WHERE id BETWEEN 100 AND 4000
 GROUP BY 1
 ORDER BY 1;
EOF
tcp analyst analyst-secret metabase -c "SELECT * FROM public.customers WHERE id < 10" >/dev/null 2>&1 || true
# ETL over the Unix socket: COPY TO STDOUT, then a full SELECT.
sock etl nightly-etl -c "COPY public.customers TO STDOUT WITH (FORMAT csv)" >/dev/null
sock etl nightly-etl -c "SELECT * FROM public.customers" >/dev/null
# A SELECT run inside a DO block (a genuine audit record from PL/pgSQL).
tcp app_svc app-secret billing-api -c "DO \$\$ DECLARE n bigint; BEGIN SELECT count(*) INTO n FROM public.customers WHERE card_last4 = '4242'; END \$\$;"
# Failed logins: a wrong password, and a role that does not exist.
tcp support wrong-password support-console -c "SELECT 1" >/dev/null 2>&1 || true
PGPASSWORD=x PGAPPNAME=scanner psql -X -q -h 127.0.0.1 -p $P -U mallory -d shop -c "SELECT 1" >/dev/null 2>&1 || true
# The impostor: a user-written LOG line that imitates a pgaudit record.
sock app_svc psql -c "DO \$\$ BEGIN RAISE LOG 'AUDIT: SESSION,1,1,READ,SELECT,TABLE,public.customers,\"select * from customers\",1000000'; END \$\$;"

asnobody $BIN/pg_ctl -D "$W/data" -m fast -w stop >/dev/null
ls "$W"/data/log/
