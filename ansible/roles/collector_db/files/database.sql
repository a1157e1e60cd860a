-- Inside the collector's database (psql as the superuser): the extension and who may do what.
-- Idempotent: every change prints a line starting with "changed:" (on stderr, as a NOTICE).
-- Run before the migrations (default privileges cover what they create) and again after them
-- (rights on the relations that exist, the writer's UPDATE on the bookkeeping tables).

CREATE FUNCTION pg_temp.ensure(ok boolean, fix text) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    IF NOT ok THEN
        EXECUTE fix;
        RAISE NOTICE 'changed: %', fix;
    END IF;
END $$;

-- TimescaleDB is created by the superuser (it needs shared_preload_libraries and a restart first)
SELECT pg_temp.ensure(EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'timescaledb'),
                      'CREATE EXTENSION IF NOT EXISTS timescaledb')
WHERE :'timescaledb' = 'on';

-- nobody but the owner creates anything in public (PostgreSQL < 15 lets PUBLIC do it)
SELECT pg_temp.ensure(NOT has_schema_privilege('public', 'public', 'CREATE'),
                      'REVOKE CREATE ON SCHEMA public FROM PUBLIC');
SELECT pg_temp.ensure(has_schema_privilege(r, 'public', 'USAGE'), format('GRANT USAGE ON SCHEMA public TO %I', r))
FROM unnest(ARRAY[:'writer', :'reader']) AS r;

-- default privileges: whatever the owner creates later (the migrations) is readable by both and
-- insertable by the writer; schemas it creates (collector_compat) are usable by both
CREATE FUNCTION pg_temp.has_default(owner text, nsp text, objtype "char", grantee text, priv text)
RETURNS boolean LANGUAGE sql AS $$
    SELECT EXISTS (
        SELECT 1 FROM pg_default_acl d, aclexplode(d.defaclacl) a
        WHERE d.defaclrole = owner::regrole
          AND d.defaclnamespace = coalesce((SELECT oid FROM pg_namespace WHERE nspname = nsp), 0)
          AND d.defaclobjtype = objtype AND a.grantee = grantee::regrole AND a.privilege_type = priv)
$$;
SELECT pg_temp.ensure(pg_temp.has_default(:'owner', 'public', 'r', :'writer', p),
                      format('ALTER DEFAULT PRIVILEGES FOR ROLE %I IN SCHEMA public GRANT %s ON TABLES TO %I',
                             :'owner', p, :'writer'))
FROM unnest(ARRAY['SELECT', 'INSERT']) AS p;
SELECT pg_temp.ensure(pg_temp.has_default(:'owner', 'public', 'r', :'reader', 'SELECT'),
                      format('ALTER DEFAULT PRIVILEGES FOR ROLE %I IN SCHEMA public GRANT SELECT ON TABLES TO %I',
                             :'owner', :'reader'));
SELECT pg_temp.ensure(pg_temp.has_default(:'owner', 'public', 'S', :'writer', 'USAGE'),
                      format('ALTER DEFAULT PRIVILEGES FOR ROLE %I IN SCHEMA public GRANT USAGE ON SEQUENCES TO %I',
                             :'owner', :'writer'));
SELECT pg_temp.ensure(pg_temp.has_default(:'owner', NULL, 'n', r, 'USAGE'),
                      format('ALTER DEFAULT PRIVILEGES FOR ROLE %I GRANT USAGE ON SCHEMAS TO %I', :'owner', r))
FROM unnest(ARRAY[:'writer', :'reader']) AS r;

-- the relations that exist now (created before the default privileges, or by an earlier deploy)
CREATE FUNCTION pg_temp.relations() RETURNS TABLE (name text, kind "char") LANGUAGE sql AS $$
    SELECT c.relname::text, c.relkind FROM pg_class c
    WHERE c.relnamespace = 'public'::regnamespace AND c.relkind IN ('r', 'p', 'v', 'm')
      AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.objid = c.oid AND d.deptype = 'e')  -- not an extension's
$$;
SELECT pg_temp.ensure(has_table_privilege(r, format('public.%I', name), 'SELECT'),
                      format('GRANT SELECT ON public.%I TO %I', name, r))
FROM pg_temp.relations(), unnest(ARRAY[:'writer', :'reader']) AS r;
-- the writer inserts into the data tables, never into the migration bookkeeping
SELECT pg_temp.ensure(has_table_privilege(:'writer', format('public.%I', name), 'INSERT'),
                      format('GRANT INSERT ON public.%I TO %I', name, :'writer'))
FROM pg_temp.relations() WHERE kind IN ('r', 'p') AND name <> 'schema_migrations';
SELECT pg_temp.ensure(NOT has_table_privilege(:'writer', 'public.schema_migrations', 'INSERT'),
                      format('REVOKE INSERT ON public.schema_migrations FROM %I', :'writer'))
WHERE to_regclass('public.schema_migrations') IS NOT NULL;
SELECT pg_temp.ensure(has_table_privilege(:'writer', format('public.%I', t), 'UPDATE'),
                      format('GRANT UPDATE ON public.%I TO %I', t, :'writer'))
FROM unnest(string_to_array(:'writer_update', ',')) AS t
WHERE to_regclass(format('public.%I', t)) IS NOT NULL;
-- schemas the owner created before the default privileges (collector_compat)
SELECT pg_temp.ensure(has_schema_privilege(r, n.nspname, 'USAGE'), format('GRANT USAGE ON SCHEMA %I TO %I', n.nspname, r))
FROM pg_namespace n, unnest(ARRAY[:'writer', :'reader']) AS r
WHERE n.nspowner = :'owner'::regrole;
