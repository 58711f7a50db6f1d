#!/usr/bin/env bash
# Produces the genuine PostgreSQL 15 + pgaudit logs of denials in this
# directory (see README.md). Run as root on Debian 12 with postgresql-15 and
# postgresql-15-pgaudit installed: OUT=<dir> ./produce.sh
set -euo pipefail
OUT=${OUT:-$(pwd)}
W=$(mktemp -d); chmod 755 "$W"
BIN=/usr/lib/postgresql/15/bin
P=54635
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
log_connections = on
EOF
# TCP: mallory is rejected by pg_hba.conf, only shop and hr take passwords,
# so a TCP login to any other database has no pg_hba.conf entry.
sed -i 's|^host    all             all             127.0.0.1/32            scram-sha-256|host    all             mallory         127.0.0.1/32            reject\nhost    shop,hr         all             127.0.0.1/32            scram-sha-256|' "$W/data/pg_hba.conf"

sock() { local user=$1 app=$2 db=$3; shift 3; PGAPPNAME=$app psql -X -q -h "$S" -p $P -U "$user" -d "$db" "$@"; }
tcp() { local user=$1 pw=$2 app=$3 db=$4; shift 4; PGPASSWORD=$pw PGAPPNAME=$app psql -X -q -h 127.0.0.1 -p $P -U "$user" -d "$db" "$@"; }
try() { "$@" >/dev/null 2>&1 || true; }

run() {
	local name=$1 prefix=$2
	rm -rf "$W/data/log"
	echo "log_line_prefix = '$prefix'" >> "$W/data/postgresql.conf"
	asnobody $BIN/pg_ctl -D "$W/data" -l "$S/startup.log" -w start >/dev/null
	if [ "$name" = sqlstate ]; then
		sock postgres psql postgres -v ON_ERROR_STOP=1 -c "CREATE DATABASE shop" -c "CREATE DATABASE hr"
		sock postgres migrate shop -v ON_ERROR_STOP=1 <<'EOF'
CREATE ROLE analyst LOGIN PASSWORD 'analyst-secret';
CREATE ROLE bob LOGIN PASSWORD 'bob-secret';
CREATE ROLE app_svc LOGIN PASSWORD 'app-secret';
CREATE ROLE reporting NOLOGIN PASSWORD 'reporting-secret';
CREATE TABLE public.customers (id bigint PRIMARY KEY, name text NOT NULL, email text NOT NULL);
INSERT INTO public.customers SELECT g, 'Customer ' || g, 'customer' || g || '@example.com' FROM generate_series(1, 50) g;
CREATE VIEW public.customer_emails AS SELECT id, email FROM public.customers;
CREATE SEQUENCE public.invoice_seq;
CREATE SCHEMA payroll;
CREATE TABLE payroll.salaries (employee text, cents bigint);
CREATE FUNCTION public.unmask(bigint) RETURNS text LANGUAGE sql AS 'SELECT email FROM public.customers WHERE id = $1';
REVOKE EXECUTE ON FUNCTION public.unmask(bigint) FROM PUBLIC;
CREATE FUNCTION public.count_customers() RETURNS bigint LANGUAGE plpgsql AS $$ DECLARE n bigint; BEGIN SELECT count(*) INTO n FROM public.customer_emails; RETURN n; END $$;
CREATE FUNCTION public.deny(t text) RETURNS void LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'permission denied for table %', t USING ERRCODE = '42501'; END $$;
GRANT SELECT (id, name) ON public.customers TO analyst;
GRANT SELECT, INSERT, UPDATE ON public.customers TO app_svc;
REVOKE CONNECT ON DATABASE hr FROM PUBLIC;
ALTER ROLE bob SET log_error_verbosity = verbose;
EOF
	fi
	# Denied statements (no audit record: only the server's ERROR line).
	try tcp analyst analyst-secret metabase shop -c "SELECT * FROM public.customers WHERE id < 10"
	try tcp analyst analyst-secret metabase shop -c "UPDATE public.customers SET email = 'x@example.com' WHERE id = 1"
	try tcp analyst analyst-secret metabase shop -c "DELETE FROM public.customers WHERE id = 2"
	try tcp analyst analyst-secret metabase shop -c "COPY public.customers TO STDOUT WITH (FORMAT csv)"
	try tcp analyst analyst-secret metabase shop -c "SELECT * FROM payroll.salaries"
	try tcp analyst analyst-secret metabase shop -c "SELECT nextval('public.invoice_seq')"
	try tcp analyst analyst-secret metabase shop -c "SELECT * FROM public.customer_emails"
	try tcp analyst analyst-secret metabase shop -c "SELECT public.unmask(7)"
	# A genuine denial inside a PL/pgSQL function: it carries a context.
	try tcp analyst analyst-secret metabase shop -c "SELECT public.count_customers()"
	# bob's sessions log with log_error_verbosity = verbose.
	try tcp bob bob-secret psql shop -c "select * from customers"
	# Failed logins.
	try tcp analyst wrong-password metabase shop -c "SELECT 1"
	try tcp ghost x scanner shop -c "SELECT 1"
	try sock ghost psql shop -c "SELECT 1"
	try tcp mallory x scanner shop -c "SELECT 1"
	try tcp analyst analyst-secret metabase postgres -c "SELECT 1"
	try tcp reporting reporting-secret metabase shop -c "SELECT 1"
	try tcp analyst analyst-secret metabase hr -c "SELECT 1"
	# Impostors: RAISE EXCEPTION with the SQLSTATE of a denial.
	try sock app_svc psql shop -c "DO \$\$ BEGIN RAISE EXCEPTION 'permission denied for table customers' USING ERRCODE = '42501'; END \$\$;"
	try sock app_svc psql shop -c "SELECT public.deny('customers')"
	try sock app_svc psql shop -c "DO \$\$ BEGIN RAISE EXCEPTION 'password authentication failed for user \"alice\"' USING ERRCODE = '28P01'; END \$\$;"
	# A superuser session with log_error_verbosity = terse: the stderr log
	# then has no CONTEXT: line for the same RAISE.
	try sock postgres psql shop -c "SET log_error_verbosity = terse" -c "DO \$\$ BEGIN RAISE EXCEPTION 'permission denied for table customers' USING ERRCODE = '42501'; END \$\$;"
	# Errors that are not access decisions.
	try tcp app_svc app-secret billing-api shop -c "SELECT 1 / 0"
	try tcp app_svc app-secret billing-api shop -c "SELEC * FROM customers"
	asnobody $BIN/pg_ctl -D "$W/data" -m fast -w stop >/dev/null
	cp "$W"/data/log/*.log "$OUT/$name.log"
	cp "$W"/data/log/*.csv "$OUT/$name.csv"
	cp "$W"/data/log/*.json "$OUT/$name.json"
	printf '%s' "$prefix" > "$OUT/$name.prefix"
}

run sqlstate '%m [%p] %q%u@%d %e '
run english '%m [%p] %q%u@%d '
rm -rf "$W"
