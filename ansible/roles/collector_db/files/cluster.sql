-- The collector's roles and database (run by psql as the superuser in the `postgres` database).
-- Idempotent: every change prints a line starting with "changed:" (Ansible's changed_when reads it).
-- Names arrive as psql variables and are quoted by psql / format(%I), never pasted into the text.

CREATE FUNCTION pg_temp.ensure(ok boolean, fix text) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    IF NOT ok THEN
        EXECUTE fix;
        RAISE NOTICE 'changed: %', fix;
    END IF;
END $$;

-- three login roles, none of them superuser or able to create databases or roles
SELECT pg_temp.ensure(EXISTS (SELECT 1 FROM pg_roles WHERE rolname = r),
                      format('CREATE ROLE %I LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION', r))
FROM unnest(ARRAY[:'owner', :'writer', :'reader']) AS r;
SELECT pg_temp.ensure(NOT (rolsuper OR rolcreatedb OR rolcreaterole OR rolreplication OR rolbypassrls) AND rolcanlogin,
                      format('ALTER ROLE %I LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS', rolname))
FROM pg_roles WHERE rolname IN (:'owner', :'writer', :'reader');

-- the database, owned by the owner role (CREATE DATABASE cannot run inside a function)
SELECT 'changed: CREATE DATABASE ' || :'db' WHERE NOT EXISTS (SELECT 1 FROM pg_database WHERE datname = :'db');
-- LC_COLLATE 'C': the text keys (instrument) compare byte by byte, which makes index inserts cheaper
-- (bench/README.md); the collector never sorts text for people
SELECT format('CREATE DATABASE %I OWNER %I TEMPLATE template0 ENCODING %L LC_COLLATE %L', :'db', :'owner', 'UTF8', 'C')
WHERE NOT EXISTS (SELECT 1 FROM pg_database WHERE datname = :'db') \gexec
SELECT pg_temp.ensure(pg_get_userbyid(datdba) = :'owner', format('ALTER DATABASE %I OWNER TO %I', :'db', :'owner'))
FROM pg_database WHERE datname = :'db';

-- only the three roles may connect; the writer and the reader may create TEMPORARY tables (the
-- writer stages its batches in them)
SELECT pg_temp.ensure(NOT has_database_privilege('public', :'db', 'CONNECT'),
                      format('REVOKE ALL ON DATABASE %I FROM PUBLIC', :'db'));
SELECT pg_temp.ensure(has_database_privilege(r, :'db', 'CONNECT') AND has_database_privilege(r, :'db', 'TEMPORARY'),
                      format('GRANT CONNECT, TEMPORARY ON DATABASE %I TO %I', :'db', r))
FROM unnest(ARRAY[:'writer', :'reader']) AS r;
